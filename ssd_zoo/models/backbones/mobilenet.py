"""Gluon-CV MobileNet v1 (gluoncv/model_zoo/mobilenet.py) as an SSD base.

A flat chain of conv (no bias) + Gluon BatchNorm (eps 1e-5, gamma used) + ReLU units:
unit 0 is a 3x3/2 conv 3 -> 32m, then 13 depthwise-separable pairs (3x3 depthwise with
the stride, then 1x1 pointwise).  Unit k is named ``mobilenet0_conv{k}`` /
``mobilenet0_batchnorm{k}`` and its ReLU op ``relu{k}_fwd`` -- the Gluon feature names
('relu22_fwd' = pointwise of pair 11, 512m channels, stride 16; 'relu26_fwd' = last
pointwise, 1024m channels, stride 32).  The chain stops at the last requested feature.
"""
from __future__ import annotations

import re
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from ..layers import GluonBatchNorm2d, bn_keys, conv_keys
from .base import Backbone

_DW = [32, 64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024]
_PW = [64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024] * 2
_STRIDES = [1, 2] * 3 + [1] * 5 + [2, 1]
_FEATURE = re.compile(r"^relu(\d+)_fwd(?:_output)?$")


def mobilenet_units(multiplier: float) -> List[Tuple[int, int, int, int, int]]:
    """(in, out, kernel, stride, groups) of each conv unit, in Gluon order (27 units)."""
    units = [(3, int(32 * multiplier), 3, 2, 1)]
    cin = units[0][1]
    for dw, pw, s in zip(_DW, _PW, _STRIDES):
        dw, pw = int(dw * multiplier), int(pw * multiplier)
        units.append((cin, dw, 3, s, dw))
        units.append((dw, pw, 1, 1, 1))
        cin = pw
    return units


class MobileNetV1(Backbone):
    """Gluon MobileNet v1 with width ``multiplier``, truncated at ``features``.

    forward: x (N,3,H,W) -> [map per feature], e.g. for ('relu22_fwd', 'relu26_fwd'):
    (N,512m,H/16,W/16) and (N,1024m,H/32,W/32) (sizes rounded up at each stride).
    """

    def __init__(self, multiplier: float = 1.0,
                 features: Sequence[str] = ("relu22_fwd", "relu26_fwd"),
                 prefix: str = "mobilenet0_"):
        super().__init__()
        units = mobilenet_units(multiplier)
        taps = []
        for f in features:
            m = _FEATURE.match(f)
            if m is None or int(m.group(1)) >= len(units):
                raise ValueError(f"MobileNet features are 'relu<k>_fwd' with k < {len(units)}, "
                                 f"got {f!r}")
            taps.append(int(m.group(1)))
        if not taps or any(a >= b for a, b in zip(taps, taps[1:])):
            raise ValueError(f"MobileNet features must be non-empty and in order: {features}")
        self._taps = tuple(taps)
        self.units = nn.ModuleList()
        for k, (cin, cout, ksize, stride, groups) in enumerate(units[:taps[-1] + 1]):
            self.units.append(nn.Sequential(
                nn.Conv2d(cin, cout, ksize, stride, ksize // 2, groups=groups, bias=False),
                GluonBatchNorm2d(cout), nn.ReLU(inplace=True)))
            self.register_gluon(f"units.{k}.0", conv_keys(f"{prefix}conv{k}_", bias=False))
            self.register_gluon(f"units.{k}.1", bn_keys(f"{prefix}batchnorm{k}_"))
        self.out_channels = tuple(units[k][1] for k in taps)

    def imagenet_key_map(self) -> Dict[str, str]:
        """{state_dict key: name in gluoncv's ImageNet ``mobilenet{m}`` .params written by
        ``save_parameters``}: unit k's conv is ``features.{3k}``, its BN ``features.{3k+1}``."""
        bn_attrs = {"weight": "gamma", "bias": "beta"}
        out = {}
        for key in self.gluon_key_map():
            _, k, layer, attr = key.split(".")
            if layer == "0":
                out[key] = f"features.{3 * int(k)}.{attr}"
            else:
                out[key] = f"features.{3 * int(k) + 1}.{bn_attrs.get(attr, attr)}"
        return out

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outputs = []
        for k, unit in enumerate(self.units):
            x = unit(x)
            if k in self._taps:
                outputs.append(x)
        return outputs


def mobilenet(multiplier: float = 1.0,
              features: Sequence[str] = ("relu22_fwd", "relu26_fwd")) -> MobileNetV1:
    """Gluon ``mobilenet{multiplier}`` truncated at ``features``."""
    return MobileNetV1(multiplier, features)
