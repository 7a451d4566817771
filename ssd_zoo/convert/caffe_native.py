"""weiliu89 Caffe VGG16 SSD300/SSD512 (deploy prototxt + caffemodel blobs) -> native
ssd_zoo weights for the ``ssd_*_vgg16_caffe_*`` models (models/caffe_ssd.py).

Mapping is by Caffe LAYER NAME, one-to-one, every blob consumed, shapes checked
(:func:`ssd_zoo.convert.rename.convert_by_rules`):

============================  ==============================================
Caffe layer (blobs 0/1)       ssd_zoo key (.weight / .bias)
============================  ==============================================
conv{b}_{j}, b = 1..5         backbone.stages.{b-1}.{2(j-1)}
fc6 / fc7                     backbone.stages.5.0 / backbone.stages.5.2
conv{6+i}_1 / conv{6+i}_2     backbone.extras.{i}.0 / backbone.extras.{i}.2
conv4_3_norm (blob 0)         backbone.norm4.scale
{src}_mbox_loc / _conf        box_predictors.{h} / class_predictors.{h}
============================  ==============================================

with src = conv4_3_norm, fc7, conv6_2, conv7_2, conv8_2, conv9_2 (, conv10_2) = head h.

Named tensor surgeries (logged):
* ``bgr_to_rgb``: conv1_1 weight input channels reversed, so the native model takes RGB
  (Caffe takes BGR - (104, 117, 123); the preset's mean is (123, 117, 104)/255, std 1/255).
* ``normalize_scale``: Normalize scale (512,) -> (1, 512, 1, 1).
* ``legacy_dims``: 1-D blobs stored with V1 (1, 1, 1, N) dims are flattened.
Not needed (checked equal): prior order (Caffe min, sqrt(min*max), r, 1/r ... = ours),
conf layout (per prior, C+1 scores with background 0, NHWC-flattened = ours), loc order
(dx, dy, dw, dh; CENTER_SIZE with the prior variances = our BoxCoder stds).

The prototxt is checked against the preset: PriorBox parameters, Normalize options,
input size, class count and fc6 dilation must match (ConversionError naming the layer and
field); DetectionOutput thresholds only warn (they are runtime options: get_model
overrides nms_thresh / nms_topk / post_nms / score_thresh).
"""
from __future__ import annotations

import logging
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..caffe.textformat import TextMessage, parse_prototxt
from ..models.caffe_ssd import HEAD_SOURCES, caffe_prior_params
from .gluon import ConversionError
from .rename import convert_by_rules, target_shapes_of

log = logging.getLogger(__name__)
CONVERTER_VERSION = "1"
VGG_BLOCKS = (2, 2, 3, 3, 3)


def caffe_layer_map(size: int) -> Dict[str, str]:
    """{Caffe layer name: ssd_zoo module prefix} for the weiliu89 SSD of ``size``."""
    out = {}
    for b, n in enumerate(VGG_BLOCKS, 1):
        for j in range(1, n + 1):
            out[f"conv{b}_{j}"] = f"backbone.stages.{b - 1}.{2 * (j - 1)}"
    out["fc6"], out["fc7"] = "backbone.stages.5.0", "backbone.stages.5.2"
    for i in range(len(HEAD_SOURCES[size]) - 2):
        out[f"conv{6 + i}_1"] = f"backbone.extras.{i}.0"
        out[f"conv{6 + i}_2"] = f"backbone.extras.{i}.2"
    for h, src in enumerate(HEAD_SOURCES[size]):
        out[f"{src}_mbox_loc"] = f"box_predictors.{h}"
        out[f"{src}_mbox_conf"] = f"class_predictors.{h}"
    return out


def _rules(size: int):
    rules = [(r"conv4_3_norm/0", lambda m: "backbone.norm4.scale")]
    for layer, prefix in caffe_layer_map(size).items():
        rules.append((re.escape(layer) + r"/([01])",
                      lambda m, p=prefix: f"{p}.{('weight', 'bias')[int(m[1])]}"))
    return rules


