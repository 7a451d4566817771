"""SSD multibox loss with Gluon-CV's SSDMultiBoxLoss semantics.

Per image: cross-entropy over C+1 classes on positives and on the hardest negatives
(negatives ranked by their CE, ``neg_ratio`` x positives of that image), smooth-L1 (rho) on
positive box offsets; both summed over the batch and divided by the number of positives of
the WHOLE global batch (all ranks), so DDP training equals single-process training.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def hard_negative_mask(ce: torch.Tensor, pos: torch.Tensor, neg_ratio: float,
                       min_negatives: int = 0) -> torch.Tensor:
    """(B, A) bool: the ``max(min_negatives, neg_ratio * #pos)`` negatives of each image with
    the largest ``ce`` (Gluon's rank-of-rank rule; positives rank last)."""
    key = torch.where(pos, torch.zeros_like(ce), -ce.detach())
    order = torch.argsort(key, dim=1, stable=True)
    rank = torch.argsort(order, dim=1)
    quota = torch.clamp(pos.sum(1, keepdim=True) * neg_ratio, min=min_negatives)
    return rank < quota


class SSDMultiBoxLoss(nn.Module):
    """Args: neg_ratio (3), rho smooth-L1 transition (1.0), lambd box weight (1.0),
    min_hard_negatives (0)."""

    def __init__(self, neg_ratio: float = 3.0, rho: float = 1.0, lambd: float = 1.0,
                 min_hard_negatives: int = 0):
        super().__init__()
        self.neg_ratio = max(0.0, float(neg_ratio))
        self.rho = float(rho)
        self.lambd = float(lambd)
        self.min_hard_negatives = max(0, int(min_hard_negatives))

    def forward(self, cls_logits: torch.Tensor, box_pred: torch.Tensor,
                cls_targets: torch.Tensor, box_targets: torch.Tensor,
                num_pos_total: Optional[float] = None) -> Tuple[torch.Tensor, ...]:
        """cls_logits (B,A,C+1), box_pred (B,A,4), cls_targets (B,A) int (0 = background),
        box_targets (B,A,4); num_pos_total: positives over the global batch (default: this
        batch's).  Returns (total, cls_loss, box_loss) float32 scalars, each a sum over
        this batch divided by max(1, num_pos_total)."""
        cls_logits = cls_logits.float()
        box_pred = box_pred.float()
        pos = cls_targets > 0
        if num_pos_total is None:
            num_pos_total = float(pos.sum())
        if num_pos_total < 1 and self.min_hard_negatives < 1:
            zero = cls_logits.sum() * 0 + box_pred.sum() * 0
            return zero, cls_logits.sum() * 0, box_pred.sum() * 0
        ce = F.cross_entropy(cls_logits.transpose(1, 2), cls_targets.long(), reduction="none")
        keep = pos | hard_negative_mask(ce, pos, self.neg_ratio, self.min_hard_negatives)
        denom = max(1.0, float(num_pos_total))
        cls_loss = torch.where(keep, ce, torch.zeros_like(ce)).sum() / denom
        diff = (box_pred - box_targets.float()).abs()
        sl1 = torch.where(diff > self.rho, diff - 0.5 * self.rho, (0.5 / self.rho) * diff ** 2)
        box_loss = (sl1 * pos[..., None]).sum() / denom
        return cls_loss + self.lambd * box_loss, cls_loss, box_loss
