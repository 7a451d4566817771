"""COCO detection reader (Gluon-CV compatible) via pycocotools, for COCO and custom json.

Label rows are ``[xmin, ymin, xmax, ymax, class_id]`` (float64, pixels) built like
``gluoncv.data.COCODetection``: json ``[x, y, w, h]`` -> ``x2 = x + max(w - 1, 0)`` (integer
pixel convention), clipped to ``[0, W-1] x [0, H-1]``; kept when ``area > 0`` and the box is
non-empty; class ids are contiguous 0..C-1 in order of sorted json category ids
(``contiguous_id_to_json`` maps back).  Crowd boxes are kept by default (``use_crowd``),
objects with ``ignore: 1`` are skipped, as in Gluon-CV.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Union

import numpy as np

from ._image import read_image_rgb

__all__ = ["COCODetection"]


class COCODetection:
    """COCO-format detection dataset: ``ds[i] -> (image_rgb_uint8_hwc, label_float64_k5)``.

    Parameters
    ----------
    root : COCO folder (``annotations/instances_<split>.json`` + ``<split>/`` images); for
        custom data, the image folder when ``annotation_file`` is given.
    split : e.g. ``"val2017"``, ``"train2014"``; used for the default paths only.
    annotation_file : a COCO-format json (default ``root/annotations/instances_<split>.json``).
    image_dir : folder the json ``file_name`` s are relative to (default ``root/<split>``,
        or ``root`` when ``annotation_file`` is given).
    min_object_area, use_crowd : as Gluon-CV (0, True).
    skip_empty : drop images without a valid object (training); default False keeps every
        image (their label is an empty (0, 5) array), which evaluation needs.
    strict : a box with negative width/height or entirely outside its image raises
        ``ValueError`` (False: dropped with a warning).  Boxes clipped to the image or dropped
        as degenerate (Gluon-CV rules) are reported in one summary warning.
    check_images : verify at construction that every image file exists.
    """

    def __init__(self, root: Union[str, os.PathLike], split: str = "val2017",
                 annotation_file: Optional[Union[str, os.PathLike]] = None,
                 image_dir: Optional[Union[str, os.PathLike]] = None,
                 transform: Optional[Callable] = None, min_object_area: float = 0,
                 skip_empty: bool = False, use_crowd: bool = True, strict: bool = True,
                 check_images: bool = True):
        root = Path(os.path.expanduser(os.fspath(root)))
        if annotation_file is None:
            annotation_file = root / "annotations" / f"instances_{split}.json"
            image_dir = image_dir if image_dir is not None else root / split
        else:
            image_dir = image_dir if image_dir is not None else root
        self.annotation_file = Path(annotation_file)
        self.image_dir = Path(image_dir)
        self._transform = transform
        self._min_area = min_object_area
        self._use_crowd = use_crowd
        self._strict = strict
        self.coco = self._load_json(self.annotation_file)
        cat_ids = sorted(self.coco.getCatIds())
        self.json_id_to_contiguous = {c: i for i, c in enumerate(cat_ids)}
        self.contiguous_id_to_json = {i: c for i, c in enumerate(cat_ids)}
        self._classes = tuple(self.coco.cats[c]["name"] for c in cat_ids)
        self._notes: List[str] = []
        self._entries, self._labels = [], []
        for entry in self.coco.loadImgs(sorted(self.coco.getImgIds())):
            path = self.image_dir / entry["file_name"]
            if check_images and not path.is_file():
                raise FileNotFoundError(f"missing image {path} (image id {entry['id']} in "
                                        f"{self.annotation_file})")
            label = self._load_label(entry)
            if skip_empty and not len(label):
                continue
            self._entries.append(entry)
            self._labels.append(label)
        if self._notes:
            more = f" (+{len(self._notes) - 5} more)" if len(self._notes) > 5 else ""
            warnings.warn(f"{self.annotation_file}: {len(self._notes)} boxes adjusted as "
                          f"Gluon-CV does: " + "; ".join(self._notes[:5]) + more, stacklevel=2)

    # -------------------------------------------------------------- loading
    @staticmethod
    def _load_json(path: Path):
        from pycocotools.coco import COCO
        if not path.is_file():
            raise FileNotFoundError(f"missing annotation file {path}")
        try:
            with open(path) as f:
                dataset = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: malformed json ({e})") from None
        for key in ("images", "annotations", "categories"):
            if not isinstance(dataset.get(key), list):
                raise ValueError(f"{path}: COCO json has no {key!r} list")
        cats = {c["id"] for c in dataset["categories"]}
        for ann in dataset["annotations"]:
            if ann.get("category_id") not in cats:
                raise ValueError(f"{path}: annotation id {ann.get('id')} (image "
                                 f"{ann.get('image_id')}) has unknown category_id "
                                 f"{ann.get('category_id')!r}")
        coco = COCO()
        coco.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco

    def _load_label(self, entry: dict) -> np.ndarray:
        width, height = entry["width"], entry["height"]
        rows = []
        for obj in self.coco.imgToAnns.get(entry["id"], []):
            what = f"{entry['file_name']} annotation id {obj.get('id')}"
            if obj.get("area", 1) < self._min_area or obj.get("ignore", 0) == 1:
                continue
            if not self._use_crowd and obj.get("iscrowd", 0):
                continue
            try:
                x, y, w, h = (float(v) for v in obj["bbox"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{what}: missing or invalid 'bbox' {obj.get('bbox')!r}") \
                    from None
            problem = None
            if w < 0 or h < 0:
                problem = f"bbox {obj['bbox']} has negative width/height (x2 < x1)"
            elif x >= width or y >= height or x + w <= 0 or y + h <= 0:
                problem = f"bbox {obj['bbox']} is entirely outside the {width}x{height} image"
            if problem:
                if self._strict:
                    raise ValueError(f"{what}: {problem} (strict=False drops it)")
                self._notes.append(f"{what}: {problem}, dropped")
                continue
            x2, y2 = x + max(w - 1, 0), y + max(h - 1, 0)
            xmin, ymin = min(width - 1, max(0, x)), min(height - 1, max(0, y))
            xmax, ymax = min(width - 1, max(0, x2)), min(height - 1, max(0, y2))
            if obj.get("area", 1) > 0 and xmax > xmin and ymax > ymin:
                if (xmin, ymin, xmax, ymax) != (x, y, x2, y2):
                    self._notes.append(f"{what}: clipped to the image")
                rows.append([xmin, ymin, xmax, ymax,
                             self.json_id_to_contiguous[obj["category_id"]]])
            else:
                self._notes.append(f"{what}: empty after conversion, dropped")
        return np.array(rows, np.float64).reshape(-1, 5)

    # ------------------------------------------------------------- metadata
    @property
    def classes(self) -> Tuple[str, ...]:
        """Category names in contiguous-id order."""
        return self._classes

    @property
    def num_class(self) -> int:
        return len(self._classes)

    @property
    def image_ids(self) -> List[int]:
        return [e["id"] for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.annotation_file.name}, n={len(self)})"

    def image_id(self, idx: int) -> int:
        """COCO image id (what ``COCODetectionMetric.update`` takes)."""
        return self._entries[idx]["id"]

    def image_path(self, idx: int) -> Path:
        return self.image_dir / self._entries[idx]["file_name"]

    def image_size(self, idx: int) -> Tuple[int, int]:
        """(width, height) from the json."""
        e = self._entries[idx]
        return e["width"], e["height"]

    def label(self, idx: int) -> np.ndarray:
        """(K, 5) float64 ``[xmin, ymin, xmax, ymax, class_id]`` without the image."""
        return self._labels[idx].copy()

    def __getitem__(self, idx: int):
        img = read_image_rgb(self.image_path(idx))
        label = self.label(idx)
        if self._transform is not None:
            return self._transform(img, label)
        return img, label
