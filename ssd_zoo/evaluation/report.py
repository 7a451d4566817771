"""Comparison with the catalog's published numbers, the printed table and the results JSON."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Optional

from ..atomic import atomic_write_bytes

# (standard dataset, metric kind) -> (catalog Metric.metric, key in our metrics)
REFERENCE_METRICS = {("voc", "voc07"): ("VOC07 mAP", "mAP"), ("coco", "coco"): ("COCO AP", "AP")}


def reference_key(spec, metric_kind: str):
    """Catalog metric name and our metric key comparable with published numbers, or None."""
    if not spec.standard:
        return None
    return REFERENCE_METRICS.get((spec.name, metric_kind))


def published(entry, metric_name: str, source: str) -> Optional[float]:
    for m in entry.published:
        if m.metric == metric_name and m.source == source:
            return float(m.value)
    return None


def comparison(entry, spec, metric_kind: str, metrics: dict) -> dict:
    """``{metric, ours, gluoncv, paper, delta_gluoncv, delta_paper}`` in percent points."""
    key = reference_key(spec, metric_kind)
    head = "mAP" if metric_kind != "coco" else "AP"
    name = key[0] if key else {"voc07": "VOC07 mAP", "voc": "VOC mAP", "coco": "COCO AP"}[
        metric_kind]
    value = metrics.get(key[1] if key else head)
    ours = None if value is None else 100.0 * value
    gluon = published(entry, key[0], "gluoncv") if key else None
    paper = published(entry, key[0], "paper") if key else None
    delta = lambda ref: None if ours is None or ref is None else ours - ref  # noqa: E731
    return {"metric": name, "ours": ours, "gluoncv": gluon, "paper": paper,
            "delta_gluoncv": delta(gluon), "delta_paper": delta(paper)}


def format_table(network: str, dataset: str, comp: dict) -> str:
    """ours | Gluon-CV | paper | Δ table (percent points)."""
    f = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    d = lambda v: "n/a" if v is None else f"{v:+.2f}"  # noqa: E731
    title = f"{network} on {dataset}"
    head = f"{'metric':<12} | {'ours':>7} | {'Gluon-CV':>8} | {'paper':>7} | {'Δ Gluon-CV':>10}"
    row = (f"{comp['metric']:<12} | {f(comp['ours']):>7} | {f(comp['gluoncv']):>8} | "
           f"{f(comp['paper']):>7} | {d(comp['delta_gluoncv']):>10}")
    return "\n".join([title, head, "-" * len(head), row])


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_record(entry, weights: Optional[str], pretrained: bool) -> dict:
    """Where the evaluated weights came from."""
    if weights:
        if "://" in str(weights) and not str(weights).startswith("file://"):
            return {"kind": "url", "url": str(weights)}
        path = Path(os.path.expanduser(str(weights).replace("file://", "", 1)))
        return {"kind": "file", "path": str(path.resolve()), "sha256": file_sha256(path)}
    if pretrained:
        return {"kind": "pretrained",
                "sources": [{"url": s.resolved_url(entry.name), "sha1": s.sha1,
                             "sha256": s.sha256} for s in entry.sources]}
    return {"kind": "random-init"}


def versions() -> dict:
    import numpy
    import torch
    import ssd_zoo
    try:
        import torchvision
        tv = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a dependency
        tv = None
    return {"ssd_zoo": ssd_zoo.__version__, "torch": torch.__version__, "torchvision": tv,
            "numpy": numpy.__version__, "python": platform.python_version()}


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def default_command() -> str:
    import shlex
    return " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable)] + sys.argv)


def write_json(path, record: dict) -> Path:
    """Write ``record`` atomically (temp file + rename); NaN is not allowed (use None)."""
    path = Path(path)
    atomic_write_bytes(path, (json.dumps(record, indent=2, allow_nan=False) + "\n").encode())
    return path
