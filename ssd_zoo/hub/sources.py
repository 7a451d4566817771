"""Weight sources (where a model's weights come from) and fetching them into the cache.

Cache layout under :func:`cache_root`::

    gluon/{name}-{sha1[:8]}.params        verified upstream Gluon files (zip removed)
    files/{file_name}                     'file' sources (e.g. our converted releases)
    converted/{name}-{sha256[:8]}.safetensors + index.json   (see convert_cache.py)
    downloads/{sha256(url)[:12]}/{basename}                  user-given URLs
    *.lock                                inter-process locks (empty, never deleted)
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from filelock import FileLock

from .archive import extract_member
from .download import download, log
from .errors import DownloadError, HashMismatchError, WeightsUnavailableError
from .hashing import file_digests, file_matches, verify_file
from .paths import (cache_root, check_name, gluon_repo_url, is_offline, lock_path, lock_timeout,
                    remove_quietly, sweep_stale_temps)

KINDS = ("gluon_zip", "file")
FORMATS = ("params", "safetensors", "pth")
#: URL template of the Gluon-CV model store (gluoncv model_store._url_format).
GLUON_ZIP_TEMPLATE = "{repo}gluon/models/{name}-{short}.zip"


@dataclass(frozen=True)
class WeightSource:
    """One place a model's weights can come from; zoo entries hold a tuple of these,
    tried in order by :func:`ssd_zoo.hub.resolve`.

    kind: 'gluon_zip' (upstream model-store zip holding ``{name}-{sha1[:8]}.params``) or
        'file' (a direct .safetensors / .pth / .params URL).
    url: for 'gluon_zip' a template with ``{repo}``, ``{name}``, ``{short}`` (and
        ``{sha1}``) placeholders, ``{repo}`` being :func:`gluon_repo_url`; for 'file' a URL.
    sha1: full sha1 of the .params (required for 'gluon_zip'; optional for 'file').
    sha256: full sha256 of a 'file' (checked on download and on every cache hit).
    file_name: local file name; default ``{name}-{sha1[:8]}.params`` / the URL's basename.
    fmt: 'params' (needs conversion), 'safetensors' or 'pth'.
    sha256_prefix: for upstreams that publish only a prefix of the sha256 in the file name
        (torchvision's ``-b556d3b4.pth``): checked like torchvision's own ``check_hash``;
        weaker than a full hash, used only when no full hash is known.
    """

    kind: str
    url: str
    sha1: str | None = None
    sha256: str | None = None
    file_name: str | None = None
    fmt: str = "params"
    sha256_prefix: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"WeightSource.kind must be one of {KINDS}, got {self.kind!r}")
        if self.fmt not in FORMATS:
            raise ValueError(f"WeightSource.fmt must be one of {FORMATS}, got {self.fmt!r}")
        for algo, n in (("sha1", 40), ("sha256", 64)):
            value = getattr(self, algo)
            if value is not None and not re.fullmatch(f"[0-9a-fA-F]{{{n}}}", value):
                raise ValueError(f"WeightSource.{algo} must be {n} hex digits, got {value!r}")
        if self.kind == "gluon_zip" and (self.sha1 is None or self.fmt != "params"):
            raise ValueError("a 'gluon_zip' source needs the .params sha1 and fmt='params'")
        if self.file_name is not None:
            check_name(self.file_name)
        if self.sha256_prefix is not None and not re.fullmatch("[0-9a-f]{6,63}",
                                                               self.sha256_prefix):
            raise ValueError(f"WeightSource.sha256_prefix must be 6-63 lowercase hex digits, "
                             f"got {self.sha256_prefix!r}")

    def resolved_url(self, name: str) -> str:
        """The concrete URL (gluon templates are filled in with the current repo)."""
        if self.kind == "gluon_zip":
            return self.url.format(repo=gluon_repo_url(), name=name, short=self.sha1[:8],
                                   sha1=self.sha1)
        return self.url

    def local_path(self, name: str, root=None) -> Path:
        """Where the verified file lives in the cache."""
        check_name(name)
        if self.kind == "gluon_zip":
            return cache_root(root) / "gluon" / (self.file_name or f"{name}-{self.sha1[:8]}.params")
        return cache_root(root) / "files" / (self.file_name or _url_basename(self.url))

    @property
    def source_hash(self) -> str:
        """The hash identifying this source's content (for cache keys)."""
        return self.sha1 or self.sha256 or hashlib.sha256(self.url.encode()).hexdigest()


def gluon_zip_source(name: str, sha1: str) -> WeightSource:
    """The upstream Gluon-CV model-store source of ``name`` (sha1 of its .params)."""
    return WeightSource("gluon_zip", GLUON_ZIP_TEMPLATE, sha1=sha1)


def cached_source(src: WeightSource, name: str, root=None) -> Path | None:
    """The verified cached file of ``src`` if present, else None (never uses the network)."""
    path = src.local_path(name, root)
    if not file_matches(path, sha1=src.sha1, sha256=src.sha256):
        return None
    return path if _prefix_ok(path, src) else None


def _prefix_ok(path: Path, src: WeightSource) -> bool:
    return src.sha256_prefix is None or \
        file_digests(path, ("sha256",))["sha256"].startswith(src.sha256_prefix)


def fetch_source(src: WeightSource, name: str, root=None) -> Path:
    """Return a verified local file for ``src`` (a .params, .safetensors or .pth).

    Cache hit: hashes re-checked, no network.  'gluon_zip': the zip is downloaded next to
    the target, only the expected member is extracted (archives with absolute or '..'
    members are refused), its sha1 is checked and the zip is removed.  'file': downloaded
    with its sha256/sha1 checked.  Offline (``SSD_ZOO_OFFLINE=1``) or unreachable with an
    empty cache raises :class:`WeightsUnavailableError` naming the URL and the path where
    the file can be placed by hand.
    """
    dest = src.local_path(name, root)
    url = src.resolved_url(name)
    if src.kind == "file":
        try:
            path = download(url, dest, sha1=src.sha1, sha256=src.sha256)
        except (DownloadError, WeightsUnavailableError) as exc:
            raise _unavailable(name, url, dest, _reason(exc)) from exc
        if not _prefix_ok(path, src):
            actual = file_digests(path, ("sha256",))["sha256"]
            remove_quietly(path)
            raise HashMismatchError(url, "sha256 prefix", src.sha256_prefix, actual,
                                    note="the downloaded file was deleted")
        if not (src.sha1 or src.sha256 or src.sha256_prefix):
            log.warning("%s has no published hash: its content could not be verified", url)
        return path
    return _fetch_gluon_zip(src, name, url, dest)


def _fetch_gluon_zip(src: WeightSource, name: str, url: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    zip_path = dest.parent / _url_basename(url)
    with FileLock(str(lock_path(dest)), timeout=lock_timeout()):
        sweep_stale_temps(dest)
        if dest.exists():
            if file_matches(dest, sha1=src.sha1, sha256=src.sha256):
                return dest
            log.warning("%s does not match sha1 %s; fetching it again", dest, src.sha1)
            remove_quietly(dest)
        if is_offline() and not zip_path.exists():
            raise _unavailable(name, url, dest, "SSD_ZOO_OFFLINE=1 forbids network access",
                               zip_path)
        try:
            if not zip_path.exists():  # a zip placed there by hand is used as is
                download(url, zip_path)
            return extract_member(zip_path, dest.name, dest, sha1=src.sha1, label=url)
        except (DownloadError, WeightsUnavailableError) as exc:
            raise _unavailable(name, url, dest, _reason(exc), zip_path) from exc
        finally:
            remove_quietly(zip_path)


def fetch_user_weights(weights: str, sha256: str | None = None, root=None) -> Path:
    """A local path, ``file://`` or http(s) URL -> a local file, sha256-checked if given.

    URLs are downloaded once to ``cache_root(root)/downloads/{sha256(url)[:12]}/{basename}``
    and reused afterwards (re-checked when ``sha256`` is given).  A user's own local file
    is never deleted, even when its hash is wrong.
    """
    parsed = urlparse(str(weights))
    if parsed.scheme in ("http", "https"):
        url = str(weights)
        tag = hashlib.sha256(url.encode()).hexdigest()[:12]
        dest = cache_root(root) / "downloads" / tag / _url_basename(url)
        try:
            return download(url, dest, sha256=sha256)
        except (DownloadError, WeightsUnavailableError) as exc:
            raise _unavailable(None, url, dest, _reason(exc)) from exc
    if parsed.scheme == "file":
        path = Path(url2pathname(parsed.path))
    elif len(parsed.scheme) > 1:
        raise ValueError(f"unsupported weights location {weights!r}: use a path or http(s) URL")
    else:
        path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    verify_file(path, sha256=sha256, note="your file was left untouched")
    return path


def _url_basename(url: str) -> str:
    """A safe local file name from the last component of a URL's path."""
    base = unquote(posixpath.basename(urlparse(url).path))
    base = re.sub(r"[^A-Za-z0-9_.\-]", "_", base).lstrip(".")
    return base or "weights"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or str(exc)


def _unavailable(name, url: str, dest: Path, reason: str, zip_path: Path | None = None):
    what = f"weights for {name!r}" if name else "weights"
    where = (f"the zip at {zip_path} or its extracted {dest.name} at {dest}" if zip_path
             else f"it at {dest}")
    return WeightsUnavailableError(
        f"cannot obtain {what}: {reason}\n  URL: {url}\n  To install by hand, download the "
        f"URL on a machine with internet and place {where}", url, dest)
