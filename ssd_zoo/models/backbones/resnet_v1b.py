"""Gluon-CV's ``resnet34_v1b`` SSD extractor (gluoncv/model_zoo/ssd/resnet_v1b_ssd.py).

A HybridBlock (not a SymbolBlock), so the module tree mirrors Gluon's to keep structural
names one-to-one (``features.stage1.4.0.conv1.weight``, BN weight/bias <-> gamma/beta):

    stage1 = [conv1 7x7/2, bn1, relu, maxpool 3x3/2 pad 1, layer1, layer2]   -> stride 8
    stage2 = [layer3 (its first block's conv1 and shortcut forced to stride 1), layer4]
                                                                             -> stride 16
    more_stages[i] = [1x1 conv (bias), relu, 3x3/2 conv (bias, pad 1; pad 0 for the last),
                      relu]

``BasicBlockV1b``: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), convs without bias,
BN eps 1e-5.  Returns 6 maps: for a 300x300 input 38, 19, 10, 5, 3, 1 pixels wide with
128, 512, 256, 256, 128, 128 channels.
Prefixed names: ``resnetv1b_conv0``, ``resnetv1b_layers{L}_conv{k}`` (k counted over the
layer), ``resnetv1b_down{L}_conv0``, and ``resnetv1bssd0_conv{k}`` for the extra stages.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import GluonBatchNorm2d, bn_keys, conv_keys
from .base import Backbone
from .resnet_v1 import make_namer

BN_ATTRS = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean",
            "running_var": "running_var"}


class BasicBlockV1b(nn.Module):
    """x (N,cin,H,W) -> (N,planes,H/stride,W/stride)."""
    FOLDABLE = (("conv1", "bn1"), ("conv2", "bn2"))   # each conv feeds only its BN

    def __init__(self, cin: int, planes: int, stride: int, downsample: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = GluonBatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = GluonBatchNorm2d(planes)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                         GluonBatchNorm2d(planes)) if downsample else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


class ResNetV1bSSD(Backbone):
    """Complete resnet34_v1b SSD extractor: forward x (N,3,H,W) -> 2 + len(add_filters) maps.

    Args:
        blocks: BasicBlockV1b per layer (resnet34: 3, 4, 6, 3).
        add_filters: output channels of the extra stages.
        reduce_ratio, min_depth: transition 1x1 conv width = max(min_depth,
            round(f * reduce_ratio)).
    """

    def __init__(self, blocks: Sequence[int] = (3, 4, 6, 3),
                 add_filters: Sequence[int] = (256, 256, 128, 128),
                 reduce_ratio: float = 1.0, min_depth: int = 128, prefix: str = "resnetv1b_"):
        super().__init__()
        prefixed: Dict[str, Dict[str, str]] = {}
        top = make_namer(prefix)
        layers, cin = [], 64
        for i, (n, planes) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stride = 1 if i in (0, 2) else 2  # layer3's stride is forced to 1 by the SSD
            name, down = make_namer(f"{prefix}layers{i + 1}_"), make_namer(f"{prefix}down{i + 1}_")
            layer = nn.Sequential()
            for b in range(n):
                has_down = b == 0 and (stride != 1 or cin != planes)
                layer.append(BasicBlockV1b(cin, planes, stride if b == 0 else 1, has_down))
                prefixed[f"{len(layers)}.{b}.conv1"] = conv_keys(name("conv"), bias=False)
                prefixed[f"{len(layers)}.{b}.bn1"] = bn_keys(name("batchnorm"))
                prefixed[f"{len(layers)}.{b}.conv2"] = conv_keys(name("conv"), bias=False)
                prefixed[f"{len(layers)}.{b}.bn2"] = bn_keys(name("batchnorm"))
                if has_down:
                    prefixed[f"{len(layers)}.{b}.downsample.0"] = conv_keys(down("conv"), False)
                    prefixed[f"{len(layers)}.{b}.downsample.1"] = bn_keys(down("batchnorm"))
                cin = planes
            layers.append(layer)
        self.stage1 = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), GluonBatchNorm2d(64),
                                    nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1),
                                    layers[0], layers[1])
        self.stage2 = nn.Sequential(layers[2], layers[3])
        where = {0: "stage1.4", 1: "stage1.5", 2: "stage2.0", 3: "stage2.1"}
        names = {"stage1.0": conv_keys(top("conv"), bias=False),
                 "stage1.1": bn_keys(top("batchnorm"))}
        for path, keys in prefixed.items():
            layer, rest = path.split(".", 1)
            names[f"{where[int(layer)]}.{rest}"] = keys
        extra = make_namer(f"{prefix[:-1]}ssd0_")
        self.more_stages = nn.ModuleList()
        outs = [128, 512]
        for i, f in enumerate(add_filters):
            trans = max(min_depth, int(round(f * reduce_ratio)))
            pad = 0 if i == len(add_filters) - 1 else 1
            self.more_stages.append(nn.Sequential(
                nn.Conv2d(cin, trans, 1), nn.ReLU(inplace=True),
                nn.Conv2d(trans, f, 3, 2, pad), nn.ReLU(inplace=True)))
            names[f"more_stages.{i}.0"] = conv_keys(extra("conv"))
            names[f"more_stages.{i}.2"] = conv_keys(extra("conv"))
            cin = f
            outs.append(f)
        self.out_channels = tuple(outs)
        modules = dict(self.named_modules())
        for path, keys in names.items():
            is_bn = isinstance(modules[path], nn.BatchNorm2d)
            for attr, flat in keys.items():
                structural = f"features.{path}.{BN_ATTRS[attr] if is_bn else attr}"
                self.register_alias(f"{path}.{attr}", structural, flat)

    def imagenet_key_map(self) -> Dict[str, str]:
        """{state_dict key: name in gluoncv's ImageNet ``resnet34_v1b`` .params written by
        ``save_parameters``} for the base layers (``layer1.0.conv1.weight``); the extra
        stages have no ImageNet counterpart and are left out."""
        where = {"stage1.0": "conv1", "stage1.1": "bn1", "stage1.4": "layer1",
                 "stage1.5": "layer2", "stage2.0": "layer3", "stage2.1": "layer4"}
        out = {}
        for key, names in self.gluon_key_map().items():
            if key.startswith("more_stages"):
                continue
            stage, idx, rest = key.split(".", 2)
            structural = names[0][len("features."):]
            out[key] = where[f"{stage}.{idx}"] + structural[len(f"{stage}.{idx}"):]
        return out

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        y = self.stage1(x)
        outputs = [y]
        y = self.stage2(y)
        outputs.append(y)
        for stage in self.more_stages:
            y = stage(y)
            outputs.append(y)
        return outputs


def resnet34_v1b_ssd(add_filters: Sequence[int] = (256, 256, 128, 128),
                     reduce_ratio: float = 1.0, min_depth: int = 128) -> ResNetV1bSSD:
    """gluoncv ``resnet34_v1b_ssd``: the complete SSD extractor (6 maps)."""
    return ResNetV1bSSD((3, 4, 6, 3), add_filters, reduce_ratio, min_depth)
