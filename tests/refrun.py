"""Run a script of tests/ref/ in the reference venv, caching its outputs on disk.

The reference runtime (gluoncv on MXNet) cannot be imported beside torch, so tests call
scripts in `.venv-ref` and exchange arrays through .npz / .params files.  Outputs are cached
under `.cache/ref/<key>` where the key hashes the script source, its arguments and the
reference package versions, so a second run of the suite costs nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF_DIR = Path(__file__).resolve().parent / "ref"
CACHE = Path(os.environ.get("SSD_ZOO_REF_CACHE", ROOT / ".cache" / "ref"))
REF_VERSIONS = (ROOT / "requirements-ref.txt").read_text()


def run_ref(ref_python, script: str, args: dict, timeout: float = 1800) -> Path:
    """Run `tests/ref/<script>` with `--out DIR --args JSON`; return DIR (cached).

    The script must write its outputs into DIR.  A completed run leaves DIR/DONE.
    """
    src = (REF_DIR / script).read_bytes()
    helper = (REF_DIR / "common.py").read_bytes() if (REF_DIR / "common.py").exists() else b""
    key = hashlib.sha1(src + helper + json.dumps(args, sort_keys=True).encode()
                       + REF_VERSIONS.encode()).hexdigest()[:16]
    out = CACHE / f"{Path(script).stem}-{key}"
    if (out / "DONE").exists():
        return out
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = dict(os.environ, PYTHONWARNINGS="ignore", MXNET_ENGINE_TYPE="NaiveEngine",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
               MXNET_CPU_WORKER_NTHREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.run([str(ref_python), str(REF_DIR / script), "--out", str(tmp),
                           "--args", json.dumps(args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(ROOT))
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"reference script {script} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    (tmp / "DONE").write_text("ok")
    try:
        os.replace(tmp, out)
    except OSError:  # another worker finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return out
