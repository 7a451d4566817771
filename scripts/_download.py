"""Download + extract helpers for the dataset scripts (requests + tqdm, atomic writes)."""
from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Optional


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, md5: Optional[str] = None, overwrite: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` through ``dest.part`` + rename; resume-safe, md5-checked.

    An existing ``dest`` with the right md5 (or any existing one when ``md5`` is None) is
    kept unless ``overwrite``.
    """
    import requests
    from tqdm import tqdm

    dest = Path(dest)
    if dest.exists() and not overwrite and (md5 is None or md5sum(dest) == md5):
        print(f"{dest} already present")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with requests.get(url, stream=True, timeout=60) as r:
        r.raise_for_status()
        total = int(r.headers.get("content-length", 0)) or None
        with open(part, "wb") as f, tqdm(total=total, unit="B", unit_scale=True,
                                         unit_divisor=1024, desc=dest.name) as bar:
            for block in r.iter_content(chunk_size=1 << 20):
                f.write(block)
                bar.update(len(block))
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise IOError(f"{url}: md5 {got} != expected {md5}; download removed")
    os.replace(part, dest)
    return dest


def extract(archive: Path, target: Path) -> None:
    """Extract a .tar/.tar.gz/.zip into ``target``, refusing members that escape it."""
    target = Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    print(f"extracting {archive} -> {target}")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if not (target / name).resolve().is_relative_to(target):
                    raise IOError(f"{archive}: member {name} escapes {target}")
            z.extractall(target)
    else:
        with tarfile.open(archive) as t:
            t.extractall(target, filter="data")
