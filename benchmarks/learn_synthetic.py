"""Learning check: VOC07 mAP reached vs wall time for SSD mobilenet0.25 at 300 (random init,
no pretrained base) on the synthetic shapes dataset, on this CPU, in one process.

  python benchmarks/learn_synthetic.py --minutes 12 --augmentation color ssd

The network is what ``train/train_ssd.py --network mobilenet0.25 --data-shape 300`` trains
(ssd_300_mobilenet0.25_tiled_custom: Gluon-CV's preset with anchor steps that tile the
image).  Each recipe runs for --minutes of training (validation time excluded) with the
same seed; mAP is measured after every epoch on --val-samples held-out images and on the
first --val-samples training images (un-augmented).  Prints one line per epoch and writes
a JSON summary (atomic) with --json.
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


def run(recipe: str, a) -> dict:
    import ssd_zoo
    from ssd_zoo.data.synthetic import SyntheticDetection
    from ssd_zoo.registry import find_entry
    from ssd_zoo.train.distributed import DistInfo
    from ssd_zoo.train.engine import Trainer, TrainConfig
    from ssd_zoo.train.evaluate import evaluate_voc07
    from ssd_zoo.train.setup import augmented

    torch.manual_seed(a.seed)
    train = SyntheticDetection(a.num_samples, seed=a.seed)
    val = SyntheticDetection(a.val_samples, seed=a.seed + 10_000)
    train_view = SyntheticDetection(a.val_samples, seed=a.seed)   # first training images
    entry = find_entry("mobilenet0.25", 300, "synthetic")
    net = ssd_zoo.get_model(entry.name, classes=list(train.classes))
    cfg = TrainConfig(epochs=10_000, batch_size=a.batch_size, lr=a.lr, lr_mode="step",
                      lr_decay_epochs=(), warmup_epochs=0.1, num_workers=a.num_workers,
                      log_interval=0, save_dir=tempfile.mkdtemp(), seed=a.seed)
    tr = Trainer(net, augmented(train, net, a.seed, recipe), None, cfg, DistInfo())
    rows, train_s, epoch = [], 0.0, 0
    print(f"\n== {entry.name}, augmentation {recipe!r}: {a.num_samples} images, batch "
          f"{a.batch_size}, lr {a.lr}, {torch.get_num_threads()} threads", flush=True)
    while train_s < a.minutes * 60:
        t0 = time.perf_counter()
        tr.train_epoch(epoch)
        train_s += time.perf_counter() - t0
        m_val = evaluate_voc07(tr.net, val, train.classes, tr.info, 16)
        m_train = evaluate_voc07(tr.net, train_view, train.classes, tr.info, 16)
        rows.append({"epoch": epoch, "train_s": round(train_s, 1), "iters": tr.global_iter,
                     "val_mAP": round(m_val, 4), "train_mAP": round(m_train, 4)})
        print(f"epoch {epoch:3d}  train {train_s:7.1f}s  iters {tr.global_iter:5d}  "
              f"VOC07 mAP held-out {m_val:.4f}  training images {m_train:.4f}", flush=True)
        epoch += 1
    return {"model": entry.name, "augmentation": recipe, "curve": rows,
            "best_val_mAP": max(r["val_mAP"] for r in rows),
            "final_val_mAP": rows[-1]["val_mAP"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=12.0, help="training time per recipe")
    ap.add_argument("--augmentation", nargs="+", default=["color", "ssd"],
                    choices=("ssd", "color", "flip"))
    ap.add_argument("--num-samples", type=int, default=1600)
    ap.add_argument("--val-samples", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-workers", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.minutes <= 0 or a.num_samples < a.batch_size:
        ap.error("--minutes must be > 0 and --num-samples >= --batch-size")
    import logging
    logging.basicConfig(level=logging.WARNING)
    runs = [run(r, a) for r in a.augmentation]
    res = {"num_samples": a.num_samples, "val_samples": a.val_samples,
           "batch_size": a.batch_size, "lr": a.lr, "minutes": a.minutes,
           "threads": torch.get_num_threads(), "torch": torch.__version__, "runs": runs}
    print("\nsummary: " + "; ".join(f"{r['augmentation']}: best held-out mAP "
                                    f"{r['best_val_mAP']:.3f}, final {r['final_val_mAP']:.3f}"
                                    for r in runs))
    if a.json:
        from ssd_zoo.atomic import atomic_write_json
        atomic_write_json(Path(a.json), res, indent=1)


if __name__ == "__main__":
    main()
