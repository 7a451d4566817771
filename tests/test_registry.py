"""Registry and catalog: names, lookup errors, presets, the model contract."""
import pytest
import torch

import ssd_zoo
from ssd_zoo.zoo import CATALOG

GLUONCV_SSD_NAMES = {  # gluoncv 0.10.5 ssd_* constructors, minus the 4 int8 ones
    "ssd_300_mobilenet0.25_coco", "ssd_300_mobilenet0.25_custom", "ssd_300_mobilenet0.25_voc",
    "ssd_300_mobilenet1.0_lite_coco", "ssd_300_resnet34_v1b_coco", "ssd_300_resnet34_v1b_custom",
    "ssd_300_resnet34_v1b_voc", "ssd_300_vgg16_atrous_coco", "ssd_300_vgg16_atrous_custom",
    "ssd_300_vgg16_atrous_voc", "ssd_512_mobilenet1.0_coco", "ssd_512_mobilenet1.0_custom",
    "ssd_512_mobilenet1.0_voc", "ssd_512_resnet101_v2_voc", "ssd_512_resnet152_v2_voc",
    "ssd_512_resnet18_v1_coco", "ssd_512_resnet18_v1_voc", "ssd_512_resnet50_v1_coco",
    "ssd_512_resnet50_v1_custom", "ssd_512_resnet50_v1_voc", "ssd_512_vgg16_atrous_coco",
    "ssd_512_vgg16_atrous_custom", "ssd_512_vgg16_atrous_voc"}


def test_every_gluoncv_name_is_registered():
    assert GLUONCV_SSD_NAMES <= set(ssd_zoo.list_models())


def test_ten_gluoncv_models_carry_upstream_weights():
    names = [n for n in ssd_zoo.list_models(pretrained=True) if CATALOG[n].upstream == "gluoncv"]
    assert len(names) == 10
    for n in names:
        (src,) = CATALOG[n].sources
        assert src.kind == "gluon_zip" and len(src.sha1) == 40
        assert src.resolved_url(n).endswith(f"gluon/models/{n}-{src.sha1[:8]}.zip")


def test_glob():
    assert ssd_zoo.list_models("ssd_512_vgg16_atrous*") == [
        "ssd_512_vgg16_atrous_coco", "ssd_512_vgg16_atrous_custom", "ssd_512_vgg16_atrous_voc"]
    assert ssd_zoo.list_models("nothing*") == []


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match="ssd_512_resnet50_v1_coco"):
        ssd_zoo.get_model("ssd_512_resnet50_coco")


def test_custom_needs_classes_and_bad_options_fail():
    with pytest.raises(ValueError, match="classes"):
        ssd_zoo.get_model("ssd_300_vgg16_atrous_custom")
    with pytest.raises(ValueError, match="unknown option"):
        ssd_zoo.get_model("ssd_300_vgg16_atrous_voc", nms_treshold=0.5)
    with pytest.raises(ValueError, match="precision"):
        ssd_zoo.get_model("ssd_300_vgg16_atrous_voc", precision="int3")


def test_no_weights_for_unpublished_model():
    with pytest.raises(ValueError, match="no published weights"):
        ssd_zoo.get_model("ssd_512_resnet18_v1_voc", pretrained=True)


@pytest.fixture(scope="module")
def vgg300():
    torch.manual_seed(0)
    return ssd_zoo.get_model("ssd_300_vgg16_atrous_voc")


def test_contract_shapes_square_and_nonsquare(vgg300):
    for shape in ((2, 3, 300, 300), (1, 3, 300, 452)):
        with torch.no_grad():
            ids, scores, boxes = vgg300(torch.randn(*shape))
        n = shape[0]
        assert ids.shape == (n, 100, 1) and scores.shape == (n, 100, 1) and boxes.shape == (n, 100, 4)
        pad = ids[..., 0] < 0
        assert torch.all(scores[..., 0][pad] == -1)


def test_training_mode_returns_raw(vgg300):
    vgg300.train()
    try:
        cls, box, anchors = vgg300(torch.randn(1, 3, 300, 300))
    finally:
        vgg300.eval()
    assert cls.shape == (1, 8732, 21) and box.shape == (1, 8732, 4) and anchors.shape == (8732, 4)


@pytest.mark.parametrize("bad", [torch.randn(3, 300, 300), torch.randn(1, 1, 300, 300),
                                 torch.zeros(1, 3, 300, 300, dtype=torch.uint8)])
def test_bad_input_tensor(vgg300, bad):
    with pytest.raises(ValueError, match="SSD expects"):
        vgg300(bad)


def test_overrides_reach_the_postprocessor():
    net = ssd_zoo.get_model("ssd_300_vgg16_atrous_voc", post_nms=50, nms_thresh=0.5)
    assert net.postprocessor.post_nms == 50 and net.postprocessor.nms_thresh == 0.5
    with torch.no_grad():
        ids, _, _ = net(torch.randn(1, 3, 300, 300))
    assert ids.shape == (1, 50, 1)


def test_trained_presets_tile_the_image():
    """Every Gluon-style preset's anchor centres tile its input (center_coverage >= 0.9 at
    every head), except the ones whose upstream preset is kept flawed for parity: those name
    a ``train_entry`` that tiles, and backbone@size lookups (training, eval) resolve to it."""
    from ssd_zoo.anchors import head_coverages
    from ssd_zoo.registry import find_entry
    flawed = []
    for name, e in CATALOG.items():
        if e.kind != "ssd" or e.preset.anchor not in ("ssd", "lite"):
            continue
        cover = head_coverages(ssd_zoo.get_model(name, classes=["a"]), e.preset.base_size)
        if min(cover) < 0.9:
            flawed.append(name)
            fixed = CATALOG[e.train_entry]
            assert min(head_coverages(ssd_zoo.get_model(fixed.name, classes=["a"]),
                                      fixed.preset.base_size)) > 0.95
            assert find_entry(e.preset.backbone, e.preset.base_size, e.dataset) is fixed
            assert fixed.preset.backbone == e.preset.backbone and not fixed.train_entry
    assert sorted(flawed) == ["ssd_300_mobilenet0.25_coco", "ssd_300_mobilenet0.25_custom",
                              "ssd_300_mobilenet0.25_voc"]
    # Gluon-CV's own preset, as it is: centres stop at 160 of 300 pixels on head 0
    assert CATALOG["ssd_300_mobilenet0.25_voc"].preset.steps == (8, 16, 32, 64, 100, 300)
