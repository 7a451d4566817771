"""The VGG16 SSD300 extractor of the PyTorch ecosystem (torchvision's ``ssd300_vgg16`` and
amdegroot's ssd.pytorch), which differs from Gluon-CV's ``VGGAtrous`` (vgg.py):

* input: 0..255-scale mean-subtracted RGB, taken as is (no ``init_scale`` multiply);
* pools: pool1/pool2/pool4 round down, only pool3 rounds up (same sizes as Gluon at 300);
* conv4_3 L2 norm: a pluggable module with a (512,) weight, because the two upstreams
  normalize differently (``L2NormTorchvision`` / ``L2NormAmdegroot`` below).

Layout (indices mirror ssd.pytorch's ``vgg`` list, so checkpoints map by index):
``body`` = vgg[0:23] (conv1_1 .. conv4_3 + ReLU), ``fc`` = vgg[23:35] (pool4, conv5_x,
pool5 3x3/1 pad 1, fc6 3x3 dilation 6, fc7 1x1), ``extras.{0..3}`` = (1x1 conv, ReLU,
3x3 conv, ReLU) giving conv8_2 .. conv11_2.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512)
# (mid channels, out channels, stride, pad) of the 3x3 conv of each extra stage (SSD300)
EXTRAS_300 = ((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0), (128, 256, 1, 0))


class L2NormTorchvision(nn.Module):
    """torchvision: ``weight.view(1,-1,1,1) * F.normalize(x)`` = x / max(||x||_2, 1e-12).

    x (N,C,H,W) -> (N,C,H,W); weight (C,), init 20.
    """

    def __init__(self, channels: int = 512, initial: float = 20.0):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(initial)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight.view(1, -1, 1, 1) * F.normalize(x)


class L2NormAmdegroot(nn.Module):
    """ssd.pytorch ``L2Norm``: x / (sqrt(sum_c x^2) + 1e-10) * weight (eps outside sqrt).

    x (N,C,H,W) -> (N,C,H,W); weight (C,), init 20.
    """

    def __init__(self, channels: int = 512, initial: float = 20.0, eps: float = 1e-10):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.full((channels,), float(initial)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return self.weight.view(1, -1, 1, 1) * torch.div(x, norm)


class TorchVGG16SSD300(Backbone):
    """VGG16 SSD300 extractor; ``forward(x)`` x (N,3,H,W) mean-subtracted 0..255 RGB ->
    6 maps: conv4_3 (normalized, 512ch), fc7 (1024), conv8_2 (512), conv9_2..11_2 (256);
    38, 19, 10, 5, 3, 1 cells for a 300x300 input.

    Args:
        norm: the conv4_3 L2 normalization module (holds ``weight`` (512,)).
    """

    def __init__(self, norm: nn.Module):
        super().__init__()
        layers: List[nn.Module] = []
        cin = 3
        for v in VGG16_CFG:
            if v in ("M", "C"):
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=(v == "C")))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.body = nn.Sequential(*layers)            # 23 modules, ends with conv4_3 ReLU
        self.norm = norm
        fc: List[nn.Module] = [nn.MaxPool2d(2, 2)]    # pool4
        for _ in range(3):
            fc += [nn.Conv2d(512, 512, 3, padding=1), nn.ReLU(inplace=True)]
        fc += [nn.MaxPool2d(3, 1, padding=1),         # pool5
               nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.ReLU(inplace=True),
               nn.Conv2d(1024, 1024, 1), nn.ReLU(inplace=True)]
        self.fc = nn.Sequential(*fc)                  # 12 modules = vgg[23:35]
        self.extras = nn.ModuleList()
        cin, outs = 1024, [512, 1024]
        for mid, out, stride, pad in EXTRAS_300:
            self.extras.append(nn.Sequential(
                nn.Conv2d(cin, mid, 1), nn.ReLU(inplace=True),
                nn.Conv2d(mid, out, 3, stride=stride, padding=pad), nn.ReLU(inplace=True)))
            cin = out
            outs.append(out)
        self.out_channels: Tuple[int, ...] = tuple(outs)

    def gluon_key_map(self):  # pragma: no cover - these ports never come from Gluon
        raise NotImplementedError(f"{type(self).__name__} has no Gluon-CV counterpart")

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.body(x)
        outputs = [self.norm(x)]
        x = self.fc(x)
        outputs.append(x)
        for extra in self.extras:
            x = extra(x)
            outputs.append(x)
        return outputs


def vgg16_torchvision() -> TorchVGG16SSD300:
    """The backbone of torchvision's ``ssd300_vgg16``."""
    return TorchVGG16SSD300(L2NormTorchvision())


def vgg16_amdegroot() -> TorchVGG16SSD300:
    """The backbone of amdegroot's ssd.pytorch SSD300."""
    return TorchVGG16SSD300(L2NormAmdegroot())
