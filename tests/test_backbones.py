"""Parity of the non-VGG backbones with gluoncv 0.10.5's SSD feature extractors.

In .venv-ref (tests/ref/backbone_ref.py) each gluoncv SSD gets well-conditioned random
weights, is saved in both naming schemes, and runs ``net.features`` on a real image at a
square and at a non-square size.  Here the backbone arrays of those .params (predictors and
anchors filtered out) are mapped by name onto our backbone, which must reproduce every map:
max |diff| <= 1e-4 x max |map|.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from ssd_zoo.convert.gluon import ConversionError, map_gluon_arrays
from ssd_zoo.formats.mxnet_params import read_params
from ssd_zoo.models.backbones.factory import build_backbone, list_backbones
from tests.refrun import run_ref

RTOL = 1e-4
SEED = 0
F512 = [512, 512, 256, 256]
# id: (gluoncv SSD, backbone, build kwargs, [square size, non-square size])
CASES = {
    "resnet18_v1": ("ssd_512_resnet18_v1_voc", "resnet18_v1", dict(num_filters=F512),
                    [[512, 512], [300, 452]]),
    "resnet50_v1": ("ssd_512_resnet50_v1_voc", "resnet50_v1", dict(num_filters=F512),
                    [[512, 512], [300, 452]]),
    "resnet101_v2": ("ssd_512_resnet101_v2_voc", "resnet101_v2", dict(num_filters=F512),
                     [[320, 320], [228, 356]]),
    "resnet152_v2": ("ssd_512_resnet152_v2_voc", "resnet152_v2", dict(num_filters=F512),
                     [[256, 256], [228, 356]]),
    "resnet34_v1b": ("ssd_300_resnet34_v1b_coco", "resnet34_v1b", {},
                     [[300, 300], [300, 452]]),
    "mobilenet1.0": ("ssd_512_mobilenet1.0_voc", "mobilenet1.0", dict(num_filters=F512),
                     [[512, 512], [300, 452]]),
    "mobilenet0.25": ("ssd_300_mobilenet0.25_voc", "mobilenet0.25",
                      dict(num_filters=[256, 256, 128, 128]), [[300, 300], [300, 452]]),
    "mobilenet1.0_lite": ("ssd_300_mobilenet1.0_lite_coco", "mobilenet1.0",
                          dict(num_filters=[512, 256, 256, 128], reduce_ratio=0.5,
                               min_depth=64), [[300, 300], [300, 452]]),
}
_HEAD = re.compile(r"^(ssd\d+_)?(class_predictors\.|box_predictors\.|anchor_generators\."
                   r"|convpredictor\d+_|\w*anchorgenerator\d+_)")


def backbone_arrays(path) -> dict:
    """The arrays of an SSD .params that belong to the feature extractor."""
    return {k: v for k, v in read_params(path).items() if not _HEAD.match(k)}


def convert(model: torch.nn.Module, params_path) -> dict:
    """State dict of ``model`` filled from a Gluon SSD .params (strict, by name)."""
    state, key_map = map_gluon_arrays(backbone_arrays(params_path), model.gluon_key_map(),
                                      model.state_dict(), label=params_path.name)
    assert len(key_map) == len(model.gluon_key_map())
    return state


def load_backbone(name: str, kwargs: dict, params_path) -> torch.nn.Module:
    model = build_backbone(name, **kwargs).eval()
    model.load_state_dict(convert(model, params_path), strict=True)
    return model


@pytest.fixture(scope="module")
def image(asset_images):
    return str(next(p for p in asset_images if p.name == "000001.jpg"))


def reference(ref_python, image, case):
    gluon_name, _, _, sizes = CASES[case]
    return run_ref(ref_python, "backbone_ref.py",
                   dict(model=gluon_name, seed=SEED, image=image, sizes=sizes))


@pytest.mark.parity
@pytest.mark.parametrize("case", list(CASES))
def test_backbone_matches_gluoncv(ref_python, image, case, record_property):
    _, name, kwargs, sizes = CASES[case]
    out = reference(ref_python, image, case)
    ref = np.load(out / "features.npz")
    model = load_backbone(name, kwargs, out / "structural.params")
    # The prefixed scheme must convert to exactly the same tensors.
    other = convert(model, out / "prefixed.params")
    for key, value in model.state_dict().items():
        assert torch.equal(value, other[key]), key
    errors = []
    with torch.no_grad():
        for i, _ in enumerate(sizes):
            feats = model(torch.from_numpy(ref[f"x{i}"]))
            n_ref = len([k for k in ref.files if k.startswith(f"f{i}_")])
            assert len(feats) == n_ref == len(model.out_channels)
            for j, f in enumerate(feats):
                want = ref[f"f{i}_{j}"]
                assert tuple(f.shape) == want.shape, (i, j)
                assert f.shape[1] == model.out_channels[j]
                scale = float(np.abs(want).max())
                assert scale > 1e-3, f"degenerate reference map {i}/{j}"
                err = float(np.abs(f.numpy() - want).max()) / scale
                errors.append(err)
                assert err <= RTOL, f"{case} input {sizes[i]} map {j}: rel err {err:.3g}"
    record_property("max_rel_err", max(errors))
    print(f"{case}: max rel err {max(errors):.3g} over {len(errors)} maps")


@pytest.mark.parity
def test_other_architecture_is_rejected(ref_python, image):
    out = reference(ref_python, image, "resnet18_v1")
    for scheme in ("structural.params", "prefixed.params"):
        with pytest.raises(ConversionError, match="does not fit this architecture"):
            load_backbone("resnet50_v1", dict(num_filters=F512), out / scheme)
    lite = reference(ref_python, image, "mobilenet1.0_lite")
    with pytest.raises(ConversionError, match="shape mismatch"):
        load_backbone("mobilenet1.0", dict(num_filters=F512), lite / "structural.params")


def test_factory_table():
    assert set(list_backbones()) == {"vgg16_atrous", "resnet34_v1b", "resnet18_v1",
                                     "resnet50_v1", "resnet101_v2", "resnet152_v2",
                                     "mobilenet1.0", "mobilenet0.25"}
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet51_v1", num_filters=F512)
    with pytest.raises(ValueError, match="num_filters"):
        build_backbone("resnet50_v1")
    with pytest.raises(ValueError, match="in network order"):
        build_backbone("resnet50_v1", features=["stage4_activation2", "stage3_activation5"],
                       num_filters=F512)
    with pytest.raises(ValueError, match="out of range"):
        build_backbone("resnet50_v1", features=["stage3_activation6"], num_filters=F512)
    assert build_backbone("vgg16_atrous", size=512).out_channels[0] == 512


def test_resnet_v2_cut_mid_block():
    """resnet152_v2's 'stage2_activation7' is a1 of block 2: 128 channels at stride 8; the
    final block is cut after its last activation (no conv3, no shortcut conv)."""
    with torch.device("meta"):  # shapes only: skip the weight initialization
        model = build_backbone("resnet152_v2", num_filters=F512).eval()
        assert model.out_channels[:3] == (128, 256, 512)
        last = model.base.stages[3][0]
        assert not hasattr(last, "conv3") and not hasattr(last, "downsample")
        with torch.no_grad():
            maps = model(torch.zeros(1, 3, 64, 96))
    assert [tuple(m.shape[2:]) for m in maps[:3]] == [(8, 12), (4, 6), (2, 3)]


IMAGENET = {  # classifier name -> (backbone, kwargs)
    "resnet18_v1": ("resnet18_v1", dict(num_filters=F512)),
    "resnet50_v1": ("resnet50_v1", dict(num_filters=F512)),
    "resnet101_v2": ("resnet101_v2", dict(num_filters=F512)),
    "resnet152_v2": ("resnet152_v2", dict(num_filters=F512)),
    "mobilenet1.0": ("mobilenet1.0", dict(num_filters=F512)),
    "mobilenet0.25": ("mobilenet0.25", dict(num_filters=[256, 256, 128, 128])),
    "resnet34_v1b": ("resnet34_v1b", {}),
}
IMAGENET_SAVED = ["mobilenet0.25", "resnet18_v1"]


@pytest.mark.parity
def test_imagenet_key_map(ref_python):
    """Every base tensor has a same-shaped counterpart in gluoncv's ImageNet classifier
    (pretrained_base=True); two genuinely saved classifier .params load through it."""
    out = run_ref(ref_python, "imagenet_names_ref.py",
                  dict(models=list(IMAGENET), save=IMAGENET_SAVED))
    names = json.loads((out / "names.json").read_text())
    for classifier, (name, kwargs) in IMAGENET.items():
        with torch.device("meta"):
            model = build_backbone(name, **kwargs)
        base = getattr(model, "base", model)
        prefix = "base." if base is not model else ""
        key_map = base.imagenet_key_map()
        assert len(set(key_map.values())) == len(key_map), classifier
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        for key, gluon in key_map.items():
            assert gluon in names[classifier], (classifier, key, gluon)
            assert tuple(names[classifier][gluon]) == shapes[prefix + key], (classifier, key)
        if classifier in IMAGENET_SAVED:
            arrays = read_params(out / f"{classifier}.params")
            model = build_backbone(name, **kwargs)
            state = {prefix + k: torch.from_numpy(arrays[g].copy()) for k, g in key_map.items()}
            model.load_state_dict(state, strict=False)
            loaded = model.state_dict()
            for key, tensor in state.items():
                assert torch.equal(loaded[key], tensor), (classifier, key)
