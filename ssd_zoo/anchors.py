"""SSD anchor generators (Gluon-CV's), producing anchors_cxcywh in input pixels.

Gluon-CV precomputes anchors on a fixed grid (stored in the .params) and slices them to
each feature map; the values per cell depend only on (row, col), so computing them for the
actual feature size gives identical numbers for any input size (and works beyond the
precomputed grid).  Values are computed in float64 like numpy, then cast to float32.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import torch
from torch import nn


class SSDAnchorGenerator(nn.Module):
    """Anchors of one SSD head.

    Per cell, in this order: square of size s_k, square of sqrt(s_k * s_{k+1}), then for
    each ratio r in ratios[1:] a box (s_k*sqrt(r), s_k/sqrt(r)).  Centers (j+0.5)*step.
    Not clipped (unless ``clip``, against ``im_size``).

    Args:
        sizes: (s_k, s_{k+1}) in pixels.
        ratios: aspect ratios, ratios[0] is the square's (ignored as in Gluon).
        step: stride in input pixels.
        offsets: (y, x) cell offsets.
    """

    def __init__(self, sizes: Sequence[float], ratios: Sequence[float], step: float,
                 offsets: Tuple[float, float] = (0.5, 0.5), clip: bool = False,
                 im_size: Tuple[int, int] = None):
        super().__init__()
        self.sizes = (float(sizes[0]), math.sqrt(float(sizes[0]) * float(sizes[1])))
        self.ratios = tuple(float(r) for r in ratios)
        self.step = float(step)
        self.offsets = offsets
        self.clip = clip
        self.im_size = im_size
        self._cache: Dict[Tuple[int, int], torch.Tensor] = {}

    def cell_shapes(self) -> torch.Tensor:
        """(A, 2) float64 anchor (w, h) per cell, in Gluon's order."""
        s0, s1 = self.sizes
        wh = [(s0, s0), (s1, s1)]
        for r in self.ratios[1:]:
            sr = math.sqrt(r)
            wh.append((s0 * sr, s0 / sr))
        return torch.tensor(wh, dtype=torch.float64)

    @property
    def num_anchors(self) -> int:
        return len(self.cell_shapes())

    def grid(self, height: int, width: int) -> torch.Tensor:
        """anchors_cxcywh (H*W*A, 4) float32 for an H x W feature map (row-major cells)."""
        key = (int(height), int(width))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        wh = self.cell_shapes()
        cy = (torch.arange(height, dtype=torch.float64) + self.offsets[0]) * self.step
        cx = (torch.arange(width, dtype=torch.float64) + self.offsets[1]) * self.step
        cy, cx = torch.meshgrid(cy, cx, indexing="ij")
        a = wh.shape[0]
        centers = torch.stack([cx, cy], -1).reshape(-1, 1, 2).expand(-1, a, 2)
        out = torch.cat([centers, wh.reshape(1, a, 2).expand(centers.shape[0], a, 2)], -1)
        if self.clip:
            h, w = self.im_size
            out = torch.stack([out[..., 0].clamp(0, w), out[..., 1].clamp(0, h),
                               out[..., 2].clamp(0, w), out[..., 3].clamp(0, h)], -1)
        out = out.reshape(-1, 4).to(torch.float32)
        self._cache[key] = out
        return out

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """anchors_cxcywh (H*W*A, 4) for feature (N, C, H, W), on its device."""
        return self.grid(feature.shape[-2], feature.shape[-1]).to(feature.device)

    def gluon_constant(self, alloc: int) -> torch.Tensor:
        """The (1, 1, alloc, alloc, A*4) array Gluon stores as ``anchor_generators.K.anchors``."""
        return self.grid(alloc, alloc).reshape(1, 1, alloc, alloc, -1)


def center_coverage(anchors_cxcywh: torch.Tensor, height: int, width: int) -> float:
    """How far one head's anchor centres tile an input of height x width: (first + last
    centre) / side, the smaller of x and y.  1.0 for a grid centred on the image (centres
    step/2 ... side - step/2); Gluon-CV's mobilenet0.25@300 preset gives 0.51 (centres stop
    at 160 px of 300, see ssd_zoo.zoo.MOB025_300_TILED)."""
    cx, cy = anchors_cxcywh[:, 0], anchors_cxcywh[:, 1]
    return min(float(cx.min() + cx.max()) / width, float(cy.min() + cy.max()) / height)


def head_coverages(net, size: int):
    """[center_coverage of each head] of an SSD for a size x size input."""
    was = net.training
    net.eval()
    with torch.no_grad():
        p = next(net.parameters())
        feats = net.backbone(torch.zeros(1, 3, size, size, device=p.device, dtype=p.dtype))
        out = [center_coverage(ag(f), size, size) for f, ag in zip(feats, net.anchor_generators)]
    net.train(was)
    return out


class LiteAnchorGenerator(SSDAnchorGenerator):
    """Gluon-CV's LiteAnchorGenerator (TF ssd_mobilenet_v1 style).

    Head 0: a square of s_k/2 then the ratio boxes (no geometric-mean square); other heads:
    the ratio boxes (including the s_k square) then the sqrt(s_k*s_{k+1}) square last.
    """

    def __init__(self, index: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.index = index

    def cell_shapes(self) -> torch.Tensor:
        s0, s1 = self.sizes
        wh = [(s0 / 2, s0 / 2)]
        for r in self.ratios[1:]:
            sr = math.sqrt(r)
            wh.append((s0 * sr, s0 / sr))
        if self.index > 0:
            wh.append((s1, s1))
        return torch.tensor(wh, dtype=torch.float64)
