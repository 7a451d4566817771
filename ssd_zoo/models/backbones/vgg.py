"""Gluon-CV's VGG16-atrous SSD extractor (``VGGAtrousExtractor``), reproduced exactly.

Input is Gluon-normalized RGB; it is first multiplied by ``init_scale`` = std*255 (a
constant stored in the .params), i.e. turned into mean-subtracted 0..255 pixels.
Max-pools round up (pooling_convention='full' = ceil_mode); pool5 is 3x3/1 pad 1; fc6 is
3x3 dilation 6; fc7 1x1; conv4_3 feeds L2Normalization(eps 1e-5) x scale (init 20).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from ..layers import L2Normalization
from .base import Backbone

VGG16_SPEC = ([2, 2, 3, 3, 3], [64, 128, 256, 512, 512])
# (filters, kernel, stride, pad) per conv of each extra stage.
EXTRAS = {
    300: [((256, 1, 1, 0), (512, 3, 2, 1)), ((128, 1, 1, 0), (256, 3, 2, 1)),
          ((128, 1, 1, 0), (256, 3, 1, 0)), ((128, 1, 1, 0), (256, 3, 1, 0))],
    512: [((256, 1, 1, 0), (512, 3, 2, 1)), ((128, 1, 1, 0), (256, 3, 2, 1)),
          ((128, 1, 1, 0), (256, 3, 2, 1)), ((128, 1, 1, 0), (256, 3, 2, 1)),
          ((128, 1, 1, 0), (256, 4, 1, 1))],
}
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGAtrous(Backbone):
    """VGG16 with atrous fc6/fc7 and SSD extra layers; returns 6 (300) or 7 (512) maps."""

    def __init__(self, size: int = 300, layers: Sequence[int] = VGG16_SPEC[0],
                 filters: Sequence[int] = VGG16_SPEC[1]):
        super().__init__()
        if size not in EXTRAS:
            raise ValueError(f"vgg16_atrous supports sizes {sorted(EXTRAS)}, got {size}")
        scale = torch.tensor(IMAGENET_STD, dtype=torch.float32).reshape(1, 3, 1, 1) * 255
        self.register_buffer("init_scale", scale)
        self.register_alias("init_scale", "features.init_scale",
                            "vggatrousextractor0_init_scale")
        self.stages = nn.ModuleList()
        cin, conv_idx = 3, 0
        for s, (n, f) in enumerate(zip(layers, filters)):
            mods = []
            for _ in range(n):
                mods += [nn.Conv2d(cin, f, 3, padding=1), nn.ReLU(inplace=True)]
                self._alias_conv(f"stages.{s}.{len(mods) - 2}",
                                 f"features.stages.{s}.{len(mods) - 2}.",
                                 f"vggatrousextractor0_conv{conv_idx}_")
                cin, conv_idx = f, conv_idx + 1
            self.stages.append(nn.Sequential(*mods))
        s = len(layers)
        self.stages.append(nn.Sequential(
            nn.Conv2d(cin, 1024, 3, padding=6, dilation=6), nn.ReLU(inplace=True),
            nn.Conv2d(1024, 1024, 1), nn.ReLU(inplace=True)))
        for j, idx in enumerate((0, 2)):
            self._alias_conv(f"stages.{s}.{idx}", f"features.stages.{s}.{idx}.",
                             f"vggatrousextractor0_dilated_conv{j}_")
        self.norm4 = L2Normalization(filters[3], initial=20.0, eps=1e-5)
        self.register_alias("norm4.scale", "features.norm4.scale",
                            "vggatrousextractor0_normalize0_normalize_scale")
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.pool5 = nn.MaxPool2d(3, 1, padding=1, ceil_mode=True)
        self.extras = nn.ModuleList()
        cin, outs = 1024, [filters[3], 1024]
        for i, config in enumerate(EXTRAS[size]):
            mods = []
            for j, (f, k, st, p) in enumerate(config):
                mods += [nn.Conv2d(cin, f, k, st, p), nn.ReLU(inplace=True)]
                self._alias_conv(f"extras.{i}.{2 * j}", f"features.extras.{i}.{2 * j}.",
                                 f"vggatrousextractor0_extra{i}_conv{j}_")
                cin = f
            self.extras.append(nn.Sequential(*mods))
            outs.append(cin)
        self.out_channels: Tuple[int, ...] = tuple(outs)

    def _alias_conv(self, path: str, structural: str, prefixed: str) -> None:
        for attr in ("weight", "bias"):
            self.register_alias(f"{path}.{attr}", structural + attr, prefixed + attr)

    def imagenet_key_map(self) -> dict:
        """{key: name in gluoncv's ImageNet ``vgg16_atrous`` .params} for the layers that
        exist there (stages; the file is loaded with allow_missing in Gluon-CV, so the
        L2-norm scale and the extras keep their initialization)."""
        return {k: names[0][len("features."):] for k, names in self._gluon_names.items()
                if k.startswith("stages.")}

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = x * self.init_scale
        for stage in self.stages[:3]:
            x = self.pool(stage(x))
        x = self.stages[3](x)
        outputs = [self.norm4(x)]
        x = self.pool(x)
        x = self.pool5(self.stages[4](x))
        x = self.stages[5](x)
        outputs.append(x)
        for extra in self.extras:
            x = extra(x)
            outputs.append(x)
        return outputs
