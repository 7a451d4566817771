"""Small layers that reproduce MXNet/Gluon operator semantics exactly.

Gluon momentum m (running = m*running + (1-m)*batch) equals torch momentum 1-m.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GluonBatchNorm2d(nn.BatchNorm2d):
    """Gluon ``nn.BatchNorm`` (eps 1e-5, momentum 0.9 → torch 0.1, gamma used)."""

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.9):
        super().__init__(channels, eps=eps, momentum=1.0 - momentum)


class SymBatchNorm2d(nn.BatchNorm2d):
    """``mx.sym.BatchNorm`` with its defaults: eps 1e-3 and fix_gamma=True.

    With fix_gamma the stored gamma is ignored and treated as 1 (and never trained);
    it is kept as a frozen parameter only so checkpoints map one-to-one.
    """

    def __init__(self, channels: int, eps: float = 1e-3, momentum: float = 0.9):
        super().__init__(channels, eps=eps, momentum=1.0 - momentum)
        self.weight.requires_grad_(False)
        with torch.no_grad():
            self.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch = self.training or self.running_mean is None
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias,
                            use_batch, self.momentum, self.eps)


class L2Normalization(nn.Module):
    """``F.L2Normalization(mode='channel', eps)`` × learned per-channel scale.

    out = x / sqrt(sum_c x^2 + eps) * scale;  x: (N,C,H,W), scale: (1,C,1,1).
    """

    def __init__(self, channels: int, initial: float = 20.0, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.full((1, channels, 1, 1), float(initial)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.sqrt(x.pow(2).sum(dim=1, keepdim=True) + self.eps)
        return x / norm * self.scale


def conv_keys(prefix: str, bias: bool = True) -> dict:
    """Gluon parameter names of a Conv2D given its name prefix (e.g. 'resnetv10_conv0_')."""
    out = {"weight": prefix + "weight"}
    if bias:
        out["bias"] = prefix + "bias"
    return out


def bn_keys(prefix: str, symbol: bool = False) -> dict:
    """Gluon names of a BatchNorm's tensors.  Gluon blocks store ``running_*``; the
    symbol API (``mx.sym.BatchNorm``) stores ``moving_*``."""
    stat = "moving_" if symbol else "running_"
    return {"weight": prefix + "gamma", "bias": prefix + "beta",
            "running_mean": prefix + stat + "mean", "running_var": prefix + stat + "var"}
