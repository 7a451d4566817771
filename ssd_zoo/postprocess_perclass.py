"""Per-class SSD post-processing of the PyTorch ecosystem (torchvision, ssd.pytorch).

Gluon-CV (postprocess.py) keeps one global top-k over all (class, anchor) candidates before
NMS; torchvision and ssd.pytorch instead keep the top-k of EACH class:

* torchvision ``SSD.postprocess_detections``: softmax (float32), boxes clipped to the
  image, per class score > 0.01 then top-400, ``batched_nms`` at 0.45, first 200 rows by
  score over all classes.
* ssd.pytorch ``Detect``: softmax, per class score > 0.01, top-200, greedy NMS at 0.45
  (IoU > thr suppressed), every survivor kept (up to 200 per class, no image cap; its
  global cap is a no-op), output class-major.

Output uses the ssd_zoo/Gluon contract: ids (N,K,1) 0-based foreground class (-1 pads),
scores (N,K,1), bboxes (N,K,4) boxes_xyxy in input pixels (-1 pads).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torchvision
from torch import nn


class PerClassPostProcessor(nn.Module):
    """(cls_logits (N,A,C+1), boxes_xyxy (N,A,4)) -> ids, scores, bboxes.

    Args:
        nms_thresh: IoU above which a lower-scored box of the same class is removed.
        topk_per_class: candidates kept per class before NMS (after the score threshold).
        post_nms: rows kept per image, best score first; None/0 keeps all survivors
            (then K = C * topk_per_class).
        score_thresh: minimum (exclusive) softmax score.
        clip_size: (height, width) to clip decoded boxes to before NMS, or None.
        order: 'score' (rows by decreasing score; torchvision) or 'class' (class-major,
            decreasing score within a class; ssd.pytorch's layout).
        batched: use torchvision's ``batched_nms`` (exactly torchvision's numerics,
            including its coordinate-offset trick on small inputs) instead of one plain
            ``nms`` per class (ssd.pytorch's numerics).
    """

    def __init__(self, nms_thresh: float = 0.45, topk_per_class: int = 400,
                 post_nms: Optional[int] = 200, score_thresh: float = 0.01,
                 clip_size: Optional[Tuple[int, int]] = None, order: str = "score",
                 batched: bool = True):
        super().__init__()
        if order not in ("score", "class"):
            raise ValueError(f"order must be 'score' or 'class', got {order!r}")
        self.nms_thresh = nms_thresh
        self.topk_per_class = topk_per_class
        self.post_nms = post_nms
        self.score_thresh = score_thresh
        self.clip_size = clip_size
        self.order = order
        self.batched = batched

    @property
    def nms_topk(self) -> int:  # SSD.set_nms's name for the pre-NMS candidate count
        return self.topk_per_class

    @nms_topk.setter
    def nms_topk(self, value: int) -> None:
        self.topk_per_class = value

    def detect_one(self, probs: torch.Tensor, boxes: torch.Tensor):
        """probs (A, C+1), boxes (A, 4) -> (labels (K,) 1-based, scores (K,), boxes (K,4))."""
        if self.clip_size is not None:
            h, w = self.clip_size
            boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                                 boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], -1)
        all_boxes, all_scores, all_labels = [], [], []
        for label in range(1, probs.shape[1]):
            score = probs[:, label]
            mask = score > self.score_thresh
            score, box = score[mask], boxes[mask]
            score, idx = score.topk(min(self.topk_per_class, score.numel()))
            box = box[idx]
            lab = torch.full_like(score, label, dtype=torch.int64)
            if not self.batched:
                keep = torchvision.ops.nms(box, score, self.nms_thresh)
                box, score, lab = box[keep], score[keep], lab[keep]
            all_boxes.append(box)
            all_scores.append(score)
            all_labels.append(lab)
        boxes, scores, labels = torch.cat(all_boxes), torch.cat(all_scores), \
            torch.cat(all_labels)
        if self.batched:
            keep = torchvision.ops.batched_nms(boxes, scores, labels, self.nms_thresh)
        else:  # already NMS-ed per class, class-major
            keep = torch.arange(scores.numel(), device=scores.device)
            if self.order == "score":
                keep = keep[torch.argsort(scores, descending=True, stable=True)]
        if self.order == "class":
            keep = keep[torch.argsort(labels[keep], stable=True)]
        if self.post_nms:
            if self.order == "class":
                raise ValueError("post_nms needs order='score'")
            keep = keep[: self.post_nms]
        return labels[keep], scores[keep], boxes[keep]

    def forward(self, cls_logits: torch.Tensor, boxes_xyxy: torch.Tensor):
        n, _, c1 = cls_logits.shape
        probs = torch.softmax(cls_logits.float(), dim=-1)
        k = self.post_nms or (c1 - 1) * self.topk_per_class
        ids = cls_logits.new_full((n, k, 1), -1.0, dtype=torch.float32)
        scores = torch.full_like(ids, -1.0)
        out_boxes = cls_logits.new_full((n, k, 4), -1.0, dtype=torch.float32)
        for i in range(n):
            labels, sc, bx = self.detect_one(probs[i], boxes_xyxy[i].float())
            m = labels.numel()
            ids[i, :m, 0] = (labels - 1).to(torch.float32)
            scores[i, :m, 0] = sc
            out_boxes[i, :m] = bx
        return ids, scores, out_boxes


def torchvision_postprocessor(nms_thresh=0.45, topk=400, detections=200, score_thresh=0.01,
                              im_size=(300, 300)) -> PerClassPostProcessor:
    """torchvision ``SSD`` defaults (ssd300_vgg16)."""
    return PerClassPostProcessor(nms_thresh, topk, detections, score_thresh,
                                 clip_size=im_size, order="score", batched=True)


def amdegroot_postprocessor(nms_thresh=0.45, top_k=200, score_thresh=0.01) -> PerClassPostProcessor:
    """ssd.pytorch ``Detect(num_classes, 0, 200, 0.01, 0.45)``."""
    return PerClassPostProcessor(nms_thresh, top_k, None, score_thresh, clip_size=None,
                                 order="class", batched=False)
