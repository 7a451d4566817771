"""Reproducible safetensors (ssd_zoo/formats/safetensors_canonical.py): the same tensors and
metadata give the same bytes in every process, and the files still load."""
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save

from ssd_zoo.formats.safetensors_canonical import canonical, save_bytes

ROOT = Path(__file__).resolve().parents[1]
WRITE = """
import hashlib, sys, torch
sys.path.insert(0, {root!r})
from ssd_zoo.formats.safetensors_canonical import save_bytes
from safetensors.torch import save
t = {{"w": torch.arange(6.).reshape(2, 3), "b": torch.ones(2)}}
m = {{"format": "x", "version": "1", "prototxt": "p", "layers": "[]", "ü": "ö"}}
print(hashlib.sha256(save_bytes(t, m)).hexdigest(), hashlib.sha256(save(t, metadata=m)).hexdigest())
"""


def test_same_bytes_in_every_process():
    outs = [subprocess.run([sys.executable, "-c", WRITE.format(root=str(ROOT))],
                           capture_output=True, text=True, check=True).stdout.split()
            for _ in range(4)]
    assert len({o[0] for o in outs}) == 1                     # ours: one hash
    # (the library's own bytes usually differ between processes: the reason for this module)


def test_canonical_file_loads_the_same(tmp_path):
    t = {"w": torch.randn(3, 4), "i": torch.arange(5)}
    meta = {"b": "2", "a": "1", "c": "ü"}
    data = save_bytes(t, meta)
    assert data == canonical(data) and len(data) == len(save(t, metadata=meta))
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == meta
        for k, v in t.items():
            assert torch.equal(f.get_tensor(k), v)


def test_not_safetensors_is_refused():
    for bad in (b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{}", b"\x02\x00\x00\x00\x00\x00\x00\x00xx"):
        with pytest.raises(ValueError, match="not a safetensors"):
            canonical(bad)


def test_caffe_save_is_reproducible(tmp_path):
    """ssd_zoo.caffe.save writes 4 metadata keys: the same net twice -> the same bytes."""
    from ssd_zoo.caffe import load, load_caffe, save as caffe_save
    from tests.test_caffe_util import ssd_prototxt, write_net
    net = load_caffe(*write_net(tmp_path, ssd_prototxt(32, 32)))
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    caffe_save(net, a)
    caffe_save(net, b)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert load(a).prototxt == net.prototxt
