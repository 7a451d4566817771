"""ssd_zoo ``ssd_300_vgg16_atrous_*`` (Gluon-CV layout) state_dict -> torchvision
``ssd300_vgg16`` state_dict: the same network, so that torchvision can be timed and
compared on the same weights (benchmarks/speed.py, issue 8).

Pure function of the source tensors, mapped by name (rename.py checks it one-to-one and
complete).  Tensor surgery, each named:

* ``norm4.scale`` (1, 512, 1, 1) -> ``scale_weight`` (512,): a reshape;
* ``init_scale`` (1, 3, 1, 1) is consumed by a check, not copied: Gluon multiplies its
  normalized input by std*255, which turns it back into mean-subtracted 0..255 pixels,
  the input torchvision's transform feeds the backbone (``image_std = 1/255``).  Any other
  value cannot be expressed in torchvision's model and is refused.

===========================================  =====================================
ssd_zoo (Gluon layout)                       torchvision
===========================================  =====================================
backbone.stages.{0..3}.{j}   (conv1_1..4_3)  backbone.features.{(0,5,10,17)[s] + j}
backbone.stages.4.{0,2,4}    (conv5_x)       backbone.extra.0.{1,3,5}
backbone.stages.5.{0,2}      (fc6, fc7)      backbone.extra.0.7.{1,3}
backbone.norm4.scale                         backbone.scale_weight
backbone.extras.{k}.{j}                      backbone.extra.{k+1}.{j}
class_predictors.{i} / box_predictors.{i}    head.{classification,regression}_head
                                             .module_list.{i}
===========================================  =====================================
"""
from __future__ import annotations

from typing import Dict, Mapping, Tuple

import torch

from .gluon import ConversionError
from .rename import convert_by_rules, target_shapes_of

#: Gluon-CV's ImageNet std: ``init_scale`` = std * 255 (vgg_atrous.py)
GLUON_STD = (0.229, 0.224, 0.225)
_FEATURE_BASE = (0, 5, 10, 17)     # torchvision features index of each stage's first conv
_P = r"\.(weight|bias)"
RULES = (
    (r"backbone\.stages\.([0-3])\.(\d+)" + _P,
     lambda m: f"backbone.features.{_FEATURE_BASE[int(m[1])] + int(m[2])}.{m[3]}"),
    (r"backbone\.stages\.4\.([024])" + _P, lambda m: f"backbone.extra.0.{int(m[1]) + 1}.{m[2]}"),
    (r"backbone\.stages\.5\.([02])" + _P, lambda m: f"backbone.extra.0.7.{int(m[1]) + 1}.{m[2]}"),
    (r"backbone\.norm4\.scale", lambda m: "backbone.scale_weight"),
    (r"backbone\.extras\.(\d+)\.([02])" + _P,
     lambda m: f"backbone.extra.{int(m[1]) + 1}.{m[2]}.{m[3]}"),
    (r"class_predictors\.(\d+)" + _P,
     lambda m: f"head.classification_head.module_list.{m[1]}.{m[2]}"),
    (r"box_predictors\.(\d+)" + _P, lambda m: f"head.regression_head.module_list.{m[1]}.{m[2]}"),
)
SURGERIES = {"backbone.scale_weight": ("L2 norm scale (1,512,1,1) -> (512,)",
                                       lambda t: t.reshape(-1))}


def check_init_scale(init_scale: torch.Tensor) -> None:
    """Raise ConversionError unless ``init_scale`` is Gluon's std*255 (see module doc)."""
    want = torch.tensor(GLUON_STD, dtype=torch.float64) * 255
    got = init_scale.detach().double().reshape(-1)
    if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-5, atol=1e-4):
        raise ConversionError(f"backbone.init_scale is {got.tolist()}, not Gluon's std*255 "
                              f"{want.tolist()}: torchvision's transform cannot express it")


def gluon_vgg300_to_torchvision(source: Mapping[str, torch.Tensor], label: str = "state_dict"
                                ) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(ssd_zoo ssd_300_vgg16_atrous state_dict) -> (torchvision ssd300_vgg16 state_dict for
    ``num_classes`` = foreground classes + 1, key_map {source key: target key};
    ``backbone.init_scale`` maps to '' as it is checked, not copied)."""
    from torchvision.models.detection import ssd300_vgg16
    source = dict(source)
    if "backbone.init_scale" not in source or "class_predictors.0.weight" not in source:
        raise ConversionError(f"{label}: not an ssd_300_vgg16_atrous state_dict")
    check_init_scale(source.pop("backbone.init_scale"))
    rows = source["class_predictors.0.weight"].shape[0]
    if rows % 4:
        raise ConversionError(f"{label}: class_predictors.0 has {rows} rows, not 4 anchors")
    shapes = target_shapes_of(lambda: ssd300_vgg16(weights=None, weights_backbone=None,
                                                   num_classes=rows // 4))
    state, key_map = convert_by_rules(source, RULES, shapes, SURGERIES, label=label)
    key_map["backbone.init_scale"] = ""
    return state, key_map
