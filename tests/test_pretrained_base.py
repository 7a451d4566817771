"""pretrained_base=True: gluoncv ImageNet classifier .params served by a local model store."""
import dataclasses
import hashlib

import pytest
import torch

import ssd_zoo
from ssd_zoo.formats.mxnet_params import read_params
from ssd_zoo.zoo import BACKBONE_WEIGHTS, gluon_source
from tests.refrun import run_ref
from tests.test_hub_server import hub_env, server, serve_gluon  # noqa: F401  (fixtures)


@pytest.mark.parity
def test_pretrained_base_from_gluon_store(ref_python, server, hub_env, monkeypatch):  # noqa: F811
    out = run_ref(ref_python, "imagenet_names_ref.py",
                  {"models": ["mobilenet0.25"], "save": ["mobilenet0.25"]})
    data = (out / "mobilenet0.25.params").read_bytes()
    sha1 = hashlib.sha1(data).hexdigest()
    serve_gluon(server, "mobilenet0.25", data)
    monkeypatch.setitem(BACKBONE_WEIGHTS, "mobilenet0.25", gluon_source(sha1))
    net = ssd_zoo.get_model("ssd_300_mobilenet0.25_custom", classes=["a", "b"],
                            pretrained_base=True)
    arrays = read_params(out / "mobilenet0.25.params")
    got = net.state_dict()["backbone.base.units.0.0.weight"]
    assert torch.equal(got, torch.from_numpy(arrays["features.0.weight"].copy()))
    assert server.count() == 1
    # cached: a second model needs no network
    ssd_zoo.get_model("ssd_300_mobilenet0.25_voc", pretrained_base=True)
    assert server.count() == 1


def test_unknown_backbone_weights():
    from ssd_zoo.pretrained_base import load_pretrained_base
    net = ssd_zoo.get_model("ssd_512_resnet18_v1_voc")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        load_pretrained_base(net, "resnet18_v1")
