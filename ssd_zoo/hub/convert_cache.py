"""Cache of converted weights: Gluon ``.params`` -> ``{name}-{sha256[:8]}.safetensors``.

``converted/index.json`` maps ``"{name}|{kind}:{source hash}[|v{converter version}]"`` to
``{"file", "sha256", ...}``, so a later call finds the file without the network and
re-checks its sha256.  A ``convert`` callable may carry a ``version`` attribute; bumping it
invalidates earlier conversions.  Every file is written atomically.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from filelock import FileLock

from .download import log
from .errors import HubError, WeightsUnavailableError
from .hashing import file_digests, file_matches
from .paths import (atomic_write_bytes, cache_root, check_name, lock_path, lock_timeout,
                    remove_quietly, sweep_stale_temps, temp_file_for)
from .sources import WeightSource, fetch_source

INDEX_NAME = "index.json"
Converter = Callable[[Path], "dict"]


def converted_dir(root=None) -> Path:
    return cache_root(root) / "converted"


def cache_key(name: str, src: WeightSource, convert=None) -> str:
    key = f"{name}|{src.kind}:{src.source_hash}"
    version = getattr(convert, "version", None)
    return key + (f"|v{version}" if version is not None else "")


def read_index(directory: Path) -> dict:
    """The index's entries (``{}`` when absent or unreadable: entries are rebuildable)."""
    path = directory / INDEX_NAME
    try:
        data = json.loads(path.read_text())
        entries = data.get("entries", {})
        return entries if isinstance(entries, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("ignoring unreadable cache index %s: %s", path, exc)
        return {}


def _update_index(directory: Path, key: str, entry: dict | None) -> None:
    index = directory / INDEX_NAME
    with FileLock(str(lock_path(index)), timeout=lock_timeout()):
        sweep_stale_temps(index)
        entries = read_index(directory)
        if entry is None:
            entries.pop(key, None)
        else:
            entries[key] = entry
        text = json.dumps({"version": 1, "entries": entries}, indent=1, sort_keys=True)
        atomic_write_bytes(index, text.encode())


def _entry_path(directory: Path, entry: dict) -> Path | None:
    file = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(file, str) or os.sep in file or "/" in file or file.startswith("."):
        return None
    return directory / file


def lookup_converted(name: str, src: WeightSource, convert=None, root=None) -> Path | None:
    """The verified converted file for (name, src) if the index has one, else None."""
    directory = converted_dir(root)
    entry = read_index(directory).get(cache_key(name, src, convert))
    path = _entry_path(directory, entry) if entry else None
    if path is not None and file_matches(path, sha256=entry.get("sha256") or "0"):
        return path
    return None


def cached_conversion(name: str, src: WeightSource, convert: Converter, root=None, *,
                      keep_source: bool = True) -> Path:
    """Fetch ``src`` (a 'params' source), convert it once, return the safetensors path.

    ``convert(params_path) -> {key: torch.Tensor}``.  The result is saved as
    ``converted/{name}-{sha256[:8]}.safetensors`` and recorded in the index.  Later calls
    re-check the sha256 and return it without calling ``convert`` or the network.  A cached
    file that fails the check is deleted and rebuilt (from the kept ``.params`` when
    ``keep_source``, else by downloading again); if rebuilding fails the error says so.
    """
    check_name(name)
    directory = converted_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    key = cache_key(name, src, convert)
    with FileLock(str(directory / f"{name}.lock"), timeout=lock_timeout()):
        sweep_stale_temps(directory / f"{name}.safetensors")
        entry = read_index(directory).get(key)
        damaged = None
        if entry:
            path = _entry_path(directory, entry)
            if path is not None and file_matches(path, sha256=entry.get("sha256") or "0"):
                return path
            damaged = _discard(directory, key, path, entry)
        try:
            params = fetch_source(src, name, root)
        except HubError as exc:
            if damaged:
                raise WeightsUnavailableError(f"{damaged}; rebuilding it failed: {exc}",
                                              getattr(exc, "url", None),
                                              getattr(exc, "path", None)) from exc
            raise
        path, digest = _save(convert(params), directory, name, src)
        _update_index(directory, key, {
            "file": path.name, "sha256": digest, "name": name, "source_kind": src.kind,
            "source_url": src.resolved_url(name), "source_sha1": src.sha1,
            "source_sha256": src.sha256, "created": int(time.time())})
        if not keep_source:
            remove_quietly(params)
        return path


def _discard(directory: Path, key: str, path: Path | None, entry: dict) -> str:
    """Delete a damaged cache file and its index entry; return a description."""
    if path is not None and path.is_file():
        actual = file_digests(path, ("sha256",))["sha256"]
        what = (f"cached conversion {path} failed its sha256 check (expected "
                f"{entry.get('sha256')}, got {actual}) and was deleted")
        remove_quietly(path)
    else:
        what = f"cached conversion {path} recorded in the index is missing"
    log.warning("%s; rebuilding it", what)
    _update_index(directory, key, None)
    return what


def _save(state_dict, directory: Path, name: str, src: WeightSource) -> tuple[Path, str]:
    """Write ``state_dict`` as safetensors named by its own sha256 prefix (atomic)."""
    import torch
    from safetensors.torch import save_file

    if not isinstance(state_dict, dict) or not state_dict:
        raise TypeError(f"convert() for {name!r} must return a non-empty dict of tensors")
    tensors, seen = {}, set()
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"convert() for {name!r} returned {type(v).__name__} for {k!r}")
        v = v.detach().cpu().contiguous()
        if v.numel() and v.data_ptr() in seen:  # safetensors refuses shared storage
            v = v.clone()
        seen.add(v.data_ptr())
        tensors[str(k)] = v
    # ONE metadata key: safetensors serialises its metadata map in random order, so with
    # several keys the same tensors would give a different file (and sha256) every time.
    # No URL either (a mirror must not change the bytes): same source + converter -> same file.
    metadata = {"ssd_zoo": json.dumps({"name": name, "source_sha1": src.sha1,
                                       "source_sha256": src.sha256}, sort_keys=True)}
    with temp_file_for(directory / f"{name}.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        digest = file_digests(tmp, ("sha256",))["sha256"]
        final = directory / f"{name}-{digest[:8]}.safetensors"
        os.replace(tmp, final)
    return final, digest
