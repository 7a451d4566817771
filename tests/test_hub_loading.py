"""load_state_dict_file(): safetensors, .pth with weights_only, Gluon .params, sha256."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ssd_zoo.hub import (HashMismatchError, RawGluonParams, UnsafeCheckpointError,
                         detect_format, load_state_dict_file)

from .test_hub_server import params_bytes, sha256_of

STATE = {"conv.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2),
         "conv.bias": torch.tensor([1.0, -1.0])}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _plant_marker(path):
    """What a malicious pickle would run on load: here it only creates a file."""
    open(path, "w").close()
    return {}


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_plant_marker, (str(self.marker),))


def test_safetensors_with_sha256(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file(STATE, str(path))
    assert _same(load_state_dict_file(path, sha256=sha256_of(path.read_bytes())), STATE)
    with pytest.raises(HashMismatchError) as info:
        load_state_dict_file(path, sha256="f" * 64)
    assert "f" * 64 in str(info.value) and sha256_of(path.read_bytes()) in str(info.value)


def test_pth_plain_tensor_dict_loads(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(STATE, path)
    assert _same(load_state_dict_file(path), STATE)
    wrapped = tmp_path / "ckpt.pth"
    torch.save({"state_dict": STATE, "epoch": 3}, wrapped)
    assert _same(load_state_dict_file(wrapped), STATE)


@pytest.mark.parametrize("container", ["torch_zip", "raw_pickle"])
def test_pth_with_callable_is_refused(tmp_path, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    evil = {"conv.weight": torch.ones(1), "x": Payload(marker)}
    if container == "torch_zip":
        torch.save(evil, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(evil, f, protocol=2)
    with pytest.raises(UnsafeCheckpointError, match="refused"):
        load_state_dict_file(path)
    assert not marker.exists()  # the payload never ran


def test_params_returned_raw_and_marked(tmp_path):
    path = tmp_path / "m.params"
    path.write_bytes(params_bytes(tmp_path))
    raw = load_state_dict_file(path)
    assert isinstance(raw, RawGluonParams) and raw.needs_conversion and raw.path == path
    assert all(isinstance(v, np.ndarray) for v in raw.values())
    assert list(raw)[0] == "features.0.weight"


def test_format_sniffed_without_suffix(tmp_path):
    st, pth, prm = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    save_file(STATE, str(st))
    torch.save(STATE, pth)
    prm.write_bytes(params_bytes(tmp_path))
    assert [detect_format(p) for p in (st, pth, prm)] == ["safetensors", "pth", "params"]
    assert _same(load_state_dict_file(st), STATE) and _same(load_state_dict_file(pth), STATE)
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello world, not weights")
    with pytest.raises(ValueError, match="unknown weight file format"):
        load_state_dict_file(junk)
