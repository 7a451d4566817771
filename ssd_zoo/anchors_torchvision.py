"""torchvision's SSD ``DefaultBoxGenerator``, one head at a time, as ssd_zoo anchors.

torchvision builds relative (cx, cy, w, h) boxes in float32 with w/h clipped to [0, 1]
(centers are not clipped), turns them into xyxy pixels of the (fixed, resized) image, and
its BoxCoder turns them back into (w, h, cx, cy) before decoding.  This generator performs
exactly those float32 operations, so its anchors_cxcywh are bit-identical to the widths and
centers torchvision decodes with.

Per cell, in this order: (s_k, s_k), (s'_k, s'_k) with s'_k = sqrt(s_k * s_{k+1}), then for
each aspect ratio r: (s_k*sqrt(r), s_k/sqrt(r)) and (s_k/sqrt(r), s_k*sqrt(r)).
Cells row-major, anchors fastest, as torchvision's head outputs.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import torch
from torch import nn


class TorchvisionAnchorGenerator(nn.Module):
    """Anchors of one head.

    Args:
        scales: (s_k, s_{k+1}) RELATIVE to the image (torchvision's ``scales[k:k+2]``).
        aspect_ratios: torchvision's per-head list, e.g. (2, 3); each gives two boxes.
        step: stride in pixels (torchvision's ``steps[k]``), or None to derive it from the
            feature size as torchvision does.
        im_size: (height, width) of the network input (torchvision resizes to this).
        clip: clip relative w/h to [0, 1] (torchvision's default True).
    """

    def __init__(self, scales: Sequence[float], aspect_ratios: Sequence[float], step=None,
                 im_size: Tuple[int, int] = (300, 300), clip: bool = True):
        super().__init__()
        self.scales = (float(scales[0]), float(scales[1]))
        self.aspect_ratios = tuple(aspect_ratios)
        self.step = step
        self.im_size = (int(im_size[0]), int(im_size[1]))
        self.clip = clip
        self._cache: Dict[Tuple[int, int], torch.Tensor] = {}

    def wh_pairs(self) -> torch.Tensor:
        """(A, 2) float32 relative (w, h) per cell, clipped when ``clip``."""
        s_k, s_next = self.scales
        pairs = [[s_k, s_k], [math.sqrt(s_k * s_next)] * 2]
        for ar in self.aspect_ratios:
            sq = math.sqrt(ar)
            w, h = s_k * sq, s_k / sq
            pairs.extend([[w, h], [h, w]])
        out = torch.as_tensor(pairs, dtype=torch.float32)
        return out.clamp(min=0, max=1) if self.clip else out

    @property
    def num_anchors(self) -> int:
        return 2 + 2 * len(self.aspect_ratios)

    def grid(self, height: int, width: int) -> torch.Tensor:
        """anchors_cxcywh (H*W*A, 4) float32 in input pixels for an H x W feature map."""
        key = (int(height), int(width))
        if key in self._cache:
            return self._cache[key]
        im_h, im_w = self.im_size
        if self.step is not None:
            x_f, y_f = im_w / self.step, im_h / self.step
        else:
            y_f, x_f = height, width
        shift_x = ((torch.arange(0, width) + 0.5) / x_f).to(torch.float32)
        shift_y = ((torch.arange(0, height) + 0.5) / y_f).to(torch.float32)
        sy, sx = torch.meshgrid(shift_y, shift_x, indexing="ij")
        wh = self.wh_pairs()
        a = wh.shape[0]
        shifts = torch.stack((sx.reshape(-1), sy.reshape(-1)) * a, dim=-1).reshape(-1, 2)
        rel = torch.cat((shifts, wh.repeat(height * width, 1)), dim=1)
        size = torch.tensor([im_w, im_h])
        xyxy = torch.cat([(rel[:, :2] - 0.5 * rel[:, 2:]) * size,
                          (rel[:, :2] + 0.5 * rel[:, 2:]) * size], -1)
        # torchvision's BoxCoder.decode_single: widths, heights, then centers from x1/y1
        w = xyxy[:, 2] - xyxy[:, 0]
        h = xyxy[:, 3] - xyxy[:, 1]
        out = torch.stack([xyxy[:, 0] + 0.5 * w, xyxy[:, 1] + 0.5 * h, w, h], -1)
        self._cache[key] = out
        return out

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """anchors_cxcywh (H*W*A, 4) for feature (N, C, H, W), on its device."""
        return self.grid(feature.shape[-2], feature.shape[-1]).to(feature.device)
