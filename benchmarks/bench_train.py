"""Training-step throughput (forward + loss + backward) of ssd_zoo's ssd_300_vgg16_atrous vs
torchvision's ssd300_vgg16 on the same batch, interleaved in one process; prints the ratio.

  python benchmarks/bench_train.py --batch 2 --reps 3 [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    import ssd_zoo
    from ssd_zoo.data.synthetic import SyntheticDetection
    from ssd_zoo.train.augment import SSDTrainTransform
    from ssd_zoo.train.engine import compute_anchors
    from ssd_zoo.train.loss import SSDMultiBoxLoss
    from ssd_zoo.train.targets import SSDTargetEncoder, pad_labels
    from torchvision.models.detection import ssd300_vgg16

    torch.manual_seed(0)
    ds = SyntheticDetection(a.batch, seed=1)
    tf = SSDTrainTransform(300)
    samples = [tf(*ds[i]) for i in range(a.batch)]
    x = torch.stack([s[0] for s in samples])
    labels = [s[1] for s in samples]

    ours = ssd_zoo.get_model("ssd_300_vgg16_atrous_voc").train()
    enc = SSDTargetEncoder(compute_anchors(ours, 300, "cpu"))
    loss_fn = SSDMultiBoxLoss()
    tv = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21).train()
    tv_targets = [{"boxes": l[:, :4], "labels": l[:, 4].long() + 1} for l in labels]
    # torchvision normalizes + resizes inside; feed it 0..1 images of the same batch
    tv_x = [(xi * torch.tensor([0.229, 0.224, 0.225])[:, None, None]
             + torch.tensor([0.485, 0.456, 0.406])[:, None, None]) for xi in x]

    def step_ours():
        cls_t, box_t = enc(*pad_labels(labels))   # targets included (a worker does this)
        c, b, _ = ours(x)
        loss_fn(c, b, cls_t, box_t)[0].backward()

    def step_tv():
        sum(tv(tv_x, tv_targets).values()).backward()

    times = {"ssd_zoo": [], "torchvision": []}
    for fn in (step_ours, step_tv):   # warm-up
        fn()
    for _ in range(a.reps):
        for name, fn in (("ssd_zoo", step_ours), ("torchvision", step_tv)):
            ours.zero_grad(set_to_none=True)
            tv.zero_grad(set_to_none=True)
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {"batch": a.batch, "threads": torch.get_num_threads(),
           "ms_per_step": {k: round(v * 1000, 1) for k, v in med.items()},
           "img_per_s": {k: round(a.batch / v, 2) for k, v in med.items()},
           "speed_ratio_ssd_zoo_over_torchvision": round(med["torchvision"] / med["ssd_zoo"], 3)}
    print(json.dumps(res, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
