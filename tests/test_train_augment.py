"""Training augmentation (ssd_zoo/train/augment.py): boxes follow the pixels through every
recipe, recipes hold the steps they name, samples are a function of (seed, epoch, index)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ssd_zoo.train.augment import RECIPES, AugmentedDataset, SSDTrainTransform


def _square_image(i: int):
    """A white square on black (the only bright pixels) and its label row."""
    rng = np.random.default_rng(i)
    h, w = (int(v) for v in rng.integers(160, 320, 2))
    side = int(rng.integers(20, 80))
    x1, y1 = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
    img = np.zeros((h, w, 3), np.uint8)
    img[y1:y1 + side, x1:x1 + side] = 255
    return img, np.array([[x1, y1, x1 + side, y1 + side, 2, 0]], np.float32)


@pytest.mark.parametrize("recipe", RECIPES)
def test_boxes_follow_the_pixels(recipe):
    """After the geometric steps the label box equals the bright pixels' bounding box (to
    resampling blur), and the class id is kept.  Identity mean/std: output in 0..255."""
    t = SSDTrainTransform(300, (0.0, 0.0, 0.0), (1 / 255,) * 3, recipe)
    t.pipeline.transforms = [s for s in t.pipeline.transforms
                             if type(s).__name__ != "PhotometricDistort"]
    checked = 0
    for i in range(60):
        img, lab = _square_image(i)
        torch.manual_seed(i)
        x, out = t(img, lab)
        assert x.shape == (3, 300, 300) and x.dtype == torch.float32
        if len(out) == 0:
            continue
        ys, xs = np.nonzero(x[0].numpy() > 127)
        pix = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        assert np.abs(pix - out[0, :4].numpy()).max() <= 3, (recipe, i, pix, out)
        assert out[0, 4] == 2
        checked += 1
    assert checked >= 50


def test_recipes_hold_their_steps():
    def names(recipe):
        return [type(s).__name__ for s in SSDTrainTransform(300, recipe=recipe).pipeline.transforms]
    assert {"PhotometricDistort", "RandomZoomOut", "MaybeIoUCrop"} <= set(names("ssd"))
    assert "PhotometricDistort" in names("color")
    assert not {"RandomZoomOut", "MaybeIoUCrop"} & set(names("color"))
    assert not {"PhotometricDistort", "RandomZoomOut", "MaybeIoUCrop"} & set(names("flip"))
    assert all("RandomHorizontalFlip" in names(r) for r in RECIPES)
    with pytest.raises(ValueError, match="recipe"):
        SSDTrainTransform(300, recipe="heavy")


def test_samples_depend_only_on_seed_epoch_index():
    data = [_square_image(i) for i in range(3)]
    ds = AugmentedDataset(data, SSDTrainTransform(96), seed=5)
    torch.manual_seed(123)
    a = [ds[i] for i in range(3)]
    torch.manual_seed(999)                     # global RNG state must not matter
    b = [ds[i] for i in (2, 1, 0)][::-1]       # nor the order of access
    for (xa, la), (xb, lb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(la, lb)
    ds.set_epoch(1)
    assert not all(torch.equal(ds[i][0], a[i][0]) for i in range(3))
