"""Caffe SSD ``DetectionOutput`` semantics (weiliu89; as OpenCV dnn runs them) for the
native ssd_zoo SSD.

Differs from Gluon-CV's global top-k (postprocess.py): softmax in float32, then PER CLASS
(background skipped): scores > ``score_thresh``, the best ``top_k`` by a stable
descending sort, greedy NMS (a box is kept when its IoU with every kept box of the class
is <= ``nms_thresh``; Caffe's IoU, via :func:`ssd_zoo.caffe.ssd_layers._caffe_nms`); then
the best ``keep_top_k`` rows over all classes, by score.  weiliu89 defaults: 0.45, 400,
200, 0.01.

Output follows the ssd_zoo contract: ids (N,K,1) 0-based foreground class (-1 pads),
scores (N,K,1), bboxes (N,K,4) boxes_xyxy in input pixels (-1 pads), K = keep_top_k,
rows by decreasing score.
"""
from __future__ import annotations

import torch
from torch import nn

from .caffe.ssd_layers import _caffe_nms


class CaffeDetectionOutput(nn.Module):
    """(cls_logits (N,A,C+1), boxes_xyxy (N,A,4)) -> ids, scores, bboxes (see module doc).

    Attributes ``nms_thresh``, ``nms_topk`` (per-class top_k) and ``post_nms``
    (keep_top_k) are the names :meth:`ssd_zoo.models.ssd.SSD.set_nms` sets.
    """

    def __init__(self, nms_thresh: float = 0.45, nms_topk: int = 400, post_nms: int = 200,
                 score_thresh: float = 0.01):
        super().__init__()
        self.nms_thresh = nms_thresh
        self.nms_topk = nms_topk
        self.post_nms = post_nms
        self.score_thresh = score_thresh

    def detect_one(self, probs: torch.Tensor, boxes: torch.Tensor):
        """probs (A, C+1), boxes (A, 4) -> (labels (M,) 1-based, scores (M,), boxes (M,4)),
        rows by decreasing score (stable: class-major among equal scores)."""
        labels, scores, kept = [], [], []
        for c in range(1, probs.shape[1]):
            s = probs[:, c]
            cand = torch.nonzero(s > self.score_thresh).flatten()
            if cand.numel() == 0:
                continue
            order = torch.sort(s[cand], descending=True, stable=True).indices
            if 0 < self.nms_topk < order.numel():
                order = order[:self.nms_topk]
            idx = cand[order]
            keep = idx[_caffe_nms(boxes[idx], self.nms_thresh)]
            kept.append(keep)
            scores.append(s[keep])
            labels.append(torch.full_like(keep, c))
        if not kept:
            return (torch.zeros(0, dtype=torch.int64, device=probs.device),
                    probs.new_zeros(0), boxes.new_zeros(0, 4))
        keep, scores, labels = torch.cat(kept), torch.cat(scores), torch.cat(labels)
        order = torch.sort(scores, descending=True, stable=True).indices
        if self.post_nms > 0:
            order = order[:self.post_nms]
        return labels[order], scores[order], boxes[keep[order]]

    def forward(self, cls_logits: torch.Tensor, boxes_xyxy: torch.Tensor):
        n, a, c1 = cls_logits.shape
        probs = torch.softmax(cls_logits.float(), dim=-1)
        results = [self.detect_one(probs[i], boxes_xyxy[i].float()) for i in range(n)]
        k = self.post_nms if self.post_nms > 0 else max([r[0].numel() for r in results] + [1])
        ids = cls_logits.new_full((n, k, 1), -1.0, dtype=torch.float32)
        scores = torch.full_like(ids, -1.0)
        out_boxes = cls_logits.new_full((n, k, 4), -1.0, dtype=torch.float32)
        for i, (lab, sc, bx) in enumerate(results):
            m = lab.numel()
            ids[i, :m, 0] = (lab - 1).to(torch.float32)
            scores[i, :m, 0] = sc
            out_boxes[i, :m] = bx
        return ids, scores, out_boxes
