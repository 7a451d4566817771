"""Loader of the fused Winograd transforms (ssd_zoo/csrc/winograd_transforms.cpp).

The C++ source is compiled on first use with ``torch.utils.cpp_extension`` (needs a C++
compiler and ninja; ~1 min once, cached under ``$TORCH_EXTENSIONS_DIR`` or
``~/.cache/torch_extensions``) for this machine's CPU (``-march=native``).  Without a
compiler, or with ``SSD_ZOO_WINOGRAD_EXT=0``, :func:`get` returns None and
ssd_zoo.winograd falls back to its pure-PyTorch transforms (same results, slower).
"""
from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "csrc" / "winograd_transforms.cpp"
ENV = "SSD_ZOO_WINOGRAD_EXT"
_state = {"tried": False, "module": None, "error": None}


def enabled() -> bool:
    """False when ``SSD_ZOO_WINOGRAD_EXT=0`` (or 'off'/'false')."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "false", "no")


def get():
    """The compiled extension module, or None (disabled, or it could not be built: a
    RuntimeWarning says why, once)."""
    if not enabled():
        return None
    if not _state["tried"]:
        _state["tried"] = True
        try:
            _state["module"] = _build()
        except Exception as exc:  # noqa: BLE001 - any build failure means: use the fallback
            _state["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}"
            warnings.warn("ssd_zoo: the fused Winograd transforms could not be built "
                          f"({_state['error']}); using the slower pure-PyTorch transforms. "
                          f"Install a C++ compiler and ninja, or set {ENV}=0 to silence this.",
                          RuntimeWarning, stacklevel=3)
    return _state["module"]


def ensure_ninja_on_path() -> bool:
    """torch.utils.cpp_extension runs ``ninja`` from PATH; the PyPI ``ninja`` package puts it
    beside the interpreter of a venv that is not activated (as in ``make test``).  Adds that
    directory to PATH when needed; returns whether ninja is reachable now."""
    if shutil.which("ninja"):
        return True
    dirs = [Path(sys.executable).parent]
    try:
        import ninja
        dirs.insert(0, Path(ninja.BIN_DIR))
    except (ImportError, AttributeError):
        pass
    for d in dirs:
        if (d / "ninja").is_file():
            os.environ["PATH"] = f"{d}{os.pathsep}{os.environ.get('PATH', '')}"
            return True
    return False


def _build():
    import torch
    from torch.utils import cpp_extension
    ensure_ninja_on_path()
    # one build per CPU kind: -march=native code must not run on an older CPU sharing $HOME
    cap = torch.backends.cpu.get_cpu_capability().lower()
    flags = ["-O3", "-march=native", "-fopenmp"]
    return cpp_extension.load(name=f"ssd_zoo_winograd_{cap}", sources=[str(SOURCE)],
                              extra_cflags=flags, extra_ldflags=["-fopenmp"], verbose=False)
