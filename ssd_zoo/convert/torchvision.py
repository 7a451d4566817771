"""torchvision ``ssd300_vgg16`` state_dict -> ssd_zoo ``ssd300_vgg16_torchvision_coco``.

Pure function of the source tensors; mapping by name (rename.py checks it one-to-one and
complete).  No tensor surgery is needed: every tensor keeps its shape and layout
(torchvision's head permutes (N, A*K, H, W) -> (N, HWA, K) exactly as ssd_zoo's SSD does;
``scale_weight`` (512,) is the L2 norm's weight as is).

===========================================  ===================================
torchvision                                  ssd_zoo
===========================================  ===================================
backbone.features.{i}        (conv1_1..4_3)   backbone.body.{i}
backbone.scale_weight                         backbone.norm.weight
backbone.extra.0.{1,3,5}     (conv5_x)        backbone.fc.{1,3,5}
backbone.extra.0.7.{1,3}     (fc6, fc7)       backbone.fc.{8,10}
backbone.extra.{k}.{j}       k=1..4           backbone.extras.{k-1}.{j}
head.classification_head.module_list.{i}      class_predictors.{i}
head.regression_head.module_list.{i}          box_predictors.{i}
===========================================  ===================================
"""
from __future__ import annotations

from typing import Dict, Mapping, Tuple

import torch

from .gluon import ConversionError
from .rename import convert_by_rules, strip_prefix, target_shapes_of

NAME = "ssd300_vgg16_torchvision_coco"
_P = r"\.(weight|bias)"
RULES = (
    (r"backbone\.features\.(\d+)" + _P, lambda m: f"backbone.body.{m[1]}.{m[2]}"),
    (r"backbone\.scale_weight", lambda m: "backbone.norm.weight"),
    (r"backbone\.extra\.0\.([135])" + _P, lambda m: f"backbone.fc.{m[1]}.{m[2]}"),
    (r"backbone\.extra\.0\.7\.([13])" + _P,
     lambda m: f"backbone.fc.{ {'1': 8, '3': 10}[m[1]] }.{m[2]}"),
    (r"backbone\.extra\.([1-4])\.([02])" + _P,
     lambda m: f"backbone.extras.{int(m[1]) - 1}.{m[2]}.{m[3]}"),
    (r"head\.classification_head\.module_list\.(\d+)" + _P,
     lambda m: f"class_predictors.{m[1]}.{m[2]}"),
    (r"head\.regression_head\.module_list\.(\d+)" + _P,
     lambda m: f"box_predictors.{m[1]}.{m[2]}"),
)


def num_classes_of(source: Mapping[str, torch.Tensor]) -> int:
    """Classes INCLUDING background (torchvision's ``num_classes``): head 0 has 4 anchors."""
    key = "head.classification_head.module_list.0.weight"
    if key not in source:
        raise ConversionError(f"not a torchvision ssd300_vgg16 state_dict: no {key!r}")
    rows = source[key].shape[0]
    if rows % 4:
        raise ConversionError(f"{key} has {rows} rows, not a multiple of 4 anchors")
    return rows // 4


def convert_torchvision_ssd300(source: Mapping[str, torch.Tensor], label: str = "checkpoint"
                               ) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(torchvision state_dict) -> (ssd_zoo state_dict, key_map {source: target})."""
    from ..models.ported import build_ported_ssd
    from ..zoo import CATALOG
    source, removed = strip_prefix(source, "module.")
    n = num_classes_of(source) - 1
    preset = CATALOG[NAME].preset
    shapes = target_shapes_of(lambda: build_ported_ssd(preset, [f"c{i}" for i in range(n)]))
    state, key_map = convert_by_rules(source, RULES, shapes, label=label)
    return state, {removed + k: v for k, v in key_map.items()}
