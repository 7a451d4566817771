"""Load a weight file into a state dict, safely, whatever its format."""
from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from pathlib import Path

from .errors import UnsafeCheckpointError
from .hashing import verify_file

_SUFFIXES = {".safetensors": "safetensors", ".params": "params", ".pth": "pth", ".pt": "pth",
             ".bin": "pth", ".ckpt": "pth", ".tar": "pth"}
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


class RawGluonParams(OrderedDict):
    """``{name: numpy array}`` read from a Gluon ``.params`` file, in file order.

    Not a PyTorch state dict yet: ``needs_conversion`` is True so callers hand it (or
    ``path``) to the Gluon converter.
    """

    needs_conversion = True

    def __init__(self, arrays, path):
        super().__init__(arrays)
        self.path = Path(path)


def detect_format(path: Path) -> str:
    """'safetensors', 'pth' or 'params', from the suffix, else from the first bytes."""
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt:
        return fmt
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return "pth"  # torch.save zip container, or a legacy pickle
    if len(head) >= 9 and struct.unpack("<Q", head[:8])[0] == 0x112:
        return "params"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    raise ValueError(f"{path}: unknown weight file format (expected .safetensors, .pth "
                     "or Gluon .params)")


def load_state_dict_file(path, sha256: str | None = None):
    """Load a weight file on the CPU.

    * ``.safetensors`` -> ``safetensors.torch.load_file``;
    * ``.pth``/``.pt`` -> ``torch.load(weights_only=True)``: only tensors and plain
      containers are unpickled, anything else raises :class:`UnsafeCheckpointError`
      before it can run.  ``{'state_dict': ...}``-style wrappers are unwrapped;
    * ``.params`` -> :class:`RawGluonParams` (numpy arrays, ``needs_conversion``).
    With ``sha256`` the file is checked first (:class:`HashMismatchError`).
    """
    path = Path(path)
    if sha256:
        verify_file(path, sha256=sha256)
    fmt = detect_format(path)
    if fmt == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if fmt == "params":
        from ..formats.mxnet_params import read_params

        return RawGluonParams(read_params(path), path)
    return _load_pth(path)


def _load_pth(path: Path) -> dict:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"{path}: refused to load; it is not a plain tensor checkpoint (torch.load "
            f"with weights_only=True rejected it, nothing was executed): "
            f"{str(exc).splitlines()[0]}") from exc
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and _all_tensors(inner):
                obj = inner
                break
    if not isinstance(obj, dict) or not _all_tensors(obj):
        raise ValueError(f"{path}: expected a dict of tensors (a state dict), got "
                         f"{type(obj).__name__}")
    return obj


def _all_tensors(d: dict) -> bool:
    import torch

    return all(isinstance(v, torch.Tensor) for v in d.values())
