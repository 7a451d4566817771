"""Safe extraction of one expected member from a zip archive (zip-slip proof)."""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import HashMismatchError, HubError, UnsafeArchiveError
from .hashing import expected_hashes, mismatch
from .paths import temp_file_for

_CHUNK = 1 << 20


def unsafe_member_reason(name: str) -> str | None:
    """Why a member name could write outside the extraction directory, or None."""
    if "\x00" in name:
        return "contains a NUL byte"
    posix, win = PurePosixPath(name.replace("\\", "/")), PureWindowsPath(name)
    if posix.is_absolute() or win.is_absolute() or win.drive or name.startswith(("/", "\\")):
        return "is an absolute path"
    if ".." in posix.parts:
        return "contains a '..' component"
    return None


def check_archive(zf: zipfile.ZipFile, label: str) -> None:
    """Refuse the whole archive if ANY member is unsafe (absolute path or '..')."""
    for info in zf.infolist():
        reason = unsafe_member_reason(info.filename)
        if reason:
            raise UnsafeArchiveError(
                f"refusing archive {label}: member {info.filename!r} {reason} (zip-slip); "
                "nothing was extracted")


def extract_member(zip_path: Path, member: str, dest: Path, *, sha1: str | None = None,
                   sha256: str | None = None, label: str | None = None) -> Path:
    """Extract the member called ``member`` (top level, or the unique member with that
    base name) from ``zip_path`` to ``dest`` atomically, verifying its hashes.

    The member's own path is never used to build a file name: bytes are streamed into a
    temp file next to ``dest`` and renamed.  Unsafe archives are refused outright.
    """
    label = label or str(zip_path)
    expected = expected_hashes(sha1, sha256)
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise HubError(f"{label} is not a valid zip archive: {exc}") from exc
    with zf:
        check_archive(zf, label)
        info = _find_member(zf, member, label)
        with temp_file_for(dest) as tmp:
            hashers = {a: hashlib.new(a) for a in (tuple(expected) or ("sha256",))}
            with zf.open(info) as src, open(tmp, "wb") as out:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                out.flush()
                os.fsync(out.fileno())
            bad = mismatch({a: h.hexdigest() for a, h in hashers.items()}, expected)
            if bad:
                raise HashMismatchError(f"{member} in {label}", *bad,
                                        note="the extracted file and the archive were deleted")
            os.replace(tmp, dest)
    return dest


def _find_member(zf: zipfile.ZipFile, member: str, label: str) -> zipfile.ZipInfo:
    files = [i for i in zf.infolist() if not i.is_dir()]
    exact = [i for i in files if i.filename == member]
    if exact:
        return exact[0]
    by_base = [i for i in files if PurePosixPath(i.filename).name == member]
    if len(by_base) == 1:
        return by_base[0]
    names = ", ".join(i.filename for i in files[:10]) or "(empty)"
    raise HubError(f"{label} does not contain exactly one {member!r} (members: {names})")
