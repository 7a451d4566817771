"""Gluon-CV's FeatureExpander: extra SSD layers appended to a base network.

Built with the MXNet symbol API, so its BatchNorms are ``mx.sym.BatchNorm`` with
eps 1e-3 and fix_gamma=True (see layers.SymBatchNorm2d), and its convs have no bias
when BN follows.  Per extra stage i: [1x1 conv (transition) + BN + ReLU] then
3x3/2 pad 1 conv + BN + ReLU.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from ..layers import SymBatchNorm2d, bn_keys, conv_keys
from .base import Backbone


class FeatureExpander(Backbone):
    """Base network outputs followed by ``len(num_filters)`` down-sampling stages.

    Args:
        base: a Backbone returning the base feature maps.
        num_filters: output channels of each extra stage.
        use_1x1_transition, use_bn, reduce_ratio, min_depth, global_pool: as Gluon-CV.
    """

    def __init__(self, base: Backbone, num_filters: Sequence[int],
                 use_1x1_transition: bool = True, use_bn: bool = True,
                 reduce_ratio: float = 1.0, min_depth: int = 128, global_pool: bool = False):
        super().__init__()
        self.base = base
        self.global_pool = global_pool
        for key, names in base.gluon_key_map().items():
            self.register_alias(f"base.{key}", *names)
        self.extras = nn.ModuleList()
        channels = base.out_channels[-1]
        outs = list(base.out_channels)
        for i, f in enumerate(num_filters):
            layers = []
            if use_1x1_transition:
                num_trans = max(min_depth, int(round(f * reduce_ratio)))
                layers.append(nn.Conv2d(channels, num_trans, 1, bias=not use_bn))
                self.register_gluon(f"extras.{i}.{len(layers) - 1}",
                                    conv_keys(f"expand_trans_conv{i}_", not use_bn))
                if use_bn:
                    layers.append(SymBatchNorm2d(num_trans))
                    self.register_gluon(f"extras.{i}.{len(layers) - 1}",
                                        bn_keys(f"expand_trans_bn{i}_", symbol=True))
                layers.append(nn.ReLU(inplace=True))
                channels = num_trans
            layers.append(nn.Conv2d(channels, f, 3, stride=2, padding=1, bias=not use_bn))
            self.register_gluon(f"extras.{i}.{len(layers) - 1}",
                                conv_keys(f"expand_conv{i}_", not use_bn))
            if use_bn:
                layers.append(SymBatchNorm2d(f))
                self.register_gluon(f"extras.{i}.{len(layers) - 1}",
                                    bn_keys(f"expand_bn{i}_", symbol=True))
            layers.append(nn.ReLU(inplace=True))
            self.extras.append(nn.Sequential(*layers))
            channels = f
            outs.append(f)
        if global_pool:
            outs.append(channels)
        self.out_channels = tuple(outs)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outputs = list(self.base(x))
        y = outputs[-1]
        for extra in self.extras:
            y = extra(y)
            outputs.append(y)
        if self.global_pool:
            outputs.append(y.mean(dim=(2, 3), keepdim=True))
        return outputs
