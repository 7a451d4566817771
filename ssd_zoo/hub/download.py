"""HTTP download with hash check, atomic rename, retries and an inter-process lock.

Failure policy (documented choice: *clean retry*, no HTTP Range resume):
  * every attempt streams into a fresh hidden temp file next to ``dest``; a truncated
    body (fewer bytes than Content-Length), a connection reset, a read timeout or an HTTP
    5xx/429 deletes that temp file and the download starts again from byte 0 after a
    short back-off (``retries`` extra attempts).  Resuming would save bandwidth on huge
    files, but a partial file that outlives its process is exactly the half-written state
    this cache must never contain, so we do not keep one;
  * a server that cannot be reached at all (refused, DNS, connect timeout) fails at once
    with :class:`UnreachableError`: no back-off, so offline users get an answer in
    seconds;
  * HTTP 4xx (other than 408/425/429) and hash mismatches are not retried.
``dest`` only ever appears through ``os.replace`` of a complete, verified file.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from pathlib import Path

import requests
import urllib3
from filelock import FileLock

from .errors import DownloadError, HashMismatchError, UnreachableError, WeightsUnavailableError
from .hashing import expected_hashes, file_matches, mismatch
from .paths import (is_offline, lock_path, lock_timeout, remove_quietly, sweep_stale_temps,
                    temp_file_for)

log = logging.getLogger("ssd_zoo.hub")

_CHUNK = 1 << 16
_RETRY_STATUS = {408, 425, 429}


class _Transient(Exception):
    """An attempt failed in a way that a clean retry may fix."""


def download(url: str, dest: Path, *, sha1: str | None = None, sha256: str | None = None,
             timeout=(10, 60), progress: bool | None = None, retries: int = 2,
             backoff: float = 1.0, overwrite: bool = False) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    Args:
        url: http(s) URL.
        dest: final path; its directory is created.  Only a complete file whose hashes
            match is ever renamed onto it.
        sha1, sha256: expected full hex digests (checked while streaming).  On mismatch
            the file is deleted and :class:`HashMismatchError` names URL, expected, actual.
        timeout: ``(connect, read)`` seconds for requests.
        progress: tqdm bar on stderr; None = only when stderr is a TTY.
        retries: extra attempts after a transient failure (see module docstring).
        backoff: seconds before the first retry, doubled each time.
        overwrite: download even if ``dest`` exists.  Otherwise an existing ``dest`` is
            returned without network access when it matches the given hashes (any file
            matches when none are given) and replaced when it does not.

    A :class:`filelock.FileLock` on ``dest.lock`` makes concurrent callers (processes or
    threads) wait for the first one; they then find the verified file and return it, so
    the URL is fetched exactly once.  With ``SSD_ZOO_OFFLINE=1`` and no usable ``dest``,
    raises :class:`WeightsUnavailableError` without touching the network.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    expected = expected_hashes(sha1, sha256)
    with FileLock(str(lock_path(dest)), timeout=lock_timeout()):
        sweep_stale_temps(dest)
        if dest.exists() and not overwrite:
            if file_matches(dest, sha1=sha1, sha256=sha256):
                return dest
            log.warning("%s does not match its expected hash; downloading it again", dest)
            remove_quietly(dest)
        if is_offline():
            raise WeightsUnavailableError(
                f"SSD_ZOO_OFFLINE=1 and {dest} is not present: not downloading {url}. "
                f"Download it on a machine with internet and place it at {dest}", url, dest,
                reason="SSD_ZOO_OFFLINE=1 forbids network access")
        last = None
        for attempt in range(retries + 1):
            if attempt:
                delay = backoff * 2 ** (attempt - 1)
                log.warning("retrying %s in %.1fs (attempt %d/%d): %s",
                            url, delay, attempt + 1, retries + 1, last)
                time.sleep(delay)
            try:
                _download_once(url, dest, expected, timeout, progress)
                return dest
            except _Transient as exc:
                last = exc
        raise DownloadError(url, f"{last} (gave up after {retries + 1} attempts)")


def _download_once(url: str, dest: Path, expected: dict, timeout, progress) -> None:
    """One attempt: stream into a temp file, verify, ``os.replace`` onto ``dest``."""
    with temp_file_for(dest) as tmp:
        digests = _stream(url, tmp, tuple(expected) or ("sha256",), timeout, progress)
        bad = mismatch(digests, expected)
        if bad:
            raise HashMismatchError(url, *bad, note="the downloaded file was deleted")
        os.replace(tmp, dest)
    log.info("downloaded %s to %s", url, dest)


def _stream(url: str, tmp: Path, algos: tuple, timeout, progress) -> dict[str, str]:
    """GET ``url`` into ``tmp``; return hex digests.  Raises _Transient / DownloadError."""
    try:
        resp = requests.get(url, stream=True, timeout=timeout,
                            headers={"Accept-Encoding": "identity"})
    except requests.RequestException as exc:
        if _is_connect_failure(exc):
            raise UnreachableError(url, f"cannot connect ({_short(exc)})") from exc
        raise _Transient(f"request failed: {_short(exc)}") from exc
    with resp:
        if resp.status_code in _RETRY_STATUS or resp.status_code >= 500:
            raise _Transient(f"HTTP {resp.status_code} {resp.reason}")
        if resp.status_code >= 400:
            raise DownloadError(url, f"HTTP {resp.status_code} {resp.reason}")
        total = _content_length(resp)
        hashers = {a: hashlib.new(a) for a in algos}
        received = 0
        bar = _progress_bar(progress, total, url)
        try:
            with open(tmp, "wb") as f:
                for chunk in resp.iter_content(_CHUNK):
                    f.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())
        except (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError) as exc:
            raise _Transient(f"transfer interrupted after {received} bytes: {_short(exc)}") from exc
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received != total:
        raise _Transient(f"truncated transfer: got {received} of {total} bytes")
    return {a: h.hexdigest() for a, h in hashers.items()}


def _content_length(resp) -> int | None:
    value = resp.headers.get("Content-Length")
    if value is None or resp.headers.get("Content-Encoding", "identity") != "identity":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _progress_bar(progress: bool | None, total: int | None, url: str):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                desc=url.rsplit("/", 1)[-1], file=sys.stderr, leave=False)


def _is_connect_failure(exc: BaseException) -> bool:
    """True if no connection was ever established (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, (urllib3.exceptions.NewConnectionError,
                               urllib3.exceptions.ConnectTimeoutError))


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."
