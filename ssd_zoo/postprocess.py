"""Gluon-CV's SSD post-processing, exactly: per-class score threshold, one global top-k over
ALL (class, anchor) candidates, class-aware greedy NMS, first ``post_nms`` rows.

torchvision's batched_nms keeps top-k per class and offsets boxes per class (which can
round IoUs differently), so the candidate selection and the greedy pass are written here.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn


def pairwise_iou_xyxy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU as MXNet's box_nms computes it (no +1; negative-size boxes have area 0).

    a (..., M, 4), b (..., K, 4) boxes_xyxy -> (..., M, K).
    """
    def area(x):
        w = x[..., 2] - x[..., 0]
        h = x[..., 3] - x[..., 1]
        return torch.where((w < 0) | (h < 0), torch.zeros_like(w), w * h)

    lt_x = torch.maximum(a[..., :, None, 0], b[..., None, :, 0])
    rb_x = torch.minimum(a[..., :, None, 2], b[..., None, :, 2])
    lt_y = torch.maximum(a[..., :, None, 1], b[..., None, :, 1])
    rb_y = torch.minimum(a[..., :, None, 3], b[..., None, :, 3])
    inter = (rb_x - lt_x).clamp(min=0) * (rb_y - lt_y).clamp(min=0)
    return inter / (area(a)[..., :, None] + area(b)[..., None, :] - inter)


def greedy_keep(suppresses: torch.Tensor) -> torch.Tensor:
    """Greedy NMS decisions from a (N, K, K) bool matrix, rows/cols in score order.

    ``suppresses[n, i, j]`` (only j < i matters): candidate j, if kept, removes i.
    keep[i] = not any_j<i (suppresses[i, j] and keep[j]) has a unique solution; iterating
    it from all-True reaches it (each pass fixes at least one more leading candidate),
    usually in a few passes.  Returns keep (N, K) bool.
    """
    n, k, _ = suppresses.shape
    lower = torch.ones(k, k, dtype=torch.bool, device=suppresses.device).tril(-1)
    s = (suppresses & lower).to(torch.float32)
    keep = torch.ones(n, k, dtype=torch.bool, device=suppresses.device)
    for _ in range(k + 1):
        new = torch.bmm(s, keep.to(torch.float32).unsqueeze(-1)).squeeze(-1) == 0
        if torch.equal(new, keep):
            break
        keep = new
    return keep


def select_topk_stable(scores: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row like a stable descending sort (ties: lower index first).

    scores (N, M) -> (values (N, k), indices (N, k)).  Uses topk, then falls back to a
    full stable sort only for rows whose k-th value is tied across the cut.
    """
    k = min(k, scores.shape[1])
    vals, idx = torch.topk(scores, k, dim=1, sorted=True)
    # order the selection by (value desc, index asc)
    order = torch.argsort(idx, dim=1)
    idx = torch.gather(idx, 1, order)
    vals = torch.gather(vals, 1, order)
    order = torch.argsort(vals, dim=1, descending=True, stable=True)
    idx = torch.gather(idx, 1, order)
    vals = torch.gather(vals, 1, order)
    if k == 0:
        return vals, idx
    kth = vals[:, -1:]
    tied_total = (scores == kth).sum(1)
    tied_taken = (vals == kth).sum(1)
    bad = (tied_total != tied_taken).nonzero().flatten()
    for row in bad.tolist():  # rare: exact float ties across the cut
        v, i = torch.sort(scores[row], descending=True, stable=True)
        vals[row], idx[row] = v[:k], i[:k]
    return vals, idx


class GluonPostProcessor(nn.Module):
    """(cls_logits (N,A,C+1), boxes_xyxy (N,A,4)) -> ids, scores, bboxes.

    Outputs (N, post_nms, 1) float class ids (-1 on padding), (N, post_nms, 1) scores
    (-1 on padding), (N, post_nms, 4) boxes_xyxy in input pixels (-1 on padding).
    Background is class 0 of the softmax; ids are 0-based foreground ids.
    """

    def __init__(self, nms_thresh: float = 0.45, nms_topk: int = 400, post_nms: int = 100,
                 score_thresh: float = 0.01):
        super().__init__()
        self.nms_thresh = nms_thresh
        self.nms_topk = nms_topk
        self.post_nms = post_nms
        self.score_thresh = score_thresh

    def forward(self, cls_logits: torch.Tensor, boxes_xyxy: torch.Tensor):
        n, a, c1 = cls_logits.shape
        num_fg = c1 - 1
        # float64 then round: equal logits give equal scores, so exact ties stay ties and
        # are broken by candidate order as in MXNet (float32 SIMD exp varies by lane).
        probs = torch.softmax(cls_logits.double(), dim=-1)[..., 1:].float()   # (N, A, C)
        # Gluon orders candidates class-major: index = class * A + anchor.
        scores = probs.transpose(1, 2).reshape(n, num_fg * a)
        scores = torch.where(scores > self.score_thresh, scores,
                             torch.full_like(scores, -1.0))
        topk = self.nms_topk if self.nms_topk > 0 else scores.shape[1]
        top_scores, top_idx = select_topk_stable(scores, topk)
        valid = top_scores > self.score_thresh
        cls_ids = torch.div(top_idx, a, rounding_mode="floor")
        anchor_idx = top_idx - cls_ids * a
        boxes = torch.gather(boxes_xyxy.float(), 1,
                             anchor_idx.unsqueeze(-1).expand(-1, -1, 4))
        if 0 < self.nms_thresh < 1:
            iou = pairwise_iou_xyxy(boxes, boxes)
            same = cls_ids.unsqueeze(2) == cls_ids.unsqueeze(1)
            vv = valid.unsqueeze(2) & valid.unsqueeze(1)
            keep = greedy_keep((iou > self.nms_thresh) & same & vv) & valid
        else:
            keep = valid
        # stable-compact the kept rows to the front (they are already in score order)
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
        keep = torch.gather(keep, 1, order)
        cls_ids = torch.gather(cls_ids, 1, order)
        top_scores = torch.gather(top_scores, 1, order)
        boxes = torch.gather(boxes, 1, order.unsqueeze(-1).expand(-1, -1, 4))
        m = self.post_nms if self.post_nms > 0 else keep.shape[1]
        keep, cls_ids, top_scores, boxes = keep[:, :m], cls_ids[:, :m], top_scores[:, :m], \
            boxes[:, :m]
        pad = keep.shape[1]
        if pad < m:  # fewer candidates than post_nms: pad with -1 rows
            extra = m - pad
            keep = torch.cat([keep, keep.new_zeros(n, extra)], 1)
            cls_ids = torch.cat([cls_ids, cls_ids.new_zeros(n, extra)], 1)
            top_scores = torch.cat([top_scores, top_scores.new_zeros(n, extra)], 1)
            boxes = torch.cat([boxes, boxes.new_zeros(n, extra, 4)], 1)
        neg = torch.tensor(-1.0, device=boxes.device)
        ids = torch.where(keep, cls_ids.to(torch.float32), neg).unsqueeze(-1)
        out_scores = torch.where(keep, top_scores, neg).unsqueeze(-1)
        out_boxes = torch.where(keep.unsqueeze(-1), boxes, neg)
        return ids, out_scores, out_boxes
