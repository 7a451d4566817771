"""Pascal VOC detection mAP (11-point VOC07 and area-under-curve VOC10+), vectorized.

Semantics follow Gluon-CV's ``VOCMApMetric`` / ``VOC07MApMetric`` (gluoncv 0.10.5) exactly:

* padding rows (label < 0) of predictions and ground truths are dropped; labels are
  truncated to int (``astype(int)``);
* per image and class, predictions are taken by descending score; each prediction is
  assigned the ground truth of highest IoU (first one on ties); below ``iou_thresh`` it is a
  false positive; matched to a *difficult* ground truth it is ignored (neither TP nor FP);
  otherwise it is a TP if no higher-scored prediction took that ground truth, else an FP
  (no fall-back to the second-best ground truth, like the VOC devkit);
* AP per class from all detections of that class sorted by score; a class whose ground
  truths are all difficult (or absent) has AP NaN and is left out of ``mAP`` (nanmean).

IoU convention.  Gluon-CV adds 1 to ``xmax``/``ymax`` of both boxes before an offset-0 IoU,
which is the VOC devkit's "integer pixel" convention (widths ``x2 - x1 + 1``).  That is
``iou_offset=1.0``, the default, so numbers compare with the Gluon-CV column *and* with the
official devkit.  ``iou_offset=0.0`` gives the continuous IoU (``x2 - x1``) used by
torchvision/COCO-style code, for normalized boxes for instance.

Ties.  Gluon-CV orders equal scores by numpy's (unstable) quicksort, i.e. arbitrarily.  Here
equal scores are ordered canonically (within an image: later row first; across images:
false positives before true positives), so the result does not depend on the order of
``update`` calls, which makes merged distributed shards equal the single-process result.

Speed: matching is done for a whole batch with array operations; there is no Python loop
per detection, per image or per class in ``update``.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

__all__ = ["VOCMApMetric", "VOC07MApMetric"]

# Gluon-CV's 11 recall thresholds, bit for bit (0.30000000000000004 ...).
_VOC07_RECALLS = np.arange(0.0, 1.1, 0.1)
_CHUNK_ELEMENTS = 1 << 21


def _as_numpy(a):
    """torch.Tensor / numpy / nested list -> numpy array (no copy when possible)."""
    if hasattr(a, "detach"):  # torch.Tensor without importing torch
        a = a.detach().cpu()
        if str(a.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            a = a.float()
        return a.numpy()
    return np.asarray(a)


def _batch_iou_xyxy(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU inside each image, offset 0 (widths ``x2 - x1``).

    boxes_a: (B, N, 4) xyxy; boxes_b: (B, M, 4) xyxy  ->  (B, N, M).
    Same operation order as gluoncv.utils.bbox.bbox_iou / torchvision.ops.box_iou, so the
    values are bit-identical to theirs for the same dtype.
    """
    ax1, ay1, ax2, ay2 = (boxes_a[:, :, None, k] for k in range(4))   # (B, N, 1)
    bx1, by1, bx2, by2 = (boxes_b[:, None, :, k] for k in range(4))   # (B, 1, M)
    w = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    h = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    # (br - tl > 0) == (tl < br) for finite floats; same product order as gluoncv
    inter = w * h * ((w > 0) & (h > 0))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)
    union -= inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _flat_labels(a: np.ndarray, batch: int, name: str) -> np.ndarray:
    """(B, N) or (B, N, 1) -> (B, N)."""
    a = _as_numpy(a)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2 or a.shape[0] != batch:
        raise ValueError(f"{name} must have shape (B, N) or (B, N, 1) with B={batch}, "
                         f"got {a.shape}")
    return a


