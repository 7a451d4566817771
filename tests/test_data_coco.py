"""COCO reader on a generated COCO-layout tree: semantics, id mapping, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ssd_zoo.data import COCODetection

# category ids deliberately sparse and out of order in the json
CATEGORIES = [{"id": 9, "name": "zebra"}, {"id": 1, "name": "cat"}, {"id": 5, "name": "dog"}]


def write_coco(root: Path, split: str = "val2017", n_images: int = 6, seed: int = 0,
               extra: list | None = None, drop_keys=()) -> Path:
    """COCO layout: root/annotations/instances_<split>.json + root/<split>/*.jpg.

    Boxes of all sizes (small / medium / large areas), one crowd box per image, one image
    without annotation.  ``extra`` annotations are appended as given.  Returns the json path.
    """
    rng = np.random.RandomState(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / split).mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n_images):
        w, h = int(rng.randint(160, 260)), int(rng.randint(140, 220))
        img_id = 1000 + 7 * i
        name = f"{img_id:012d}.jpg"
        cv2.imwrite(str(root / split / name), rng.randint(0, 256, (h, w, 3)).astype(np.uint8))
        images.append({"id": img_id, "file_name": name, "width": w, "height": h,
                       "coco_url": f"http://images.cocodataset.org/{split}/{name}"})
        if i == 1:
            continue  # image without objects
        for k in range(int(rng.randint(2, 7))):
            side = rng.choice([12.0, 50.0, 120.0])
            bw, bh = side * rng.uniform(0.6, 1.0, 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            if k == 0:  # integer box
                x, y, bw, bh = float(int(x)), float(int(y)), float(int(bw)), float(int(bh))
            anns.append({"id": len(anns) + 1, "image_id": img_id,
                         "category_id": CATEGORIES[rng.randint(3)]["id"],
                         "bbox": [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                         "area": round(bw * bh, 2), "iscrowd": int(k == 1 and i == 2)})
    anns += extra or []
    dataset = {"images": images, "annotations": anns, "categories": CATEGORIES,
               "info": {"description": "ssd_zoo test set"}}
    for key in drop_keys:
        dataset.pop(key)
    path = root / "annotations" / f"instances_{split}.json"
    path.write_text(json.dumps(dataset))
    return path


def xywh_to_gluon_xyxy(b, width, height):
    x, y, w, h = b
    x2, y2 = x + max(w - 1, 0), y + max(h - 1, 0)
    return [min(width - 1, max(0, x)), min(height - 1, max(0, y)),
            min(width - 1, max(0, x2)), min(height - 1, max(0, y2))]


def test_reader_semantics(tmp_path):
    path = write_coco(tmp_path)
    ds = COCODetection(tmp_path, split="val2017")
    raw = json.loads(path.read_text())
    assert len(ds) == 6                                      # empty image kept (eval)
    assert ds.classes == ("cat", "dog", "zebra")
    assert ds.contiguous_id_to_json == {0: 1, 1: 5, 2: 9}
    assert ds.json_id_to_contiguous == {1: 0, 5: 1, 9: 2}
    assert ds.image_ids == sorted(im["id"] for im in raw["images"])
    by_img = {}
    for a in raw["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    for i in range(len(ds)):
        img, label = ds[i]
        entry = next(e for e in raw["images"] if e["id"] == ds.image_id(i))
        assert img.shape == (entry["height"], entry["width"], 3) and img.dtype == np.uint8
        assert ds.image_path(i) == tmp_path / "val2017" / entry["file_name"]
        expect = [xywh_to_gluon_xyxy(a["bbox"], entry["width"], entry["height"])
                  + [ds.json_id_to_contiguous[a["category_id"]]]
                  for a in by_img.get(entry["id"], [])]
        np.testing.assert_array_equal(label, np.array(expect).reshape(-1, 5))
    assert ds.label(1).shape == (0, 5)
    assert len(COCODetection(tmp_path, skip_empty=True)) == 5
    n_all = sum(len(ds.label(i)) for i in range(len(ds)))
    n_nocrowd = sum(len(x.label(i)) for x in [COCODetection(tmp_path, use_crowd=False)]
                    for i in range(len(x)))
    assert n_nocrowd == n_all - 1


def test_custom_json_and_image_folder(tmp_path):
    write_coco(tmp_path / "src", split="imgs")
    ds = COCODetection(tmp_path / "src" / "imgs",
                       annotation_file=tmp_path / "src" / "annotations" / "instances_imgs.json")
    assert len(ds) == 6 and ds[0][0].ndim == 3


def test_json_without_annotations(tmp_path):
    path = write_coco(tmp_path, drop_keys=("annotations",))
    with pytest.raises(ValueError, match=rf"{path.name}: COCO json has no 'annotations'"):
        COCODetection(tmp_path)


def test_malformed_json(tmp_path):
    path = write_coco(tmp_path)
    path.write_text('{"images": [')
    with pytest.raises(ValueError, match="malformed json"):
        COCODetection(tmp_path)


def test_missing_image(tmp_path):
    write_coco(tmp_path)
    victim = sorted((tmp_path / "val2017").glob("*.jpg"))[2]
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.name):
        COCODetection(tmp_path)


def test_unknown_category(tmp_path):
    write_coco(tmp_path, extra=[{"id": 999, "image_id": 1000, "category_id": 4,
                                 "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0}])
    with pytest.raises(ValueError, match=r"annotation id 999 .*unknown category_id 4"):
        COCODetection(tmp_path)


@pytest.mark.parametrize("bbox, msg", [([5, 5, -3, 10], "negative width"),
                                       ([500, 5, 10, 10], "entirely outside")])
def test_unfixable_boxes(tmp_path, bbox, msg):
    write_coco(tmp_path, extra=[{"id": 999, "image_id": 1000, "category_id": 5,
                                 "bbox": bbox, "area": 100, "iscrowd": 0}])
    with pytest.raises(ValueError, match=rf"000000001000\.jpg annotation id 999: .*{msg}"):
        COCODetection(tmp_path)
    with pytest.warns(UserWarning, match="annotation id 999"):
        COCODetection(tmp_path, strict=False)


def test_fixable_boxes_warn(tmp_path):
    write_coco(tmp_path, extra=[
        {"id": 998, "image_id": 1000, "category_id": 5, "bbox": [-4, 2, 30, 20],
         "area": 600, "iscrowd": 0},                                    # clipped
        {"id": 999, "image_id": 1000, "category_id": 5, "bbox": [5, 5, 0.5, 10],
         "area": 5, "iscrowd": 0}])                                     # degenerate
    with pytest.warns(UserWarning, match=r"2 boxes adjusted.*id 998: clipped.*id 999: empty"):
        ds = COCODetection(tmp_path)
    label = ds.label(0)
    np.testing.assert_array_equal(label[-1], [0, 2, 25, 21, 1])
