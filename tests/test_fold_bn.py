"""BatchNorm folding (ssd_zoo/fold_bn.py) for the fast path: exact pairs only, same outputs."""
import pytest
import torch
from torch import nn

import ssd_zoo
from ssd_zoo.fold_bn import bn_affine, fold_batchnorms, fold_conv_bn
from ssd_zoo.models.layers import GluonBatchNorm2d, SymBatchNorm2d


def _randomize_bn(bn, g):
    with torch.no_grad():
        bn.running_mean.normal_(0, 1, generator=g)
        bn.running_var.uniform_(0.5, 2.0, generator=g)
        bn.weight.uniform_(0.5, 1.5, generator=g)
        bn.bias.normal_(0, 0.5, generator=g)


@pytest.mark.parametrize("bn_cls", [nn.BatchNorm2d, GluonBatchNorm2d, SymBatchNorm2d])
@pytest.mark.parametrize("bias", [False, True])
def test_fold_equals_conv_then_bn(bn_cls, bias):
    g = torch.Generator().manual_seed(1)
    conv = nn.Conv2d(6, 5, 3, 2, 1, bias=bias)
    bn = bn_cls(5)
    _randomize_bn(bn, g)
    bn.eval()
    x = torch.randn(2, 6, 9, 11, generator=g)
    with torch.no_grad():
        ref = bn(conv(x))
        got = fold_conv_bn(conv, bn)(x)
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5)
    a, b = bn_affine(bn)
    if bn_cls is SymBatchNorm2d:   # fix_gamma: the stored gamma is ignored
        assert torch.allclose(a, 1 / torch.sqrt(bn.running_var + 1e-3))
    with pytest.raises(ValueError, match="outputs"):
        fold_conv_bn(nn.Conv2d(6, 4, 1), bn)


def test_only_exclusive_pairs_are_folded():
    seq = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4),
                        nn.Conv2d(4, 4, 1), nn.ReLU(), nn.BatchNorm2d(4))
    assert fold_batchnorms(seq.eval()) == 1
    assert isinstance(seq[1], nn.Identity) and isinstance(seq[3], nn.BatchNorm2d)
    assert isinstance(seq[6], nn.BatchNorm2d)


@pytest.mark.parametrize("name", ["ssd_512_resnet50_v1_coco", "ssd_300_resnet34_v1b_coco",
                                  "ssd_512_mobilenet1.0_voc"])
def test_folded_backbone_equals_original(name):
    torch.manual_seed(0)
    net = ssd_zoo.get_model(name)
    g = torch.Generator().manual_seed(2)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            _randomize_bn(m, g)
    import copy
    folded = copy.deepcopy(net.backbone).eval()
    n = fold_batchnorms(folded)
    total = sum(isinstance(m, nn.BatchNorm2d) for m in net.backbone.modules())
    assert n > 0.9 * total, (n, total)
    size = net.preset.base_size
    x = torch.randn(1, 3, size, size, generator=g)
    with torch.no_grad():
        for r, f in zip(net.backbone(x), folded(x)):
            assert (r - f).abs().max() <= 1e-4 * r.abs().max()
