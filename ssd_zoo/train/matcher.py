"""Anchor <-> ground-truth matching with Gluon-CV's SSD semantics, vectorized over a batch.

Gluon-CV's SSDTargetGenerator composes two matchers (gluoncv/nn/matcher.py):

1. BipartiteMatcher(share_max=False): greedy bipartite matching -- repeatedly take the
   highest remaining IoU pair (anchor, gt) whose anchor and gt are both still free, as long
   as IoU >= 1e-12.  Every gt gets its best anchor.  Then an unmatched anchor whose own
   best IoU equals (within eps) the best IoU its best gt reaches over all anchors is also
   matched to that gt (ties of the bipartite pick are not turned into negatives).
2. MaximumMatcher(0.5): an anchor still unmatched is matched to its best gt when that IoU
   is >= 0.5.
"""
from __future__ import annotations

import torch

BIPARTITE_THRESH = 1e-12
EPS = 1e-12


def bipartite_match(ious: torch.Tensor, valid_gt: torch.Tensor,
                    threshold: float = BIPARTITE_THRESH) -> torch.Tensor:
    """Greedy bipartite matching (MXNet's contrib.bipartite_matching, descending).

    Args:
        ious: (B, A, M) IoU of anchors vs ground truths.
        valid_gt: (B, M) bool, False on padding rows.
    Returns: (B, A) int64, the matched gt index per anchor, -1 when none.
    """
    b, a, m = ious.shape
    work = ious.masked_fill(~valid_gt[:, None, :], -1.0).reshape(b, a * m).clone()
    match = torch.full((b, a), -1, dtype=torch.long, device=ious.device)
    rows = torch.arange(b, device=ious.device)
    for _ in range(min(a, m)):   # every round assigns at most one pair per image
        best, flat = work.max(dim=1)
        ok = best >= threshold
        if not bool(ok.any()):
            break
        anc, gt = flat // m, flat % m
        r, anc, gt = rows[ok], anc[ok], gt[ok]
        match[r, anc] = gt
        work = work.view(b, a, m)
        work[r, anc, :] = -1.0          # anchor taken
        work[r, :, gt] = -1.0           # gt taken
        work = work.view(b, a * m)
    return match


def match_anchors(ious: torch.Tensor, valid_gt: torch.Tensor,
                  iou_thresh: float = 0.5) -> torch.Tensor:
    """Gluon-CV SSD matching: bipartite (share_max=False) then IoU >= ``iou_thresh``.

    Args:
        ious: (B, A, M) IoU of anchors vs ground truths (padding columns arbitrary).
        valid_gt: (B, M) bool, False on padding rows.
    Returns: (B, A) int64 matched gt index per anchor, -1 for unmatched (background).
    """
    if ious.dim() != 3 or valid_gt.shape != (ious.shape[0], ious.shape[2]):
        raise ValueError(f"ious must be (B, A, M) and valid_gt (B, M), got "
                         f"{tuple(ious.shape)} and {tuple(valid_gt.shape)}")
    if ious.shape[2] == 0:
        return torch.full(ious.shape[:2], -1, dtype=torch.long, device=ious.device)
    masked = ious.masked_fill(~valid_gt[:, None, :], -1.0)
    match = bipartite_match(ious, valid_gt)
    # share_max=False: extend the bipartite pick to anchors tying with it
    pmax, pargmax = masked.max(dim=2)                       # (B, A)
    gt_max = masked.max(dim=1).values                       # (B, M)
    best_of_gt = torch.gather(gt_max, 1, pargmax)           # (B, A)
    pick_valid = torch.gather(valid_gt, 1, pargmax)
    tie = (pmax + EPS >= best_of_gt) & pick_valid
    match = torch.where(match >= 0, match, torch.where(tie, pargmax, torch.full_like(match, -1)))
    # maximum matching for the rest
    maxm = torch.where((pmax >= iou_thresh) & pick_valid, pargmax, torch.full_like(match, -1))
    return torch.where(match >= 0, match, maxm)
