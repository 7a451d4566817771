"""ONNX / TorchScript export (ssd_zoo.export, converters/export_onnx.py): the exported
graph, decode and Gluon-semantics NMS included, gives the PyTorch model's detections."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import ssd_zoo
from ssd_zoo.export import (ExportableSSD, anchors_in_graph, export_onnx,
                            export_torchscript, greedy_keep_loop, onnx_detect)
from ssd_zoo.postprocess import greedy_keep
from ssd_zoo.transforms import imread_rgb, load_test, transform_val
from tests.conftest import ROOT
from tests.test_fast import SMALL, assert_same_detections, calibrated_model

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def inputs(asset_images):
    square = torch.cat([transform_val(imread_rgb(p), 300, 300) for p in asset_images[:4]])
    wide, _ = load_test(asset_images[0], short=300)          # 000001.jpg: non-square
    return square, wide


@pytest.fixture(scope="module")
def net(inputs):
    return calibrated_model(SMALL, inputs[0])


@pytest.fixture(scope="module")
def onnx_session(net, tmp_path_factory):
    path = export_onnx(net, tmp_path_factory.mktemp("onnx") / "ssd.onnx", dynamic=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def test_anchors_in_graph_equal_generator(net):
    for h, w in ((38, 38), (27, 38), (5, 3), (1, 1)):
        f = torch.zeros(1, 1, h, w)
        for ag in net.anchor_generators:
            assert torch.equal(anchors_in_graph(ag, f), ag.grid(h, w))


def test_greedy_loop_equals_fixed_point():
    g = torch.Generator().manual_seed(0)
    for k in (1, 7, 50):
        m = torch.rand(2, k, k, generator=g) < 0.25
        sup = m | m.transpose(1, 2)
        valid = torch.rand(2, k, generator=g) < 0.9
        vv = valid.unsqueeze(2) & valid.unsqueeze(1)
        ref = greedy_keep(sup & vv) & valid
        assert torch.equal(greedy_keep_loop(sup, valid), ref)


def test_exportable_equals_model(net, inputs):
    with torch.no_grad():
        for x in inputs:
            ref = net(x)
            assert (ref[0] >= 0).sum() >= 50, "test model too degenerate"
            assert_same_detections(ref, ExportableSSD(net)(x))


def test_onnx_dynamic_square_and_non_square(net, inputs, onnx_session):
    square, wide = inputs
    assert wide.shape[2] != wide.shape[3]
    with torch.no_grad():
        for x in (square, square[:1], wide):
            got = [torch.from_numpy(a) for a in onnx_detect(onnx_session, x)]
            assert_same_detections(net(x), got)


def test_torchscript_export(net, inputs, tmp_path):
    path = export_torchscript(net, tmp_path / "ssd.pt")
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        assert_same_detections(net(inputs[0][:2]), loaded(inputs[0][:2]))


def _cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "converters" / "export_onnx.py"), *args],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=600)


def test_cli_help_and_errors(tmp_path):
    out = _cli("--help")
    assert out.returncode == 0 and "--network" in out.stdout and "--dynamic" in out.stdout
    bad = _cli("--network", "ssd_nope", "--random", "--output", str(tmp_path / "x.onnx"))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("export_onnx: error: unknown model")
    none = _cli("--network", SMALL, "--output", str(tmp_path / "x.onnx"))
    assert none.returncode == 2 and "exactly one of" in none.stderr


def test_cli_exports_weights_file(net, inputs, tmp_path):
    weights = tmp_path / "w.pth"
    torch.save(net.state_dict(), weights)
    out = _cli("--network", SMALL, "--weights", str(weights), "--output",
               str(tmp_path / "m.onnx"), "--data-shape", "300", "360")
    assert out.returncode == 0, out.stderr[-2000:]
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = torch.nn.functional.interpolate(inputs[0][:1], size=(300, 360), mode="bilinear")
    with torch.no_grad():
        assert_same_detections(net(x), [torch.from_numpy(a) for a in onnx_detect(sess, x)])
