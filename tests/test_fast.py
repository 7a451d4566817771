"""ssd_zoo.fast: the optimized inference path gives the default model's detections (fp32),
and bf16 reproduces >= 95 % of them on real images.  No timing here (benchmarks/speed.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ssd_zoo
from ssd_zoo.fast import (FastPostProcessor, detection_agreement, greedy_nms,
                          optimize_for_inference)
from ssd_zoo.postprocess import GluonPostProcessor, greedy_keep
from ssd_zoo.transforms import imread_rgb, load_test, transform_val

SMALL = "ssd_300_mobilenet0.25_voc"
SCORE_TOL, BOX_TOL = 1e-5, 1e-2


def calibrated_model(name, x, seed=0, cls_std=2.0, **kw):
    """A model with random weights whose predictors are rescaled on the features of ``x``
    so softmax scores spread (not saturated, not uniform) and box offsets stay moderate,
    like tests/ref/ssd_ref.py does: exercises thresholds, top-k and NMS."""
    torch.manual_seed(seed)
    net = ssd_zoo.get_model(name, **kw)
    with torch.no_grad():
        feats = net.backbone(x)
        for f, cp, bp in zip(feats, net.class_predictors, net.box_predictors):
            rms = float(f.pow(2).mean().sqrt()) + 1e-12
            for pred, target in ((cp, cls_std), (bp, 0.5)):
                fan_in = pred.weight[0].numel()
                pred.weight.normal_(0, target / (rms * fan_in ** 0.5))
                pred.bias.normal_(0, 0.1 * target)
    return net.eval()


def assert_same_detections(a, b):
    """Row-by-row equality within the parity tolerances of tests/test_gluon_parity.py."""
    ids_a, s_a, b_a = (t.numpy() for t in a)
    ids_b, s_b, b_b = (t.numpy() for t in b)
    np.testing.assert_array_equal(ids_a, ids_b)
    assert np.abs(s_a - s_b).max() <= SCORE_TOL
    valid = ids_a[..., 0] >= 0
    if valid.any():
        assert np.abs(b_a - b_b)[valid].max() <= BOX_TOL


@pytest.fixture(scope="module")
def images(asset_images):
    return asset_images


@pytest.fixture(scope="module")
def square(images):
    return torch.cat([transform_val(imread_rgb(p), 300, 300) for p in images])


@pytest.fixture(scope="module")
def small_net(square):
    return calibrated_model(SMALL, square)


def test_fast_fp32_equals_default(small_net, square, images):
    fast = optimize_for_inference(small_net)
    with torch.no_grad():
        ref = small_net(square)
        assert (ref[0] >= 0).sum() >= 50, "test model too degenerate"
        assert_same_detections(ref, fast(square))
        x, _ = load_test(images[0], short=300)           # non-square input (000001.jpg)
        assert x.shape[2] != x.shape[3]
        assert_same_detections(small_net(x), fast(x))


def test_optimize_leaves_net_untouched(small_net, square):
    before = {k: v.clone() for k, v in small_net.state_dict().items()}
    optimize_for_inference(small_net, "bf16")
    optimize_for_inference(small_net, "fp32", channels_last=True)
    for k, v in small_net.state_dict().items():
        assert v.dtype == before[k].dtype and torch.equal(v, before[k]), k
        assert v.dim() != 4 or v.is_contiguous(), k


def test_channels_last_fp32_reproduces_default(small_net, square):
    """NHWC sums in another order: only near-tied candidates may swap rows."""
    fast = optimize_for_inference(small_net, "fp32", channels_last=True)
    with torch.no_grad():
        hit, total = detection_agreement(small_net(square), fast(square), 1e-4, 1e-2)
    assert hit >= 0.99 * total


def test_bf16_folds_batchnorm_in_fp32_then_casts(small_net, square):
    """bf16 fast path: BatchNorm folded into the convolutions in fp32, then each folded
    weight rounded to bf16 once (not conv and BN rounded separately); Winograd is refused."""
    import copy
    from ssd_zoo.fold_bn import fold_batchnorms
    fast = optimize_for_inference(small_net, "bf16")
    assert fast.heads.rewritten["folded_batchnorms"] > 0
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in fast.heads.backbone.modules())
    want = copy.deepcopy(small_net.backbone).eval()
    assert fold_batchnorms(want) == fast.heads.rewritten["folded_batchnorms"]
    got_convs = [m for m in fast.heads.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    want_convs = [m for m in want.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(got_convs) == len(want_convs)
    for g, w in zip(got_convs, want_convs):
        assert g.weight.dtype == torch.bfloat16
        assert torch.equal(g.weight, w.weight.to(torch.bfloat16).contiguous(
            memory_format=torch.channels_last))
    with torch.no_grad():
        hit, total = detection_agreement(small_net(square), fast(square), 0.05, 2.0)
    assert hit >= 0.8 * total, f"{hit}/{total}"
    with pytest.raises(ValueError, match="Winograd"):
        optimize_for_inference(small_net, "bf16", winograd=True)


@pytest.fixture(scope="module")
def vgg_ref(ref_python, asset_images):
    """(fp32 net with the parity test's gluoncv-made weights, 4 real images, its output)."""
    from tests.test_gluon_parity import build, reference
    out = reference(ref_python, asset_images, "ssd_300_vgg16_atrous_voc")
    net, _ = build("ssd_300_vgg16_atrous_voc", out / "structural.params")
    x = torch.from_numpy(np.load(out / "square.npz")["x"][:4])
    with torch.no_grad():
        return net, x, net(x)


@pytest.mark.parity
@pytest.mark.parametrize("how", ["get_model", "optimize"])
def test_bf16_agreement_real_images(vgg_ref, how):
    """>= 95 % of the fp32 top-100 detections reproduced (class, score +-0.01, box +-1 px)
    on real images, with the parity test's gluoncv-made weights (cached)."""
    name = "ssd_300_vgg16_atrous_voc"
    fp32, x, ref = vgg_ref
    if how == "get_model":
        bf16 = ssd_zoo.get_model(name, precision="bf16")
        bf16.load_state_dict(fp32.state_dict())
        assert bf16.precision == "bf16"
    else:
        bf16 = optimize_for_inference(fp32, "bf16")
    with torch.no_grad():
        res = bf16(x)
    hit, total = detection_agreement(ref, res)
    assert total >= 300
    assert hit >= 0.95 * total, f"bf16 reproduced {hit}/{total}"
    assert detection_agreement(ref, ref) == (total, total)


@pytest.mark.parity
def test_fast_fp32_matches_gluoncv(ref_python, asset_images):
    """The optimized fp32 path passes the parity test's row-by-row comparison."""
    from tests.test_gluon_parity import build, compare_detections, reference
    out = reference(ref_python, asset_images, "ssd_300_vgg16_atrous_voc")
    net, _ = build("ssd_300_vgg16_atrous_voc", out / "structural.params")
    fast = optimize_for_inference(net)
    for f in ("square.npz", "load_test_0.npz"):
        ref = np.load(out / f)
        compare_detections(ref, *fast(torch.from_numpy(ref["x"])))


def _random_inputs(n=2, a=600, c1=6, seed=0, ties=False, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(n, a, c1, generator=g) * scale
    if ties:  # exact duplicates of whole anchors: tied scores, same boxes
        cls[:, 1::3] = cls[:, 0:-1:3][:, :cls[:, 1::3].shape[1]]
    box = torch.randn(n, a, 4, generator=g) * 0.5
    cxy = torch.rand(a, 2, generator=g) * 300
    wh = torch.rand(a, 2, generator=g) * 80 + 10
    return cls, box, torch.cat([cxy, wh], 1)


@pytest.mark.parametrize("case", [
    dict(), dict(ties=True), dict(scale=0.2),           # scale 0.2: few valid, padding
    dict(nms_topk=50, post_nms=100), dict(nms_thresh=1.0), dict(post_nms=20, ties=True),
    dict(scale=8.0, nms_topk=-1)])  # saturated scores: exact ties at 1.0
def test_fast_postprocessor_equals_gluon_postprocessor(case):
    case = dict(case)
    data = {k: case.pop(k) for k in ("ties", "scale") if k in case}
    cls, box, anchors = _random_inputs(**data)
    net = ssd_zoo.get_model(SMALL)
    pp = GluonPostProcessor(**{"nms_thresh": 0.45, "nms_topk": 400, "post_nms": 100, **case})
    ref = pp(cls, net.box_coder.decode(box, anchors))
    fast = FastPostProcessor(net.box_coder, pp.nms_thresh, pp.nms_topk, pp.post_nms,
                             pp.score_thresh)(cls, box, anchors)
    assert_same_detections(ref, fast)


def test_greedy_nms_equals_fixed_point():
    rng = np.random.RandomState(0)
    for k in (1, 5, 60):
        m = rng.rand(k, k) < 0.2
        sup = m | m.T
        valid = np.ones(k, bool)
        ref = greedy_keep(torch.from_numpy(np.tril(sup, -1)[None]))[0].numpy()
        np.testing.assert_array_equal(greedy_nms(sup, valid), ref)


def test_bad_precision():
    with pytest.raises(ValueError, match="precision"):
        optimize_for_inference(ssd_zoo.get_model(SMALL), "fp16")


@pytest.mark.parametrize("how", ["freeze", "compile"])
def test_traced_and_compiled_fast_paths_keep_the_outputs(how):
    """torch.jit.trace/freeze and torch.compile see the PyTorch-op Winograd transforms (the
    C++ kernels are opaque to them: a trace would bake their result in as a constant)."""
    if how == "compile":
        pytest.importorskip("torch._inductor")
    g = torch.Generator().manual_seed(0)
    x1, x2 = (torch.randn(1, 3, 300, 300, generator=g) for _ in range(2))
    net = calibrated_model("ssd_300_vgg16_atrous_voc", x1)
    kw = {"freeze": True, "example_input": x1} if how == "freeze" else {"compile": True}
    fast = optimize_for_inference(net, **kw)
    if how == "compile":  # inductor needs a compiler and minutes on 2 cores: eager backend
        fast.heads = torch.compile(fast.heads._orig_mod, backend="eager")
    with torch.no_grad():
        for x in (x1, x2):                        # x2: not the example the trace ran on
            ref_cls, ref_box, _ = net.head_outputs(x)
            cls, box = fast.heads(x.contiguous(memory_format=torch.channels_last))
            for got, ref in ((cls, ref_cls), (box, ref_box)):
                assert (got - ref).abs().max() <= 1e-4 * ref.abs().max(), how
