"""Maintainer tool: turn every upstream weight file into publishable safetensors + manifest.

The manifest rows (name, file, size, sha256, source sha1) are what a future "converted"
WeightSource needs (``WeightSource(kind='file', url=..., sha256=..., fmt='safetensors')``
placed before the upstream source in the catalog entry).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable, List

from .atomic import atomic_write, atomic_write_json
from .hub.hashing import file_digests


def export_converted(names: Iterable[str], out_dir, root=None, progress=None) -> List[dict]:
    """Resolve (download + verify + convert) each model and copy its safetensors to
    ``out_dir/{name}-{sha256[:8]}.safetensors``; write ``out_dir/manifest.json`` atomically.
    """
    from .registry import get_entry, get_model, resolve_pretrained
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        entry = get_entry(name)
        if not entry.has_weights:
            raise ValueError(f"{name} has no upstream weights to export")
        net = get_model(name)
        cached = resolve_pretrained(entry, net, root=root)
        sha256 = file_digests(cached, ("sha256",))["sha256"]
        dest = out_dir / f"{name}-{sha256[:8]}.safetensors"
        atomic_write(dest, lambda tmp, src=cached: shutil.copyfile(src, tmp))
        src = entry.sources[-1]
        rows.append({"name": name, "file": dest.name, "size": dest.stat().st_size,
                     "sha256": sha256, "source_sha1": src.sha1,
                     "source_url": src.resolved_url(name)})
        if progress:
            progress(rows[-1])
    atomic_write_json(out_dir / "manifest.json", rows, indent=2)
    return rows
