"""Atomic file writes (temp file in the same directory + fsync + ``os.replace``): a reader
never sees a half-written file, and an interrupted write leaves the old file intact."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Union

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[Path], None], mode: int = 0o644) -> Path:
    """Call ``write(tmp_path)`` then move the result onto ``path`` atomically.

    The temp file is removed if ``write`` raises.  Returns ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)  # mkstemp creates 0600
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: PathLike, obj, **dumps_kw) -> Path:
    dumps_kw.setdefault("indent", 1)
    return atomic_write_text(path, json.dumps(obj, **dumps_kw) + "\n")
