"""Per-iteration learning-rate schedule (Gluon-CV LRScheduler/LRSequential semantics):
linear warmup from ``lr * warmup_factor`` over ``warmup_epochs``, then 'step' (x lr_decay at
each epoch of ``decay_epochs``) or 'cos' (half cosine to 0 over the remaining epochs)."""
from __future__ import annotations

import math
from typing import Sequence

import torch


class SSDLRLambda:
    """Multiplier of the base lr at iteration ``it`` (a picklable LambdaLR function)."""

    def __init__(self, mode: str, iters_per_epoch: int, epochs: int, decay: float = 0.1,
                 decay_epochs: Sequence[int] = (), warmup_epochs: float = 0.0,
                 warmup_factor: float = 1.0 / 3):
        if mode not in ("step", "cos"):
            raise ValueError(f"lr mode must be 'step' or 'cos', got {mode!r}")
        self.mode = mode
        self.ipe = max(1, int(iters_per_epoch))
        self.epochs = int(epochs)
        self.decay = float(decay)
        self.decay_iters = sorted(int(e) * self.ipe for e in decay_epochs)
        self.warmup_iters = int(round(float(warmup_epochs) * self.ipe))
        self.warmup_factor = float(warmup_factor)

    def __call__(self, it: int) -> float:
        if it < self.warmup_iters:
            return self.warmup_factor + (1 - self.warmup_factor) * it / self.warmup_iters
        if self.mode == "step":
            return self.decay ** sum(it >= d for d in self.decay_iters)
        total = max(1, self.epochs * self.ipe - self.warmup_iters)
        t = min(1.0, (it - self.warmup_iters) / total)
        return 0.5 * (1 + math.cos(math.pi * t))


def make_scheduler(optimizer: torch.optim.Optimizer, fn: SSDLRLambda):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