SURGERIES = {
    "backbone.stages.0.0.weight": ("bgr_to_rgb: conv1_1 input channels reversed",
                                   lambda t: t.flip(1)),
    "backbone.norm4.scale": ("normalize_scale: (C,) -> (1, C, 1, 1)",
                             lambda t: t.reshape(1, -1, 1, 1)),
}


def _layers(net: TextMessage) -> Dict[str, TextMessage]:
    specs = net.all("layer") or net.all("layers")
    return {str(s.get("name", "")): s for s in specs}


def _input_hw(net: TextMessage, layers) -> Optional[Tuple[int, int]]:
    dims = [m.nums("dim", int) for m in net.all("input_shape")] or \
        ([net.nums("input_dim", int)] if net.has("input_dim") else [])
    for spec in layers.values():
        if spec.get("type") == "Input":
            dims += [s.nums("dim", int) for s in spec.msg("input_param").all("shape")]
    return tuple(dims[0][2:4]) if dims and len(dims[0]) == 4 else None


def _prior_fields(p: TextMessage) -> dict:
    var = p.nums("variance") or [0.1]
    step = p.num("step", None) if p.has("step") else (
        p.num("step_h", None) if p.num("step_h", 0) == p.num("step_w", -1) else None)
    return dict(min_size=tuple(p.nums("min_size")), max_size=tuple(p.nums("max_size")),
                aspect_ratio=tuple(p.nums("aspect_ratio")), flip=p.flag("flip", True),
                clip=p.flag("clip", False), step=step, offset=p.num("offset", 0.5),
                variance=tuple(var * 4 if len(var) == 1 else var))


def _same(got, want) -> bool:
    if isinstance(want, tuple):
        return len(got) == len(want) and np.allclose(got, want, rtol=0, atol=1e-4)
    if isinstance(want, bool):
        return got == want
    return got is not None and abs(float(got) - float(want)) < 1e-4


def check_prototxt(net: TextMessage, preset, num_classes: int, source: str = "prototxt"
                   ) -> List[str]:
    """Raise ConversionError where ``net`` is not the weiliu89 SSD ``preset`` describes;
    return warnings (post-processing options that differ from the preset)."""
    layers = _layers(net)
    size = preset.base_size

    def need(name):
        if name not in layers:
            raise ConversionError(f"{source}: no layer '{name}' (a weiliu89 SSD{size} has one)")
        return layers[name]

    hw = _input_hw(net, layers)
    if hw is not None and hw != (size, size):
        raise ConversionError(f"{source}: field 'input_shape' is {hw[0]}x{hw[1]}, the "
                              f"preset's network input is {size}x{size}")
    for src, want in zip(HEAD_SOURCES[size], caffe_prior_params(preset)):
        name = f"{src}_mbox_priorbox"
        got = _prior_fields(need(name).msg("prior_box_param"))
        for key, val in want.items():
            g = got[key]
            if not _same(g, val):
                raise ConversionError(f"{source}: layer '{name}' field 'prior_box_param."
                                      f"{key}' is {g}, the preset needs {val}")
    norm = need("conv4_3_norm").msg("norm_param")
    for key, want in (("across_spatial", False), ("channel_shared", False)):
        if norm.flag(key, True) != want:
            raise ConversionError(f"{source}: layer 'conv4_3_norm' field 'norm_param.{key}' "
                                  f"must be {str(want).lower()}")
    if norm.num("eps", 1e-10) != 1e-10:
        raise ConversionError(f"{source}: layer 'conv4_3_norm' field 'norm_param.eps' must "
                              "be the default 1e-10")
    fc6 = need("fc6").msg("convolution_param")
    if fc6.num("dilation", 1, int) != 6 or fc6.num("pad", 0, int) != 6:
        raise ConversionError(f"{source}: layer 'fc6' field 'convolution_param.dilation'/"
                              "'pad' must be 6 (atrous fc6)")
    det = need("detection_out").msg("detection_output_param")
    if det.num("num_classes", None, int) != num_classes:
        raise ConversionError(f"{source}: layer 'detection_out' field 'num_classes' is "
                              f"{det.num('num_classes', None, int)}, expected {num_classes}")
    for key, want in (("share_location", True), ("variance_encoded_in_target", False)):
        if det.flag(key, key == "share_location") != want:
            raise ConversionError(f"{source}: layer 'detection_out' field '{key}' must be "
                                  f"{str(want).lower()}")
    if det.num("background_label_id", 0, int) != 0 or det.enum(
            "code_type", ["", "CORNER", "CENTER_SIZE", "CORNER_SIZE"], "CORNER") != "CENTER_SIZE":
        raise ConversionError(f"{source}: layer 'detection_out' needs background_label_id 0 "
                              "and code_type CENTER_SIZE")
    nms = det.msg("nms_param")
    warnings = []
    for field, got, want in (("nms_param.nms_threshold", nms.num("nms_threshold", 0.3),
                              preset.nms_thresh),
                             ("nms_param.top_k", nms.num("top_k", -1, int), preset.nms_topk),
                             ("keep_top_k", det.num("keep_top_k", -1, int), preset.post_nms),
                             ("confidence_threshold", det.num("confidence_threshold", 0.0),
                              preset.score_thresh)):
        if abs(float(got) - float(want)) > 1e-9:
            warnings.append(f"{source}: layer 'detection_out' field '{field}' is {got}; the "
                            f"native model uses {want} (override it in get_model)")
    for w in warnings:
        log.warning(w)
    return warnings


