"""Choose among a model's weight sources: cache first, then each source in order."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable, Sequence

from .convert_cache import cached_conversion, lookup_converted
from .download import log
from .errors import HubError, WeightsUnavailableError
from .sources import WeightSource, cached_source, fetch_source


def resolve(name: str, sources: Sequence[WeightSource], convert: Callable | None = None,
            root=None) -> Path:
    """Path of a local, verified ``.safetensors``/``.pth`` file holding ``name``'s weights.

    1. Without network: the first source (in order) whose result is already cached and
       passes its hash check wins, so adding a new source in front never re-downloads
       weights a user already has.
    2. Otherwise each source is tried in order: 'params' sources go through
       :func:`cached_conversion` (fetch, sha1, ``convert``, safetensors), others through
       :func:`fetch_source`.  The first success wins.
    3. If all fail, one :class:`WeightsUnavailableError` lists every source's URL and
       error (offline, 404, hash mismatch, ...).  Errors other than :class:`HubError`
       (e.g. a bug in ``convert``) propagate unchanged.
    """
    if not sources:
        raise WeightsUnavailableError(f"no weight sources are declared for {name!r}")
    for src in sources:
        hit = _cached(name, src, convert, root)
        if hit is not None:
            log.debug("using cached weights %s for %s", hit, name)
            return hit
    errors = []
    for src in sources:
        try:
            if src.fmt == "params":
                if convert is None:
                    raise HubError(f"source {src.resolved_url(name)} holds Gluon .params, "
                                   "which need a converter, and none was given")
                return cached_conversion(name, src, convert, root)
            return fetch_source(src, name, root)
        except HubError as exc:
            log.warning("weight source %s for %s failed: %s", src.resolved_url(name), name,
                        str(exc).splitlines()[0])
            errors.append((src, exc))
    lines = [f"no weights could be obtained for {name!r}; tried {len(errors)} source(s):"]
    for i, (src, exc) in enumerate(errors, 1):
        lines.append(f"  {i}. [{src.kind}] {src.resolved_url(name)}")
        lines.append(textwrap.indent(f"{type(exc).__name__}: {exc}", "       "))
    first = errors[0][1]
    raise WeightsUnavailableError("\n".join(lines), getattr(first, "url", None),
                                  getattr(first, "path", None)) from errors[-1][1]


def _cached(name: str, src: WeightSource, convert, root) -> Path | None:
    if src.fmt == "params":
        return lookup_converted(name, src, convert, root) if convert is not None else None
    return cached_source(src, name, root)
