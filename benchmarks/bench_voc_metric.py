"""Speed of ssd_zoo's VOC07 metric vs gluoncv's on the same data (not a test).

5,000 images x 100 detections (20 classes, up to 12 ground truths per image, 10 %
difficult), fed in batches like an eval loop.  Ours runs here; gluoncv's runs in .venv-ref
(it cannot be imported beside torch) on the same arrays saved to .npz.  Both times cover
every ``update`` plus ``get``; the mAPs are compared too.

    .venv/bin/python benchmarks/bench_voc_metric.py [--images 5000] [--batch 32]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ssd_zoo.metrics import VOC07MApMetric  # noqa: E402

REF_CODE = r"""
import json, sys, time
import numpy as np
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
d = np.load(sys.argv[1])
batch = int(sys.argv[2])
keys = ("pred_bboxes", "pred_labels", "pred_scores", "gt_bboxes", "gt_labels", "gt_difficults")
arrs = [d[k] for k in keys]
times = []
for _ in range(int(sys.argv[3])):
    m = VOC07MApMetric(0.5)
    t0 = time.perf_counter()
    for s in range(0, len(arrs[0]), batch):
        m.update(*[a[s:s + batch] for a in arrs])
    value = m.get()[1]
    times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": times, "mAP": float(value)}))
"""


def make_data(n_images: int, n_det: int = 100, n_gt: int = 12, n_cls: int = 20, seed=0):
    """Padded arrays: preds (I, n_det, ...) float32 like a detector's output, gts (I, n_gt)."""
    rng = np.random.RandomState(seed)
    k = rng.randint(1, n_gt + 1, n_images)
    xy = rng.uniform(0, 400, (n_images, n_gt, 2))
    gt = np.round(np.concatenate([xy, xy + rng.uniform(10, 200, (n_images, n_gt, 2))], -1))
    gl = rng.randint(0, n_cls, (n_images, n_gt)).astype(np.float32)
    pad = np.arange(n_gt)[None] >= k[:, None]
    gl[pad] = -1
    gt[pad] = -1
    gd = (rng.rand(n_images, n_gt) < 0.1).astype(np.float32)
    # 60 % of detections jitter a ground truth (label kept 80 %), the rest are random boxes
    src = (rng.rand(n_images, n_det) * k[:, None]).astype(int)
    near = np.take_along_axis(gt, src[..., None], 1) + rng.normal(0, 10, (n_images, n_det, 4))
    pxy = rng.uniform(0, 400, (n_images, n_det, 2))
    far = np.concatenate([pxy, pxy + rng.uniform(10, 200, (n_images, n_det, 2))], -1)
    is_near = rng.rand(n_images, n_det) < 0.6
    pb = np.where(is_near[..., None], near, far).astype(np.float32)
    pl = np.where(is_near & (rng.rand(n_images, n_det) < 0.8),
                  np.take_along_axis(gl, src, 1), rng.randint(0, n_cls, (n_images, n_det)))
    ps = np.sort(rng.rand(n_images, n_det).astype(np.float32), axis=1)[:, ::-1]
    return {"pred_bboxes": pb, "pred_labels": pl.astype(np.float32)[..., None],
            "pred_scores": ps.copy()[..., None], "gt_bboxes": gt.astype(np.float32),
            "gt_labels": gl, "gt_difficults": gd}


def time_ours(data: dict, batch: int):
    keys = ("pred_bboxes", "pred_labels", "pred_scores", "gt_bboxes", "gt_labels",
            "gt_difficults")
    arrs = [data[k] for k in keys]
    m = VOC07MApMetric(0.5)
    t0 = time.perf_counter()
    for s in range(0, len(arrs[0]), batch):
        m.update(*[a[s:s + batch] for a in arrs])
    value = m.get()[1][-1]
    return time.perf_counter() - t0, value


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--untie", action="store_true",
                    help="float64 scores without ties: then the mAPs agree bit for bit")
    ap.add_argument("--ref-python", default=str(ROOT / ".venv-ref" / "bin" / "python"))
    args = ap.parse_args()
    data = make_data(args.images)
    if args.untie:
        jitter = np.random.RandomState(1).rand(*data["pred_scores"].shape) * 1e-9
        data["pred_scores"] = data["pred_scores"].astype(np.float64) + jitter
    n_valid = int((data["pred_labels"] >= 0).sum())
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "voc_metric_bench.npz"
        np.savez(npz, **data)
        ours, ref_times = [], []
        for _ in range(args.repeats):            # interleaved; best of each side
            seconds, ours_map = time_ours(data, args.batch)
            ours.append(seconds)
            proc = subprocess.run([args.ref_python, "-c", REF_CODE, str(npz),
                                   str(args.batch), "1"],
                                  capture_output=True, text=True, cwd=tmp,
                                  env={"PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "2",
                                       "MXNET_ENGINE_TYPE": "NaiveEngine"})
            if proc.returncode:
                sys.exit(f"gluoncv run failed:\n{proc.stderr[-3000:]}")
            ref = json.loads(proc.stdout.strip().splitlines()[-1])
            ref_times += ref["seconds"]
    # tied scores inside a class: gluoncv orders them arbitrarily (quicksort), we canonically
    valid = data["pred_labels"][..., 0] >= 0
    pairs = np.stack([data["pred_labels"][..., 0][valid], data["pred_scores"][..., 0][valid]])
    n_tied = valid.sum() - np.unique(pairs, axis=1).shape[1]
    print(f"VOC07 metric, {args.images} images x 100 detections ({n_valid} valid, "
          f"{n_tied} with a score tied in its class), batch {args.batch}")
    print(f"  gluoncv : {min(ref_times):8.3f} s   mAP {ref['mAP']:.8f}   runs "
          + ", ".join(f"{t:.3f}" for t in ref_times))
    print(f"  ssd_zoo : {min(ours):8.3f} s   mAP {ours_map:.8f}   runs "
          + ", ".join(f"{t:.3f}" for t in ours))
    print(f"  speed-up: {min(ref_times) / min(ours):.1f}x   |mAP diff| "
          f"{abs(ref['mAP'] - ours_map):.2e} (tied scores: gluoncv orders them "
          "arbitrarily, ssd_zoo canonically; --untie removes them)")


if __name__ == "__main__":
    main()
