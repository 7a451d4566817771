"""Original (weiliu89) Caffe SSD -> native ssd_zoo model, against OpenCV dnn.

A deploy prototxt with the weiliu89 structure (full VGG16 widths, the real layer names and
PriorBox/DetectionOutput parameters) gets random, well-conditioned weights written as a
.caffemodel; the converted native model must give OpenCV's detections on real images.
OpenCV outputs are cached under .cache/ (keyed by the files' hashes).
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ssd_zoo
from ssd_zoo.caffe import CaffeNet, parse_prototxt, write_caffemodel
from ssd_zoo.caffe.net import blobs_to_tensors
from ssd_zoo.caffe.ssd_layers import PriorBox
from ssd_zoo.convert.caffe_native import (ConversionError, check_prototxt, convert_caffe_ssd,
                                          infer_network)
from ssd_zoo.convert.weiliu89_prototxt import weiliu89_deploy_prototxt
from ssd_zoo.models.caffe_ssd import HEAD_SOURCES
from ssd_zoo.registry import load_state_dict_strict
from ssd_zoo.zoo import CATALOG
from tests.test_caffe_util import compare_detections, one_thread, random_weights

cv2 = pytest.importorskip("cv2")
ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "test_caffe_native"
MEAN_BGR = (104.0, 117.0, 123.0)
N300, N512 = "ssd_300_vgg16_caffe_voc0712", "ssd_512_vgg16_caffe_coco"


def make_weights(text: str, seed: int = 0):
    """Random blobs (He-scaled convs, Normalize scale ~20) with the mbox convs rescaled so
    conf logits ~ N(0, 1.5^2) and loc offsets ~ N(0, 0.5^2) on a real-image-like input:
    spread-out scores, real NMS work, no float ties."""
    layers = random_weights(text, seed)
    rng = np.random.default_rng(seed + 1)
    layers = [(n, t, [rng.uniform(10, 30, b[0].shape).astype(np.float32)]
               if t == "Normalize" else b) for n, t, b in layers]
    size = parse_prototxt(text).all("input_shape")[0].nums("dim", int)[2]
    srcs = HEAD_SOURCES[size]
    net = CaffeNet(text, blobs_to_tensors({n: b for n, _, b in layers}))
    x = torch.from_numpy(np.random.default_rng(seed).normal(0, 60, (1, 3, size, size))
                         .astype(np.float32))
    with one_thread():
        feats = net(x, outputs=list(srcs))
    rms = {s: float(f.pow(2).mean().sqrt()) for s, f in zip(srcs, feats)}
    out = []
    for name, ltype, blobs in layers:
        for s in srcs:  # random_weights: conf std 2/sqrt(fan_in), loc 0.5/sqrt(fan_in)
            if name == f"{s}_mbox_conf":
                blobs = [blobs[0] * (1.5 / (2.0 * rms[s])), blobs[1]]
            elif name == f"{s}_mbox_loc":
                blobs = [blobs[0] / rms[s], blobs[1]]
        out.append((name, ltype, blobs))
    return out


@pytest.fixture(scope="module")
def caffe300(tmp_path_factory):
    """(prototxt path, caffemodel path, blobs {layer: [arrays]}) of a weiliu89 SSD300."""
    entry = CATALOG[N300]
    text = weiliu89_deploy_prototxt(entry.preset, len(entry.classes) + 1, "VGG_VOC0712_SSD_300x300")
    d = tmp_path_factory.mktemp("caffe300")
    layers = make_weights(text)
    proto, model = d / "deploy.prototxt", d / "ssd300.caffemodel"
    proto.write_text(text)
    write_caffemodel(model, layers)
    return proto, model, {n: b for n, _, b in layers}


def opencv_blob(path, size):
    img = cv2.imread(str(path))
    return cv2.dnn.blobFromImage(img, 1.0, (size, size), MEAN_BGR, swapRB=False, crop=False)


def opencv_cached(proto, model, blobs, tag):
    """OpenCV dnn detections for each blob, cached on disk by content hash."""
    h = hashlib.sha256(Path(proto).read_bytes() + Path(model).read_bytes())
    for b in blobs:
        h.update(b.tobytes())
    path = CACHE / f"{tag}-{h.hexdigest()[:16]}.npz"
    if path.exists():
        return list(np.load(path)["out"])
    cv2.setNumThreads(1)
    net = cv2.dnn.readNetFromCaffe(str(proto), str(model))
    outs = []
    for b in blobs:
        net.setInput(b)
        outs.append(net.forward().copy())
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, out=np.stack(outs))
    return outs


def native_model(name, blobs, proto):
    state, key_map = convert_caffe_ssd(blobs, Path(proto).read_text(), name)
    net = ssd_zoo.get_model(name)
    load_state_dict_strict(net, state)
    return net.eval(), key_map


def as_caffe_rows(ids, scores, bboxes, size, keep):
    """ssd_zoo outputs of one image -> OpenCV's (1, 1, keep, 7) normalized rows."""
    rows = np.zeros((keep, 7), np.float32)
    valid = ids[:, 0] >= 0
    m = int(valid.sum())
    rows[:m, 1] = ids[valid, 0] + 1
    rows[:m, 2] = scores[valid, 0]
    rows[:m, 3:] = bboxes[valid] / np.float32(size)
    return rows.reshape(1, 1, keep, 7)


