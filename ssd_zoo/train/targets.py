"""Training targets (Gluon-CV SSDTargetGenerator with NaiveSampler), vectorized over a batch.

Pure CPU torch with no module state besides the anchors, so it can run inside DataLoader
workers (see ``collate_with_targets``).  Hard negative mining happens later, in the loss,
on the network's predictions (as Gluon-CV's train_ssd.py does).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torchvision.ops import box_convert, box_iou

from ..box_coder import BoxCoder
from .matcher import match_anchors


def pad_labels(labels: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """List of (K_i, 5+) rows [x1, y1, x2, y2, class_id, ...] -> boxes_xyxy (B, M, 4) and
    class ids (B, M) int64 with -1 padding (M = max K_i, at least 1)."""
    m = max([1] + [int(l.shape[0]) for l in labels])
    boxes = torch.full((len(labels), m, 4), -1.0)
    ids = torch.full((len(labels), m), -1, dtype=torch.long)
    for i, lab in enumerate(labels):
        k = int(lab.shape[0])
        if k:
            boxes[i, :k] = lab[:, :4].float()
            ids[i, :k] = lab[:, 4].long()
    return boxes, ids


class SSDTargetEncoder:
    """Classification and box-regression targets for every anchor.

    Args:
        anchors_cxcywh: (A, 4) anchors in input pixels (``net(x)[2]`` in training mode).
        stds: box coder variances, Gluon's (0.1, 0.1, 0.2, 0.2).
        iou_thresh: IoU for the maximum matcher (0.5).
    """

    def __init__(self, anchors_cxcywh: torch.Tensor, stds=(0.1, 0.1, 0.2, 0.2),
                 iou_thresh: float = 0.5):
        self.anchors_cxcywh = anchors_cxcywh.detach().float().cpu()
        self.anchors_xyxy = box_convert(self.anchors_cxcywh, "cxcywh", "xyxy")
        self.coder = BoxCoder(stds)
        self.iou_thresh = float(iou_thresh)

    @property
    def num_anchors(self) -> int:
        return int(self.anchors_cxcywh.shape[0])

    def __call__(self, gt_boxes_xyxy: torch.Tensor, gt_ids: torch.Tensor):
        """gt_boxes_xyxy (B, M, 4) and gt_ids (B, M) int64 (-1 = padding) ->
        cls_targets (B, A) int64 (0 background, c+1 for class c) and
        box_targets (B, A, 4) float32 (zeros where cls_targets == 0)."""
        b, m = gt_ids.shape
        valid = gt_ids >= 0
        ious = box_iou(self.anchors_xyxy, gt_boxes_xyxy.reshape(-1, 4).float())
        ious = ious.reshape(-1, b, m).permute(1, 0, 2)               # (B, A, M)
        match = match_anchors(ious, valid, self.iou_thresh)          # (B, A)
        pos = match >= 0
        idx = match.clamp(min=0)
        cls = torch.gather(gt_ids, 1, idx) + 1
        cls_targets = torch.where(pos, cls, torch.zeros_like(cls))
        matched = torch.gather(gt_boxes_xyxy.float(), 1, idx[..., None].expand(-1, -1, 4))
        box = self.coder.encode(matched, self.anchors_cxcywh)
        box_targets = torch.where(pos[..., None], box, torch.zeros_like(box))
        return cls_targets, box_targets


class collate_with_targets:
    """DataLoader ``collate_fn``: (image (3,H,W) float, label (K, 5+)) samples -> images
    (B,3,H,W), cls_targets (B,A), box_targets (B,A,4), gt list.  Picklable (workers)."""

    def __init__(self, encoder: SSDTargetEncoder):
        self.encoder = encoder

    def __call__(self, batch: List[Tuple[torch.Tensor, torch.Tensor]]):
        images = torch.stack([b[0] for b in batch])
        labels = [b[1] for b in batch]
        boxes, ids = pad_labels(labels)
        cls_t, box_t = self.encoder(boxes, ids)
        return images, cls_t, box_t
