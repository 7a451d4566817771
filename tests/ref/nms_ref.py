"""Gluon-CV's SSD post-processing ops applied to given logits/boxes (run in .venv-ref)."""
import argparse
import json
import os

import numpy as np
import mxnet as mx
from gluoncv.nn.coder import MultiPerClassDecoder

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--args", required=True)
ns = p.parse_args()
a = json.loads(ns.args)
data = np.load(a["inputs"])
F = mx.nd
for case in a["cases"]:
    cls = F.array(data[case + "_cls"])
    bboxes = F.array(data[case + "_boxes"])
    num_classes = cls.shape[-1] - 1
    cls_ids, scores = MultiPerClassDecoder(num_classes + 1, thresh=0.01)(F.softmax(cls, axis=-1))
    results = []
    for i in range(num_classes):
        cid = cls_ids.slice_axis(axis=-1, begin=i, end=i + 1)
        sc = scores.slice_axis(axis=-1, begin=i, end=i + 1)
        results.append(F.concat(cid, sc, bboxes, dim=-1))
    result = F.concat(*results, dim=1)
    result = F.contrib.box_nms(result, overlap_thresh=a["nms_thresh"], topk=a["topk"],
                               valid_thresh=0.01, id_index=0, score_index=1, coord_start=2,
                               force_suppress=False)
    result = result.slice_axis(axis=1, begin=0, end=min(a["post_nms"], result.shape[1])).asnumpy()
    np.save(os.path.join(ns.out, case + ".npy"), result)
