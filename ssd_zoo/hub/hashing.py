"""File hashing and verification."""
from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import HashMismatchError

_CHUNK = 1 << 20


def file_digests(path: Path, algos=("sha1", "sha256")) -> dict[str, str]:
    """Hex digests of ``path`` for each algorithm, computed in one pass."""
    hashers = {a: hashlib.new(a) for a in algos}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def expected_hashes(sha1: str | None = None, sha256: str | None = None) -> dict[str, str]:
    """``{algo: lowercase hex}`` for the hashes that were given."""
    out = {}
    if sha1:
        out["sha1"] = sha1.lower()
    if sha256:
        out["sha256"] = sha256.lower()
    return out


def mismatch(actual: dict[str, str], expected: dict[str, str]) -> tuple[str, str, str] | None:
    """First ``(algo, expected, actual)`` that differs, or None.  Full digests only: a short
    prefix would be a weak check against a deliberately crafted file."""
    for algo, exp in expected.items():
        if actual[algo] != exp:
            return algo, exp, actual[algo]
    return None


def verify_file(path: Path, *, sha1: str | None = None, sha256: str | None = None,
                what: str | None = None, note: str = "") -> None:
    """Raise :class:`HashMismatchError` unless ``path`` has the given hashes (never deletes)."""
    expected = expected_hashes(sha1, sha256)
    if not expected:
        return
    bad = mismatch(file_digests(path, tuple(expected)), expected)
    if bad:
        raise HashMismatchError(what or str(path), *bad, note=note)


def file_matches(path: Path, *, sha1: str | None = None, sha256: str | None = None) -> bool:
    """True if ``path`` exists and has the given hashes (True for any file if none given)."""
    if not path.is_file():
        return False
    expected = expected_hashes(sha1, sha256)
    return not expected or mismatch(file_digests(path, tuple(expected)), expected) is None
