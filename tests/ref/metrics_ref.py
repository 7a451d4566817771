"""Reference VOC metrics: gluoncv's VOC07MApMetric / VOCMApMetric on generated detections.

Runs in .venv-ref.  Generates the batches itself (so both sides see the very same arrays),
saves them to OUT/data_<case>.npz and gluoncv's get() to OUT/result_<case>.json.
Args: {"seed": int, "cases": [{"name", "n_batches", "batch", "n_cls", "dtype",
"iou_thresh", "class_names": bool, "label_3d": bool}], "hand": bool}.
Each case also stores its batches so the tests can replay them in any order.
"""
import argparse
import json
import os

import numpy as np
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric, VOCMApMetric


def make_batch(rng, batch, n_cls, dtype, label_3d):
    """One padded batch: preds (B,N,4/1/1), gts (B,M,4/1/1) with -1 padding."""
    n_pred, n_gt = 12, 6
    gt_boxes = np.full((batch, n_gt, 4), -1.0)
    gt_labels = np.full((batch, n_gt), -1.0)
    gt_diff = np.full((batch, n_gt), -1.0)
    p_boxes = np.full((batch, n_pred, 4), -1.0)
    p_labels = np.full((batch, n_pred), -1.0)
    p_scores = np.full((batch, n_pred), -1.0)
    # class n_cls-1: never predicted; class n_cls-2: predicted, never in gt;
    # class n_cls-3: only difficult gts
    gt_classes = list(range(n_cls - 2)) + [n_cls - 1]
    for b in range(batch):
        k = rng.randint(0, n_gt + 1) if rng.rand() > 0.15 else 0   # empty images
        xy = rng.uniform(0, 400, (k, 2))
        wh = rng.uniform(4, 200, (k, 2))
        gt_boxes[b, :k] = np.round(np.hstack([xy, xy + wh]))
        gt_labels[b, :k] = rng.choice(gt_classes, k)
        gt_diff[b, :k] = rng.rand(k) < 0.15
        gt_diff[b, :k][gt_labels[b, :k] == n_cls - 3] = 1
        m = rng.randint(0, n_pred + 1) if rng.rand() > 0.1 else 0  # no detections
        for j in range(m):
            if k and rng.rand() < 0.7:  # near a gt (duplicates happen), sometimes wrong class
                g = rng.randint(k)
                box = gt_boxes[b, g] + rng.normal(0, 8, 4)
                lab = gt_labels[b, g] if rng.rand() < 0.85 else rng.randint(0, n_cls - 1)
            else:
                xy = rng.uniform(0, 400, 2)
                box = np.hstack([xy, xy + rng.uniform(4, 200, 2)])
                lab = rng.randint(0, n_cls - 1)
            if lab == n_cls - 1:
                lab = n_cls - 2
            p_boxes[b, j] = box
            p_labels[b, j] = lab
            p_scores[b, j] = rng.rand()
    out = dict(pred_bboxes=p_boxes.astype(dtype), pred_labels=p_labels.astype(dtype),
               pred_scores=p_scores.astype(dtype), gt_bboxes=gt_boxes.astype(dtype),
               gt_labels=gt_labels.astype(dtype), gt_difficults=gt_diff.astype(dtype))
    if label_3d:
        for key in ("pred_labels", "pred_scores", "gt_labels", "gt_difficults"):
            out[key] = out[key][..., None]
    return out


FIELDS = ("pred_bboxes", "pred_labels", "pred_scores", "gt_bboxes", "gt_labels",
          "gt_difficults")


def run_case(rng, case, out_dir):
    names = ["c%d" % i for i in range(case["n_cls"])] if case["class_names"] else None
    metrics = {"voc07": VOC07MApMetric(case["iou_thresh"], names),
               "voc": VOCMApMetric(case["iou_thresh"], names)}
    arrays = {}
    for i in range(case["n_batches"]):
        batch = make_batch(rng, case["batch"], case["n_cls"], case["dtype"], case["label_3d"])
        for key in FIELDS:
            arrays["b%d_%s" % (i, key)] = batch[key]
        for m in metrics.values():
            m.update(*[batch[key] for key in FIELDS])
    np.savez(os.path.join(out_dir, "data_%s.npz" % case["name"]), **arrays)
    result = {}
    for key, m in metrics.items():
        got_names, values = m.get()
        if not isinstance(got_names, list):
            got_names, values = [got_names], [values]
        result[key] = {"names": list(got_names), "values": [float(v) for v in values]}
    with open(os.path.join(out_dir, "result_%s.json" % case["name"]), "w") as f:
        json.dump(result, f)


def hand_case(out_dir):
    """pred [0,0,9,9] vs gt [0,0,9,4]: IoU 0.5 with +1 widths, 36/81=0.444 without."""
    p = np.array([[[0, 0, 9, 9]]], float)
    g = np.array([[[0, 0, 9, 4]]], float)
    res = {}
    for cls in (VOC07MApMetric, VOCMApMetric):
        m = cls(0.5)
        m.update(p, np.array([[0.]]), np.array([[0.9]]), g, np.array([[0.]]))
        res[cls.__name__] = float(m.get()[1])
    with open(os.path.join(out_dir, "hand.json"), "w") as f:
        json.dump(res, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--args", required=True)
    a = ap.parse_args()
    args = json.loads(a.args)
    rng = np.random.RandomState(args["seed"])
    for case in args["cases"]:
        run_case(rng, case, a.out)
    if args.get("hand"):
        hand_case(a.out)


if __name__ == "__main__":
    main()
