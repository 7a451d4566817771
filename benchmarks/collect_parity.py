#!/usr/bin/env python
"""Measure parity with the source runtime and write results/parity/<name>.json.

    python benchmarks/collect_parity.py                       # every model with weights
    python benchmarks/collect_parity.py ssd_300_vgg16_atrous_voc ssd_300_res10_face_caffe

Gluon-CV models: runs ``tests/test_gluon_parity.py::test_published_model_parity`` (needs
.venv-ref) under pytest with ``--junitxml`` and collects the ``parity`` properties that test
records (max |raw head diff|, score diff, box diff, per run and naming scheme).
Converted Caffe models (kind 'caffe'): runs OpenCV dnn on the original prototxt +
caffemodel and our converted file on the same blobs (square 300x300 and non-square) and
records the worst score / normalized-coordinate differences.  Models from other upstreams
(torchvision, ssd.pytorch) have no collector here yet and are reported as skipped.
The JSON is read by benchmarks/make_tables.py (model cards, README parity table).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
ASSETS = ROOT.parent / "shared" / "assets"
GLUON_TEST = "tests/test_gluon_parity.py::test_published_model_parity"


def write_json(path: Path, obj) -> None:
    """Atomic JSON write (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def junit_parity(xml_text: str) -> dict:
    """{model: {"scheme": {run: errors}}, ...} from pytest's junit XML ``parity`` properties
    (test ids ``test_published_model_parity[<name>-<scheme>]``)."""
    out: dict = {}
    for case in ET.fromstring(xml_text).iter("testcase"):
        failed = any(child.tag in ("failure", "error") for child in case)
        name = case.get("name", "")
        if "[" not in name:
            continue
        model, scheme = name[name.index("[") + 1:-1].rsplit("-", 1)
        for prop in case.iter("property"):
            if prop.get("name") == "parity" and not failed:
                out.setdefault(model, {})[scheme] = json.loads(prop.get("value"))
        if failed:
            out.setdefault(model, {})[scheme] = {"failed": True}
    return out


def worst(runs: dict) -> dict:
    """Max of each error kind over schemes and runs."""
    keys = ("raw", "score", "box")
    res = {k: 0.0 for k in keys}
    for per_scheme in runs.values():
        for run in per_scheme.values():
            for k in keys:
                if isinstance(run, dict) and k in run:
                    res[k] = max(res[k], float(run[k]))
    return res


def gluon_parity(names, out_dir: Path, python: str) -> int:
    ids = [f"{GLUON_TEST}[{n}-{s}]" for n in names for s in ("structural", "prefixed")]
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "parity.xml"
        cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
               "-o", "junit_family=xunit1", *ids]
        print("running " + " ".join(shlex.quote(c) for c in cmd[2:]), flush=True)
        proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "SSD_ZOO_REQUIRE_REF": "1"})
        if not xml.is_file():
            print("error: pytest wrote no junit XML", file=sys.stderr)
            return 1
        found = junit_parity(xml.read_text())
    for name in names:
        runs = found.get(name)
        if not runs or any(r.get("failed") for r in runs.values()):
            print(f"error: {name}: parity test failed or did not run; nothing written",
                  file=sys.stderr)
            continue
        write_json(out_dir / f"{name}.json", {
            "model": name, "reference": "gluoncv 0.10.5.post0 / mxnet 1.9.1 (.venv-ref)",
            "method": "tests/test_gluon_parity.py: gluoncv SSD with well-conditioned random "
                      "weights, .params in both naming schemes converted, raw head outputs "
                      "and detections compared on the VOC asset images (square, batched) "
                      "and on load_test's non-square inputs",
            "tolerances": {"raw": 1e-4, "score": 1e-5, "box_px": 1e-2},
            "worst": worst(runs), "runs": runs, "command": _command(), "date": _now()})
    return proc.returncode


def caffe_parity(entry, out_dir: Path) -> int:
    import cv2
    import numpy as np
    import torch
    from ssd_zoo.bundled import bundled_path
    from ssd_zoo.caffe import load
    from tests.test_caffe_util import compare_detections
    folder = ASSETS / "res10_face_caffe"
    proto, model = folder / "deploy.prototxt.txt", \
        folder / "res10_300x300_ssd_iter_140000.caffemodel"
    images = sorted((ASSETS / "images").glob("*.*"))
    if not (proto.is_file() and model.is_file() and images):
        print(f"error: {entry.name}: the original Caffe files are not in {folder}",
              file=sys.stderr)
        return 1
    mean = tuple(float(v) for v in entry.extra["caffe_mean"].split(","))
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    ref = cv2.dnn.readNetFromCaffe(str(proto), str(model))
    ours = load(bundled_path(entry)).eval()
    ws = wc = 0.0
    n = dets = 0
    for path in images:
        img = cv2.imread(str(path))
        for size in ((300, 300), (400, 240)):
            blob = cv2.dnn.blobFromImage(img, 1.0, size, mean)
            ref.setInput(blob)
            r = ref.forward()
            with torch.no_grad():
                o = ours(torch.from_numpy(blob)).numpy()
            s, c = compare_detections(o, r)
            ws, wc, n = max(ws, s), max(wc, c), n + 1
            dets += int((r[0, 0, :, 2] > 0).sum())
    write_json(out_dir / f"{entry.name}.json", {
        "model": entry.name, "reference": f"OpenCV dnn {cv2.__version__} on the original "
                                          "deploy.prototxt + caffemodel",
        "method": f"{len(images)} asset images x (300x300, 400x240) blobs; every "
                  "DetectionOutput row matched (label equal, score and coordinates within "
                  "tolerance)", "tolerances": {"score": 1e-5, "coord_normalized": 1e-4},
        "worst": {"score": ws, "coord_normalized": wc}, "runs": n, "detections": dets,
        "command": _command(), "date": _now()})
    return 0


def _command() -> str:
    return "python benchmarks/collect_parity.py " + " ".join(shlex.quote(a) for a in
                                                             sys.argv[1:])


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="model names (default: all with weights)")
    p.add_argument("--out", default=str(ROOT / "results" / "parity"))
    p.add_argument("--python", default=sys.executable, help="interpreter that runs pytest")
    args = p.parse_args(argv)
    from ssd_zoo.zoo import CATALOG
    names = args.names or [n for n, e in CATALOG.items() if e.has_weights or e.bundled_file]
    unknown = [n for n in names if n not in CATALOG]
    if unknown:
        print(f"error: unknown model(s) {unknown}", file=sys.stderr)
        return 2
    out = Path(args.out)
    gluon = [n for n in names if CATALOG[n].upstream == "gluoncv" and CATALOG[n].has_weights]
    rc = 0
    for n in names:
        e = CATALOG[n]
        if e.kind == "caffe":
            rc |= caffe_parity(e, out)
        elif n not in gluon:
            print(f"skipped {n}: no parity collector for upstream {e.upstream!r}")
    if gluon:
        rc |= gluon_parity(gluon, out, args.python)
    return 1 if rc else 0


if __name__ == "__main__":
    sys.exit(main())
