"""Reference SSD training targets + loss: gluoncv's SSDTargetGenerator (as used by
SSDDefaultTrainTransform: negative_mining_ratio=-1, per image) and SSDMultiBoxLoss.

Runs in .venv-ref.  Generates its inputs (seeded) and saves inputs and outputs to OUT/ref.npz.
Args: {"seed": int, "batch": int, "anchors": int, "classes": int}.
"""
import argparse
import json
import os

import mxnet as mx
import numpy as np
from gluoncv.loss import SSDMultiBoxLoss
from gluoncv.model_zoo.ssd.target import SSDTargetGenerator


def make_inputs(rng, batch, n_anchor, n_cls):
    grid = int(np.ceil(np.sqrt(n_anchor)))
    cx = (np.arange(n_anchor) % grid + 0.5) * (300.0 / grid)
    cy = (np.arange(n_anchor) // grid + 0.5) * (300.0 / grid)
    wh = rng.choice([20.0, 45.0, 90.0, 150.0], (n_anchor, 2))
    anchors = np.stack([cx, cy, wh[:, 0], wh[:, 1]], 1).astype(np.float32)
    gts = []
    for b in range(batch):
        k = 0 if b == batch - 1 else int(rng.randint(1, 7))
        xy = rng.uniform(0, 250, (k, 2))
        size = rng.uniform(8, 160, (k, 2))
        boxes = np.hstack([xy, np.minimum(xy + size, 300)])
        if k >= 2:  # an exact duplicate box and a box equal to an anchor (IoU 1, ties)
            boxes[1] = boxes[0]
            a = anchors[int(rng.randint(n_anchor))]
            boxes[-1] = [a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2]
        ids = rng.randint(0, n_cls, (k, 1))
        gts.append(np.hstack([boxes, ids]).astype(np.float32))
    cls_pred = rng.normal(0, 2, (batch, n_anchor, n_cls + 1)).astype(np.float32)
    box_pred = rng.normal(0, 1, (batch, n_anchor, 4)).astype(np.float32)
    return anchors, gts, cls_pred, box_pred


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--args", required=True)
    a = json.loads(ap.parse_args().args)
    out = ap.parse_args().out
    rng = np.random.RandomState(a["seed"])
    anchors, gts, cls_pred, box_pred = make_inputs(rng, a["batch"], a["anchors"], a["classes"])
    gen = SSDTargetGenerator(iou_thresh=0.5, stds=(0.1, 0.1, 0.2, 0.2), negative_mining_ratio=-1)
    cls_t, box_t = [], []
    for g in gts:
        if len(g) == 0:  # gluon pads with -1 rows; a single padding row for an empty image
            g = -np.ones((1, 5), np.float32)
        ct, bt, _ = gen(mx.nd.array(anchors[None]), None, mx.nd.array(g[None, :, :4]),
                        mx.nd.array(g[None, :, 4:5]))
        cls_t.append(ct.asnumpy()[0])
        box_t.append(bt.asnumpy()[0])
    cls_t = np.stack(cls_t)
    box_t = np.stack(box_t)
    loss = SSDMultiBoxLoss()
    s, c, b = loss(mx.nd.array(cls_pred), mx.nd.array(box_pred), mx.nd.array(cls_t),
                   mx.nd.array(box_t))
    m = max(1, max(len(g) for g in gts))
    gt_pad = -np.ones((len(gts), m, 5), np.float32)
    for i, g in enumerate(gts):
        gt_pad[i, :len(g)] = g
    np.savez(os.path.join(out, "ref.npz"), anchors=anchors, gt=gt_pad, cls_pred=cls_pred,
             box_pred=box_pred, cls_targets=cls_t, box_targets=box_t,
             sum_loss=s[0].asnumpy(), cls_loss=c[0].asnumpy(), box_loss=b[0].asnumpy())


if __name__ == "__main__":
    main()
