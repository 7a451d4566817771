"""Download, verify, convert and cache model weights (issue 3).

Public API::

    WeightSource, gluon_zip_source           where weights come from
    cache_root, is_offline, gluon_repo_url   environment ($SSD_ZOO_HOME, $SSD_ZOO_OFFLINE,
                                             $MXNET_GLUON_REPO)
    download                                 one URL -> verified file (lock, atomic, retry)
    fetch_source, fetch_user_weights         a source / a user path-or-URL -> local file
    cached_conversion, resolve               .params -> cached safetensors; source choice
    load_state_dict_file                     .safetensors / .pth (weights_only) / .params
"""
from .convert_cache import cached_conversion, lookup_converted
from .download import download
from .errors import (DownloadError, HashMismatchError, HubError, UnreachableError,
                     UnsafeArchiveError, UnsafeCheckpointError, WeightsUnavailableError)
from .loading import RawGluonParams, detect_format, load_state_dict_file
from .paths import APACHE_REPO_URL, cache_root, gluon_repo_url, is_offline
from .resolve import resolve
from .sources import (GLUON_ZIP_TEMPLATE, WeightSource, cached_source, fetch_source,
                      fetch_user_weights, gluon_zip_source)

__all__ = [
    "APACHE_REPO_URL", "GLUON_ZIP_TEMPLATE", "DownloadError", "HashMismatchError", "HubError",
    "RawGluonParams", "UnreachableError", "UnsafeArchiveError", "UnsafeCheckpointError",
    "WeightSource", "WeightsUnavailableError", "cache_root", "cached_conversion",
    "cached_source", "detect_format", "download", "fetch_source", "fetch_user_weights",
    "gluon_repo_url", "gluon_zip_source", "is_offline", "load_state_dict_file",
    "lookup_converted", "resolve",
]
