"""Gluon-CV ResNet-V2 (pre-activation, gluoncv/model_zoo/resnet.py) as an SSD base.

Layout: data BatchNorm(scale=False, center=False) on the normalized input -- gamma is
ignored (fix_gamma) but the stored beta IS added, eps 1e-5 -- then 7x7/2 conv (no bias),
BN, ReLU, 3x3/2 max-pool, then stages of ``BottleneckV2``:

    a0 = relu(bn1(x)); a1 = relu(bn2(conv1(a0))); a2 = relu(bn3(conv2(a1)))
    out = conv3(a2) + (downsample(a0) if the block has a shortcut conv else x)

(conv2 3x3 carries the stride; no conv has a bias; the shortcut is fed a0, not x).

Feature names ``stage{S}_activation{K}`` count the ``F.Activation`` ops inside stage S,
three per block: K = 3*block + j is a_j of that block -- so SSD features such as
'stage3_activation22' (resnet101_v2) or 'stage2_activation7' (resnet152_v2) are MID-BLOCK
maps.  Gluon's SymbolBlock holds only the graph up to the last output: the final block is
cut right after its activation (later convs and its shortcut conv are absent from the
.params), and nothing after it exists.  Checked against the exported symbol of
``ssd_512_resnet{101,152}_v2_voc`` (gluoncv 0.10.5).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import GluonBatchNorm2d, SymBatchNorm2d, bn_keys, conv_keys
from .base import Backbone
from .resnet_v1 import BN_ATTRS, RESNET_SPEC, Namer, make_namer, parse_features

ACTS_PER_BLOCK = 3


class BottleneckV2(nn.Module):
    """Pre-activation bottleneck, optionally cut after activation ``upto`` (0, 1 or 2).

    forward(x) -> (out or None when cut, [a0, a1, a2][:computed]);
    x (N,cin,H,W); a0 (N,cin,H,W); a1 (N,channels/4,H,W); a2 and out at H/stride.
    """

    def __init__(self, cin: int, channels: int, stride: int, downsample: bool, name: Namer,
                 upto: Optional[int] = None):
        super().__init__()
        mid = channels // 4
        full = upto is None
        self.upto = upto
        self.gluon: Dict[str, Dict[str, str]] = {}
        # Gluon creation order: bn1 conv1 bn2 conv2 bn3 conv3 [downsample]; the counters
        # advance even for layers that the cut graph drops.
        needed = {"bn1": True, "conv1": full or upto >= 1, "bn2": full or upto >= 1,
                  "conv2": full or upto >= 2, "bn3": full or upto >= 2, "conv3": full,
                  "downsample": full}
        make = {"bn1": lambda: GluonBatchNorm2d(cin),
                "conv1": lambda: nn.Conv2d(cin, mid, 1, bias=False),
                "bn2": lambda: GluonBatchNorm2d(mid),
                "conv2": lambda: nn.Conv2d(mid, mid, 3, stride, 1, bias=False),
                "bn3": lambda: GluonBatchNorm2d(mid),
                "conv3": lambda: nn.Conv2d(mid, channels, 1, bias=False),
                "downsample": lambda: nn.Conv2d(cin, channels, 1, stride, bias=False)}
        order = ["bn1", "conv1", "bn2", "conv2", "bn3", "conv3"] + (["downsample"]
                                                                    if downsample else [])
        for attr in order:  # Gluon creation order; cut layers still advance the counters
            is_bn = attr.startswith("bn")
            prefix = name("batchnorm" if is_bn else "conv")
            if needed[attr]:
                setattr(self, attr, make[attr]())
                self.gluon[attr] = bn_keys(prefix) if is_bn else conv_keys(prefix, bias=False)
        self.has_shortcut = full and downsample

    def forward(self, x: torch.Tensor) -> Tuple[Optional[torch.Tensor], List[torch.Tensor]]:
        a = F.relu(self.bn1(x))
        acts = [a]
        residual = self.downsample(a) if self.has_shortcut else x
        if self.upto == 0:
            return None, acts
        a = F.relu(self.bn2(self.conv1(a)))
        acts.append(a)
        if self.upto == 1:
            return None, acts
        a = F.relu(self.bn3(self.conv2(a)))
        acts.append(a)
        if self.upto == 2:
            return None, acts
        return self.conv3(a) + residual, acts


class ResNetV2(Backbone):
    """Gluon ResNet-V2 (bottleneck depths 50/101/152) up to the last requested feature.

    Args:
        depth: 50, 101 or 152.
        features: Gluon output names, e.g. ('stage3_activation22', 'stage4_activation2').
    forward: x (N,3,H,W) -> [map per feature] (see the module docstring for what each is).
    """

    def __init__(self, depth: int, features: Sequence[str], prefix: str = "resnetv20_"):
        super().__init__()
        if depth not in RESNET_SPEC or RESNET_SPEC[depth][0] != "bottleneck":
            raise ValueError(f"resnet v2 depth must be 50, 101 or 152, got {depth}")
        _, blocks, channels = RESNET_SPEC[depth]
        taps = parse_features(features)
        for s, k in taps:
            if k >= ACTS_PER_BLOCK * blocks[s]:
                raise ValueError(f"resnet{depth}_v2 stage{s + 1} has "
                                 f"{ACTS_PER_BLOCK * blocks[s]} activations, got index {k}")
        self._taps = {(s, k // ACTS_PER_BLOCK, k % ACTS_PER_BLOCK) for s, k in taps}
        last_stage, last_act = taps[-1]
        last_block, cut = divmod(last_act, ACTS_PER_BLOCK)
        top = make_namer(prefix)
        self.data_bn = SymBatchNorm2d(3, eps=1e-5)  # scale=False: gamma ignored, beta used
        self.register_gluon("data_bn", bn_keys(top("batchnorm")))
        self.conv0 = nn.Conv2d(3, channels[0], 7, 2, 3, bias=False)
        self.register_gluon("conv0", conv_keys(top("conv"), bias=False))
        self.bn0 = GluonBatchNorm2d(channels[0])
        self.register_gluon("bn0", bn_keys(top("batchnorm")))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.stages = nn.ModuleList()
        cin, outs = channels[0], {}
        for s in range(last_stage + 1):
            name = make_namer(f"{prefix}stage{s + 1}_")
            cout = channels[s + 1]
            n = blocks[s] if s < last_stage else last_block + 1
            stage = nn.Sequential()
            for b in range(n):
                block_in = cin if b == 0 else cout
                upto = cut if (s, b) == (last_stage, last_block) else None
                block = BottleneckV2(block_in, cout, 2 if (s > 0 and b == 0) else 1,
                                     b == 0 and cin != cout, name, upto)
                stage.append(block)
                for sub, names in block.gluon.items():
                    self.register_gluon(f"stages.{s}.{b}.{sub}", names)
                outs[(s, b, 0)] = block_in
                outs[(s, b, 1)] = outs[(s, b, 2)] = cout // 4
            self.stages.append(stage)
            cin = cout
        self.out_channels = tuple(outs[(s, k // ACTS_PER_BLOCK, k % ACTS_PER_BLOCK)]
                                  for s, k in taps)

    def imagenet_key_map(self) -> Dict[str, str]:
        """{state_dict key: name in gluoncv's ImageNet ``resnet{depth}_v2`` .params written
        by ``save_parameters``} (``features.5.0.bn1.gamma``, ``features.1.weight``)."""
        top = {"data_bn": "0", "conv0": "1", "bn0": "2"}
        modules, out = dict(self.named_modules()), {}
        for key in self.gluon_key_map():
            parts = key.split(".")
            attr = parts[-1]
            is_bn = isinstance(modules[key.rsplit(".", 1)[0]], nn.BatchNorm2d)
            if parts[0] in top:
                path = ["features", top[parts[0]]]
            else:  # stages.s.b.<layer>
                path = ["features", str(5 + int(parts[1])), parts[2], parts[3]]
            out[key] = ".".join(path + [BN_ATTRS[attr] if is_bn else attr])
        return out

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.pool(F.relu(self.bn0(self.conv0(self.data_bn(x)))))
        outputs = []
        for s, stage in enumerate(self.stages):
            for b, block in enumerate(stage):
                x, acts = block(x)
                for j, a in enumerate(acts):
                    if (s, b, j) in self._taps:
                        outputs.append(a)
        return outputs


def resnet_v2(depth: int, features: Sequence[str] = ("stage3_activation22",
                                                      "stage4_activation2")) -> ResNetV2:
    """Gluon ``resnet{depth}_v2`` truncated at ``features`` (see ResNetV2)."""
    return ResNetV2(depth, features)
