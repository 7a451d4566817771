"""COCO box AP via pycocotools' COCOeval, with Gluon-CV's conventions for detections.

Detections arrive per image as ``boxes_xyxy`` in original-image pixels with contiguous labels
0..C-1 (C = number of categories in the annotation file, sorted by json category id, the
same mapping as ``ssd_zoo.data.COCODetection``).  They are written as official COCO results
(``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``) with Gluon-CV's
integer-pixel width ``w = x2 - x1 + 1`` (``wh_offset=1.0``), the inverse of the dataset
reader's ``x2 = x + w - 1``; so ground truth fed back as detections reproduces the json boxes.
Like Gluon-CV's metric, detections scoring below ``score_thresh`` (0.05) are dropped.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Dict, List, Union

import numpy as np

from ..atomic import atomic_write_bytes
from .voc import _as_numpy

__all__ = ["COCODetectionMetric", "COCO_STAT_NAMES"]

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
                   "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _load_coco(annotation):
    from pycocotools.coco import COCO
    if isinstance(annotation, COCO):
        return annotation
    path = os.fspath(annotation)
    with open(path) as f:
        dataset = json.load(f)
    if "annotations" not in dataset:
        raise ValueError(f"{path}: COCO json has no 'annotations' list; a ground-truth "
                         "annotation file is needed for evaluation")
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


class COCODetectionMetric:
    """Collect detections per image, then evaluate them with pycocotools.

    Parameters
    ----------
    annotation_file : path to a COCO-format ground-truth json, or a ``pycocotools.coco.COCO``.
    score_thresh : detections with score < this are dropped (Gluon-CV: 0.05).
    wh_offset : ``w = x2 - x1 + wh_offset`` when converting to COCO xywh (Gluon-CV: 1.0).
    """

    def __init__(self, annotation_file: Union[str, os.PathLike, object],
                 score_thresh: float = 0.05, wh_offset: float = 1.0):
        self.coco = _load_coco(annotation_file)
        self.score_thresh = float(score_thresh)
        self.wh_offset = float(wh_offset)
        cat_ids = sorted(self.coco.getCatIds())
        self.contiguous_id_to_json = {i: c for i, c in enumerate(cat_ids)}
        self.json_id_to_contiguous = {c: i for i, c in enumerate(cat_ids)}
        self.class_names = [self.coco.cats[c]["name"] for c in cat_ids]
        self._cat_ids = np.array(cat_ids, np.int64)
        self._img_ids = set(self.coco.getImgIds())
        self.coco_eval = None
        self.reset()

    def reset(self) -> None:
        """Forget all detections."""
        self._rows: List[np.ndarray] = []       # (K, 7): image_id, x, y, w, h, score, cat
        self._seen_images: set = set()

    # ------------------------------------------------------------------ input
    def update(self, image_id: int, boxes_xyxy, labels, scores) -> None:
        """Add the detections of one image.

        image_id : the COCO image id (``COCODetection.image_id(i)``).
        boxes_xyxy : (N, 4) pixels of the original image; labels : (N,) or (N, 1) contiguous
        ids, rows with label < 0 are padding; scores : (N,) or (N, 1).
        """
        image_id = int(image_id)
        if image_id not in self._img_ids:
            raise KeyError(f"image_id {image_id} is not in the annotation file")
        if image_id in self._seen_images:
            raise ValueError(f"image_id {image_id} was already updated")
        self._seen_images.add(image_id)
        boxes = np.asarray(_as_numpy(boxes_xyxy), np.float64).reshape(-1, 4)
        labels = _as_numpy(labels).reshape(-1)
        scores = np.asarray(_as_numpy(scores), np.float64).reshape(-1)
        if not len(boxes) == len(labels) == len(scores):
            raise ValueError(f"image {image_id}: {len(boxes)} boxes, {len(labels)} labels, "
                             f"{len(scores)} scores")
        keep = (labels >= 0) & (scores >= self.score_thresh)
        labels = labels.astype(np.int64)
        keep &= labels < len(self._cat_ids)        # Gluon-CV ignores unknown classes
        boxes, labels, scores = boxes[keep], labels[keep], scores[keep]
        rows = np.empty((len(boxes), 7), np.float64)
        rows[:, 0] = image_id
        rows[:, 1:3] = boxes[:, :2]
        rows[:, 3:5] = boxes[:, 2:] - (boxes[:, :2] - self.wh_offset)
        rows[:, 5] = scores
        rows[:, 6] = self._cat_ids[labels]
        self._rows.append(rows)

    def state(self) -> dict:
        """Detections so far as arrays (picklable, gatherable across ranks)."""
        rows = np.concatenate(self._rows) if self._rows else np.zeros((0, 7))
        self._rows = [rows]
        return {"rows": rows, "image_ids": np.array(sorted(self._seen_images), np.int64)}

    def merge(self, state: dict) -> None:
        """Add another metric's ``state()``; each image must come from one shard only."""
        ids = {int(i) for i in state["image_ids"]}
        dup = ids & self._seen_images
        if dup:
            raise ValueError(f"images evaluated in two shards: {sorted(dup)[:10]}")
        self._seen_images |= ids
        self._rows.append(np.asarray(state["rows"], np.float64).reshape(-1, 7))

    # ----------------------------------------------------------------- output
    def results(self) -> List[dict]:
        """Official COCO results list, ordered by image id (stable within an image)."""
        rows = self.state()["rows"]
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        return [{"image_id": int(r[0]), "category_id": int(r[6]),
                 "bbox": [float(r[1]), float(r[2]), float(r[3]), float(r[4])],
                 "score": float(r[5])} for r in rows]

    def write_results_json(self, path: Union[str, os.PathLike]) -> None:
        """Write ``results()`` to ``path`` (atomic: temp file + rename)."""
        atomic_write_bytes(path, json.dumps(self.results()).encode())

    def evaluate(self):
        """Run COCOeval (evaluate + accumulate); returns the COCOeval object."""
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        results = self.results()
        with contextlib.redirect_stdout(io.StringIO()):
            if results:
                coco_dt = self.coco.loadRes(results)
            else:  # loadRes cannot take an empty list
                coco_dt = COCO()
                coco_dt.dataset = {"images": list(self.coco.dataset["images"]),
                                   "categories": list(self.coco.dataset["categories"]),
                                   "annotations": []}
                coco_dt.createIndex()
            coco_eval = COCOeval(self.coco, coco_dt, "bbox")
            coco_eval.evaluate()
            coco_eval.accumulate()
        self.coco_eval = coco_eval
        return coco_eval

    def summarize(self, verbose: bool = False) -> Dict[str, float]:
        """The 12 COCO numbers (``AP`` .. ``ARl``, fractions in [0, 1]; -1 = undefined)."""
        coco_eval = self.evaluate()
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            coco_eval.summarize()
        if verbose:
            print(buf.getvalue(), end="")
        return {k: float(v) for k, v in zip(COCO_STAT_NAMES, coco_eval.stats)}

    def per_class_ap(self) -> Dict[str, float]:
        """AP@[.5:.95] per category name (all areas, 100 dets), after ``summarize()``."""
        if self.coco_eval is None:
            self.evaluate()
        prec = self.coco_eval.eval["precision"][:, :, :, 0, -1]   # (T, R, K)
        out = {}
        for k, name in enumerate(self.class_names):
            p = prec[:, :, k]
            p = p[p > -1]
            out[name] = float(p.mean()) if p.size else float("nan")
        return out
