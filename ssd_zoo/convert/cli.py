"""Library side of converters/convert_gluoncv.py."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch

from .gluon import convert_gluon_params


def save_state_dict(state: Dict[str, torch.Tensor], path, metadata: Dict[str, str] = None) -> Path:
    """Write a state dict atomically: .safetensors (default) or .pth (tensors only)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    if path.suffix == ".pth":
        torch.save(tensors, tmp)
    else:
        from safetensors.torch import save_file
        save_file(tensors, str(tmp), metadata=metadata or {})
    os.replace(tmp, path)
    return path


def convert_gluon_file(network: str, params_path, output,
                       classes: Optional[Sequence[str]] = None) -> Tuple[Dict[str, str], Path]:
    """Convert ``params_path`` for registered ``network`` and write ``output``."""
    from ..registry import get_model
    if not Path(params_path).is_file():
        raise ValueError(f"{params_path}: no such file")
    net = get_model(network, classes=classes)
    state, key_map = convert_gluon_params(params_path, net)
    full = net.state_dict()
    full.update(state)
    full = {k: v for k, v in full.items() if not k.endswith("num_batches_tracked")}
    meta = {"network": network, "source": Path(params_path).name, "format": "ssd_zoo"}
    if classes:
        meta["classes"] = "\n".join(classes)
    return key_map, save_state_dict(full, output, meta)
