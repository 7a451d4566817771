"""The original (weiliu89 Caffe) VGG16 SSD300/SSD512 as a native ssd_zoo :class:`SSD`.

Selected by ``preset.anchor == 'caffe'``; assembled from passed-in parts:

* backbone :class:`CaffeVGG16` -- Gluon's ``VGGAtrous`` layout (the same network: ceil
  pools, pool5 3x3/1, fc6 dilation 6, identical extras) with Caffe's ``Normalize`` eps
  (1e-10 inside the sqrt, per-channel scale) and no ``init_scale``: it takes
  mean-subtracted 0..255 pixels as they are;
* anchors :class:`ssd_zoo.anchors_caffe.CaffePriorAnchors` (``PriorBox``: min/max sizes,
  aspect ratios + flip, clip false, explicit steps, offset 0.5);
* decode :class:`ssd_zoo.box_coder.BoxCoder` with the PriorBox variances (CENTER_SIZE);
* post-processing :class:`ssd_zoo.postprocess_caffe.CaffeDetectionOutput`.

Input: RGB like every ssd_zoo model.  Caffe feeds BGR - (104, 117, 123); the converter
flips conv1_1's input channels (named surgery ``bgr_to_rgb``), so the native net takes
RGB - (123, 117, 104) in 0..255, i.e. preset mean = (123, 117, 104)/255, std = 1/255.

Preset conventions (as models/ported.py): ``sizes`` = the PriorBox min_sizes plus the
last max_size (each head's max_size = the next min_size), ``ratios`` = the upstream
per-head ``aspect_ratio`` lists (e.g. (2, 3)), ``steps`` = ``step``,
``box_stds`` = ``variance``, ``nms_topk`` = per-class ``top_k``, ``post_nms`` =
``keep_top_k``.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch

from ..anchors_caffe import CaffePriorAnchors
from ..box_coder import BoxCoder
from ..postprocess_caffe import CaffeDetectionOutput
from .backbones.vgg import VGGAtrous
from .ssd import SSD

#: Caffe names of the layers feeding the heads, per input size.
HEAD_SOURCES = {
    300: ("conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2", "conv9_2"),
    512: ("conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2", "conv9_2", "conv10_2"),
}
CAFFE_NORMALIZE_EPS = 1e-10


class CaffeVGG16(VGGAtrous):
    """weiliu89's VGG16 SSD extractor; ``forward(x)``: x (N,3,H,W) = RGB - mean, 0..255.

    State-dict keys are those of :class:`VGGAtrous` minus ``init_scale`` (here a
    non-persistent buffer of ones, so ``x * init_scale`` is the identity).
    """

    def __init__(self, size: int = 300):
        super().__init__(size)
        del self.init_scale
        self.register_buffer("init_scale", torch.ones(1, 3, 1, 1), persistent=False)
        self._gluon_names.pop("init_scale", None)
        self.norm4.eps = CAFFE_NORMALIZE_EPS


def caffe_prior_params(preset) -> List[Dict[str, object]]:
    """Per head, the weiliu89 ``prior_box_param`` values a 'caffe' preset stands for."""
    n = len(preset.steps)
    if not (len(preset.sizes) == n + 1 and len(preset.ratios) == n):
        raise ValueError(f"preset has {len(preset.sizes)} sizes, {len(preset.ratios)} ratio "
                         f"lists and {n} steps; need n+1, n, n")
    return [dict(min_size=(float(preset.sizes[i]),), max_size=(float(preset.sizes[i + 1]),),
                 aspect_ratio=tuple(float(r) for r in preset.ratios[i]), flip=True,
                 clip=False, step=float(preset.steps[i]), offset=0.5,
                 variance=tuple(float(v) for v in preset.box_stds))
            for i in range(n)]


def caffe_anchor_generators(preset) -> List[CaffePriorAnchors]:
    im_size = (preset.base_size, preset.base_size)
    return [CaffePriorAnchors(p["min_size"], p["max_size"], p["aspect_ratio"], p["flip"],
                              p["step"], p["offset"], p["clip"], im_size=im_size)
            for p in caffe_prior_params(preset)]


def build_caffe_ssd(preset, classes: Sequence[str]) -> SSD:
    """A freshly initialized weiliu89-convention SSD for ``preset`` (anchor='caffe')."""
    if preset.anchor != "caffe" or preset.base_size not in HEAD_SOURCES:
        raise ValueError(f"not a Caffe SSD preset (anchor {preset.anchor!r}, size "
                         f"{preset.base_size}); sizes {sorted(HEAD_SOURCES)}")
    backbone = CaffeVGG16(preset.base_size)
    anchors = caffe_anchor_generators(preset)
    post = CaffeDetectionOutput(preset.nms_thresh, preset.nms_topk, preset.post_nms,
                                preset.score_thresh)
    return SSD(backbone, anchors, classes, box_coder=BoxCoder(preset.box_stds),
               postprocessor=post, predictor_kernel=preset.predictor_kernel,
               predictor_pad=preset.predictor_pad)
