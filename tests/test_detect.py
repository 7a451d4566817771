"""ssd_zoo.detect: paths / PIL / arrays in, boxes in ORIGINAL image pixels out."""
import numpy as np
import pytest
import torch
from PIL import Image

import ssd_zoo
from ssd_zoo.transforms import ImageReadError, imread_rgb, load_test


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    net = ssd_zoo.get_model("ssd_300_vgg16_atrous_voc")
    with torch.no_grad():  # spread the class scores so there is something to detect
        for p in net.class_predictors:
            p.weight.mul_(30)
    return net


def test_detect_maps_boxes_to_original_pixels(net, asset_images):
    path = asset_images[0]
    rgb = imread_rgb(path)
    x, resized = load_test(path, short=300)
    with torch.no_grad():
        ids, scores, boxes = net(x)
    keep = (ids[0, :, 0] >= 0) & (scores[0, :, 0] >= 0.05)
    assert keep.sum() > 0
    out = ssd_zoo.detect(net, str(path), threshold=0.05)
    sx, sy = rgb.shape[1] / resized.shape[1], rgb.shape[0] / resized.shape[0]
    expect = boxes[0][keep].numpy() * np.array([sx, sy, sx, sy], np.float32)
    np.testing.assert_allclose(out["boxes"], expect, rtol=1e-6)
    assert out["labels"].tolist() == ids[0, :, 0][keep].long().tolist()
    assert out["names"] == [net.classes[i] for i in out["labels"]]
    # same result from a PIL image and from an array; a list gives a list
    pil = ssd_zoo.detect(net, Image.open(path), threshold=0.05)
    arr = ssd_zoo.detect(net, rgb, threshold=0.05)
    both = ssd_zoo.detect(net, [str(path), rgb], threshold=0.05)
    for r in (pil, arr, both[0], both[1]):
        np.testing.assert_array_equal(r["boxes"], out["boxes"])


def test_detect_bad_inputs(net, tmp_path):
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageReadError, match="corrupt.jpg"):
        ssd_zoo.detect(net, str(bad))
    with pytest.raises(ImageReadError, match="missing.jpg"):
        ssd_zoo.detect(net, str(tmp_path / "missing.jpg"))
    with pytest.raises(ValueError, match="uint8"):
        ssd_zoo.detect(net, np.zeros((10, 10), np.float32))


def test_load_test_list(asset_images):
    xs, imgs = load_test([str(p) for p in asset_images[:2]], short=300)
    assert len(xs) == len(imgs) == 2
    assert all(x.shape[0] == 1 and min(x.shape[2:]) == 300 for x in xs)
