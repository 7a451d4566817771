"""torchvision ssd300_vgg16 -> ssd_zoo: same raw head outputs, anchors, decoded boxes and
detections as torchvision's own forward, on random well-conditioned weights."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

import ssd_zoo
from ssd_zoo.convert.gluon import ConversionError
from ssd_zoo.convert.torchvision import NAME, convert_torchvision_ssd300
from ssd_zoo.preprocess_ported import torchvision_inputs, torchvision_rescale
from ssd_zoo.registry import load_state_dict_strict

from converters import convert_torchvision

ROOT = Path(__file__).resolve().parents[1]
RAW_TOL = 1e-4


def condition(model: torch.nn.Module, seed: int = 0) -> None:
    """Random weights that keep activations O(1) and softmax unsaturated."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                gain = 2.0 if "head" in name or "loc" in name or "conf" in name else 1.0
                std = gain / fan_in ** 0.5 * (1 / 64 if fan_in == 27 else 1.414)
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif p.dim() == 1 and p.shape[0] == 512 and ("scale" in name or "L2Norm" in name):
                p.copy_(10 + 20 * torch.rand(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    tv = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None,
                                                   num_classes=91).eval()
    condition(tv)
    state, key_map = convert_torchvision_ssd300(tv.state_dict())
    net = ssd_zoo.get_model(NAME)
    load_state_dict_strict(net, state)
    return tv, net.eval(), key_map


def run_torchvision(tv, images):
    """torchvision's forward, capturing head outputs and anchors."""
    cap = {}
    hook = tv.head.register_forward_hook(lambda m, i, o: cap.update(head=o))
    orig = tv.anchor_generator.forward

    def anchors(*a):
        cap["anchors"] = orig(*a)
        return cap["anchors"]

    tv.anchor_generator.forward = anchors
    try:
        with torch.no_grad():
            cap["dets"] = tv(list(images))
    finally:
        hook.remove()
        del tv.anchor_generator.forward
    return cap


def test_key_map_is_one_to_one_and_complete(pair):
    tv, net, key_map = pair
    assert set(key_map) == set(tv.state_dict())
    assert sorted(key_map.values()) == sorted(net.state_dict())
    assert key_map["backbone.scale_weight"] == "backbone.norm.weight"
    assert key_map["backbone.extra.0.7.1.weight"] == "backbone.fc.8.weight"


def test_raw_outputs_anchors_boxes_and_detections_match(pair):
    """A non-square image through both full pipelines (torchvision's normalize + resize,
    forward, postprocess, rescale to the original size)."""
    tv, net, _ = pair
    g = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 240, 410, generator=g)]
    ref = run_torchvision(tv, images)
    x, sizes = torchvision_inputs(images, net.preset.mean, net.preset.std)
    ours = {}
    head_outputs = net.head_outputs
    net.head_outputs = lambda t: ours.setdefault("raw", head_outputs(t))
    try:
        with torch.no_grad():
            ids, scores, bboxes = net(x)
    finally:
        del net.head_outputs
    cls, box, anchors = ours["raw"]
    d_cls = (cls - ref["head"]["cls_logits"]).abs().max().item()
    d_box = (box - ref["head"]["bbox_regression"]).abs().max().item()
    assert d_cls <= RAW_TOL and d_box <= RAW_TOL, (d_cls, d_box)
    # anchors: torchvision hands xyxy to its coder, which rebuilds (cx, cy, w, h) from them
    a = ref["anchors"][0]
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    assert torch.equal(anchors, torch.stack([a[:, 0] + 0.5 * w, a[:, 1] + 0.5 * h, w, h], -1))
    decoded = net.box_coder.decode(box, anchors)
    for i in range(len(images)):
        tv_boxes = tv.box_coder.decode_single(ref["head"]["bbox_regression"][i], a)
        assert (decoded[i] - tv_boxes).abs().max().item() <= 1e-4
    probs = torch.softmax(ref["head"]["cls_logits"], -1)[..., 1:]
    assert probs.max(-1).values.median() < 0.5 and (probs > 0.01).sum() > 1e4, \
        "random weights too degenerate to test NMS"
    bboxes = torchvision_rescale(bboxes, sizes)
    for i, det in enumerate(ref["dets"]):
        k = det["labels"].numel()
        assert k == 200 and (ids[i, :, 0] >= 0).sum().item() == k
        assert torch.equal(ids[i, :k, 0].long() + 1, det["labels"])
        assert (scores[i, :k, 0] - det["scores"]).abs().max().item() <= 1e-6
        assert (bboxes[i, :k] - det["boxes"]).abs().max().item() <= 1e-4


def test_bad_checkpoints_fail_clearly(pair):
    tv, _, _ = pair
    state = dict(tv.state_dict())
    extra = dict(state, **{"backbone.extra.5.0.weight": torch.zeros(1)})
    with pytest.raises(ConversionError, match="unmapped.*extra.5.0.weight"):
        convert_torchvision_ssd300(extra)
    missing = {k: v for k, v in state.items() if k != "backbone.scale_weight"}
    with pytest.raises(ConversionError, match="missing.*backbone.norm.weight"):
        convert_torchvision_ssd300(missing)
    bad = dict(state, **{"backbone.extra.1.0.weight": torch.zeros(256, 1024, 3, 3)})
    with pytest.raises(ConversionError, match="shape"):
        convert_torchvision_ssd300(bad)
    with pytest.raises(ConversionError, match="not a torchvision"):
        convert_torchvision_ssd300({"foo": torch.zeros(1)})


def test_other_class_counts_and_dataparallel_prefix(pair):
    tv, _, _ = pair
    state = {}
    for k, v in tv.state_dict().items():  # a 5-class (4 + background) torchvision model
        if k.startswith("head.classification_head"):
            v = torch.zeros((v.shape[0] // 91 * 5,) + tuple(v.shape[1:]))
        state["module." + k] = v
    out, key_map = convert_torchvision_ssd300(state)
    assert out["class_predictors.0.weight"].shape[0] == 4 * 5
    assert key_map["module.backbone.scale_weight"] == "backbone.norm.weight"
    net = ssd_zoo.get_model(NAME, classes=["a", "b", "c", "d"])
    load_state_dict_strict(net, out)


def test_cli_round_trip_and_errors(pair, tmp_path, capsys):
    tv, net, _ = pair
    src = tmp_path / "tv.pth"
    torch.save(tv.state_dict(), src)
    out = tmp_path / "out.safetensors"
    cli = [sys.executable, str(ROOT / "converters" / "convert_torchvision.py")]
    r = subprocess.run(cli + ["--checkpoint", str(src), "--output", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    loaded = ssd_zoo.get_model(NAME, weights=str(out))
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    with pytest.raises(SystemExit) as e:
        convert_torchvision.main(["--help"])
    assert e.value.code == 0 and "--checkpoint" in capsys.readouterr().out
    trunc = tmp_path / "trunc.pth"
    trunc.write_bytes(src.read_bytes()[:1000])
    notsd = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], notsd)
    for bad in (tmp_path / "nope.pth", trunc, notsd):
        assert convert_torchvision.main(["--checkpoint", str(bad), "--output", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(bad) in err[0] and err[0].startswith("convert_torch")
