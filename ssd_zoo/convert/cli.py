"""Library side of converters/convert_gluoncv.py."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch
from safetensors.torch import save_file

from ..atomic import atomic_write
from .gluon import convert_gluon_params


def save_state_dict(state: Dict[str, torch.Tensor], path, metadata: Dict[str, str] = None) -> Path:
    """Write a state dict atomically: .safetensors (default) or .pth (tensors only).

    safetensors serialises its metadata map in arbitrary order, so the metadata is folded
    into ONE json-valued key: the same tensors + metadata always give the same bytes."""
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    if path.suffix == ".pth":
        return atomic_write(path, lambda tmp: torch.save(tensors, tmp))
    meta = {"ssd_zoo": json.dumps(metadata, sort_keys=True)} if metadata else {}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


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
