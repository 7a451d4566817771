"""Caffe ``PriorBox`` priors (weiliu89 SSD) as an ssd_zoo anchor generator.

Caffe emits normalized (xmin, ymin, xmax, ymax) priors; ssd_zoo heads take
anchors_cxcywh in input pixels.  With an explicit ``step`` and ``clip: false`` (every
weiliu89 net) the pixel priors do not depend on the image size: center
``(j + offset) * step`` and the box sizes below, all in float32 as Caffe/OpenCV compute
them.  Per cell, for each ``min_size``: the min square, the sqrt(min*max) square (when
``max_size``), then one box per aspect ratio (each ratio != 1 once, followed by 1/ratio
when ``flip``): (min*sqrt(r), min/sqrt(r)).  For one min_size and flip this is exactly the
Gluon order of :class:`ssd_zoo.anchors.SSDAnchorGenerator` (so predictor rows line up).

Deviation note: OpenCV dnn (the reference runtime, and ``ssd_zoo.caffe``) uses the float
sizes; weiliu89's Caffe stores them in an ``int`` (35.84 -> 35 in SSD512).  The default
follows OpenCV; ``int_sizes=True`` reproduces Caffe's truncation.  Both agree for SSD300.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn


class CaffePriorAnchors(nn.Module):
    """Anchors of one head from Caffe ``prior_box_param`` values.

    Args:
        min_sizes, max_sizes: ``min_size`` / ``max_size`` lists (pixels; max may be empty).
        aspect_ratios: ``aspect_ratio`` values (1 and duplicates are skipped, as in Caffe).
        flip: add 1/r for each ratio r.
        step: (step_h, step_w) or one value in pixels; None derives im_size / feature size.
        offset: cell offset (Caffe default 0.5).
        clip: clip the normalized priors to [0, 1] (needs ``im_size``).
        im_size: (height, width) of the network input (for clip and derived steps).
        int_sizes: truncate sizes to int like weiliu89's Caffe (see module docstring).
    """

    def __init__(self, min_sizes: Sequence[float], max_sizes: Sequence[float] = (),
                 aspect_ratios: Sequence[float] = (), flip: bool = True, step=None,
                 offset: float = 0.5, clip: bool = False,
                 im_size: Optional[Tuple[int, int]] = None, int_sizes: bool = False):
        super().__init__()
        if not min_sizes or (max_sizes and len(max_sizes) != len(min_sizes)):
            raise ValueError(f"need min_sizes and one max_size per min_size, got "
                             f"{list(min_sizes)} / {list(max_sizes)}")
        if (clip or step is None) and im_size is None:
            raise ValueError("clip or a derived step needs im_size")
        self.min_sizes = tuple(float(s) for s in min_sizes)
        self.max_sizes = tuple(float(s) for s in max_sizes)
        ratios = []
        for ar in aspect_ratios:
            if abs(ar - 1) < 1e-6 or any(abs(ar - r) < 1e-6 for r in ratios):
                continue
            ratios += [float(ar), 1.0 / float(ar)] if flip else [float(ar)]
        self.ratios = tuple(ratios)
        self.step = None if step is None else (
            (float(step), float(step)) if not isinstance(step, (tuple, list)) else
            (float(step[0]), float(step[1])))
        self.offset = float(offset)
        self.clip = clip
        self.im_size = im_size
        self.int_sizes = int_sizes
        self._cache: Dict[Tuple[int, int], torch.Tensor] = {}

    def cell_shapes(self) -> torch.Tensor:
        """(K, 2) float32 prior (w, h) per cell, in Caffe's order."""
        f32 = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        wh = []
        for i, mn in enumerate(self.min_sizes):
            mn = float(int(mn)) if self.int_sizes else mn
            wh.append((f32(mn), f32(mn)))
            if self.max_sizes:
                mx = float(int(self.max_sizes[i])) if self.int_sizes else self.max_sizes[i]
                s = f32(mn * mx).sqrt() if not self.int_sizes else f32(math.sqrt(mn * mx))
                wh.append((s, s))
            for ar in self.ratios:
                r = f32(ar).sqrt()
                wh.append((f32(mn) * r, f32(mn) / r))
        return torch.stack([torch.stack(p) for p in wh])

    @property
    def num_anchors(self) -> int:
        return len(self.min_sizes) * (1 + len(self.ratios)) + len(self.max_sizes)

    def grid(self, height: int, width: int) -> torch.Tensor:
        """anchors_cxcywh (H*W*K, 4) float32 in input pixels (cells row-major, K fastest)."""
        key = (int(height), int(width))
        if key in self._cache:
            return self._cache[key]
        f32 = dict(dtype=torch.float32)
        if self.step is None:
            step_h = torch.tensor(float(self.im_size[0]), **f32) / height
            step_w = torch.tensor(float(self.im_size[1]), **f32) / width
        else:
            step_h, step_w = (torch.tensor(s, **f32) for s in self.step)
        cy = (torch.arange(height, **f32) + self.offset) * step_h
        cx = (torch.arange(width, **f32) + self.offset) * step_w
        wh = self.cell_shapes()
        k = wh.shape[0]
        cy, cx = torch.meshgrid(cy, cx, indexing="ij")
        out = torch.cat([torch.stack([cx, cy], -1).reshape(-1, 1, 2).expand(-1, k, 2),
                         wh.reshape(1, k, 2).expand(height * width, k, 2)], -1)
        if self.clip:  # clip the normalized corners as Caffe does, back to cxcywh
            h, w = (float(v) for v in self.im_size)
            size = torch.tensor([w, h, w, h], dtype=torch.float64)
            o = out.double()
            xyxy = torch.cat([o[..., :2] - o[..., 2:] / 2, o[..., :2] + o[..., 2:] / 2], -1)
            xyxy = (xyxy / size).clamp(0, 1) * size
            out = torch.cat([(xyxy[..., :2] + xyxy[..., 2:]) / 2,
                             xyxy[..., 2:] - xyxy[..., :2]], -1).float()
        out = out.reshape(-1, 4).contiguous()
        self._cache[key] = out
        return out

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """anchors_cxcywh (H*W*K, 4) for feature (N, C, H, W), on its device."""
        return self.grid(feature.shape[-2], feature.shape[-1]).to(feature.device)
