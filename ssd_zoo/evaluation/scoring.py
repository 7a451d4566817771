"""Metric adapters: feed a batch of detections the way Gluon-CV's eval_ssd.py does, and
turn gathered metric states into a summary (``metrics`` + ``per_class_ap``)."""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

import numpy as np

METRICS = ("voc07", "voc", "coco")


def _finite_or_none(v: float):
    return None if v is None or not math.isfinite(v) else float(v)


class VOCScorer:
    """VOC07 (11-point) or VOC (area) mAP at IoU 0.5, in the resized (data-shape) frame."""

    headline = "mAP"

    def __init__(self, kind: str, classes: Sequence[str]):
        from ..metrics import VOC07MApMetric, VOCMApMetric
        self.kind = kind
        self._cls = VOC07MApMetric if kind == "voc07" else VOCMApMetric
        self.classes = list(classes)
        self.metric = self._new()

    def _new(self):
        return self._cls(iou_thresh=0.5, class_names=self.classes)

    def update(self, ids, scores, bboxes, gt, indices, data_shape_hw) -> None:
        """ids/scores (B,N,1), bboxes (B,N,4) clipped, gt (B,M,6) resized frame."""
        self.metric.update(bboxes, ids, scores, gt[..., :4], gt[..., 4:5], gt[..., 5:6])

    def state(self) -> dict:
        return self.metric.state()

    def summarize(self, states: List[dict]) -> dict:
        total = self._new()
        for s in states:
            total.merge(s)
        names, values = total.get()
        per_class = {n: _finite_or_none(v) for n, v in zip(names[:-1], values[:-1])}
        return {"metrics": {"mAP": _finite_or_none(values[-1])}, "per_class_ap": per_class}


class COCOScorer:
    """COCO AP via pycocotools, boxes rescaled to the json's image size like Gluon-CV's
    ``COCODetectionMetric(data_shape=(H, W))``."""

    headline = "AP"

    def __init__(self, dataset):
        from ..metrics import COCODetectionMetric
        self.kind = "coco"
        self.dataset = dataset
        self._new = lambda: COCODetectionMetric(dataset.coco)
        self.metric = self._new()

    def update(self, ids, scores, bboxes, gt, indices, data_shape_hw) -> None:
        data_h, data_w = data_shape_hw
        for b, idx in enumerate(indices):
            orig_w, orig_h = self.dataset.image_size(idx)
            box = np.asarray(bboxes[b], np.float64).copy()   # float32 -> float64 like Gluon
            box[:, [0, 2]] *= float(orig_w) / data_w
            box[:, [1, 3]] *= float(orig_h) / data_h
            self.metric.update(self.dataset.image_id(idx), box, ids[b], scores[b])

    def state(self) -> dict:
        return self.metric.state()

    def summarize(self, states: List[dict]) -> dict:
        total = self._new()
        for s in states:
            total.merge(s)
        self.merged = total
        stats = total.summarize()
        per_class = total.per_class_ap()
        return {"metrics": {k: _finite_or_none(v) for k, v in stats.items()},
                "per_class_ap": {k: _finite_or_none(v) for k, v in per_class.items()},
                "num_detections": len(total.results())}


    def save_detections(self, path) -> None:
        """Official COCO results json of the merged detections (after ``summarize``)."""
        self.merged.write_results_json(path)


def make_scorer(kind: str, dataset, classes: Sequence[str]):
    if kind == "coco":
        return COCOScorer(dataset)
    return VOCScorer(kind, classes)


def format_per_class(per_class: Dict[str, float]) -> str:
    """Two-column text table of per-class AP (percent)."""
    width = max([len(k) for k in per_class] + [5])
    lines = []
    for name, v in per_class.items():
        lines.append(f"  {name:<{width}}  {'n/a' if v is None else f'{100 * v:.2f}':>6}")
    return "\n".join(lines)
