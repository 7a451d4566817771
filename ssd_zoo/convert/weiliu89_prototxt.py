"""Write the deploy prototxt of a weiliu89 VGG16 SSD300/SSD512 from a 'caffe' preset.

Mirrors the structure ``examples/ssd/ssd_pascal.py`` (VGGNetBody + AddExtraLayers +
CreateMultiBoxHead) writes to ``deploy.prototxt``: layer names ``conv1_1`` .. ``conv5_3``,
``pool1`` .. ``pool5`` (pool5 3x3/1 pad 1), ``fc6`` (3x3, dilation 6) and ``fc7`` (1x1),
``conv6_1`` .. ``conv9_2`` (+ ``conv10_*`` for 512), ``conv4_3_norm`` (Normalize,
across_spatial false, channel_shared false), per head ``{src}_mbox_loc`` / ``_conf``
(3x3 pad 1) + ``_perm`` + ``_flat`` + ``{src}_mbox_priorbox``, the ``mbox_loc`` /
``mbox_conf`` / ``mbox_priorbox`` concats, ``mbox_conf_reshape`` / ``_softmax`` /
``_flatten`` and ``detection_out``.  Used by the tests (random-weight caffemodels with
the real structure) and to export a native model back to Caffe's layout.
"""
from __future__ import annotations

from typing import List

from ..models.caffe_ssd import HEAD_SOURCES, caffe_prior_params

_PARAMS = "param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }"
# (name, channels, kernel, stride, pad) of the extra layers, per size
EXTRAS = {
    300: [("conv6_1", 256, 1, 1, 0), ("conv6_2", 512, 3, 2, 1), ("conv7_1", 128, 1, 1, 0),
          ("conv7_2", 256, 3, 2, 1), ("conv8_1", 128, 1, 1, 0), ("conv8_2", 256, 3, 1, 0),
          ("conv9_1", 128, 1, 1, 0), ("conv9_2", 256, 3, 1, 0)],
    512: [("conv6_1", 256, 1, 1, 0), ("conv6_2", 512, 3, 2, 1), ("conv7_1", 128, 1, 1, 0),
          ("conv7_2", 256, 3, 2, 1), ("conv8_1", 128, 1, 1, 0), ("conv8_2", 256, 3, 2, 1),
          ("conv9_1", 128, 1, 1, 0), ("conv9_2", 256, 3, 2, 1), ("conv10_1", 128, 1, 1, 0),
          ("conv10_2", 256, 4, 1, 1)],
}


def _conv(name, bottom, n, k, stride=1, pad=0, dilation=1) -> str:
    extra = f" dilation: {dilation}" if dilation != 1 else ""
    st = f" stride: {stride}" if stride != 1 else ""
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'{_PARAMS} convolution_param {{ num_output: {n} pad: {pad} kernel_size: {k}'
            f'{st}{extra} weight_filler {{ type: "xavier" }} '
            f'bias_filler {{ type: "constant" value: 0 }} }} }}\n')


def _relu(name, blob) -> str:
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "{blob}" top: "{blob}" }}\n'


def _fmt(v: float) -> str:
    return f"{v:g}"


