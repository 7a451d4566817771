"""Entry points: ``load_caffe`` (prototxt + caffemodel), ``save`` / ``load`` (one file).

The saved file is safetensors (no pickled code): tensor ``blob.{i}.{j}`` is blob ``j`` of
the ``i``-th layer that has weights; metadata holds ``format`` = "ssd_zoo.caffe",
``version``, ``prototxt`` (the deploy text) and ``layers`` (JSON list of those layers'
names, in order).  ``load`` rebuilds the module through the same path as ``load_caffe``.
"""
from __future__ import annotations

import json
import os

from safetensors import SafetensorError, safe_open

from ..formats.safetensors_canonical import save_bytes
from .net import CaffeNet, blobs_to_tensors
from .proto import CaffeFormatError, atomic_write, read_caffemodel

FORMAT, VERSION = "ssd_zoo.caffe", "1"


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaffeFormatError(f"{path}: not a text prototxt ({exc})") from exc


def load_caffe(prototxt: str, caffemodel: str) -> CaffeNet:
    """Build the net ``prototxt`` describes with the weights of ``caffemodel``."""
    prototxt, caffemodel = os.fspath(prototxt), os.fspath(caffemodel)
    text = _read_text(prototxt)
    blobs = blobs_to_tensors(read_caffemodel(caffemodel))
    return CaffeNet(text, blobs, source=prototxt, weights_source=caffemodel)


def save(module: CaffeNet, path: str) -> None:
    """Write ``module`` (prototxt + every blob) to one safetensors file, atomically."""
    if not isinstance(module, CaffeNet):
        raise TypeError(f"save() takes a CaffeNet, got {type(module).__name__}")
    tensors, names = {}, []
    for layer, name in zip(module.layers, module.layer_names):
        if len(layer.blobs):
            for j, b in enumerate(layer.blobs):
                tensors[f"blob.{len(names)}.{j}"] = b.detach().cpu().contiguous()
            names.append(name)
    meta = {"format": FORMAT, "version": VERSION, "prototxt": module.prototxt,
            "layers": json.dumps(names)}
    atomic_write(path, save_bytes(tensors, meta))   # canonical: reproducible sha256


def load(path: str) -> CaffeNet:
    """Rebuild the module ``save`` wrote to ``path``."""
    path = os.fspath(path)
    try:
        with safe_open(path, framework="pt") as fh:
            meta = fh.metadata() or {}
            keys = list(fh.keys())
            tensors = {k: fh.get_tensor(k) for k in keys}
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CaffeFormatError(f"{path}: not a safetensors file ({exc})") from exc
    if meta.get("format") != FORMAT or "prototxt" not in meta:
        raise CaffeFormatError(f"{path}: metadata field 'format' is {meta.get('format')!r}, "
                               f"expected {FORMAT!r} (written by ssd_zoo.caffe.save)")
    if meta.get("version") != VERSION:
        raise CaffeFormatError(f"{path}: unsupported version {meta.get('version')!r}")
    try:
        names = json.loads(meta.get("layers", "[]"))
    except json.JSONDecodeError as exc:
        raise CaffeFormatError(f"{path}: metadata field 'layers' is not JSON") from exc
    blobs = {}
    for i, name in enumerate(names):
        j, lst = 0, []
        while f"blob.{i}.{j}" in tensors:
            lst.append(tensors.pop(f"blob.{i}.{j}"))
            j += 1
        blobs[name] = lst
    if tensors:
        raise CaffeFormatError(f"{path}: tensors {sorted(tensors)[:5]} belong to no layer in "
                               "metadata field 'layers'")
    return CaffeNet(meta["prototxt"], blobs, source=f"{path} (metadata 'prototxt')",
                    weights_source=path)


__all__ = ["load_caffe", "save", "load"]
