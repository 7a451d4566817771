"""Generic Caffe layers, one small net each, against OpenCV dnn; plus the V1 (legacy)
prototxt/caffemodel forms and the text-format parser."""
from __future__ import annotations

import numpy as np
import pytest

from ssd_zoo.caffe import load_caffe, parse_prototxt, read_caffemodel, write_caffemodel
from ssd_zoo.caffe.proto import _field, _varint_bytes
from tests.test_caffe_util import opencv_forward, run_torch

C, H, W = 4, 13, 15
rng = np.random.default_rng(1)


def _r(*shape, lo=None):
    a = rng.normal(0, 1, shape).astype(np.float32)
    return np.abs(a) + lo if lo is not None else a


SPLIT = ('layer { name: "sp" type: "Slice" bottom: "data" top: "a" top: "b" '
         'slice_param { axis: 1 slice_point: 2 } }\n')
# (id, layer text using bottom "data" -> top "out", {layer name: blobs})
CASES = [
    ("conv_group_dilation", 'type: "Convolution" convolution_param { num_output: 6 '
     'kernel_size: 3 group: 2 dilation: 2 pad: 2 stride: 1 }',
     {"out": [_r(6, 2, 3, 3), _r(6)]}),
    ("conv_hw_no_bias", 'type: "Convolution" convolution_param { num_output: 3 '
     'kernel_h: 3 kernel_w: 1 pad_h: 1 pad_w: 0 stride_h: 2 stride_w: 1 bias_term: false }',
     {"out": [_r(3, 4, 3, 1)]}),
    ("deconvolution", 'type: "Deconvolution" convolution_param { num_output: 4 '
     'kernel_size: 4 stride: 2 pad: 1 }', {"out": [_r(4, 4, 4, 4), _r(4)]}),
    ("batchnorm_scale_factor", 'type: "BatchNorm" batch_norm_param { eps: 0.001 }',
     {"out": [_r(4) * 3.5, _r(4, lo=0.2) * 3.5, np.array([3.5], np.float32)]}),
    ("scale_bias", 'type: "Scale" scale_param { bias_term: true }',
     {"out": [_r(4), _r(4)]}),
    ("relu_negative_slope", 'type: "ReLU" relu_param { negative_slope: 0.2 }', {}),
    ("prelu", 'type: "PReLU"', {"out": [_r(4) * 0.3]}),
    ("pool_max_ceil", 'type: "Pooling" pooling_param { pool: MAX kernel_size: 3 '
     'stride: 2 }', {}),
    ("pool_ave_pad", 'type: "Pooling" pooling_param { pool: AVE kernel_size: 3 '
     'stride: 2 pad: 1 }', {}),
    ("pool_max_pad_ceil", 'type: "Pooling" pooling_param { pool: MAX kernel_size: 2 '
     'stride: 2 pad: 1 }', {}),
    ("pool_global_ave", 'type: "Pooling" pooling_param { pool: AVE global_pooling: true }',
     {}),
    ("normalize_spatial_shared", 'type: "Normalize" norm_param { across_spatial: true '
     'channel_shared: true }', {"out": [np.array([20.0], np.float32)]}),
    ("normalize_per_pixel_channels", 'type: "Normalize" norm_param { across_spatial: false '
     'channel_shared: false eps: 1e-6 }', {"out": [_r(4, lo=1)]}),
    ("softmax_axis1", 'type: "Softmax"', {}),
    ("eltwise_sum_coeff", "SPLIT", 'type: "Eltwise" eltwise_param { operation: SUM '
     'coeff: 0.5 coeff: -2 }'),
    ("eltwise_prod", "SPLIT", 'type: "Eltwise" eltwise_param { operation: PROD }'),
    ("eltwise_max", "SPLIT", 'type: "Eltwise" eltwise_param { operation: MAX }'),
    ("concat", "SPLIT", 'type: "Concat" concat_param { axis: 1 }'),
]
CHAIN = """
layer { name: "p" type: "Permute" bottom: "data" top: "p"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "f" type: "Flatten" bottom: "p" top: "f" }
layer { name: "r" type: "Reshape" bottom: "f" top: "r"
  reshape_param { shape { dim: 0 dim: -1 dim: 4 } } }
layer { name: "out" type: "Softmax" bottom: "r" top: "out" softmax_param { axis: 2 } }
"""


