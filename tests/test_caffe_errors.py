"""Bad input: one clear CaffeFormatError (a ValueError) naming file, layer and field."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ssd_zoo.caffe import CaffeFormatError, load, load_caffe, write_caffemodel

ROOT = Path(__file__).resolve().parents[1]
PROTO = """input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
"""
BLOBS = [("conv1", "Convolution", [np.ones((4, 3, 3, 3), np.float32),
                                   np.zeros(4, np.float32)])]


@pytest.fixture
def files(tmp_path):
    proto, model = tmp_path / "deploy.prototxt", tmp_path / "w.caffemodel"
    proto.write_text(PROTO)
    write_caffemodel(model, BLOBS)
    return proto, model


def test_good_files_load(files):
    assert load_caffe(*files).layer_names == ["conv1", "relu1"]


def test_truncated_caffemodel(files):
    data = files[1].read_bytes()
    files[1].write_bytes(data[:len(data) - 40])
    with pytest.raises(CaffeFormatError) as err:
        load_caffe(*files)
    msg = str(err.value)
    assert "w.caffemodel" in msg and "truncated" in msg and "'conv1'" in msg
    assert "field 'blobs'" in msg or "field 100" in msg


def test_not_a_caffemodel(files):
    files[1].write_bytes(b"\x00\x01garbage")
    with pytest.raises(CaffeFormatError, match="w.caffemodel"):
        load_caffe(*files)


def test_prototxt_syntax_error(files):
    files[0].write_text(PROTO.replace("kernel_size: 3 }", "kernel_size 3 }"))
    with pytest.raises(CaffeFormatError) as err:
        load_caffe(*files)
    msg = str(err.value)
    assert "deploy.prototxt:4:" in msg and "'kernel_size'" in msg and "syntax error" in msg


def test_prototxt_unclosed_brace(files):
    files[0].write_text(PROTO + "layer { name: \"x\"\n")
    with pytest.raises(CaffeFormatError, match=r"deploy.prototxt.*missing '}'"):
        load_caffe(*files)


def test_blob_shape_disagrees_with_prototxt(files):
    files[0].write_text(PROTO.replace("num_output: 4", "num_output: 8"))
    with pytest.raises(CaffeFormatError) as err:
        load_caffe(*files)
    msg = str(err.value)
    assert "w.caffemodel" in msg and "'conv1'" in msg and "num_output" in msg
    assert "[4, 3, 3, 3]" in msg and "[8, 3, 3, 3]" in msg


def test_bias_term_disagrees(files):
    files[0].write_text(PROTO.replace("kernel_size: 3", "kernel_size: 3 bias_term: false"))
    with pytest.raises(CaffeFormatError, match=r"'conv1'.*bias_term"):
        load_caffe(*files)


def test_unknown_layer_type(files):
    files[0].write_text(PROTO + 'layer { name: "odd" type: "FancyLayer" bottom: "conv1" '
                                'top: "odd" }\n')
    with pytest.raises(CaffeFormatError) as err:
        load_caffe(*files)
    msg = str(err.value)
    assert "deploy.prototxt" in msg and "'odd'" in msg and "'FancyLayer'" in msg
    assert "field 'type'" in msg


def test_missing_weights(files):
    write_caffemodel(files[1], [("other", "Convolution", BLOBS[0][2])])
    with pytest.raises(CaffeFormatError, match=r"w.caffemodel: layer 'conv1'.*0 weight"):
        load_caffe(*files)


def test_unknown_bottom(files):
    files[0].write_text(PROTO.replace('bottom: "conv1"', 'bottom: "nope"'))
    with pytest.raises(CaffeFormatError, match=r"'relu1'.*\['nope'\].*field 'bottom'"):
        load_caffe(*files)


def test_load_rejects_foreign_file(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(CaffeFormatError, match="x.safetensors"):
        load(tmp_path / "x.safetensors")


def test_cli_bad_input_exits_nonzero_with_one_line(files, tmp_path):
    data = files[1].read_bytes()
    files[1].write_bytes(data[:30])
    out = tmp_path / "o.safetensors"
    proc = subprocess.run([sys.executable, str(ROOT / "converters" / "convert_caffe.py"),
                           "--prototxt", str(files[0]), "--caffemodel", str(files[1]),
                           "--output", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and not out.exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "w.caffemodel" in lines[0]
