"""``build_backbone(name, **kw)``: one table of SSD feature extractors keyed by Gluon-CV name.

Two kinds of entries:
  * bases wrapped in Gluon's FeatureExpander (resnet*_v1/_v2, mobilenet*): keyword
    arguments ``features`` (Gluon output names; default = the SSD presets' choice),
    ``num_filters`` (required), ``use_1x1_transition``, ``use_bn``, ``reduce_ratio``,
    ``min_depth``, ``global_pool`` (as ``gluoncv.nn.feature.FeatureExpander``);
  * complete extractors (``vgg16_atrous``: ``size``; ``resnet34_v1b``: ``add_filters``,
    ``reduce_ratio``, ``min_depth``).
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Dict, Optional, Sequence, Tuple

from .base import Backbone
from .expander import FeatureExpander
from .mobilenet import mobilenet
from .resnet_v1 import resnet_v1
from .resnet_v1b import resnet34_v1b_ssd
from .resnet_v2 import resnet_v2
from .vgg import VGGAtrous

# name -> (base constructor taking features=..., default features of gluoncv's SSDs)
EXPANDED_BASES: Dict[str, Tuple[Callable[..., Backbone], Tuple[str, ...]]] = {
    "resnet18_v1": (partial(resnet_v1, 18), ("stage3_activation1", "stage4_activation1")),
    "resnet50_v1": (partial(resnet_v1, 50), ("stage3_activation5", "stage4_activation2")),
    "resnet101_v2": (partial(resnet_v2, 101), ("stage3_activation22", "stage4_activation2")),
    "resnet152_v2": (partial(resnet_v2, 152),
                     ("stage2_activation7", "stage3_activation35", "stage4_activation2")),
    "mobilenet1.0": (partial(mobilenet, 1.0), ("relu22_fwd", "relu26_fwd")),
    "mobilenet0.25": (partial(mobilenet, 0.25), ("relu22_fwd", "relu26_fwd")),
}

# name -> constructor of a complete multi-scale extractor
COMPLETE: Dict[str, Callable[..., Backbone]] = {
    "vgg16_atrous": VGGAtrous,
    "resnet34_v1b": resnet34_v1b_ssd,
}


def list_backbones() -> Tuple[str, ...]:
    return tuple(sorted(set(EXPANDED_BASES) | set(COMPLETE)))


def build_backbone(name: str, *, features: Optional[Sequence[str]] = None,
                   num_filters: Optional[Sequence[int]] = None, **kw) -> Backbone:
    """Build the SSD feature extractor ``name`` (a Gluon-CV base network name).

    Returns a Backbone whose ``forward(x)`` gives every map the SSD heads consume and whose
    ``gluon_key_map()`` names the tensors as in a Gluon-CV SSD ``.params``.
    Raises ValueError for an unknown name or arguments the entry does not take.
    """
    if name in COMPLETE:
        if features is not None or num_filters is not None:
            raise ValueError(f"backbone {name!r} is a complete extractor: it takes no "
                             "features/num_filters")
        return COMPLETE[name](**kw)
    if name not in EXPANDED_BASES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(list_backbones())}")
    if num_filters is None:
        raise ValueError(f"backbone {name!r} needs num_filters (channels of the extra stages)")
    make_base, default_features = EXPANDED_BASES[name]
    base = make_base(features=tuple(features) if features is not None else default_features)
    return FeatureExpander(base, num_filters, **kw)
