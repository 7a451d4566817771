"""VOC reader: parity with gluoncv on a generated VOCdevkit, custom layout, bad input."""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from ssd_zoo.data import VOC_CLASSES, VOCDetection
from tests.refrun import run_ref


# ----------------------------------------------------------------- helpers
def write_voc(folder: Path, split: str, images: dict, size=(64, 48)):
    """images: name -> list of (cls, difficult, x1, y1, x2, y2) in XML (1-based) coords.
    Writes real JPEGs, XMLs and ImageSets/Main/<split>.txt under ``folder``."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.RandomState(len(images))
    for name, objs in images.items():
        cv2.imwrite(str(folder / "JPEGImages" / f"{name}.jpg"),
                    rng.randint(0, 256, (h, w, 3)).astype(np.uint8))
        xml = "".join(
            f"<object><name>{c}</name><difficult>{d}</difficult><bndbox><xmin>{x1}</xmin>"
            f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            for c, d, x1, y1, x2, y2 in objs)
        (folder / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth>"
            f"</size>{xml}</annotation>")
    (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(images) + "\n")


# ------------------------------------------------------------------ parity
@pytest.mark.parity
def test_parity_with_gluoncv_reader(ref_python):
    out = run_ref(ref_python, "voc_data_ref.py", {"seed": 3})
    ref = np.load(out / "gluoncv.npz")
    with pytest.warns(UserWarning, match=r"object #\d+ \('dog'\).*extends outside"):
        ds = VOCDetection(out / "VOCdevkit", splits=((2007, "test"), (2012, "val")))
    assert len(ds) == int(ref["n"]) == 7
    n_obj = 0
    for i in range(len(ds)):
        img, label = ds[i]
        assert label.dtype == np.float32 and label.shape[1] == 6
        np.testing.assert_array_equal(label, ref[f"label_{i}"])
        assert img.dtype == np.uint8 and img.shape == ref[f"image_{i}"].shape
        np.testing.assert_array_equal(img, ref[f"image_{i}"])   # same OpenCV decode path
        n_obj += len(label)
    assert n_obj > 5
    assert ds.image_id(4) == "2012_000001"
    assert ds.image_path(4) == out / "VOCdevkit" / "VOC2012" / "JPEGImages" / "2012_000001.jpg"
    assert ds.classes == VOC_CLASSES == VOCDetection.CLASSES
    assert ds.image_size(0) == tuple(ref["image_0"].shape[1::-1])


# ------------------------------------------------------------ behaviour
def test_labels_minus_one_and_difficult(tmp_path):
    write_voc(tmp_path / "VOC2007", "test", {
        "a": [("dog", 0, 1, 1, 10, 20), ("Person", 1, 5, 6, 64, 48)],
        "b": []})
    ds = VOCDetection(tmp_path)
    img, label = ds[0]
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(label, [[0, 0, 9, 19, 11, 0], [4, 5, 63, 47, 14, 1]])
    assert ds.label(1).shape == (0, 6)
    assert len(ds) == 2 and ds.image_id(1) == "b"


def test_custom_layout_and_transform(tmp_path):
    write_voc(tmp_path, "train", {"x1": [("widget", 0, 2, 2, 30, 30)],
                                  "x2": [("gadget", 1, 3, 4, 20, 40)]})
    seen = []
    ds = VOCDetection(tmp_path, splits=((None, "train"),), classes=["gadget", "widget"],
                      transform=lambda im, lab: seen.append(im.shape) or lab)
    np.testing.assert_array_equal(ds[0], [[1, 1, 29, 29, 1, 0]])
    np.testing.assert_array_equal(ds[1], [[2, 3, 19, 39, 0, 1]])
    assert seen == [(48, 64, 3)] * 2 and ds.classes == ("gadget", "widget")
    # same folder as a named subfolder split
    ds2 = VOCDetection(tmp_path.parent, splits=((tmp_path.name, "train"),),
                       classes=["gadget", "widget"])
    assert len(ds2) == 2


def test_missing_image(tmp_path):
    write_voc(tmp_path / "VOC2007", "test", {"a": [("dog", 0, 1, 1, 10, 10)]})
    (tmp_path / "VOC2007" / "JPEGImages" / "a.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"JPEGImages/a\.jpg"):
        VOCDetection(tmp_path)
    ds = VOCDetection(tmp_path, check_images=False)
    with pytest.raises(FileNotFoundError, match=r"a\.jpg"):
        ds[0]


def test_undecodable_image(tmp_path):
    write_voc(tmp_path / "VOC2007", "test", {"a": [("dog", 0, 1, 1, 10, 10)]})
    (tmp_path / "VOC2007" / "JPEGImages" / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"a\.jpg: not a decodable image"):
        VOCDetection(tmp_path)[0]


def test_malformed_xml(tmp_path):
    write_voc(tmp_path / "VOC2007", "test", {"a": [("dog", 0, 1, 1, 10, 10)]})
    (tmp_path / "VOC2007" / "Annotations" / "a.xml").write_text("<annotation><size>")
    with pytest.raises(ValueError, match=r"Annotations/a\.xml: malformed XML"):
        VOCDetection(tmp_path)


def test_missing_annotation_and_split(tmp_path):
    write_voc(tmp_path / "VOC2007", "test", {"a": []})
    (tmp_path / "VOC2007" / "Annotations" / "a.xml").unlink()
    with pytest.raises(FileNotFoundError, match=r"a\.xml"):
        VOCDetection(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"Main/val\.txt"):
        VOCDetection(tmp_path, splits=((2007, "val"),))


def test_unknown_class(tmp_path):
    write_voc(tmp_path / "VOC2007", "test", {"a": [("dog", 0, 1, 1, 10, 10),
                                                   ("unicorn", 0, 2, 2, 9, 9)]})
    with pytest.raises(ValueError, match=r"a\.xml: object #1 \('unicorn'\): class not in"):
        VOCDetection(tmp_path)
    with pytest.warns(UserWarning, match="unicorn"):
        ds = VOCDetection(tmp_path, unknown_class="warn")
    assert len(ds.label(0)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(VOCDetection(tmp_path, unknown_class="ignore").label(0)) == 1


@pytest.mark.parametrize("box, msg", [
    ((10, 5, 5, 20), "xmax <= xmin"),
    ((5, 20, 15, 20), "ymax <= ymin"),
    ((70, 5, 80, 20), "entirely outside"),
])
def test_unfixable_box_is_an_error(tmp_path, box, msg):
    write_voc(tmp_path / "VOC2007", "test", {"a": [("dog", 0, 1, 1, 10, 10),
                                                   ("cat", 0, *box)]})
    with pytest.raises(ValueError, match=rf"a\.xml: object #1 \('cat'\).*{msg}"):
        VOCDetection(tmp_path)
    with pytest.warns(UserWarning, match="dropped"):
        ds = VOCDetection(tmp_path, strict=False)            # Gluon-CV behaviour
    assert len(ds.label(0)) == 1


def test_box_partly_outside_dropped_or_clipped(tmp_path):
    write_voc(tmp_path / "VOC2007", "test", {"a": [("cat", 0, 0, 5, 70, 20)]})  # xmin -1
    with pytest.warns(UserWarning, match=r"a\.xml: object #0 \('cat'\).*extends outside"):
        assert VOCDetection(tmp_path).label(0).shape == (0, 6)
    with pytest.warns(UserWarning, match="clipped"):
        label = VOCDetection(tmp_path, clip_boxes=True).label(0)
    np.testing.assert_array_equal(label, [[0, 4, 64, 19, 7, 0]])


def test_missing_bndbox_and_size(tmp_path):
    write_voc(tmp_path / "VOC2007", "test", {"a": []})
    xml = tmp_path / "VOC2007" / "Annotations" / "a.xml"
    xml.write_text("<annotation><size><width>64</width><height>48</height></size>"
                   "<object><name>dog</name></object></annotation>")
    with pytest.raises(ValueError, match=r"a\.xml: object #0 \('dog'\): missing or invalid"):
        VOCDetection(tmp_path)
    xml.write_text("<annotation></annotation>")
    with pytest.raises(ValueError, match=r"a\.xml: missing or invalid <size>"):
        VOCDetection(tmp_path)
