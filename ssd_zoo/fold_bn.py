"""Fold inference-mode BatchNorm into the preceding convolution (fast path, ssd_zoo.fast).

In eval mode a BatchNorm2d is a per-channel affine map y = a * x + b, so a Conv2d followed by
it equals one Conv2d with weights W * a and bias bias * a + b.  The pair is only folded
where the graph guarantees the convolution's output feeds nothing but the BatchNorm: a
Conv2d immediately followed by a BatchNorm2d inside an ``nn.Sequential`` (MobileNet, the
FeatureExpander, shortcuts), or a pair a module declares in ``FOLDABLE`` (ResNet blocks).
(a, b) are read off the module itself (``bn(1) - bn(0)``, ``bn(0)``), so variants such as
``SymBatchNorm2d`` (fix_gamma, eps 1e-3) fold with their own semantics.  Numerics: ~1e-7 relative per layer (fp32 rounding of
the folded weights).
"""
from __future__ import annotations

import torch
from torch import nn


def bn_affine(bn: nn.BatchNorm2d) -> tuple:
    """(a, b) float32 of shape (C,): ``bn.eval()(x) == a * x + b`` per channel."""
    c = bn.num_features
    was = bn.training
    bn.eval()
    with torch.no_grad():
        dev = bn.running_mean.device if bn.running_mean is not None else "cpu"
        zero = bn(torch.zeros(1, c, 1, 1, device=dev)).reshape(c)
        one = bn(torch.ones(1, c, 1, 1, device=dev)).reshape(c)
    bn.train(was)
    return one - zero, zero


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d equal to ``bn(conv(x))`` in eval mode (``conv`` is not modified)."""
    if conv.out_channels != bn.num_features:
        raise ValueError(f"conv has {conv.out_channels} outputs, BatchNorm {bn.num_features}")
    a, b = bn_affine(bn)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True,
                      padding_mode=conv.padding_mode).to(conv.weight.device)
    with torch.no_grad():
        w = conv.weight.detach()
        fused.weight.copy_(w * a.to(w.dtype).reshape(-1, 1, 1, 1))
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(a)
        fused.bias.copy_(bias * a + b)
    return fused


def _foldable(conv, bn) -> bool:
    return (type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d)
            and bn.track_running_stats and bn.running_mean is not None)


def fold_batchnorms(module: nn.Module) -> int:
    """Fold, in place, every (Conv2d, BatchNorm2d) adjacent pair of every ``nn.Sequential``
    under ``module`` and every (conv, bn) attribute pair a module declares in its
    ``FOLDABLE`` (blocks whose forward applies ``bn(conv(x))`` and nothing else to the conv
    output); the BatchNorm becomes ``nn.Identity``.  Returns how many were folded."""
    folded = 0
    for child in module.children():
        folded += fold_batchnorms(child)
    pairs = list(getattr(module, "FOLDABLE", ()))
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        pairs += list(zip(names, names[1:]))
    for first, second in pairs:
        conv, bn = module._modules.get(first), module._modules.get(second)
        if _foldable(conv, bn):
            module._modules[first] = fold_conv_bn(conv, bn)
            module._modules[second] = nn.Identity()
            folded += 1
    return folded
