"""Exceptions raised by :mod:`ssd_zoo.hub`.

All derive from :class:`HubError`, so callers (the registry, ``resolve``) can tell
"the weights could not be obtained" apart from programming errors in a converter.
"""
from __future__ import annotations

from pathlib import Path


class HubError(RuntimeError):
    """Base class: weights could not be downloaded, verified, cached or loaded."""


class DownloadError(HubError):
    """An HTTP transfer failed (status error, truncated body, reset, timeout)."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"download of {url} failed: {reason}")


class UnreachableError(DownloadError):
    """The server could not be reached at all (refused, DNS failure, connect timeout)."""


class HashMismatchError(HubError, ValueError):
    """A file's content does not have the expected hash.  The bad file was deleted
    when it was ours (a download or a cache entry); a user's own file is left alone."""

    def __init__(self, what: str, algo: str, expected: str, actual: str, note: str = ""):
        self.what, self.algo, self.expected, self.actual = what, algo, expected, actual
        msg = (f"{algo} mismatch for {what}: expected {expected}, got {actual}")
        super().__init__(msg + (f". {note}" if note else ""))


class UnsafeArchiveError(HubError):
    """An archive holds a member with an absolute path or a '..' component (zip-slip)."""


class UnsafeCheckpointError(HubError):
    """A pickle-based checkpoint holds something other than tensors and plain containers
    (it was refused by ``torch.load(weights_only=True)`` and never executed)."""


class WeightsUnavailableError(HubError):
    """The weights are not in the cache and could not be fetched (offline, unreachable,
    404, ...).  ``url`` is where they come from, ``path`` where a user may place them."""

    def __init__(self, message: str, url: str | None = None, path: Path | None = None,
                 reason: str | None = None):
        self.url, self.path, self.reason = url, path, reason or message
        super().__init__(message)