class VOCMApMetric:
    """VOC mAP with area-under-the-PR-curve AP (VOC2010+ devkit, Gluon-CV ``VOCMApMetric``).

    Parameters
    ----------
    iou_thresh : float
        IoU at or above which a detection matches a ground truth.
    class_names : sequence of str, optional
        Names reported by ``get()``; without them the names are ``"0", "1", ...`` for every
        class up to the highest label seen.
    iou_offset : float
        Added to box widths/heights in the IoU: 1.0 (default) = Gluon-CV = VOC devkit
        integer-pixel convention; 0.0 = continuous boxes.
    """

    def __init__(self, iou_thresh: float = 0.5, class_names: Sequence[str] | None = None,
                 iou_offset: float = 1.0):
        if class_names is not None:
            class_names = [str(c) for c in class_names]
        self.iou_thresh = float(iou_thresh)
        self.class_names = class_names
        self.iou_offset = float(iou_offset)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Clear all accumulated detections and ground-truth counts."""
        self._labels: List[np.ndarray] = []   # per detection: class id (int64)
        self._scores: List[np.ndarray] = []   # per detection: score (float64)
        self._matches: List[np.ndarray] = []  # per detection: 1 TP, 0 FP, -1 ignored
        self._n_pos = np.zeros(0, np.int64)   # per class: non-difficult ground truths
        self._seen = np.zeros(0, bool)        # per class: appeared in a pred or a gt

    def state(self) -> dict:
        """Everything ``get()`` needs, as plain numpy arrays (picklable, gatherable).

        Keys: ``labels`` (D,) int64, ``scores`` (D,) float64, ``matches`` (D,) int8,
        ``n_pos`` (C,) int64, ``seen`` (C,) bool.
        """
        self._compact()
        return {"labels": self._labels[0], "scores": self._scores[0],
                "matches": self._matches[0], "n_pos": self._n_pos.copy(),
                "seen": self._seen.copy()}

    def merge(self, state: dict) -> None:
        """Add another metric's ``state()`` (e.g. from another rank) to this one.

        Merging the shards of a dataset gives exactly the result of one metric updated with
        the whole dataset (each image must be in exactly one shard).
        """
        self._labels.append(np.asarray(state["labels"], np.int64))
        self._scores.append(np.asarray(state["scores"], np.float64))
        self._matches.append(np.asarray(state["matches"], np.int8))
        self._add_counts(np.asarray(state["n_pos"], np.int64), np.asarray(state["seen"], bool))

    def _add_counts(self, n_pos: np.ndarray, seen: np.ndarray) -> None:
        size = max(len(self._n_pos), len(n_pos))
        self._n_pos = np.pad(self._n_pos, (0, size - len(self._n_pos)))
        self._seen = np.pad(self._seen, (0, size - len(self._seen)))
        self._n_pos[:len(n_pos)] += n_pos
        self._seen[:len(seen)] |= seen

    def _compact(self) -> None:
        if len(self._labels) != 1:
            self._labels = [np.concatenate(self._labels or [np.zeros(0, np.int64)])]
            self._scores = [np.concatenate(self._scores or [np.zeros(0, np.float64)])]
            self._matches = [np.concatenate(self._matches or [np.zeros(0, np.int8)])]

    # ----------------------------------------------------------------- update
    def update(self, pred_bboxes, pred_labels, pred_scores, gt_bboxes, gt_labels,
               gt_difficults=None) -> None:
        """Add a batch of predictions and ground truths.

        Parameters (numpy arrays or torch tensors; a list/tuple of batches is also accepted)
        ----------
        pred_bboxes : (B, N, 4) xyxy, pixels.
        pred_labels : (B, N) or (B, N, 1); rows with label < 0 are padding.
        pred_scores : (B, N) or (B, N, 1).
        gt_bboxes : (B, M, 4) xyxy, pixels.
        gt_labels : (B, M) or (B, M, 1); rows with label < 0 are padding.
        gt_difficults : (B, M) or (B, M, 1), nonzero = difficult; None = none difficult.
        """
        if isinstance(pred_bboxes, (list, tuple)):
            diffs = gt_difficults if gt_difficults is not None else [None] * len(pred_bboxes)
            for args in zip(pred_bboxes, pred_labels, pred_scores, gt_bboxes, gt_labels, diffs):
                self.update(*args)
            return
        pred_boxes = _as_numpy(pred_bboxes)
        gt_boxes = _as_numpy(gt_bboxes)
        if pred_boxes.ndim != 3 or pred_boxes.shape[-1] < 4:
            raise ValueError(f"pred_bboxes must have shape (B, N, 4), got {pred_boxes.shape}")
        if gt_boxes.ndim != 3 or gt_boxes.shape[-1] < 4 or len(gt_boxes) != len(pred_boxes):
            raise ValueError(f"gt_bboxes must have shape (B, M, 4) with B={len(pred_boxes)}, "
                             f"got {gt_boxes.shape}")
        batch = len(pred_boxes)
        p_lab = _flat_labels(pred_labels, batch, "pred_labels")
        p_score = _flat_labels(pred_scores, batch, "pred_scores")
        g_lab = _flat_labels(gt_labels, batch, "gt_labels")
        g_diff = (np.zeros(g_lab.shape, bool) if gt_difficults is None
                  else _flat_labels(gt_difficults, batch, "gt_difficults") != 0)
        if p_lab.shape[1] == 0:
            p_lab = np.zeros((batch, 0), np.int64)
        p_valid = p_lab >= 0
        g_valid = g_lab >= 0
        p_cls = np.where(p_valid, p_lab, -1).astype(np.int64)
        g_cls = np.where(g_valid, g_lab, -2).astype(np.int64)

        # class bookkeeping (gluoncv's _n_pos keys: classes present in a pred or a gt)
        n_cls = int(max(p_cls.max(initial=-1), g_cls.max(initial=-1))) + 1
        n_pos = np.bincount(g_cls[g_valid & ~g_diff], minlength=n_cls)
        seen = (np.bincount(p_cls[p_valid], minlength=n_cls)
                + np.bincount(g_cls[g_valid], minlength=n_cls)) > 0
        self._add_counts(n_pos, seen)

        if not p_valid.any():
            return
        p_box, g_box = pred_boxes[..., :4], gt_boxes[..., :4]
        if not np.issubdtype(p_box.dtype, np.floating):
            p_box = p_box.astype(np.float64)
        if not np.issubdtype(g_box.dtype, np.floating):
            g_box = g_box.astype(np.float64)
        # bound the (B, N, M) IoU tensor to ~2M entries per chunk of images
        step = max(1, _CHUNK_ELEMENTS // max(1, p_cls.shape[1] * g_cls.shape[1]))
        matches = np.concatenate([
            self._match_batch(p_box[s:s + step], p_cls[s:s + step], p_score[s:s + step],
                              g_box[s:s + step], g_cls[s:s + step], g_diff[s:s + step])
            for s in range(0, batch, step)])
        self._labels.append(p_cls[p_valid])
        self._scores.append(np.asarray(p_score[p_valid], np.float64))
        self._matches.append(matches[p_valid])

    def _match_batch(self, p_box, p_cls, p_score, g_box, g_cls, g_diff) -> np.ndarray:
        """TP (1) / FP (0) / ignored (-1) for every prediction slot, shape (B, N)."""
        batch, n_pred = p_cls.shape
        matches = np.zeros((batch, n_pred), np.int8)
        if g_cls.shape[1] == 0 or not (g_cls >= 0).any():
            return matches
        p_box = p_box.copy()
        g_box = g_box.copy()
        # offset like gluoncv: shift the far corner, then an offset-0 IoU (bit-identical)
        p_box[..., 2:] += self.iou_offset
        g_box[..., 2:] += self.iou_offset
        iou = _batch_iou_xyxy(p_box, g_box)                       # (B, N, M)
        iou[p_cls[:, :, None] != g_cls[:, None, :]] = -1.0
        best_gt = iou.argmax(axis=2)                              # first max, like gluoncv
        hit = (iou.max(axis=2) >= self.iou_thresh) & (p_cls >= 0)
        difficult = g_diff[np.arange(batch)[:, None], best_gt]
        matches[hit & difficult] = -1
        cand = hit & ~difficult
        if cand.any():
            # Within each image, visit predictions by descending score (ties: later row
            # first, as gluoncv's argsort()[::-1] does for small arrays); the first one to
            # reach a ground truth is the TP, the others are FPs.
            b_idx, n_idx = np.nonzero(cand)
            key_score = p_score[b_idx, n_idx]
            order = np.lexsort((n_idx, key_score, b_idx))[::-1]  # b desc, score desc, row desc
            gt_key = b_idx[order] * g_cls.shape[1] + best_gt[b_idx[order], n_idx[order]]
            _, first = np.unique(gt_key, return_index=True)
            tp = order[first]
            matches[b_idx[tp], n_idx[tp]] = 1
        return matches

    # -------------------------------------------------------------------- get
    def _recall_prec(self) -> Tuple[list, list]:
        """Per class (0..C-1): cumulative recall and precision arrays, or None."""
        self._compact()
        labels, scores, matches = self._labels[0], self._scores[0], self._matches[0]
        n_cls = len(self._n_pos)
        # class asc, score desc, ties: FP(0) before TP(1) before ignored(-1); three stable
        # sorts from the least significant key (faster than lexsort)
        order = np.argsort(matches % 3, kind="stable")
        order = order[np.argsort(-scores[order], kind="stable")]
        order = order[np.argsort(labels[order], kind="stable")]
        bounds = np.searchsorted(labels[order], np.arange(n_cls + 1))
        recs, precs = [None] * n_cls, [None] * n_cls
        for c in np.flatnonzero(self._seen):
            m = matches[order[bounds[c]:bounds[c + 1]]]
            tp = np.cumsum(m == 1)
            fp = np.cumsum(m == 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                precs[c] = tp / (fp + tp)
            if self._n_pos[c] > 0:
                recs[c] = tp / self._n_pos[c]
        return recs, precs

    @staticmethod
    def _average_precision(rec, prec) -> float:
        """Area under the monotone precision envelope (VOC2010+)."""
        if rec is None or prec is None:
            return float("nan")
        mrec = np.concatenate(([0.0], rec, [1.0]))
        mpre = np.concatenate(([0.0], np.nan_to_num(prec), [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        i = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))

    def per_class_ap(self) -> np.ndarray:
        """AP of every class 0..C-1 seen so far (NaN when it has no non-difficult gt)."""
        recs, precs = self._recall_prec()
        return np.array([self._average_precision(r, p) for r, p in zip(recs, precs)],
                        np.float64)

    def get(self) -> Tuple[List[str], List[float]]:
        """(names, values): per-class AP then ``mAP`` (nanmean over all classes seen).

        With ``class_names`` the per-class part has one entry per name (NaN for classes
        never seen); without, one entry per class id up to the highest label seen.
        """
        aps = self.per_class_ap()
        with np.errstate(all="ignore"):
            m_ap = float(np.nanmean(aps)) if len(aps) and not np.isnan(aps).all() \
                else float("nan")
        if self.class_names is None:
            names = [str(i) for i in range(len(aps))]
            values = [float(v) for v in aps]
        else:
            names = list(self.class_names)
            values = [float(aps[i]) if i < len(aps) else float("nan")
                      for i in range(len(names))]
        return names + ["mAP"], values + [m_ap]


class VOC07MApMetric(VOCMApMetric):
    """VOC2007 11-point interpolated mAP (Gluon-CV ``VOC07MApMetric``); see VOCMApMetric."""

    @staticmethod
    def _average_precision(rec, prec) -> float:
        if rec is None or prec is None:
            return float("nan")
        prec = np.nan_to_num(prec)
        # max precision at recall >= t: rec is non-decreasing, so a suffix maximum
        suffix_max = np.maximum.accumulate(prec[::-1])[::-1] if len(prec) else prec
        first = np.searchsorted(rec, _VOC07_RECALLS, side="left")
        ap = 0.0
        for idx in first:  # 11 fixed terms, summed in gluoncv's order
            ap += (suffix_max[idx] if idx < len(rec) else 0.0) / 11.0
        return float(ap)
