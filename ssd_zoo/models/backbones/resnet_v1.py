"""Gluon-CV ResNet-V1 (gluoncv/model_zoo/resnet.py) as an SSD base, truncated at its features.

Not torchvision's ResNet: in ``BottleneckV1`` the stride sits on the FIRST 1x1 conv, and
both 1x1 convs of the bottleneck body carry a bias (Gluon's ``Conv2D`` default); the 3x3
conv, the stem conv and the down-sampling shortcut conv have none.  BatchNorms are Gluon
``nn.BatchNorm`` (eps 1e-5, gamma used).

Feature names are Gluon symbol names: ``stage{S}_activation{K}`` is the K-th
``F.Activation`` op inside stage S, i.e. (one per V1 block) the output of block K.

Gluon names: everything lives under the ``resnetv10_`` prefix; inside stage S, layers are
numbered per kind (``conv``/``batchnorm``) over the whole stage in creation order
(body convs, then the shortcut conv), e.g. block 0 of a bottleneck stage holds conv0..2
and shortcut conv3, block 1 conv4..6.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import GluonBatchNorm2d, bn_keys, conv_keys
from .base import Backbone

# depth -> (block kind, blocks per stage, channels [stem, stage1..4])
RESNET_SPEC = {
    18: ("basic", (2, 2, 2, 2), (64, 64, 128, 256, 512)),
    34: ("basic", (3, 4, 6, 3), (64, 64, 128, 256, 512)),
    50: ("bottleneck", (3, 4, 6, 3), (64, 256, 512, 1024, 2048)),
    101: ("bottleneck", (3, 4, 23, 3), (64, 256, 512, 1024, 2048)),
    152: ("bottleneck", (3, 8, 36, 3), (64, 256, 512, 1024, 2048)),
}
_FEATURE = re.compile(r"^stage([1-4])_activation(\d+)(?:_output)?$")
BN_ATTRS = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean",
            "running_var": "running_var"}
# our block attribute -> index in Gluon's ``body`` HybridSequential (ReLUs in between)
_BODY_INDEX = {"conv1": 0, "bn1": 1, "conv2": 3, "bn2": 4, "conv3": 6, "bn3": 7}

Namer = Callable[[str], str]  # alias ('conv', 'batchnorm') -> Gluon prefix 'xxx_conv3_'


def make_namer(prefix: str) -> Namer:
    """A Gluon name-scope counter: each call returns ``{prefix}{alias}{n}_`` with n counting
    per alias, as Gluon numbers the children created inside one name scope."""
    counts: Dict[str, int] = {}

    def name(alias: str) -> str:
        n = counts.get(alias, 0)
        counts[alias] = n + 1
        return f"{prefix}{alias}{n}_"
    return name


def parse_features(features: Sequence[str]) -> List[Tuple[int, int]]:
    """['stage3_activation5', ...] -> [(stage index 0..3, activation index), ...], checked
    to be strictly increasing (Gluon returns them in the given order)."""
    taps = []
    for f in features:
        m = _FEATURE.match(f)
        if m is None:
            raise ValueError(f"ResNet feature names look like 'stage3_activation5', got {f!r}")
        taps.append((int(m.group(1)) - 1, int(m.group(2))))
    if not taps or any(a >= b for a, b in zip(taps, taps[1:])):
        raise ValueError(f"ResNet features must be non-empty and in network order: {features}")
    return taps


def _conv_bn(cin: int, cout: int, k: int, stride: int, bias: bool) -> Tuple[nn.Conv2d, nn.Module]:
    return (nn.Conv2d(cin, cout, k, stride, k // 2, bias=bias), GluonBatchNorm2d(cout))


class BasicBlockV1(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); conv1 3x3 carries the stride.
    x: (N,cin,H,W) -> (N,channels,H/stride,W/stride)."""
    FOLDABLE = (("conv1", "bn1"), ("conv2", "bn2"))   # each conv feeds only its BN

    def __init__(self, cin: int, channels: int, stride: int, downsample: bool, name: Namer):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, channels, 3, stride, False)
        self.conv2, self.bn2 = _conv_bn(channels, channels, 3, 1, False)
        self.gluon: Dict[str, Dict[str, str]] = {}
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
            self.gluon[conv] = conv_keys(name("conv"), bias=False)
            self.gluon[bn] = bn_keys(name("batchnorm"))
        self.downsample = _shortcut(cin, channels, stride, name, self.gluon) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(residual + y)


