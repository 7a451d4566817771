"""Which data to evaluate on: ``voc`` | ``coco`` | a custom path, resolved to a reader.

* ``voc``: VOC2007 ``test`` of a VOCdevkit (``--data-root``, default
  ``~/.ssd_zoo/datasets/voc``; the folder holding ``VOCdevkit`` or ``VOCdevkit`` itself).
* ``coco``: ``annotations/instances_<split>.json`` + ``<split>/`` (default split val2017)
  under ``--data-root`` (default ``~/.ssd_zoo/datasets/coco``).
* a folder in VOC layout (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``,
  split default ``test``), or a COCO-format ``.json`` whose images are in ``--data-root``
  (default: the json's folder).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

from .errors import EvalError

DEFAULT_VOC_ROOT = "~/.ssd_zoo/datasets/voc"
DEFAULT_COCO_ROOT = "~/.ssd_zoo/datasets/coco"


@dataclass(frozen=True)
class DatasetSpec:
    """A resolved ``--dataset``: ``fmt`` is the reader ('voc' | 'coco'); ``standard`` is
    True for the VOC07 test / COCO benchmark sets (the catalog's numbers apply)."""
    name: str                 # 'voc', 'coco' or the custom folder / json name
    fmt: str                  # 'voc' | 'coco'
    standard: bool
    root: Path                # VOCdevkit / VOC-layout folder / COCO root or json
    split: str
    image_dir: Optional[Path] = None
    annotation_file: Optional[Path] = None

    @property
    def model_suffix(self) -> str:
        """Suffix of zoo names for this data: ``voc``, ``coco`` or ``custom``."""
        return self.name if self.standard else "custom"


def _expand(p) -> Path:
    return Path(os.path.expanduser(os.fspath(p)))


def resolve_dataset(dataset: str, data_root: Optional[str] = None,
                    split: Optional[str] = None) -> DatasetSpec:
    """Check paths exist and decide the reader; raises EvalError with a hint otherwise."""
    key = dataset.strip().lower()
    if key == "voc":
        root = _expand(data_root or DEFAULT_VOC_ROOT)
        if (root / "VOCdevkit").is_dir():
            root = root / "VOCdevkit"
        split = split or "test"
        split_file = root / "VOC2007" / "ImageSets" / "Main" / f"{split}.txt"
        if not split_file.is_file():
            raise EvalError(f"VOC data not found: {split_file} does not exist (pass --data-root "
                            "DIR holding VOCdevkit/VOC2007; scripts/download_voc.py fetches it)")
        return DatasetSpec("voc", "voc", True, root, split)
    if key == "coco":
        root = _expand(data_root or DEFAULT_COCO_ROOT)
        split = split or "val2017"
        ann = root / "annotations" / f"instances_{split}.json"
        if not ann.is_file():
            raise EvalError(f"COCO data not found: {ann} does not exist (pass --data-root DIR "
                            "holding annotations/ and the images; scripts/download_coco.py "
                            "fetches them)")
        images = root / split
        if not images.is_dir():
            raise EvalError(f"COCO image folder not found: {images}")
        return DatasetSpec("coco", "coco", True, root, split, images, ann)
    path = _expand(dataset)
    if not path.exists():
        raise EvalError(f"--dataset must be voc, coco or an existing VOC-layout folder / COCO "
                        f"json; {path} does not exist")
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise EvalError(f"{path}: a custom dataset file must be a COCO-format .json")
        images = _expand(data_root) if data_root else path.parent
        if not images.is_dir():
            raise EvalError(f"image folder not found: {images} (--data-root)")
        return DatasetSpec(path.stem, "coco", False, path, split or "", images, path)
    if (path / "Annotations").is_dir():
        split = split or "test"
        split_file = path / "ImageSets" / "Main" / f"{split}.txt"
        if not split_file.is_file():
            raise EvalError(f"split file not found: {split_file} (choose one with --split)")
        return DatasetSpec(path.name, "voc", False, path, split)
    raise EvalError(f"{path} is not a VOC-layout folder (Annotations/, JPEGImages/, "
                    "ImageSets/Main/) nor a COCO-format .json")


def parse_classes(value) -> Optional[Tuple[str, ...]]:
    """``--classes``: a list, a comma-separated string, or a text file with one name a line."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        names = [str(v).strip() for v in value]
    elif os.path.isfile(os.path.expanduser(value)):
        with open(os.path.expanduser(value)) as f:
            names = [line.strip() for line in f]
    else:
        names = [v.strip() for v in str(value).split(",")]
    names = [n for n in names if n]
    if not names:
        raise EvalError("--classes is empty")
    if len({n.lower() for n in names}) != len(names):
        raise EvalError(f"--classes has duplicate names: {names}")
    return tuple(names)


def open_dataset(spec: DatasetSpec, classes: Optional[Sequence[str]]):
    """The reader for ``spec``; ``classes`` (VOC layout only) name the class ids.

    Reader errors (missing image, malformed XML/json, unknown class...) become EvalError.
    """
    try:
        if spec.fmt == "voc":
            from ..data import VOCDetection
            splits = ((2007, spec.split),) if spec.standard else ((None, spec.split),)
            return VOCDetection(spec.root, splits=splits, classes=classes)
        from ..data.coco import COCODetection
        return COCODetection(spec.image_dir, annotation_file=spec.annotation_file)
    except (OSError, ValueError, KeyError) as e:
        raise EvalError(str(e)) from None


def same_classes(a: Sequence[str], b: Sequence[str]) -> bool:
    """Equal class lists up to case and surrounding white space."""
    return [x.strip().lower() for x in a] == [x.strip().lower() for x in b]
