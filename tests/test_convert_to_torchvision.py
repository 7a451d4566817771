"""ssd_zoo ssd_300_vgg16_atrous (Gluon layout) -> torchvision ssd300_vgg16: the converted
torchvision network gives our raw head outputs on the same (mean-subtracted 0..255) input.
This is what lets benchmarks/speed.py time torchvision on the same weights."""
import pytest
import torch
import torchvision

import ssd_zoo
from ssd_zoo.convert.gluon import ConversionError
from ssd_zoo.convert.to_torchvision import gluon_vgg300_to_torchvision
from ssd_zoo.fast import SSDHeads

from tests.test_convert_torchvision import condition

NAME = "ssd_300_vgg16_atrous_voc"


@pytest.fixture(scope="module")
def converted():
    net = ssd_zoo.get_model(NAME).eval()
    condition(net, seed=3)
    state, key_map = gluon_vgg300_to_torchvision(net.state_dict())
    tv = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None,
                                                   num_classes=len(net.classes) + 1).eval()
    tv.load_state_dict(state, strict=True)
    return net, tv, key_map


def test_key_map_consumes_every_tensor(converted):
    net, tv, key_map = converted
    assert set(key_map) == set(net.state_dict())
    assert sorted(v for v in key_map.values() if v) == sorted(tv.state_dict())
    assert key_map["backbone.stages.3.4.weight"] == "backbone.features.21.weight"
    assert key_map["backbone.stages.5.0.weight"] == "backbone.extra.0.7.1.weight"
    assert key_map["backbone.init_scale"] == ""      # checked, not copied


def test_torchvision_heads_equal_ours(converted):
    net, tv, _ = converted
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 300, 300, generator=g)          # Gluon-normalized input
    with torch.no_grad():
        cls, box = SSDHeads(net)(x)
        feats = list(tv.backbone(x * net.backbone.init_scale).values())
        out = tv.head(feats)
    assert cls.std() > 0.1                                 # a live network, not its biases
    assert out["cls_logits"].shape == cls.shape and out["bbox_regression"].shape == box.shape
    # the L2 norms differ only in eps placement (1e-10 vs F.normalize's 1e-12 clamp)
    torch.testing.assert_close(out["cls_logits"], cls, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["bbox_regression"], box, rtol=1e-4, atol=1e-4)


def test_refuses_other_init_scale_and_other_networks(converted):
    net, _, _ = converted
    sd = dict(net.state_dict())
    sd["backbone.init_scale"] = torch.ones(1, 3, 1, 1)
    with pytest.raises(ConversionError, match="init_scale"):
        gluon_vgg300_to_torchvision(sd)
    with pytest.raises(ConversionError, match="not an ssd_300_vgg16_atrous"):
        gluon_vgg300_to_torchvision(ssd_zoo.get_model("ssd_300_mobilenet0.25_voc").state_dict())
    sd = dict(net.state_dict())
    sd["extra.tensor"] = torch.zeros(1)
    with pytest.raises(ConversionError, match="unmapped"):
        gluon_vgg300_to_torchvision(sd)