def weiliu89_deploy_prototxt(preset, num_classes: int, name: str = "VGG_SSD") -> str:
    """Deploy prototxt text of the weiliu89 SSD ``preset`` stands for (num_classes
    including background)."""
    size = preset.base_size
    out: List[str] = [f'name: "{name}_deploy"\ninput: "data"\n'
                      f"input_shape {{ dim: 1 dim: 3 dim: {size} dim: {size} }}\n"]
    bottom = "data"
    for block, (n_conv, ch) in enumerate(zip((2, 2, 3, 3, 3), (64, 128, 256, 512, 512)), 1):
        for j in range(1, n_conv + 1):
            conv = f"conv{block}_{j}"
            out += [_conv(conv, bottom, ch, 3, pad=1), _relu(f"relu{block}_{j}", conv)]
            bottom = conv
        pool = f"pool{block}"
        kp = "kernel_size: 3 stride: 1 pad: 1" if block == 5 else "kernel_size: 2 stride: 2"
        out.append(f'layer {{ name: "{pool}" type: "Pooling" bottom: "{bottom}" '
                   f'top: "{pool}" pooling_param {{ pool: MAX {kp} }} }}\n')
        bottom = pool
    out += [_conv("fc6", "pool5", 1024, 3, pad=6, dilation=6), _relu("relu6", "fc6"),
            _conv("fc7", "fc6", 1024, 1), _relu("relu7", "fc7")]
    bottom = "fc7"
    for lname, ch, k, s, p in EXTRAS[size]:
        out += [_conv(lname, bottom, ch, k, s, p), _relu(f"{lname}_relu", lname)]
        bottom = lname
    out.append('layer { name: "conv4_3_norm" type: "Normalize" bottom: "conv4_3" '
               'top: "conv4_3_norm" norm_param { across_spatial: false scale_filler { '
               'type: "constant" value: 20 } channel_shared: false } }\n')
    heads = caffe_prior_params(preset)
    for src, p in zip(HEAD_SOURCES[size], heads):
        k = len(p["min_size"]) * (1 + len(p["aspect_ratio"]) * (2 if p["flip"] else 1)) \
            + len(p["max_size"])
        for kind, n in (("loc", 4 * k), ("conf", num_classes * k)):
            t = f"{src}_mbox_{kind}"
            out += [_conv(t, src, n, 3, pad=1),
                    f'layer {{ name: "{t}_perm" type: "Permute" bottom: "{t}" top: "{t}_perm" '
                    "permute_param { order: 0 order: 2 order: 3 order: 1 } }\n",
                    f'layer {{ name: "{t}_flat" type: "Flatten" bottom: "{t}_perm" '
                    f'top: "{t}_flat" flatten_param {{ axis: 1 }} }}\n']
        fields = [f"min_size: {_fmt(v)}" for v in p["min_size"]]
        fields += [f"max_size: {_fmt(v)}" for v in p["max_size"]]
        fields += [f"aspect_ratio: {_fmt(v)}" for v in p["aspect_ratio"]]
        fields += [f"flip: {str(p['flip']).lower()}", f"clip: {str(p['clip']).lower()}"]
        fields += [f"variance: {_fmt(v)}" for v in p["variance"]]
        fields += [f"step: {_fmt(p['step'])}", f"offset: {_fmt(p['offset'])}"]
        out.append(f'layer {{ name: "{src}_mbox_priorbox" type: "PriorBox" bottom: "{src}" '
                   f'bottom: "data" top: "{src}_mbox_priorbox" prior_box_param {{ '
                   f'{" ".join(fields)} }} }}\n')
    for kind, axis in (("loc", 1), ("conf", 1), ("priorbox", 2)):
        suffix = "" if kind == "priorbox" else "_flat"
        bots = " ".join(f'bottom: "{s}_mbox_{kind}{suffix}"' for s in HEAD_SOURCES[size])
        out.append(f'layer {{ name: "mbox_{kind}" type: "Concat" {bots} top: "mbox_{kind}" '
                   f"concat_param {{ axis: {axis} }} }}\n")
    out.append(
        'layer { name: "mbox_conf_reshape" type: "Reshape" bottom: "mbox_conf" '
        f'top: "mbox_conf_reshape" reshape_param {{ shape {{ dim: 0 dim: -1 '
        f'dim: {num_classes} }} }} }}\n'
        'layer { name: "mbox_conf_softmax" type: "Softmax" bottom: "mbox_conf_reshape" '
        'top: "mbox_conf_softmax" softmax_param { axis: 2 } }\n'
        'layer { name: "mbox_conf_flatten" type: "Flatten" bottom: "mbox_conf_softmax" '
        'top: "mbox_conf_flatten" flatten_param { axis: 1 } }\n'
        'layer { name: "detection_out" type: "DetectionOutput" bottom: "mbox_loc" '
        'bottom: "mbox_conf_flatten" bottom: "mbox_priorbox" top: "detection_out" '
        f"include {{ phase: TEST }} detection_output_param {{ num_classes: {num_classes} "
        "share_location: true background_label_id: 0 nms_param { nms_threshold: "
        f"{_fmt(preset.nms_thresh)} top_k: {preset.nms_topk} }} code_type: CENTER_SIZE "
        f"keep_top_k: {preset.post_nms} confidence_threshold: {_fmt(preset.score_thresh)} "
        "} }\n")
    return "".join(out)