class BottleneckV1(nn.Module):
    """1x1 (stride, bias) -> 3x3 -> 1x1 (bias), BN after each, ReLU between; plus shortcut.
    x: (N,cin,H,W) -> (N,channels,H/stride,W/stride)."""
    FOLDABLE = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, cin: int, channels: int, stride: int, downsample: bool, name: Namer):
        super().__init__()
        mid = channels // 4
        self.conv1, self.bn1 = _conv_bn(cin, mid, 1, stride, True)
        self.conv2, self.bn2 = _conv_bn(mid, mid, 3, 1, False)
        self.conv3, self.bn3 = _conv_bn(mid, channels, 1, 1, True)
        self.gluon: Dict[str, Dict[str, str]] = {}
        for conv, bn, bias in (("conv1", "bn1", True), ("conv2", "bn2", False),
                               ("conv3", "bn3", True)):
            self.gluon[conv] = conv_keys(name("conv"), bias=bias)
            self.gluon[bn] = bn_keys(name("batchnorm"))
        self.downsample = _shortcut(cin, channels, stride, name, self.gluon) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + residual)


def _shortcut(cin: int, channels: int, stride: int, name: Namer,
              gluon: Dict[str, Dict[str, str]]) -> nn.Sequential:
    """1x1/stride conv (no bias) + BN, named after the body layers (Gluon creates it last)."""
    gluon["downsample.0"] = conv_keys(name("conv"), bias=False)
    gluon["downsample.1"] = bn_keys(name("batchnorm"))
    return nn.Sequential(nn.Conv2d(cin, channels, 1, stride, bias=False),
                         GluonBatchNorm2d(channels))


class ResNetV1(Backbone):
    """Gluon ResNet-V1 up to the last requested feature.

    Args:
        depth: 18, 34, 50, 101 or 152.
        features: Gluon output names, e.g. ('stage3_activation5', 'stage4_activation2').
        prefix: Gluon name prefix of the base network.
    forward: x (N,3,H,W) -> [map per feature]; stage S output has stride 2**(S+1).
    """
    FOLDABLE = (("conv0", "bn0"),)   # the stem conv feeds only bn0

    def __init__(self, depth: int, features: Sequence[str], prefix: str = "resnetv10_"):
        super().__init__()
        if depth not in RESNET_SPEC:
            raise ValueError(f"resnet v1 depth must be one of {sorted(RESNET_SPEC)}, got {depth}")
        kind, blocks, channels = RESNET_SPEC[depth]
        block_cls = BasicBlockV1 if kind == "basic" else BottleneckV1
        taps = parse_features(features)
        for s, k in taps:
            if k >= blocks[s]:
                raise ValueError(f"resnet{depth}_v1 stage{s + 1} has {blocks[s]} activations, "
                                 f"feature index {k} is out of range")
        last_stage, last_block = taps[-1]
        self._taps = tuple(taps)
        top = make_namer(prefix)
        self.conv0 = nn.Conv2d(3, channels[0], 7, 2, 3, bias=False)
        self.register_gluon("conv0", conv_keys(top("conv"), bias=False))
        self.bn0 = GluonBatchNorm2d(channels[0])
        self.register_gluon("bn0", bn_keys(top("batchnorm")))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.stages = nn.ModuleList()
        cin = channels[0]
        for s in range(last_stage + 1):
            name = make_namer(f"{prefix}stage{s + 1}_")
            cout = channels[s + 1]
            n = blocks[s] if s < last_stage else last_block + 1
            stage = nn.Sequential()
            for b in range(n):
                stride = 2 if (s > 0 and b == 0) else 1
                block = block_cls(cin if b == 0 else cout, cout, stride,
                                  b == 0 and cin != cout, name)
                stage.append(block)
                for sub, names in block.gluon.items():
                    self.register_gluon(f"stages.{s}.{b}.{sub}", names)
            self.stages.append(stage)
            cin = cout
        self.out_channels = tuple(channels[s + 1] for s, _ in taps)

    def imagenet_key_map(self) -> Dict[str, str]:
        """{state_dict key: name in gluoncv's ImageNet ``resnet{depth}_v1`` .params written
        by ``save_parameters``} (``features.4.0.body.0.weight``; BN weight -> gamma)."""
        modules, out = dict(self.named_modules()), {}
        for key in self.gluon_key_map():
            parts = key.split(".")
            attr = parts[-1]
            is_bn = isinstance(modules[key.rsplit(".", 1)[0]], nn.BatchNorm2d)
            if parts[0] in ("conv0", "bn0"):
                path = ["features", "0" if parts[0] == "conv0" else "1"]
            else:  # stages.s.b.<layer>
                path = ["features", str(4 + int(parts[1])), parts[2]]
                path += (parts[3:5] if parts[3] == "downsample"
                         else ["body", str(_BODY_INDEX[parts[3]])])
            out[key] = ".".join(path + [BN_ATTRS[attr] if is_bn else attr])
        return out

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.pool(F.relu(self.bn0(self.conv0(x))))
        outputs = []
        for s, stage in enumerate(self.stages):
            for b, block in enumerate(stage):
                x = block(x)
                if (s, b) in self._taps:
                    outputs.append(x)
        return outputs


def resnet_v1(depth: int, features: Sequence[str] = ("stage3_activation5",
                                                      "stage4_activation2")) -> ResNetV1:
    """Gluon ``resnet{depth}_v1`` truncated at ``features`` (see ResNetV1)."""
    return ResNetV1(depth, features)
