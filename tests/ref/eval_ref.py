"""Reference evaluation plumbing: Gluon-CV's scripts/detection/ssd/eval_ssd.py given our
network's raw outputs.

Runs in .venv-ref.  VOC: gluoncv.data.VOCDetection + SSDDefaultValTransform + Pad(-1)
batches, ``bboxes.clip(0, H)``, VOC07MApMetric.  COCO: ``COCODetectionMetric(data_shape=
(S, S))`` ``update`` on the clipped boxes (pycocotools is not installed here, so the
dataset object is a minimal stand-in and only the results list it builds is returned).
Args: {"voc_root", "voc_dets", "coco_json", "coco_dets", "data_shape", "batch_size"}.
Writes OUT/result.json: {"voc07": {"names", "values"}, "coco_results": [...]}.
"""
import argparse
import json
import os

import numpy as np


def voc07(args):
    import mxnet as mx
    from gluoncv import data as gdata
    from gluoncv.data.batchify import Pad, Stack, Tuple
    from gluoncv.data.transforms.presets.ssd import SSDDefaultValTransform
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
    size, bs = args["data_shape"], args["batch_size"]
    ds = gdata.VOCDetection(root=args["voc_root"], splits=[(2007, "test")])
    loader = mx.gluon.data.DataLoader(
        ds.transform(SSDDefaultValTransform(size, size)),
        batchify_fn=Tuple(Stack(), Pad(pad_val=-1)), batch_size=bs, shuffle=False,
        last_batch="keep", num_workers=0)
    dets = np.load(args["voc_dets"])
    metric = VOC07MApMetric(iou_thresh=0.5, class_names=ds.classes)
    k = 0
    for batch in loader:
        n, y = batch[0].shape[0], batch[1]
        ids = mx.nd.array(dets["ids"][k:k + n])
        scores = mx.nd.array(dets["scores"][k:k + n])
        bboxes = mx.nd.array(dets["bboxes"][k:k + n]).clip(0, batch[0].shape[2])
        metric.update([bboxes], [ids], [scores], [y.slice_axis(axis=-1, begin=0, end=4)],
                      [y.slice_axis(axis=-1, begin=4, end=5)],
                      [y.slice_axis(axis=-1, begin=5, end=6) if y.shape[-1] > 5 else None])
        k += n
    assert k == len(dets["ids"]) == len(ds)
    names, values = metric.get()
    return {"names": list(names), "values": [float(v) for v in values]}


class _Coco:
    def __init__(self, dataset):
        self.imgs = {e["id"]: e for e in dataset["images"]}

    def getImgIds(self):  # noqa: N802 (pycocotools API)
        return list(self.imgs)

    def loadImgs(self, img_id):  # noqa: N802
        return [self.imgs[img_id]]


class _Dataset:
    def __init__(self, path):
        with open(path) as f:
            d = json.load(f)
        self.coco = _Coco(d)
        cats = sorted(c["id"] for c in d["categories"])
        self.contiguous_id_to_json = {i: c for i, c in enumerate(cats)}


def coco_results(args, out):
    import mxnet as mx
    from gluoncv.utils.metrics.coco_detection import COCODetectionMetric
    size, bs = args["data_shape"], args["batch_size"]
    metric = COCODetectionMetric(_Dataset(args["coco_json"]), os.path.join(out, "tmp"),
                                 use_time=False, cleanup=True, data_shape=(size, size))
    dets = np.load(args["coco_dets"])
    for k in range(0, len(dets["ids"]), bs):
        bboxes = mx.nd.array(dets["bboxes"][k:k + bs]).clip(0, size)
        metric.update(bboxes, mx.nd.array(dets["ids"][k:k + bs]),
                      mx.nd.array(dets["scores"][k:k + bs]))
    return [{"image_id": int(r["image_id"]), "category_id": int(r["category_id"]),
             "bbox": [float(v) for v in r["bbox"]], "score": float(r["score"])}
            for r in metric._results]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--args", required=True)
    a = ap.parse_args()
    args = json.loads(a.args)
    result = {"voc07": voc07(args), "coco_results": coco_results(args, a.out)}
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
