"""Helpers for the Caffe tests (no tests here): a small random-weight SSD prototxt
builder, an OpenCV runner and the detection comparison used by every parity test."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch

from ssd_zoo.caffe import parse_prototxt, write_caffemodel

cv2 = pytest.importorskip("cv2")
SCORE_TOL, COORD_TOL = 1e-5, 1e-4


@contextlib.contextmanager
def one_thread():
    """Run torch single-threaded (restored after): on 2 shared cores, torch's spinning
    thread pool is 10x slower than one thread once anything else runs."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(old)


def run_torch(net, x, outputs=None):
    """``net`` forward on numpy ``x`` -> numpy (or list of numpy for ``outputs``)."""
    with one_thread():
        out = net(torch.from_numpy(np.ascontiguousarray(x)), outputs=outputs)
    return out.numpy() if torch.is_tensor(out) else [o.numpy() for o in out]


def opencv_forward(prototxt, caffemodel, blob, outputs=None):
    """Run OpenCV dnn (the reference runtime) on ``blob``; single-threaded so it does not
    fight torch for the cores."""
    cv2.setNumThreads(1)
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.setInput(np.ascontiguousarray(blob, dtype=np.float32))
    if outputs is None:
        return net.forward()
    return [net.forward(n) for n in outputs]


def compare_detections(ours, ref):
    """Assert identical detections: same shape, and row by row equal image id and label,
    score within SCORE_TOL, coordinates within COORD_TOL.  Rows whose scores tie (within
    SCORE_TOL) may come in either order (OpenCV sorts them with an unstable std::sort).
    Returns (worst score diff, worst coordinate diff)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    ours, ref = ours.reshape(-1, 7), ref.reshape(-1, 7)
    used = np.zeros(len(ref), bool)
    worst_s = worst_c = 0.0
    for i, row in enumerate(ours):
        ok = (~used & (ref[:, 0] == row[0]) & (ref[:, 1] == row[1])
              & (np.abs(ref[:, 2] - row[2]) <= SCORE_TOL)
              & (np.abs(ref[:, 3:] - row[3:]).max(1) <= COORD_TOL))
        cand = np.nonzero(ok)[0]
        assert cand.size, (f"row {i} {row.tolist()} has no match in the reference; "
                           f"reference row {i}: {ref[i].tolist()}")
        j = cand[np.argmin(np.abs(cand - i))]
        lo, hi = min(i, j), max(i, j) + 1  # only reordered among tied scores
        assert np.abs(ref[lo:hi, 2] - row[2]).max() <= SCORE_TOL
        used[j] = True
        worst_s = max(worst_s, float(abs(ref[j, 2] - row[2])))
        worst_c = max(worst_c, float(np.abs(ref[j, 3:] - row[3:]).max()))
    return worst_s, worst_c


def head(feature, k, n_loc, n_cls, tag, prior_params):
    """Loc/conf 3x3 convs + permute + flatten + PriorBox on blob ``feature``."""
    out = []
    for kind, n in (("loc", k * 4 * n_loc), ("conf", k * n_cls)):
        out.append(f"""
layer {{ name: "{tag}_{kind}" type: "Convolution" bottom: "{feature}" top: "{tag}_{kind}"
  convolution_param {{ num_output: {n} kernel_size: 3 pad: 1 }} }}
layer {{ name: "{tag}_{kind}_perm" type: "Permute" bottom: "{tag}_{kind}"
  top: "{tag}_{kind}_perm" permute_param {{ order: 0 order: 2 order: 3 order: 1 }} }}
layer {{ name: "{tag}_{kind}_flat" type: "Flatten" bottom: "{tag}_{kind}_perm"
  top: "{tag}_{kind}_flat" flatten_param {{ axis: 1 }} }}""")
    out.append(f"""