def _source_tensors(blobs: Mapping[str, Sequence], label: str) -> Dict[str, torch.Tensor]:
    out = {}
    for layer, arrays in blobs.items():
        for i, a in enumerate(arrays):
            t = torch.as_tensor(np.asarray(a, dtype=np.float32))
            if i == 1 or layer == "conv4_3_norm":  # biases / scale: 1-D in Caffe
                if t.dim() > 1 and sum(d != 1 for d in t.shape) <= 1:
                    log.info("surgery on %s/%d: legacy_dims %s -> (%d,)", layer, i,
                             tuple(t.shape), t.numel())
                    t = t.reshape(-1)
            out[f"{layer}/{i}"] = t
    return out


def infer_network(net: TextMessage) -> str:
    """The catalog name of the weiliu89 SSD a parsed deploy prototxt describes."""
    from ..zoo import CATALOG
    layers = _layers(net)
    size = 512 if "conv10_2" in layers else 300
    n_cls = layers.get("detection_out", TextMessage()).msg("detection_output_param").num(
        "num_classes", None, int)
    for name, entry in CATALOG.items():
        p = entry.preset
        if p.anchor != "caffe" or p.base_size != size or len(entry.classes) + 1 != n_cls:
            continue
        try:
            check_prototxt(net, p, n_cls)
        except ConversionError:
            continue
        return name
    raise ConversionError(f"prototxt matches no weiliu89 SSD in the catalog (size {size}, "
                          f"{n_cls} classes); pass the network name explicitly")


def convert_caffe_ssd(blobs: Mapping[str, Sequence], prototxt, network: Optional[str] = None,
                      classes: Optional[Sequence[str]] = None, label: str = "caffemodel"
                      ) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(caffemodel blobs {layer: [arrays]}, deploy prototxt text or parsed message) ->
    (ssd_zoo state_dict, key_map {'layer/blob_index': ssd_zoo key}).

    ``network``: catalog name (default: inferred from the prototxt).  ``classes``: names
    for a net fine-tuned on other classes (default: the entry's).
    """
    from ..models.builder import build_ssd
    from ..zoo import CATALOG
    net = parse_prototxt(prototxt) if isinstance(prototxt, str) else prototxt
    network = network or infer_network(net)
    if network not in CATALOG or CATALOG[network].preset.anchor != "caffe":
        names = sorted(n for n, e in CATALOG.items() if e.preset.anchor == "caffe")
        raise ConversionError(f"{network!r} is not a Caffe SSD network; choose one of {names}")
    preset = CATALOG[network].preset
    classes = tuple(classes or CATALOG[network].classes)
    check_prototxt(net, preset, len(classes) + 1)
    source = _source_tensors(blobs, label)
    shapes = target_shapes_of(lambda: build_ssd(preset, classes))
    return convert_by_rules(source, _rules(preset.base_size), shapes, SURGERIES, label=label)
