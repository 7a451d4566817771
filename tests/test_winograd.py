"""Winograd F(2x2,3x3) / F(4x4,3x3) convolution (ssd_zoo/winograd.py), with the fused C++
transforms (ssd_zoo/winograd_ext.py) and with the PyTorch-op fallback, against torch's
direct conv2d."""
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssd_zoo import winograd_ext
from ssd_zoo.winograd import (WinogradConv2d, replace_with_winograd, toom_cook,
                              winograd_conv3x3, winograd_eligible, winograd_filter)

#: max |winograd - float64 reference| / max |reference| allowed per tile size
TOL = {2: 2e-6, 4: 3e-5, 6: 5e-5}
HAVE_CXX = shutil.which("c++") is not None or shutil.which("g++") is not None


@pytest.fixture(params=["fused", "torch"])
def transforms(request, monkeypatch):
    """Run a test once with the fused C++ transforms and once with the PyTorch ops."""
    if request.param == "fused":
        if not HAVE_CXX:
            pytest.skip("no C++ compiler on PATH: the fused transforms cannot be built")
        monkeypatch.setenv(winograd_ext.ENV, "1")
        assert winograd_ext.get() is not None, winograd_ext._state["error"]
    else:
        monkeypatch.setenv(winograd_ext.ENV, "0")
        assert winograd_ext.get() is None
    return request.param


