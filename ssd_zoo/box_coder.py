"""Center-size box coding with variances ("stds"), as Gluon-CV's
NormalizedBoxCenterEncoder/Decoder and Caffe's CENTER_SIZE code."""
from __future__ import annotations

from typing import Sequence

import torch


class BoxCoder:
    """Encode/decode box offsets relative to anchors_cxcywh.

    Args:
        stds: (sx, sy, sw, sh), default (0.1, 0.1, 0.2, 0.2).
        clip: optional max value of the (scaled) log-size offsets before exp; None = no clip.
    """

    def __init__(self, stds: Sequence[float] = (0.1, 0.1, 0.2, 0.2), clip: float = None):
        self.stds = tuple(float(s) for s in stds)
        self.clip = clip

    def decode(self, rel: torch.Tensor, anchors_cxcywh: torch.Tensor) -> torch.Tensor:
        """rel (..., A, 4) offsets, anchors (A, 4) or broadcastable -> boxes_xyxy (..., A, 4)."""
        ax, ay, aw, ah = anchors_cxcywh.unbind(-1)
        px, py, pw, ph = rel.unbind(-1)
        ox = px * self.stds[0] * aw + ax
        oy = py * self.stds[1] * ah + ay
        dw = pw * self.stds[2]
        dh = ph * self.stds[3]
        if self.clip is not None:
            dw = dw.clamp(max=self.clip)
            dh = dh.clamp(max=self.clip)
        ow = torch.exp(dw) * aw * 0.5
        oh = torch.exp(dh) * ah * 0.5
        return torch.stack([ox - ow, oy - oh, ox + ow, oy + oh], -1)

    def encode(self, boxes_xyxy: torch.Tensor, anchors_cxcywh: torch.Tensor) -> torch.Tensor:
        """boxes_xyxy (..., A, 4) matched to anchors (A, 4) -> offsets (..., A, 4)."""
        ax, ay, aw, ah = anchors_cxcywh.unbind(-1)
        x1, y1, x2, y2 = boxes_xyxy.unbind(-1)
        gw = x2 - x1
        gh = y2 - y1
        gx = x1 + gw * 0.5
        gy = y1 + gh * 0.5
        tx = (gx - ax) / aw / self.stds[0]
        ty = (gy - ay) / ah / self.stds[1]
        tw = torch.log(gw.clamp(min=1e-12) / aw) / self.stds[2]
        th = torch.log(gh.clamp(min=1e-12) / ah) / self.stds[3]
        return torch.stack([tx, ty, tw, th], -1)