def _net_text(case):
    head = f'input: "data"\ninput_shape {{ dim: 1 dim: {C} dim: {H} dim: {W} }}\n'
    if case[1] == "SPLIT":
        return head + SPLIT + f'layer {{ name: "out" {case[2]} bottom: "a" bottom: "b" ' \
                              f'top: "out" }}\n', {}
    return head + f'layer {{ name: "out" {case[1]} bottom: "data" top: "out" }}\n', case[2]


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES + [("permute_flatten_reshape_softmax", CHAIN, {})],
                         ids=[c[0] for c in CASES] + ["permute_flatten_reshape_softmax"])
def test_layer_matches_opencv(tmp_path, case):
    if case[1] is CHAIN:
        text = f'input: "data"\ninput_shape {{ dim: 1 dim: {C} dim: {H} dim: {W} }}\n' + CHAIN
        blobs = {}
    else:
        text, blobs = _net_text(case)
    proto, model = tmp_path / "n.prototxt", tmp_path / "n.caffemodel"
    proto.write_text(text)
    write_caffemodel(model, [(k, "x", v) for k, v in blobs.items()] or [("none", "x", [])])
    x = rng.normal(0, 1, (1, C, H, W)).astype(np.float32)
    ref = opencv_forward(proto, model, x, ["out"])[0]
    ours = run_torch(load_caffe(proto, model), x, ["out"])[0]
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_v1_layers_and_legacy_blob_dims(tmp_path):
    """``layers { type: CONVOLUTION }`` + V1 caffemodel (field 2, num/channels/h/w)."""
    new = ('input: "data"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
           'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
           'convolution_param { num_output: 2 kernel_size: 3 } }\n'
           'layer { name: "fc" type: "InnerProduct" bottom: "c" top: "fc" '
           'inner_product_param { num_output: 5 } }\n')
    old = new.replace("layer {", "layers {").replace('"Convolution"', "CONVOLUTION") \
        .replace('"InnerProduct"', "INNER_PRODUCT")
    blobs = [("c", "Convolution", [_r(2, 3, 3, 3), _r(2)]),
             ("fc", "InnerProduct", [_r(5, 72), _r(5)])]
    for name, text, legacy in (("new", new, False), ("old", old, True)):
        (tmp_path / f"{name}.prototxt").write_text(text)
        write_caffemodel(tmp_path / f"{name}.caffemodel", blobs, legacy=legacy)
    legacy_blobs = read_caffemodel(tmp_path / "old.caffemodel")
    assert legacy_blobs["fc"][0].shape == (1, 1, 5, 72) and legacy_blobs["c"][1].shape == \
        (1, 1, 1, 2)
    x = rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    a = run_torch(load_caffe(tmp_path / "new.prototxt", tmp_path / "new.caffemodel"), x)
    b = run_torch(load_caffe(tmp_path / "old.prototxt", tmp_path / "old.caffemodel"), x)
    ref = opencv_forward(tmp_path / "new.prototxt", tmp_path / "new.caffemodel", x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.reshape(ref.shape), ref, rtol=1e-5, atol=1e-5)


def test_double_data_and_unpacked_floats(tmp_path):
    dims = _field(7, _field(1, _varint_bytes(2) + _varint_bytes(1)))
    dbl = _field(8, np.array([1.5, -2.25]).astype("<f8").tobytes())
    fl = b"".join(_varint_bytes(5 << 3 | 5) + np.float32(v).tobytes() for v in (3.0, 4.0))
    layer = _field(1, b"a") + _field(7, dims + dbl) + _field(7, fl)
    (tmp_path / "m.caffemodel").write_bytes(_field(100, layer))
    got = read_caffemodel(tmp_path / "m.caffemodel")["a"]
    np.testing.assert_array_equal(got[0], [[1.5], [-2.25]])
    np.testing.assert_array_equal(got[1], [3.0, 4.0])


def test_text_format_parser():
    msg = parse_prototxt('name: "a\\"b" # comment\r\nx: -1.5e-3; y: 7, e: CENTER_SIZE\n'
                         'm < v: [1, 2] > m { v: 3 } s: "p" "q" b: true\n', "t")
    assert msg.get("name") == 'a"b' and msg.get("x") == -1.5e-3 and msg.get("y") == 7
    assert msg.enum("e", ["", "CORNER", "CENTER_SIZE"], "CORNER") == "CENTER_SIZE"
    assert [m.nums("v", int) for m in msg.all("m")] == [[1, 2], [3]]
    assert msg.get("s") == "pq" and msg.flag("b", False) is True