@pytest.mark.parity
def test_ssd300_native_matches_opencv_on_real_images(caffe300, asset_images):
    proto, model, blobs = caffe300
    net, key_map = native_model(N300, blobs, proto)
    n_blobs = sum(len(b) for b in blobs.values())
    assert len(key_map) == len(set(key_map.values())) == n_blobs == 2 * 35 + 1
    inputs = [opencv_blob(p, 300) for p in asset_images]
    refs = opencv_cached(proto, model, inputs, "ssd300")
    x = torch.from_numpy(np.ascontiguousarray(np.concatenate(inputs)[:, ::-1]))  # BGR->RGB
    with one_thread():
        ids, scores, bboxes = (t.numpy() for t in net(x))
    worst_s = worst_c = 0.0
    for i, ref in enumerate(refs):
        assert (ref[0, 0, :, 2] > 0).sum() >= 150, "reference too degenerate to test NMS"
        ours = as_caffe_rows(ids[i], scores[i], bboxes[i], 300, ref.shape[2])
        s, c = compare_detections(ours, ref)
        worst_s, worst_c = max(worst_s, s), max(worst_c, c)
    print(f"SSD300 vs OpenCV on {len(refs)} images: max score diff {worst_s:.2e}, "
          f"max coord diff {worst_c:.2e}")


def test_ssd300_preset_preprocessing_equals_caffe_input(asset_images):
    """ssd_zoo's RGB normalization with the preset's mean/std after Caffe's test resize
    (bilinear warp) = the flipped Caffe blob, up to float rounding of (x/255 - m)/s.
    (ssd_zoo's Gluon ``transform_val`` resizes with interp 9 = area when shrinking.)"""
    from ssd_zoo.transforms import imread_rgb, imresize, to_normalized_tensor
    p = CATALOG[N300].preset
    for path in asset_images[:3]:
        img = imresize(imread_rgb(path), 300, 300, interp=1)
        ours = to_normalized_tensor(img, p.mean, p.std)[0].numpy()
        ref = opencv_blob(path, 300)[0, ::-1]
        assert np.abs(ours - ref).max() < 1e-4


def test_ssd300_anchors_equal_caffe_priors(caffe300):
    """Native anchors (pixels, cxcywh) = the PriorBox blobs, normalized, same order."""
    check_anchors(N300, caffe300[0].read_text())


def check_anchors(name, text):
    net = ssd_zoo.get_model(name)
    size = net.preset.base_size
    layers = {s.get("name"): s for s in parse_prototxt(text).all("layer")}
    image = torch.zeros(1, 3, size, size)
    fsize = size
    for i, (src, gen) in enumerate(zip(HEAD_SOURCES[size], net.anchor_generators)):
        hw = {300: (38, 19, 10, 5, 3, 1), 512: (64, 32, 16, 8, 4, 2, 1)}[size][i]
        feat = torch.zeros(1, 1, hw, hw)
        pb = PriorBox(layers[f"{src}_mbox_priorbox"], [], src)(feat, image)[0]
        ours = gen(feat).double()
        xyxy = torch.cat([ours[:, :2] - ours[:, 2:] / 2, ours[:, :2] + ours[:, 2:] / 2], 1)
        np.testing.assert_allclose((xyxy / fsize).reshape(-1).numpy(), pb[0].numpy(),
                                   atol=1e-6, rtol=0, err_msg=src)
        np.testing.assert_allclose(pb[1].view(-1, 4)[0].numpy(), net.box_coder.stds)


