"""The real trained Caffe SSD (OpenCV's res10 face detector) against OpenCV dnn, on every
asset image, square 300x300 and non-square, via load_caffe and via the CLI round trip."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ssd_zoo.caffe import load, load_caffe
from tests.test_caffe_util import compare_detections, cv2, run_torch

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(300, 300), (400, 240)]  # (width, height) as blobFromImage takes
MEAN = (104.0, 177.0, 123.0)


@pytest.fixture(scope="module")
def face_files(assets_dir):
    folder = assets_dir / "res10_face_caffe"
    return folder / "deploy.prototxt.txt", folder / "res10_300x300_ssd_iter_140000.caffemodel"


@pytest.fixture(scope="module")
def cases(face_files, asset_images):
    """(name, blob, OpenCV output) for every image and size."""
    assert len(asset_images) >= 8
    cv2.setNumThreads(1)
    ref = cv2.dnn.readNetFromCaffe(*map(str, face_files))
    out = []
    for path in asset_images:
        img = cv2.imread(str(path))
        for size in SIZES:
            blob = cv2.dnn.blobFromImage(img, 1.0, size, MEAN)
            ref.setInput(blob)
            out.append((f"{path.name}@{size}", blob, ref.forward().copy()))
    return out


@pytest.fixture(scope="module")
def converted(face_files, tmp_path_factory):
    """The CLI's output file (run as a subprocess), loaded back."""
    out = tmp_path_factory.mktemp("caffe_cli") / "face.safetensors"
    proc = subprocess.run([sys.executable, str(ROOT / "converters" / "convert_caffe.py"),
                           "--prototxt", str(face_files[0]), "--caffemodel",
                           str(face_files[1]), "--output", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    return load(out).eval()


def _check(net, cases):
    worst = [0.0, 0.0]
    for name, blob, ref in cases:
        ours = run_torch(net, blob)
        assert (ref[0, 0, :, 2] > 0).sum() > 0, name
        ds, dc = compare_detections(ours, ref)
        worst = [max(worst[0], ds), max(worst[1], dc)]
    return worst


@pytest.mark.parity
def test_face_ssd_matches_opencv(face_files, cases):
    net = load_caffe(*face_files).eval()
    assert net.output_names == ["detection_out"]
    worst = _check(net, cases)
    print(f"face SSD vs OpenCV: worst score diff {worst[0]:.3g}, coord diff {worst[1]:.3g}")
    # a confident face on the astronaut image, in the (1, 1, keep_top_k, 7) layout
    _, blob, ref = next(c for c in cases if c[0].startswith("astronaut.png@(300"))
    assert ref.shape == (1, 1, 200, 7) and ref[0, 0, 0, 2] > 0.99


@pytest.mark.parity
def test_face_ssd_cli_round_trip_matches_opencv(converted, cases):
    _check(converted, cases)


@pytest.mark.parity
def test_face_ssd_batch_of_two(face_files, cases):
    net = load_caffe(*face_files).eval()
    blob = np.concatenate([cases[0][1], cases[2 * len(SIZES)][1]])  # same size
    cv2.setNumThreads(1)
    ref = cv2.dnn.readNetFromCaffe(*map(str, face_files))
    ref.setInput(blob)
    compare_detections(run_torch(net, blob), ref.forward())


def test_saved_file_rebuilds_same_module(face_files, tmp_path):
    from ssd_zoo.caffe import save
    net = load_caffe(*face_files)
    save(net, tmp_path / "m.safetensors")
    back = load(tmp_path / "m.safetensors")
    assert back.layer_names == net.layer_names and back.prototxt == net.prototxt
    for a, b in zip(net.state_dict().values(), back.state_dict().values()):
        assert torch.equal(a, b)
    head = (tmp_path / "m.safetensors").read_bytes()[:8]
    assert not head.startswith(b"\x80")  # not a pickle
