"""Build an SSD from a catalog preset: the only place presets turn into modules."""
from __future__ import annotations

from typing import Sequence

from ..anchors import LiteAnchorGenerator, SSDAnchorGenerator
from ..box_coder import BoxCoder
from ..postprocess import GluonPostProcessor
from ..zoo import SSDPreset
from .ssd import SSD


def build_anchor_generators(preset: SSDPreset):
    sizes = list(zip(preset.sizes[:-1], preset.sizes[1:]))
    if not (len(sizes) == len(preset.ratios) == len(preset.steps)):
        raise ValueError(f"preset has {len(sizes)} size pairs, {len(preset.ratios)} ratio "
                         f"lists and {len(preset.steps)} steps; they must agree")
    im_size = (preset.base_size, preset.base_size)
    if preset.anchor == "lite":
        return [LiteAnchorGenerator(i, s, r, st, im_size=im_size)
                for i, (s, r, st) in enumerate(zip(sizes, preset.ratios, preset.steps))]
    if preset.anchor != "ssd":
        raise ValueError(f"unknown anchor layout {preset.anchor!r}")
    return [SSDAnchorGenerator(s, r, st, im_size=im_size)
            for s, r, st in zip(sizes, preset.ratios, preset.steps)]


def build_backbone_for(preset: SSDPreset):
    from .backbones.factory import build_backbone
    if preset.filters is None:  # a complete extractor with its own extra layers
        return build_backbone(preset.backbone, **dict(preset.backbone_args))
    return build_backbone(preset.backbone, features=preset.features,
                          num_filters=preset.filters, reduce_ratio=preset.reduce_ratio,
                          min_depth=preset.min_depth, **dict(preset.backbone_args))


def build_ssd(preset: SSDPreset, classes: Sequence[str]) -> SSD:
    """An SSD with freshly initialized weights for ``preset`` and ``classes``."""
    if not classes:
        raise ValueError("an SSD needs at least one class name")
    if preset.anchor in ("torchvision", "amdegroot"):  # ported upstream conventions
        from .ported import build_ported_ssd
        return build_ported_ssd(preset, classes)
    if preset.anchor == "caffe":  # original weiliu89 Caffe SSD conventions
        from .caffe_ssd import build_caffe_ssd
        return build_caffe_ssd(preset, classes)
    return SSD(build_backbone_for(preset), build_anchor_generators(preset), classes,
               box_coder=BoxCoder(preset.box_stds),
               postprocessor=GluonPostProcessor(preset.nms_thresh, preset.nms_topk,
                                                preset.post_nms, preset.score_thresh),
               predictor_kernel=preset.predictor_kernel, predictor_pad=preset.predictor_pad)
