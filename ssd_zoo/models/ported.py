"""SSDs ported from the PyTorch ecosystem, assembled from their own parts.

``preset.anchor`` names the upstream convention, which brings its backbone, anchors, box
decoding and post-processing (all passed into the same :class:`SSD`):

=============  =====================  ==============================  ====================
anchor         backbone               anchors                         decode / postprocess
=============  =====================  ==============================  ====================
'torchvision'  vgg16_torchvision      TorchvisionAnchorGenerator      TorchvisionBoxCoder /
               (F.normalize L2 norm)  (relative, w/h clipped)         per-class top-400,
                                                                      clip, batched_nms, 200
'amdegroot'    vgg16_amdegroot        SSDAnchorGenerator, clip=True   BoxCoder (0.1, 0.2) /
               (eps-1e-10 L2 norm)    (= ssd.pytorch PriorBox)        per-class top-200 NMS,
                                                                      all kept, class-major
=============  =====================  ==============================  ====================

For both, ``preset.ratios`` holds the UPSTREAM per-head aspect-ratio lists (e.g. (2, 3),
each ratio giving a (r, 1/r) pair) and ``preset.sizes`` the box sizes in pixels
(torchvision's relative ``scales`` x base_size; ssd.pytorch's min_sizes + last max_size).

Input normalization is explicit in the preset (mean/std on 0..1 RGB, as everywhere in
ssd_zoo): both upstreams feed mean-subtracted 0..255 RGB, i.e. std = 1/255 and mean =
torchvision's (0.48235, 0.45882, 0.40784) / ssd.pytorch's (123, 117, 104)/255 (it
subtracts (104, 117, 123) from the BGR image, then flips it to RGB).
"""
from __future__ import annotations

from typing import Sequence

from ..anchors import SSDAnchorGenerator
from ..anchors_torchvision import TorchvisionAnchorGenerator
from ..box_coder import BoxCoder
from ..box_coder_torchvision import TorchvisionBoxCoder
from ..postprocess_perclass import PerClassPostProcessor
from .backbones.vgg_torch import vgg16_amdegroot, vgg16_torchvision
from .ssd import SSD

PORTED_ANCHORS = ("torchvision", "amdegroot")
PORTED_BACKBONES = {"vgg16_torchvision": vgg16_torchvision, "vgg16_amdegroot": vgg16_amdegroot}


def _check(preset) -> None:
    if preset.anchor not in PORTED_ANCHORS:
        raise ValueError(f"unknown ported convention {preset.anchor!r}; known {PORTED_ANCHORS}")
    if preset.backbone not in PORTED_BACKBONES:
        raise ValueError(f"backbone {preset.backbone!r} is not a ported backbone "
                         f"({', '.join(PORTED_BACKBONES)})")
    n = len(preset.steps)
    if not (len(preset.sizes) == n + 1 and len(preset.ratios) == n):
        raise ValueError(f"preset has {len(preset.sizes)} sizes, {len(preset.ratios)} ratio "
                         f"lists and {n} steps; need n+1, n, n")


def ported_anchor_generators(preset):
    """One anchor generator per head for a 'torchvision' or 'amdegroot' preset."""
    _check(preset)
    base = float(preset.base_size)
    im_size = (preset.base_size, preset.base_size)
    pairs = list(zip(preset.sizes[:-1], preset.sizes[1:]))
    if preset.anchor == "torchvision":
        return [TorchvisionAnchorGenerator((s0 / base, s1 / base), r, st, im_size=im_size)
                for (s0, s1), r, st in zip(pairs, preset.ratios, preset.steps)]
    gens = []
    for (s0, s1), ratios, st in zip(pairs, preset.ratios, preset.steps):
        gluon_ratios = [1.0]
        for r in ratios:  # ssd.pytorch order: r then 1/r
            gluon_ratios += [float(r), 1.0 / float(r)]
        gens.append(SSDAnchorGenerator((s0, s1), gluon_ratios, st, clip=True, im_size=im_size))
    return gens


def build_ported_ssd(preset, classes: Sequence[str]) -> SSD:
    """A freshly initialized SSD following ``preset.anchor``'s upstream conventions."""
    _check(preset)
    backbone = PORTED_BACKBONES[preset.backbone]()
    im_size = (preset.base_size, preset.base_size)
    if preset.anchor == "torchvision":
        coder = TorchvisionBoxCoder(tuple(1.0 / s for s in preset.box_stds))
        post = PerClassPostProcessor(preset.nms_thresh, preset.nms_topk, preset.post_nms,
                                     preset.score_thresh, clip_size=im_size, order="score",
                                     batched=True)
    else:
        coder = BoxCoder(preset.box_stds)
        post = PerClassPostProcessor(preset.nms_thresh, preset.nms_topk, preset.post_nms,
                                     preset.score_thresh, clip_size=None,
                                     order="score" if preset.post_nms else "class",
                                     batched=False)
    return SSD(backbone, ported_anchor_generators(preset), classes, box_coder=coder,
               postprocessor=post, predictor_kernel=preset.predictor_kernel,
               predictor_pad=preset.predictor_pad)