layer {{ name: "{tag}_prior" type: "PriorBox" bottom: "{feature}" bottom: "data"
  top: "{tag}_prior" prior_box_param {{ {prior_params} }} }}""")
    return "".join(out)


def n_priors(params: str) -> int:
    """Priors per cell implied by a prior_box_param text (mirrors the layer's rule)."""
    toks = params.replace("{", " ").replace("}", " ").split()
    vals = {}
    for key, val in zip(toks[::2], toks[1::2]):
        vals.setdefault(key.rstrip(":"), []).append(val)
    flip = vals.get("flip", ["true"])[-1] == "true"
    ratios = []
    for ar in map(float, vals.get("aspect_ratio", [])):
        if abs(ar - 1) > 1e-6 and all(abs(ar - r) > 1e-6 for r in ratios):
            ratios += [ar, 1 / ar] if flip else [ar]
    n_min = len(vals["min_size"])
    return n_min * (1 + len(ratios)) + len(vals.get("max_size", []))


def ssd_prototxt(h, w, priors=("min_size: 16 variance: 0.1 clip: false",) * 2, n_cls=3,
                 det="", share_location=True, slice_priors=False, batch=1, background=0):
    """A 2-scale SSD: conv/2 + ReLU -> Normalize -> f1 ; conv/2 -> f2; heads; DetOut."""
    n_loc = 1 if share_location else n_cls
    text = f"""name: "tiny_ssd"
input: "data"
input_shape {{ dim: {batch} dim: 3 dim: {h} dim: {w} }}
layer {{ name: "c1" type: "Convolution" bottom: "data" top: "c1"
  convolution_param {{ num_output: 8 kernel_size: 3 stride: 2 pad: 1 }} }}
layer {{ name: "r1" type: "ReLU" bottom: "c1" top: "c1" }}
layer {{ name: "f1" type: "Normalize" bottom: "c1" top: "f1"
  norm_param {{ across_spatial: false channel_shared: false }} }}
layer {{ name: "f2" type: "Convolution" bottom: "c1" top: "f2"
  convolution_param {{ num_output: 8 kernel_size: 3 stride: 2 pad: 1 }} }}
"""
    for i, (feat, params) in enumerate(zip(("f1", "f2"), priors)):
        text += head(feat, n_priors(params), n_loc, n_cls, f"h{i}", params)
    text += f"""
layer {{ name: "mbox_loc" type: "Concat" bottom: "h0_loc_flat" bottom: "h1_loc_flat"
  top: "mbox_loc" concat_param {{ axis: 1 }} }}
layer {{ name: "mbox_conf" type: "Concat" bottom: "h0_conf_flat" bottom: "h1_conf_flat"
  top: "mbox_conf" concat_param {{ axis: 1 }} }}
layer {{ name: "mbox_priorbox" type: "Concat" bottom: "h0_prior" bottom: "h1_prior"
  top: "mbox_priorbox" concat_param {{ axis: 2 }} }}
layer {{ name: "conf_reshape" type: "Reshape" bottom: "mbox_conf" top: "conf_reshape"
  reshape_param {{ shape {{ dim: 0 dim: -1 dim: {n_cls} }} }} }}
layer {{ name: "conf_softmax" type: "Softmax" bottom: "conf_reshape" top: "conf_softmax"
  softmax_param {{ axis: 2 }} }}
layer {{ name: "conf_flat" type: "Flatten" bottom: "conf_softmax" top: "conf_flat"
  flatten_param {{ axis: 1 }} }}
"""
    prior_top = "mbox_priorbox"
    if slice_priors:  # boxes only (1 channel), for variance_encoded_in_target
        text += """
layer { name: "prior_slice" type: "Slice" bottom: "mbox_priorbox" top: "prior_boxes"
  top: "prior_vars" slice_param { axis: 1 slice_point: 1 } }
"""
        prior_top = "prior_boxes"
    text += f"""
layer {{ name: "detection_out" type: "DetectionOutput" bottom: "mbox_loc"
  bottom: "conf_flat" bottom: "{prior_top}" top: "detection_out"
  include {{ phase: TEST }}
  detection_output_param {{ num_classes: {n_cls}
    share_location: {str(share_location).lower()}
    background_label_id: {background} {det} }} }}
"""
    return text


def random_weights(prototxt_text, seed=0, conf_scale=2.0):
    """Random blobs for every Convolution/Normalize of ``prototxt_text``: activations of
    order 1 for a ``random_image`` input, conf logits ~ N(0, conf_scale), loc ~ N(0, .5)."""
    rng = np.random.default_rng(seed)
    msg = parse_prototxt(prototxt_text)
    channels = {"data": 3}
    layers = []
    for layer in msg.all("layer"):
        name, ltype = layer.get("name"), layer.get("type")
        bottom, tops = layer.all("bottom"), layer.all("top")
        cin = channels.get(bottom[0]) if bottom else None
        if ltype == "Convolution":
            p = layer.msg("convolution_param")
            cout, k = p.num("num_output", None, int), p.num("kernel_size", 1, int)
            fan_in = cin * k * k
            std = np.sqrt(2.0 / fan_in) / (60.0 if bottom[0] == "data" else 1.0)
            if name.endswith("_conf"):  # logits ~ N(0, conf_scale): spread-out scores
                std = conf_scale / np.sqrt(fan_in)
            if name.endswith("_loc"):  # offsets ~ N(0, 0.5)
                std = 0.5 / np.sqrt(fan_in)
            wgt = rng.normal(0, std, (cout, cin, k, k)).astype(np.float32)
            layers.append((name, ltype, [wgt, rng.normal(0, 0.1, cout).astype(np.float32)]))
            channels[tops[0]] = cout
        elif ltype == "Normalize":
            layers.append((name, ltype, [rng.uniform(0.5, 2.0, cin).astype(np.float32)]))
            channels[tops[0]] = cin
        elif tops and cin is not None:
            channels[tops[0]] = cin
    return layers


def write_net(tmp_path: Path, text: str, seed=0, name="net", **kw):
    """Write ``text`` + random weights; return (prototxt path, caffemodel path)."""
    proto, model = tmp_path / f"{name}.prototxt", tmp_path / f"{name}.caffemodel"
    proto.write_text(text)
    write_caffemodel(model, random_weights(text, seed, **kw))
    return proto, model


def random_image(h, w, batch=1, seed=0):
    """A smooth-ish random blob in Caffe's mean-subtracted range."""
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 60, (batch, 3, h, w)).astype(np.float32)
    return img