def test_ssd512_structure_converts_one_to_one(tmp_path):
    """SSD512 (7 heads, conv10_2 4x4) COCO: shapes, key map, anchors, a forward."""
    entry = CATALOG[N512]
    text = weiliu89_deploy_prototxt(entry.preset, 81, "VGG_coco_SSD_512x512")
    net_msg = parse_prototxt(text)
    assert infer_network(net_msg) == N512
    rng = np.random.default_rng(0)
    blobs = {}  # shapes only: cheap random blobs
    shapes = {k: tuple(v.shape) for k, v in ssd_zoo.get_model(N512).state_dict().items()}
    from ssd_zoo.convert.caffe_native import caffe_layer_map
    for layer, prefix in caffe_layer_map(512).items():
        w = shapes[f"{prefix}.weight"]
        blobs[layer] = [rng.normal(0, 0.01, w).astype(np.float32),
                        rng.normal(0, 0.01, w[0]).astype(np.float32)]
    blobs["conv4_3_norm"] = [np.full(512, 20, np.float32)]
    state, key_map = convert_caffe_ssd(blobs, text)
    assert len(key_map) == len(set(key_map.values())) == 2 * 39 + 1 == len(state)
    assert torch.equal(state["backbone.stages.0.0.weight"],
                       torch.from_numpy(blobs["conv1_1"][0][:, ::-1].copy()))
    assert state["backbone.norm4.scale"].shape == (1, 512, 1, 1)
    check_anchors(N512, text)
    net = ssd_zoo.get_model(N512)
    load_state_dict_strict(net, state)
    net.train()
    with one_thread():
        cls, box, anchors = net(torch.zeros(1, 3, 512, 512))
    assert cls.shape == (1, 24564, 81) and box.shape == (1, 24564, 4)
    assert anchors.shape == (24564, 4)


def test_prototxt_mismatch_is_one_clear_error(caffe300):
    proto, _, blobs = caffe300
    text = proto.read_text()
    bad = text.replace("min_size: 60 max_size: 111", "min_size: 61 max_size: 111")
    with pytest.raises(ConversionError, match="fc7_mbox_priorbox.*min_size"):
        convert_caffe_ssd(blobs, bad, N300)
    bad = text.replace("across_spatial: false", "across_spatial: true")
    with pytest.raises(ConversionError, match="conv4_3_norm.*across_spatial"):
        convert_caffe_ssd(blobs, bad, N300)
    with pytest.raises(ConversionError, match="conv4_3_norm_mbox_priorbox.*min_size"):
        convert_caffe_ssd(blobs, text, "ssd_300_vgg16_caffe_coco")  # COCO priors differ
    with pytest.raises(ConversionError, match="num_classes' is 21, expected 3"):
        convert_caffe_ssd(blobs, text, N300, classes=["cat", "dog"])
    extra = dict(blobs, mbox_loss=[np.zeros(3, np.float32)])
    with pytest.raises(ConversionError, match="unmapped.*mbox_loss"):
        convert_caffe_ssd(extra, text, N300)
    short = {k: v for k, v in blobs.items() if k != "conv9_2_mbox_conf"}
    with pytest.raises(ConversionError, match="missing.*class_predictors.5"):
        convert_caffe_ssd(short, text, N300)
    warn = text.replace("keep_top_k: 200", "keep_top_k: 100")
    assert any("keep_top_k" in w for w in check_prototxt(parse_prototxt(warn),
                                                         CATALOG[N300].preset, 21))


def test_cli_round_trip_and_errors(caffe300, tmp_path, capsys):
    proto, model, blobs = caffe300
    out = tmp_path / "ssd300.safetensors"
    from converters.convert_caffe_ssd import main
    assert main(["--prototxt", str(proto), "--caffemodel", str(model), "--output", str(out)]) == 0
    assert N300 in capsys.readouterr().out  # network inferred from the prototxt
    cli = [sys.executable, str(ROOT / "converters" / "convert_caffe_ssd.py")]
    net = ssd_zoo.get_model(N300, weights=str(out))
    state, _ = convert_caffe_ssd(blobs, proto.read_text(), N300)
    own = net.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())
    assert "--network" in subprocess.run(cli + ["--help"], capture_output=True,
                                         text=True).stdout
    r = subprocess.run(cli + ["--prototxt", str(proto), "--caffemodel", str(tmp_path / "x"),
                              "--output", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "no such file" in r.stderr


def test_catalog_entries_record_public_sources_without_auto_download():
    names = ssd_zoo.list_models("ssd_*_vgg16_caffe_*")
    assert names == ["ssd_300_vgg16_caffe_coco", "ssd_300_vgg16_caffe_voc0712",
                     "ssd_512_vgg16_caffe_coco", "ssd_512_vgg16_caffe_voc0712"]
    for n in names:
        e = CATALOG[n]
        assert not e.has_weights and e.extra["archive_url"].startswith(
            "https://drive.google.com/open?id=0BzKzrI_SkD1_")
        assert e.published and e.preset.anchor == "caffe"
    with pytest.raises(ValueError, match="without a published checksum.*convert_caffe_ssd"):
        ssd_zoo.get_model(N300, pretrained=True)
