"""Gluon-CV SSD post-processing on pre-filtered candidates (the fast path's; same results
as ssd_zoo.postprocess.GluonPostProcessor): one global stable top-k on the class-major
scores, the box decode only for the selected candidates, then the greedy NMS pass on a small
matrix, in numpy."""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from torch import nn


def stable_topk(scores: np.ndarray, k: int, floor: float) -> Tuple[np.ndarray, np.ndarray]:
    """Per row, the k best scores ordered like a stable descending sort (ties: lower index
    first).  Rows whose k-th score ties across the cut fall back to a full stable sort,
    unless the tie is at or below ``floor`` (those candidates are discarded anyway).

    scores (N, M) float32 numpy -> (values (N, k) float32, indices (N, k) int64).
    """
    k = min(k, scores.shape[1])
    vals_t, idx_t = torch.topk(torch.from_numpy(scores), k, dim=1, sorted=True)
    vals, idx = vals_t.numpy(), idx_t.numpy()
    out_v, out_i = np.empty_like(vals), np.empty_like(idx)
    for row in range(scores.shape[0]):
        v, i = vals[row], idx[row]
        kth = v[-1] if k else floor
        if kth > floor and int((scores[row] == kth).sum()) != int((v == kth).sum()):
            si = np.argsort(-scores[row], kind="stable")[:k]
            out_v[row], out_i[row] = scores[row][si], si
            continue
        order = np.lexsort((i, -v))
        out_v[row], out_i[row] = v[order], i[order]
    return out_v, out_i


def greedy_nms(suppress: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Greedy NMS on candidates in score order.

    suppress (K, K) bool, symmetric: i and j overlap enough (same class); valid (K,) bool.
    Returns keep (K,) bool: a valid candidate is kept unless a kept earlier one suppresses it.
    """
    keep = valid.copy()
    for i in np.flatnonzero(valid):
        if keep[i]:
            keep[i + 1:] &= ~suppress[i, i + 1:]
    return keep


class FastPostProcessor(nn.Module):
    """Gluon-CV SSD post-processing (same semantics as GluonPostProcessor) on pre-filtered
    candidates; decodes only the boxes it selected.

    forward(cls_logits (N,A,C+1), box_offsets (N,A,4), anchors (A,4)) -> ids, scores,
    bboxes as the SSD's: (N,P,1), (N,P,1), (N,P,4), -1 on padding rows.
    """

    def __init__(self, box_coder, nms_thresh=0.45, nms_topk=400, post_nms=100,
                 score_thresh=0.01):
        super().__init__()
        self.box_coder = box_coder
        self.nms_thresh, self.nms_topk = nms_thresh, nms_topk
        self.post_nms, self.score_thresh = post_nms, score_thresh

    @classmethod
    def like(cls, net) -> "FastPostProcessor":
        p = net.postprocessor
        return cls(net.box_coder, p.nms_thresh, p.nms_topk, p.post_nms, p.score_thresh)

    def forward(self, cls_logits, box_offsets, anchors):
        n, a, c1 = cls_logits.shape
        dev = cls_logits.device
        # float64 softmax rounded to float32, exactly as GluonPostProcessor (equal logits ->
        # equal scores, so ties are broken by candidate order as in MXNet); the rest in
        # numpy on purpose: the arrays are
        # small and ATen/MKL open an OpenMP region per op, which costs more than the work
        # (a lot more on a busy machine)
        probs = torch.softmax(cls_logits.detach().cpu().double(), dim=-1).float().numpy()
        scores = np.ascontiguousarray(probs[..., 1:].transpose(0, 2, 1)
                                      ).reshape(n, (c1 - 1) * a)                # class-major
        k = self.nms_topk if self.nms_topk > 0 else scores.shape[1]
        vals, idx = stable_topk(scores, k, self.score_thresh)
        valid = vals > self.score_thresh
        cls_ids, anchor_idx = np.divmod(idx, a)
        ai = torch.from_numpy(anchor_idx)
        sel_off = torch.gather(box_offsets.detach().float().cpu(), 1,
                               ai.unsqueeze(-1).expand(-1, -1, 4))
        boxes = self.box_coder.decode(sel_off, anchors.detach().float().cpu()[ai]).numpy()
        m = self.post_nms if self.post_nms > 0 else k
        ids = np.full((n, m, 1), -1.0, np.float32)
        out_s = np.full((n, m, 1), -1.0, np.float32)
        out_b = np.full((n, m, 4), -1.0, np.float32)
        do_nms = 0 < self.nms_thresh < 1
        for r in range(n):
            nv = int(valid[r].sum())          # valid candidates form a prefix
            b = boxes[r, :nv]
            keep = np.ones(nv, bool)
            if do_nms and nv:
                sup = iou_matrix(b) > np.float32(self.nms_thresh)
                sup &= cls_ids[r, :nv, None] == cls_ids[r, None, :nv]
                keep = greedy_nms(sup, keep)
            sel = np.flatnonzero(keep)[:m]
            ids[r, :len(sel), 0] = cls_ids[r, sel]
            out_s[r, :len(sel), 0] = vals[r, sel]
            out_b[r, :len(sel)] = b[sel]
        return tuple(torch.from_numpy(t).to(dev) for t in (ids, out_s, out_b))


def iou_matrix(b: np.ndarray) -> np.ndarray:
    """(K,4) float32 boxes_xyxy -> (K,K) IoU, the same float32 operations as
    ssd_zoo.postprocess.pairwise_iou_xyxy (MXNet's box_nms formula), in numpy."""
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    area = np.where((w < 0) | (h < 0), np.float32(0), w * h)
    iw = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    ih = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, np.float32(0)) * np.maximum(ih, np.float32(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area[:, None] + area[None, :] - inter)
