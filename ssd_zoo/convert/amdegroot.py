"""amdegroot/ssd.pytorch checkpoints -> ssd_zoo ``ssd300_vgg16_amdegroot_voc``.

Accepts the full SSD300 state_dicts (``ssd300_mAP_77.43_v2.pth``, ``ssd_300_VOC0712.pth``:
keys ``vgg.N``, ``L2Norm.weight``, ``extras.N``, ``loc.N``, ``conf.N``) and the base
network ``vgg16_reducedfc.pth`` (keys ``N.weight`` of ``ssd_net.vgg``; converts to the
``backbone.body/fc`` subset only).  A DataParallel ``module.`` prefix is stripped.
No tensor surgery: shapes and channel layouts coincide (conf/loc are permuted NHWC and
viewed (N, -1, C) exactly like ssd_zoo's heads).

=====================  ==================================================
ssd.pytorch            ssd_zoo
=====================  ==================================================
vgg.{i}, i < 23        backbone.body.{i}        (conv1_1 .. conv4_3)
vgg.{i}, 23 <= i < 35  backbone.fc.{i-23}       (conv5_x, fc6 = vgg.31, fc7 = vgg.33)
L2Norm.weight          backbone.norm.weight
extras.{k}             backbone.extras.{k//2}.{2*(k%2)}
loc.{i} / conf.{i}     box_predictors.{i} / class_predictors.{i}
=====================  ==================================================
"""
from __future__ import annotations

import re
from typing import Dict, Mapping, Tuple

import torch

from .gluon import ConversionError
from .rename import convert_by_rules, strip_prefix, target_shapes_of

NAME = "ssd300_vgg16_amdegroot_voc"
_P = r"\.(weight|bias)"


def _vgg(m) -> str:
    i = int(m[1])
    return f"backbone.body.{i}.{m[2]}" if i < 23 else f"backbone.fc.{i - 23}.{m[2]}"


RULES = (
    (r"vgg\.(\d+)" + _P, _vgg),
    (r"L2Norm\.weight", lambda m: "backbone.norm.weight"),
    (r"extras\.(\d+)" + _P, lambda m: f"backbone.extras.{int(m[1]) // 2}."
                                      f"{2 * (int(m[1]) % 2)}.{m[2]}"),
    (r"loc\.(\d+)" + _P, lambda m: f"box_predictors.{m[1]}.{m[2]}"),
    (r"conf\.(\d+)" + _P, lambda m: f"class_predictors.{m[1]}.{m[2]}"),
)


def is_base_only(source: Mapping[str, torch.Tensor]) -> bool:
    """True for ``vgg16_reducedfc.pth``-style files (``ssd_net.vgg`` keys '0.weight' ...)."""
    return bool(source) and all(re.fullmatch(r"\d+" + _P, k) for k in source)


def convert_amdegroot_ssd300(source: Mapping[str, torch.Tensor], label: str = "checkpoint"
                             ) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(ssd.pytorch state_dict) -> (ssd_zoo state_dict, key_map {source: target}).

    For a base-network file the result holds only ``backbone.body.*``/``backbone.fc.*``.
    """
    from ..models.ported import build_ported_ssd
    from ..zoo import CATALOG
    source, removed = strip_prefix(source, "module.")
    preset = CATALOG[NAME].preset
    if is_base_only(source):
        renamed = {f"vgg.{k}": v for k, v in source.items()}
        shapes = target_shapes_of(lambda: build_ported_ssd(preset, ["c"]), "backbone.")
        shapes = {k: s for k, s in shapes.items() if k.startswith(("backbone.body.",
                                                                  "backbone.fc."))}
        state, key_map = convert_by_rules(renamed, RULES, shapes, label=label)
        return state, {removed + k[len("vgg."):]: v for k, v in key_map.items()}
    key = "conf.0.weight"
    if key not in source:
        raise ConversionError(f"{label}: not an ssd.pytorch SSD300 state_dict (no {key!r}; "
                              f"first keys {list(source)[:3]})")
    rows = source[key].shape[0]
    if rows % 4:
        raise ConversionError(f"{label}: {key} has {rows} rows, not a multiple of 4 priors")
    n = rows // 4 - 1
    shapes = target_shapes_of(lambda: build_ported_ssd(preset, [f"c{i}" for i in range(n)]))
    state, key_map = convert_by_rules(source, RULES, shapes, label=label)
    return state, {removed + k: v for k, v in key_map.items()}
