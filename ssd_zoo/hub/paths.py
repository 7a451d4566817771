"""Where the cache lives, environment switches, and atomic-write helpers."""
from __future__ import annotations

import glob
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: Gluon-CV's default model-store host (gluoncv/model_zoo/model_store.py, apache_repo_url).
APACHE_REPO_URL = "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def cache_root(root: str | os.PathLike | None = None) -> Path:
    """Root of the weight cache: ``root`` if given, else ``$SSD_ZOO_HOME``, else
    ``torch.hub.get_dir()/ssd_zoo`` (so ``$TORCH_HOME`` is honoured).  Not created here."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("SSD_ZOO_HOME")
    if env:
        return Path(env).expanduser()
    import torch.hub  # lazy: keeps the download machinery importable without torch cost

    return Path(torch.hub.get_dir()).expanduser() / "ssd_zoo"


def is_offline() -> bool:
    """True when ``SSD_ZOO_OFFLINE`` is set to 1/true/yes/on: the network is never used."""
    return os.environ.get("SSD_ZOO_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def gluon_repo_url() -> str:
    """Base URL of the Gluon model store, as gluoncv's ``get_model_file`` computes it:
    ``$MXNET_GLUON_REPO`` if set, else the Apache S3 host, with a trailing '/' added when
    missing.  (gluoncv crashes on an empty value; we treat empty as unset.)"""
    url = os.environ.get("MXNET_GLUON_REPO") or APACHE_REPO_URL
    return url if url.endswith("/") else url + "/"


def check_name(name: str) -> str:
    """Refuse names that could escape a cache directory when used in a file name."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"unsafe model/file name {name!r}: use letters, digits, '_', '.', '-'")
    return name


def lock_path(target: Path) -> Path:
    """The lock file guarding ``target`` (lives next to it; never deleted, see filelock)."""
    return target.with_name(target.name + ".lock")


def lock_timeout() -> float:
    """Seconds to wait for another process's download (``$SSD_ZOO_LOCK_TIMEOUT``, 1800)."""
    return float(os.environ.get("SSD_ZOO_LOCK_TIMEOUT", "1800"))


@contextmanager
def temp_file_for(dest: Path) -> Iterator[Path]:
    """A fresh hidden temp file in ``dest``'s directory (same filesystem, so
    ``os.replace`` is atomic).  It is removed on exit unless it was moved away."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
    finally:
        try:
            tmp_path.unlink()
        except FileNotFoundError:
            pass


def sweep_stale_temps(dest: Path) -> None:
    """Delete temp files of ``dest`` left behind by a killed process.  Call it only while
    holding ``dest``'s lock: every writer of ``dest`` holds it, so none of them is alive."""
    for stale in dest.parent.glob(f".{glob.escape(dest.name)}.*.part"):
        remove_quietly(stale)


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically (temp file + fsync + ``os.replace``)."""
    with temp_file_for(dest) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it exists."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
