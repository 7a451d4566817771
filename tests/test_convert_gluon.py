"""Gluon converter: strict one-to-one mapping and clear errors on bad input."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ssd_zoo
from ssd_zoo.convert.gluon import ConversionError, convert_gluon_params, map_gluon_arrays
from ssd_zoo.formats.mxnet_params import ParamsFormatError, read_params, write_params

ROOT = Path(__file__).resolve().parents[1]


def fake_gluon_params(net, scheme="structural"):
    """A .params dict with every tensor under its Gluon name (both schemes)."""
    arrays = {}
    state = net.state_dict()
    idx = 0 if scheme == "structural" else 1
    for key, names in net.gluon_key_map().items():
        name = names[idx] if scheme == "structural" else "ssd3_" + names[idx]
        arrays[name] = state[key].numpy() + (0.01 if key.endswith("bias") else 0)
    for _cid, (names, value) in net.gluon_constants().items():
        arrays[names[idx]] = value.numpy()
    return arrays


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ssd_zoo.get_model("ssd_300_vgg16_atrous_voc")


@pytest.mark.parametrize("scheme", ["structural", "prefixed"])
def test_roundtrip_both_schemes(net, scheme, tmp_path):
    arrays = fake_gluon_params(net, scheme)
    write_params(str(tmp_path / "a.params"), arrays)
    state, key_map = convert_gluon_params(tmp_path / "a.params", net)
    assert len(key_map) == len(arrays) == 78
    assert len(set(key_map.values())) == len(key_map)
    for k, v in net.state_dict().items():
        if k.endswith("bias"):
            assert torch.allclose(state[k], v + 0.01)


def test_other_architecture_is_refused(net):
    other = ssd_zoo.get_model("ssd_512_vgg16_atrous_voc")
    with pytest.raises(ConversionError, match="does not fit"):
        convert_gluon_params(fake_gluon_params(other), net)


def test_coco_weights_into_voc_model_name_shapes(net):
    coco = ssd_zoo.get_model("ssd_300_vgg16_atrous_coco")
    with pytest.raises(ConversionError, match="shape mismatch"):
        convert_gluon_params(fake_gluon_params(coco), net)


def test_missing_and_extra_tensors(net):
    arrays = fake_gluon_params(net)
    arrays.pop("features.stages.0.0.weight")
    arrays["features.bogus.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ConversionError) as e:
        convert_gluon_params(arrays, net)
    assert "features.stages.0.0.weight" in str(e.value) and "features.bogus.weight" in str(e.value)


def test_wrong_anchor_constants_detected(net):
    arrays = fake_gluon_params(net)
    arrays["anchor_generators.0.anchors"] = arrays["anchor_generators.0.anchors"] * 1.1
    with pytest.raises(ConversionError, match="constants disagree"):
        convert_gluon_params(arrays, net)


def test_truncated_params_file(net, tmp_path):
    write_params(str(tmp_path / "a.params"), fake_gluon_params(net))
    data = (tmp_path / "a.params").read_bytes()
    (tmp_path / "t.params").write_bytes(data[: len(data) // 2])
    with pytest.raises(ParamsFormatError, match="truncated"):
        read_params(tmp_path / "t.params")
    (tmp_path / "j.params").write_bytes(b"not a params file at all, just text")
    with pytest.raises(ParamsFormatError, match="not an MXNet"):
        read_params(tmp_path / "j.params")


def test_cli_roundtrip_and_get_model(net, tmp_path):
    write_params(str(tmp_path / "a.params"), fake_gluon_params(net, "prefixed"))
    for out in ("w.safetensors", "w.pth"):
        r = subprocess.run([sys.executable, str(ROOT / "converters" / "convert_gluoncv.py"),
                            "--network", "ssd_300_vgg16_atrous_voc", "--params",
                            str(tmp_path / "a.params"), "--output", str(tmp_path / out)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        loaded = ssd_zoo.get_model("ssd_300_vgg16_atrous_voc", weights=str(tmp_path / out))
        a = dict(loaded.state_dict())
        assert torch.allclose(a["class_predictors.0.bias"], net.state_dict()["class_predictors.0.bias"] + 0.01)
    r = subprocess.run([sys.executable, str(ROOT / "converters" / "convert_gluoncv.py"),
                        "--network", "ssd_512_vgg16_atrous_voc", "--params",
                        str(tmp_path / "a.params"), "--output", str(tmp_path / "x.safetensors")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "does not fit" in r.stderr
    assert not (tmp_path / "x.safetensors").exists()


def test_map_is_strict_about_ambiguity():
    with pytest.raises(ConversionError, match="ambiguous"):
        map_gluon_arrays({}, {"a": ("x",), "b": ("x",)}, {"a": torch.zeros(1), "b": torch.zeros(1)})
