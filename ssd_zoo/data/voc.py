"""Pascal VOC detection reader (Gluon-CV compatible) for VOCdevkit trees and custom data.

Label rows are ``[xmin, ymin, xmax, ymax, class_id, difficult]`` (float32, pixels) with the
XML's 1-based coordinates shifted by -1, exactly like ``gluoncv.data.VOCDetection``.
Images are HxWx3 uint8 RGB decoded with OpenCV (what ``mx.image.imread`` does inside).
"""
from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._image import read_image_rgb

__all__ = ["VOCDetection", "VOC_CLASSES"]

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
               'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')


class VOCDetection:
    """Pascal VOC detection dataset: ``ds[i] -> (image_rgb_uint8_hwc, label_float32_k6)``.

    Parameters
    ----------
    root : the ``VOCdevkit`` folder (holding ``VOC2007``/``VOC2012``), or for custom data a
        folder in VOC layout (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``).
    splits : ``(subfolder, name)`` pairs; an int subfolder ``y`` means ``VOC{y}``, a string is
        a folder under ``root``, ``None`` or ``""`` is ``root`` itself (custom data).
        ``name`` is any ``ImageSets/Main/<name>.txt``.
    transform : optional ``transform(image, label) -> sample`` (Gluon style).
    classes : class names (default the 20 VOC classes, Gluon order); XML names are matched
        case-insensitively after stripping white space, as Gluon-CV does.
    unknown_class : what to do with an object whose name is not in ``classes``:
        ``"error"`` (default), ``"warn"`` (skip with a warning) or ``"ignore"`` (skip, which is
        Gluon-CV's behaviour; useful for training on a subset of classes).
    strict : True (default): a box with xmax <= xmin / ymax <= ymin, or entirely outside the
        image, raises ``ValueError``; a box partly outside the image is dropped (Gluon-CV) or,
        with ``clip_boxes=True``, clipped, with a warning.  False: every invalid box is
        dropped with a warning (exactly Gluon-CV).
    check_images : verify at construction that every image file exists.
    """
    CLASSES = VOC_CLASSES

    def __init__(self, root: Union[str, os.PathLike],
                 splits: Iterable[Tuple[Union[int, str, None], str]] = ((2007, "test"),),
                 transform: Optional[Callable] = None, classes: Optional[Sequence[str]] = None,
                 unknown_class: str = "error", strict: bool = True, clip_boxes: bool = False,
                 check_images: bool = True, preload_label: bool = True,
                 image_ext: str = ".jpg"):
        if unknown_class not in ("error", "warn", "ignore"):
            raise ValueError(f"unknown_class must be error|warn|ignore, got {unknown_class!r}")
        self._root = Path(os.path.expanduser(os.fspath(root)))
        self._splits = tuple((s, n) for s, n in splits)
        self._transform = transform
        self._classes = tuple(classes) if classes is not None else tuple(self.CLASSES)
        keys = [c.strip().lower() for c in self._classes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate class names: {self._classes}")
        self.index_map = {k: i for i, k in enumerate(keys)}
        self._unknown = unknown_class
        self._strict = strict
        self._clip = clip_boxes
        self._ext = image_ext
        self._items = self._load_items()
        self._sizes: dict = {}
        if check_images:
            for i in range(len(self._items)):
                path = self.image_path(i)
                if not path.is_file():
                    raise FileNotFoundError(f"missing image {path} (listed for "
                                            f"{self.annotation_path(i)})")
        self._label_cache = [self._load_label(i) for i in range(len(self))] \
            if preload_label else None

    # ------------------------------------------------------------- metadata
    @property
    def classes(self) -> Tuple[str, ...]:
        """Category names, index = class id."""
        return self._classes

    @property
    def num_class(self) -> int:
        return len(self._classes)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        detail = ",".join(f"{s}{n}" for s, n in self._splits)
        return f"{type(self).__name__}({detail}, n={len(self)})"

    def image_id(self, idx: int) -> str:
        """The image's name in the split file, e.g. ``"000001"``."""
        return self._items[idx][1]

    def image_path(self, idx: int) -> Path:
        folder, name = self._items[idx]
        return folder / "JPEGImages" / f"{name}{self._ext}"

    def annotation_path(self, idx: int) -> Path:
        folder, name = self._items[idx]
        return folder / "Annotations" / f"{name}.xml"

    def image_size(self, idx: int) -> Tuple[int, int]:
        """(width, height) from the XML ``<size>``."""
        if idx not in self._sizes:
            self._load_label(idx)
        return self._sizes[idx]

    def label(self, idx: int) -> np.ndarray:
        """(K, 6) float32 ``[xmin, ymin, xmax, ymax, class_id, difficult]`` without the image."""
        lab = self._label_cache[idx] if self._label_cache is not None else self._load_label(idx)
        return lab.copy()

    def __getitem__(self, idx: int):
        img = read_image_rgb(self.image_path(idx))
        label = self.label(idx)
        if self._transform is not None:
            return self._transform(img, label)
        return img, label

    # -------------------------------------------------------------- parsing
    def _load_items(self) -> List[Tuple[Path, str]]:
        items = []
        for sub, name in self._splits:
            if sub is None or sub == "":
                folder = self._root
            elif isinstance(sub, int):
                folder = self._root / f"VOC{sub}"
            else:
                folder = self._root / str(sub)
            split_file = folder / "ImageSets" / "Main" / f"{name}.txt"
            if not split_file.is_file():
                raise FileNotFoundError(f"split file not found: {split_file}")
            with open(split_file) as f:
                items += [(folder, line.split()[0]) for line in f if line.strip()]
        return items

    def _load_label(self, idx: int) -> np.ndarray:
        path = self.annotation_path(idx)
        if not path.is_file():
            raise FileNotFoundError(f"missing annotation {path}")
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            raise ValueError(f"{path}: malformed XML ({e})") from None
        size = root.find("size")
        try:
            width = float(size.find("width").text)
            height = float(size.find("height").text)
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"{path}: missing or invalid <size><width>/<height>") from None
        self._sizes[idx] = (int(width), int(height))
        rows = []
        for k, obj in enumerate(root.iter("object")):
            row = self._parse_object(path, k, obj, width, height)
            if row is not None:
                rows.append(row)
        return np.array(rows, np.float32).reshape(-1, 6)

    def _parse_object(self, path, k, obj, width, height):
        """One ``<object>`` -> row or None (skipped); raises on unfixable input."""
        name_el = obj.find("name")
        if name_el is None or not (name_el.text or "").strip():
            raise ValueError(f"{path}: object #{k} has no <name>")
        cls_name = name_el.text.strip().lower()
        what = f"{path}: object #{k} ({cls_name!r})"
        if cls_name not in self.index_map:
            msg = f"{what}: class not in {list(self._classes)}"
            if self._unknown == "error":
                raise ValueError(msg + " (pass unknown_class='ignore' to skip such objects)")
            if self._unknown == "warn":
                warnings.warn(msg + "; skipped", stacklevel=3)
            return None
        try:
            difficult = int(obj.find("difficult").text)
        except (AttributeError, TypeError, ValueError):
            difficult = 0
        box = obj.find("bndbox")
        try:
            xmin, ymin, xmax, ymax = (float(box.find(t).text) - 1
                                      for t in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"{what}: missing or invalid <bndbox>") from None
        box_txt = f"box (0-based) [{xmin:g}, {ymin:g}, {xmax:g}, {ymax:g}]"
        inside = 0 <= xmin < width and 0 <= ymin < height and xmax <= width and ymax <= height
        if xmin < xmax and ymin < ymax and inside:
            return [xmin, ymin, xmax, ymax, self.index_map[cls_name], difficult]
        if xmax <= xmin or ymax <= ymin:
            problem = "has xmax <= xmin or ymax <= ymin"
        elif xmin >= width or ymin >= height or xmax <= 0 or ymax <= 0:
            problem = f"is entirely outside the {width:g}x{height:g} image"
        else:
            problem = f"extends outside the {width:g}x{height:g} image"
            if self._clip:
                warnings.warn(f"{what}: {box_txt} {problem}; clipped", stacklevel=3)
                xmin, ymin = max(xmin, 0.0), max(ymin, 0.0)
                xmax, ymax = min(xmax, width), min(ymax, height)
                return [xmin, ymin, xmax, ymax, self.index_map[cls_name], difficult]
            warnings.warn(f"{what}: {box_txt} {problem}; dropped (as Gluon-CV does; "
                          "clip_boxes=True clips it instead)", stacklevel=3)
            return None
        if self._strict:
            raise ValueError(f"{what}: {box_txt} {problem} (strict=False drops it)")
        warnings.warn(f"{what}: {box_txt} {problem}; dropped", stacklevel=3)
        return None
