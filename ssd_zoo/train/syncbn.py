"""Cross-process BatchNorm that also works on CPU/gloo (torch's SyncBatchNorm is GPU-only).

``DistBatchNorm2d`` subclasses BatchNorm2d with the same tensors and state-dict keys, so
checkpoints stay interchangeable with the plain model.  In training with a process group of
more than one rank, batch statistics are summed over all ranks (autograd-aware
all_reduce), which makes N processes x batch B behave like one process x batch N*B.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..models.layers import SymBatchNorm2d


class _SyncBNFunction(torch.autograd.Function):
    """Batch norm over the union of all ranks' batches, with the closed-form backward
    (per-channel sums accumulated in float64, as torch's CPU kernels do)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        c = x.shape[1]
        xd = x.double()
        stats = torch.cat([xd.sum((0, 2, 3)), (xd * xd).sum((0, 2, 3)),
                           xd.new_tensor([x.numel() / c])])
        dist.all_reduce(stats)
        count = stats[-1]
        mean = stats[:c] / count
        var = (stats[c:2 * c] / count - mean * mean).clamp(min=0)
        invstd = torch.rsqrt(var + eps)
        xhat = ((xd - mean[None, :, None, None]) * invstd[None, :, None, None])
        y = xhat
        if weight is not None:
            y = y * weight.double()[None, :, None, None]
        if bias is not None:
            y = y + bias.double()[None, :, None, None]
        ctx.save_for_backward(xhat.to(x.dtype), invstd, weight)
        ctx.count = count
        ctx.has_bias = bias is not None
        return y.to(x.dtype), mean, var

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        xhat, invstd, weight = ctx.saved_tensors
        dyd, xh = dy.double(), xhat.double()
        local = torch.cat([dyd.sum((0, 2, 3)), (dyd * xh).sum((0, 2, 3))])
        glob = local.clone()
        dist.all_reduce(glob)
        c = dy.shape[1]
        mean_dy = glob[:c] / ctx.count
        mean_dy_xhat = glob[c:] / ctx.count
        scale = invstd if weight is None else invstd * weight.double()
        dx = (dyd - mean_dy[None, :, None, None] - xh * mean_dy_xhat[None, :, None, None]) \
            * scale[None, :, None, None]
        dw = local[c:].to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        db = local[:c].to(dy.dtype) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx.to(dy.dtype), dw, db, None


class DistBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with global batch statistics; ``fix_gamma`` as MXNet's symbol BN."""

    fix_gamma: bool = False

    @classmethod
    def from_bn(cls, bn: nn.BatchNorm2d) -> "DistBatchNorm2d":
        out = cls(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                  track_running_stats=bn.track_running_stats)
        out.fix_gamma = isinstance(bn, SymBatchNorm2d)
        out.load_state_dict(bn.state_dict())
        if out.fix_gamma:
            out.weight.requires_grad_(False)
        return out.to(bn.weight.device if bn.affine else "cpu").train(bn.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.fix_gamma else self.weight
        multi = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not (self.training and multi):
            if self.training and self.num_batches_tracked is not None:
                self.num_batches_tracked.add_(1)
            return F.batch_norm(x, self.running_mean, self.running_var, weight, self.bias,
                                self.training, self.momentum, self.eps)
        y, mean, var = _SyncBNFunction.apply(x, weight, self.bias, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                n = float(x.numel() // x.shape[1]) * dist.get_world_size()
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.to(self.running_mean.dtype))
                unbiased = var * (n / max(n - 1.0, 1.0))
                self.running_var.mul_(1 - m).add_(m * unbiased.to(self.running_var.dtype))
                self.num_batches_tracked.add_(1)
        return y


def convert_sync_batchnorm(module: nn.Module, use_cuda: bool) -> nn.Module:
    """Replace every BatchNorm2d: torch SyncBatchNorm on CUDA (not for fix_gamma BNs),
    DistBatchNorm2d otherwise.  Returns the (possibly new) module."""
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, DistBatchNorm2d):
        if use_cuda and not isinstance(module, SymBatchNorm2d):
            return nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return DistBatchNorm2d.from_bn(module)
    for name, child in module.named_children():
        new = convert_sync_batchnorm(child, use_cuda)
        if new is not child:
            setattr(module, name, new)
    return module
