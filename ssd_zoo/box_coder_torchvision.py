"""torchvision's ``det_utils.BoxCoder`` decode as an ssd_zoo box coder.

Same model as :class:`ssd_zoo.box_coder.BoxCoder` with stds = 1/weights, but written with
torchvision's exact float operations (divide by the weight, clamp log-sizes at
log(1000/16), half-size via 0.5*w), so decoded boxes match torchvision bit for bit given
the anchors of :class:`ssd_zoo.anchors_torchvision.TorchvisionAnchorGenerator`.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .box_coder import BoxCoder


class TorchvisionBoxCoder(BoxCoder):
    """Args: weights (wx, wy, ww, wh), torchvision's SSD uses (10, 10, 5, 5);
    bbox_xform_clip: max of dw/dh before exp."""

    def __init__(self, weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
                 bbox_xform_clip: float = math.log(1000.0 / 16)):
        super().__init__(stds=tuple(1.0 / float(w) for w in weights), clip=bbox_xform_clip)
        self.weights = tuple(float(w) for w in weights)

    def decode(self, rel: torch.Tensor, anchors_cxcywh: torch.Tensor) -> torch.Tensor:
        """rel (..., A, 4), anchors (A, 4) cxcywh pixels -> boxes_xyxy (..., A, 4)."""
        anchors = anchors_cxcywh.to(rel.dtype)
        ctr_x, ctr_y, widths, heights = anchors.unbind(-1)
        wx, wy, ww, wh = self.weights
        dx = rel[..., 0] / wx
        dy = rel[..., 1] / wy
        dw = torch.clamp(rel[..., 2] / ww, max=self.clip)
        dh = torch.clamp(rel[..., 3] / wh, max=self.clip)
        pred_ctr_x = dx * widths + ctr_x
        pred_ctr_y = dy * heights + ctr_y
        pred_w = torch.exp(dw) * widths
        pred_h = torch.exp(dh) * heights
        half_w = torch.tensor(0.5, dtype=rel.dtype, device=rel.device) * pred_w
        half_h = torch.tensor(0.5, dtype=rel.dtype, device=rel.device) * pred_h
        return torch.stack([pred_ctr_x - half_w, pred_ctr_y - half_h,
                            pred_ctr_x + half_w, pred_ctr_y + half_h], -1)
