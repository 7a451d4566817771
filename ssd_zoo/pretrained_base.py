"""``pretrained_base=True``: ImageNet classifier weights of the backbone (Gluon-CV store)."""
from __future__ import annotations

import torch

from .convert.gluon import ConversionError


def _base_with_map(net):
    """(module holding the ImageNet layers, its state_dict prefix inside ``net``)."""
    backbone = net.backbone
    if hasattr(backbone, "imagenet_key_map"):
        return backbone, "backbone."
    base = getattr(backbone, "base", None)
    if base is not None and hasattr(base, "imagenet_key_map"):
        return base, "backbone.base."
    raise ValueError(f"backbone {type(backbone).__name__} has no ImageNet weight map")


@torch.no_grad()
def load_imagenet_arrays(net, arrays, label: str = "imagenet weights") -> int:
    """Copy ImageNet classifier arrays ({gluon name: array}) into ``net``'s base layers.

    Every mapped base tensor must be present with the same shape; classifier-only tensors
    of the file (the final dense layer, ...) are ignored.  Returns the number loaded.
    """
    module, prefix = _base_with_map(net)
    own = net.state_dict()
    missing, bad = [], []
    for key, name in module.imagenet_key_map().items():
        if name not in arrays:
            missing.append(name)
            continue
        value = torch.as_tensor(arrays[name].copy())
        target = own[prefix + key]
        if tuple(value.shape) != tuple(target.shape):
            bad.append(f"{name}: {tuple(value.shape)} vs {tuple(target.shape)}")
            continue
        target.copy_(value)
    if missing or bad:
        raise ConversionError(f"{label} does not fit this backbone: missing {missing[:5]}, "
                              f"shape mismatches {bad[:5]}")
    return len(module.imagenet_key_map())


def load_pretrained_base(net, backbone: str, root=None) -> int:
    """Download (sha1-checked, cached) and load the ImageNet weights of ``backbone``."""
    from . import hub
    from .formats.mxnet_params import read_params
    from .zoo import BACKBONE_WEIGHTS
    if backbone not in BACKBONE_WEIGHTS:
        raise ValueError(f"no ImageNet weights are published for backbone {backbone!r}; "
                         f"available: {', '.join(sorted(BACKBONE_WEIGHTS))}")
    path = hub.fetch_source(BACKBONE_WEIGHTS[backbone], backbone, root=root)
    return load_imagenet_arrays(net, read_params(path), label=str(path))