@pytest.mark.parametrize("m", [2, 4, 6])
@pytest.mark.parametrize("n,c,k,h,w", [(1, 8, 16, 10, 10), (2, 5, 7, 9, 13), (1, 3, 4, 1, 1),
                                       (3, 16, 8, 2, 7), (1, 64, 24, 19, 19)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_equals_direct_conv(n, c, k, h, w, channels_last, m, transforms):
    g = torch.Generator().manual_seed(n * 1000 + c * 10 + h)
    x = torch.randn(n, c, h, w, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(k, c, 3, 3, generator=g)
    bias = torch.randn(k, generator=g)
    ref = F.conv2d(x.double(), weight.double(), bias.double(), padding=1)
    got = winograd_conv3x3(x, winograd_filter(weight, m), bias, m)
    assert got.shape == ref.shape and got.dtype == torch.float32
    assert got.is_contiguous(memory_format=torch.channels_last)
    err = (got.double() - ref).abs().max() / ref.abs().max()
    assert err < TOL[m], err
    direct = F.conv2d(x, weight, bias, padding=1)   # fp32 direct conv has the same size error
    assert (direct.double() - ref).abs().max() / ref.abs().max() < 2e-6
    fused_relu = winograd_conv3x3(x, winograd_filter(weight, m), bias, m, relu=True)
    assert torch.equal(fused_relu, got.clamp_min(0))


def test_fused_equals_torch_transforms_on_layer_shapes(monkeypatch):
    """Both transform implementations on SSD-like shapes (channels a multiple of 16 and
    not, tails of partial tiles, no bias): they round differently, both within TOL."""
    if not HAVE_CXX:
        pytest.skip("no C++ compiler on PATH: the fused transforms cannot be built")
    g = torch.Generator().manual_seed(7)
    for n, c, k, h, w, bias in [(1, 64, 128, 37, 30, True), (2, 48, 40, 19, 19, False),
                                (1, 256, 256, 10, 10, True)]:
        x = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=torch.channels_last)
        u = winograd_filter(torch.randn(k, c, 3, 3, generator=g), 4)
        b = torch.randn(k, generator=g) if bias else None
        out = {}
        for flag in ("1", "0"):
            monkeypatch.setenv(winograd_ext.ENV, flag)
            out[flag] = winograd_conv3x3(x, u, b, 4)
        err = (out["1"] - out["0"]).abs().max() / out["0"].abs().max()
        assert err < TOL[4], (n, c, k, h, w, err)   # both ~1e-5 from exact, differently


def test_extension_build_failure_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(winograd_ext, "_state", {"tried": False, "module": None, "error": None})

    def broken():
        raise OSError("no compiler here")
    monkeypatch.setattr(winograd_ext, "_build", broken)
    monkeypatch.setenv(winograd_ext.ENV, "1")
    with pytest.warns(RuntimeWarning, match="pure-PyTorch"):
        assert winograd_ext.get() is None
    x = torch.randn(1, 8, 9, 9)
    w = torch.randn(4, 8, 3, 3)
    with warnings_as_errors():
        got = winograd_conv3x3(x, winograd_filter(w, 4), None, 4)   # no second warning
    ref = F.conv2d(x.double(), w.double(), padding=1)
    assert (got.double() - ref).abs().max() / ref.abs().max() < TOL[4]


def warnings_as_errors():
    import warnings
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")

    class _Exit:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            ctx.__exit__(*exc)
    return _Exit()


@pytest.mark.parametrize("m,points", [(2, None), (4, None), (4, (0, 1, -1, 2, -2)),
                                      (6, (0, 1, -1, 2, -2, 0.5, -0.5))])
def test_toom_cook_is_1d_correlation(m, points):
    """y = A^T [(G g) * (B^T d)] is the valid correlation of d (length m+2) with g (3)."""
    at, g_mat, bt = toom_cook(m, points)
    assert at.shape == (m, m + 2) and g_mat.shape == (m + 2, 3) and bt.shape == (m + 2, m + 2)
    gen = torch.Generator().manual_seed(m)
    for _ in range(5):
        g = torch.randn(3, generator=gen, dtype=torch.float64)
        d = torch.randn(m + 2, generator=gen, dtype=torch.float64)
        ref = torch.stack([(d[i:i + 3] * g).sum() for i in range(m)])
        assert torch.allclose(at @ ((g_mat @ g) * (bt @ d)), ref, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="distinct"):
        toom_cook(2, (0, 1, 1))
    with pytest.raises(ValueError, match="3, 3"):
        winograd_filter(torch.zeros(2, 2, 5, 5))


def test_large_maps_switch_to_the_large_tile(transforms):
    conv = nn.Conv2d(24, 40, 3, padding=1)
    wconv = WinogradConv2d(conv, 4, large_m=6, large_min_side=20)
    assert wconv.u_large is None and "F(6x6,3x3) from 20 px" in repr(wconv)
    g = torch.Generator().manual_seed(5)
    for h, w, large in [(19, 40, False), (20, 23, True), (33, 20, True)]:
        x = torch.randn(2, 24, h, w, generator=g)
        with torch.no_grad():
            got = wconv(x)
            ref = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
        # the F(6x6) filters exist from the first map of >= 20 px on
        assert (wconv.u_large is not None) == large
        assert not large or wconv.u_large.shape == (64, 24, 40)
        assert (got.double() - ref).abs().max() / ref.abs().max() < TOL[6 if large else 4]


def test_relu_after_a_swapped_conv_is_fused():
    net = nn.Sequential(nn.Conv2d(300, 300, 3, padding=1), nn.ReLU(inplace=True),
                        nn.Conv2d(300, 8, 3, padding=1), nn.ReLU())
    x = torch.randn(1, 300, 9, 11)
    with torch.no_grad():
        expected = net(x.clone())
        assert replace_with_winograd(net, min_intensity=100) == 1
        got = net(x.clone())
    assert net[0].relu and type(net[1]) is nn.Identity and type(net[3]) is nn.ReLU
    assert (got - expected).abs().max() / expected.abs().max() < TOL[4]


def test_module_swap_and_errors():
    net = nn.Sequential(nn.Conv2d(4, 300, 3, padding=1), nn.ReLU(),
                        nn.Sequential(nn.Conv2d(300, 8, 3, padding=1),
                                      nn.Conv2d(300, 8, 3, padding=1, stride=2),
                                      nn.Conv2d(300, 8, 3, padding=6, dilation=6),
                                      nn.Conv2d(300, 8, 1)))
    ref = net[:3][:3]
    x = torch.randn(1, 4, 12, 12)
    with torch.no_grad():
        expected = ref[2][0](ref[1](ref[0](x)))
    assert replace_with_winograd(net, min_intensity=7.7) == 1
    assert isinstance(net[2][0], WinogradConv2d)
    assert all(type(m) is nn.Conv2d for m in net[2][1:]) and type(net[0]) is nn.Conv2d
    with torch.no_grad():
        got = net[2][0](net[1](net[0](x)))
    assert (got - expected).abs().max() / expected.abs().max() < TOL[4]
    assert not winograd_eligible(nn.Conv2d(4, 4, 3, padding=1, groups=2))
    with pytest.raises(ValueError, match="not a 3x3"):
        WinogradConv2d(nn.Conv2d(4, 4, 3, padding=0))
    with pytest.raises(TypeError, match="fp32"):
        net[2][0](torch.zeros(1, 300, 4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="channels"):
        net[2][0](torch.zeros(1, 299, 4, 4))


def test_ninja_from_the_venv_is_put_on_path(monkeypatch, tmp_path):
    pytest.importorskip("ninja")
    monkeypatch.setenv("PATH", str(tmp_path))          # no ninja, as in a non-activated venv
    assert winograd_ext.ensure_ninja_on_path()
    assert shutil.which("ninja") is not None
