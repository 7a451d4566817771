"""Learning check: VOC07 mAP reached vs wall time for ssd_300_mobilenet0.25 (random init,
no pretrained base) on the synthetic shapes dataset, on this CPU, in one process.

  python benchmarks/learn_synthetic.py --minutes 4 --num-samples 64 --batch-size 8
Prints one line per epoch (wall s, iterations, train losses, val mAP) and a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--num-samples", type=int, default=64)
    ap.add_argument("--val-samples", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--num-workers", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import logging
    logging.basicConfig(level=logging.WARNING)
    import ssd_zoo
    from ssd_zoo.data.synthetic import SyntheticDetection
    from ssd_zoo.train.distributed import DistInfo
    from ssd_zoo.train.engine import Trainer, TrainConfig
    from ssd_zoo.train.evaluate import evaluate_voc07
    from ssd_zoo.train.setup import augmented

    torch.manual_seed(0)
    train = SyntheticDetection(a.num_samples, seed=0)
    val = SyntheticDetection(a.val_samples, seed=10_000)
    net = ssd_zoo.get_model("ssd_300_mobilenet0.25_custom", classes=list(train.classes))
    cfg = TrainConfig(epochs=1000, batch_size=a.batch_size, lr=a.lr, lr_mode="step",
                      lr_decay_epochs=(), warmup_epochs=1, num_workers=a.num_workers,
                      log_interval=0, save_dir=tempfile.mkdtemp(), seed=0)
    tr = Trainer(net, augmented(train, net, 0), None, cfg, DistInfo())
    t0 = time.perf_counter()
    rows = []
    epoch = 0
    while time.perf_counter() - t0 < a.minutes * 60:
        tr.train_epoch(epoch)
        train_s = time.perf_counter() - t0
        m = evaluate_voc07(tr.net, val, train.classes, tr.info, 16)
        rows.append({"epoch": epoch, "wall_s": round(train_s, 1), "iters": tr.global_iter,
                     "mAP": round(m, 4)})
        print(f"epoch {epoch:3d}  wall {train_s:7.1f}s  iters {tr.global_iter:5d}  "
              f"VOC07 mAP {m:.4f}", flush=True)
        epoch += 1
    res = {"model": "ssd_300_mobilenet0.25_custom", "num_samples": a.num_samples,
           "batch_size": a.batch_size, "threads": torch.get_num_threads(), "curve": rows,
           "best_mAP": max(r["mAP"] for r in rows)}
    print(json.dumps(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
