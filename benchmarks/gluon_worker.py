"""Gluon-CV side of benchmarks/speed.py (runs in .venv-ref; never imports torch).

Loads a gluoncv SSD with the given .params, hybridizes it (static_alloc, static_shape: the
deployed symbolic path) and then answers timing requests, one JSON line per request on
stdin -> one JSON line on stdout, so that the controller can interleave its rounds with
ours (the worker sleeps on stdin between requests):

    {"op": "e2e", "batch": 1, "iters": 5}   net(x) incl. decode + NMS, outputs synced
    {"op": "post", "iters": 20}             softmax + decoders + box_nms on raw outputs
    {"op": "box_nms", "iters": 20}          box_nms alone on the (1, C*A, 6) candidates
Replies: {"seconds": [...]} (per call).
"""
import argparse
import json
import sys
import time

import numpy as np
import mxnet as mx
import gluoncv

p = argparse.ArgumentParser()
p.add_argument("--name", required=True)
p.add_argument("--params", required=True)
p.add_argument("--inputs", required=True, help=".npz with x (B,3,H,W), cls, box, anchors")
a = p.parse_args()

net = gluoncv.model_zoo.get_model(a.name, pretrained=False, pretrained_base=False)
net.load_parameters(a.params, ctx=mx.cpu())
net.hybridize(static_alloc=True, static_shape=True)
data = np.load(a.inputs)
x_all = data["x"]
cls = mx.nd.array(data["cls"][:1])
box = mx.nd.array(data["box"][:1])
anchors = mx.nd.array(data["anchors"][None])
num_fg = cls.shape[2] - 1
decoder = gluoncv.nn.coder.NormalizedBoxCenterDecoder((0.1, 0.1, 0.2, 0.2))
cls_decoder = gluoncv.nn.coder.MultiPerClassDecoder(num_fg + 1, thresh=0.01)


def post(cls_preds, box_preds):
    """The tail of gluoncv SSD.hybrid_forward (inference), imperative ndarray ops."""
    F = mx.nd
    bboxes = decoder(box_preds, anchors)
    cls_ids, scores = cls_decoder(F.softmax(cls_preds, axis=-1))
    results = []
    for i in range(num_fg):
        cid = cls_ids.slice_axis(axis=-1, begin=i, end=i + 1)
        score = scores.slice_axis(axis=-1, begin=i, end=i + 1)
        results.append(F.concat(cid, score, bboxes, dim=-1))
    result = F.concat(*results, dim=1)
    result = F.contrib.box_nms(result, overlap_thresh=0.45, topk=400, valid_thresh=0.01,
                               id_index=0, score_index=1, coord_start=2,
                               force_suppress=False)
    return result.slice_axis(axis=1, begin=0, end=100)


candidates = None
xs = {}


def timed(fn, iters):
    fn()  # warm-up (shape-specialized graphs are built on first use)
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


for line in sys.stdin:
    req = json.loads(line)
    op, iters = req["op"], int(req.get("iters", 5))
    if op == "e2e":
        b = int(req["batch"])
        if b not in xs:
            reps = -(-b // len(x_all))
            xs[b] = mx.nd.array(np.concatenate([x_all] * reps)[:b])

        def run(x=xs[b]):
            ids, scores, bboxes = net(x)
            mx.nd.waitall()
            return ids
        secs = timed(run, iters)
    elif op == "post":
        secs = timed(lambda: post(cls, box).wait_to_read(), iters)
    elif op == "box_nms":
        if candidates is None:
            bb = decoder(box, anchors)
            ids_, sc_ = cls_decoder(mx.nd.softmax(cls, axis=-1))
            candidates = mx.nd.concat(*[mx.nd.concat(
                ids_.slice_axis(axis=-1, begin=i, end=i + 1),
                sc_.slice_axis(axis=-1, begin=i, end=i + 1), bb, dim=-1)
                for i in range(num_fg)], dim=1)
            candidates.wait_to_read()
        secs = timed(lambda: mx.nd.contrib.box_nms(
            candidates, overlap_thresh=0.45, topk=400, valid_thresh=0.01, id_index=0,
            score_index=1, coord_start=2, force_suppress=False).wait_to_read(), iters)
    elif op == "quit":
        break
    else:
        secs = None
    print(json.dumps({"seconds": secs, "shape": list(candidates.shape)
                      if op == "box_nms" else None}), flush=True)
