#!/usr/bin/env python
"""Evaluate an SSD from the zoo on VOC07 test, COCO val2017 or custom data (Gluon-CV's
eval_ssd.py, in PyTorch).

    python eval/eval_ssd.py --network vgg16_atrous --data-shape 300 --dataset voc \\
        --data-root ~/data/voc --batch-size 32 --check
    python eval/eval_ssd.py --network ssd_512_resnet50_v1_coco --dataset coco --cuda
    torchrun --nproc_per_node=2 eval/eval_ssd.py --network ssd_300_vgg16_atrous_voc ...
    python eval/eval_ssd.py --network ssd_300_mobilenet0.25_custom --dataset my_voc_folder \\
        --classes cat,dog --weights my.safetensors

--network is a registered name (ssd_zoo.list_models()) or Gluon-CV's short form, combined
as ssd_<data-shape>_<network>_<voc|coco|custom>.  Writes results/eval/<network>_<dataset>.json
and prints ours | Gluon-CV | paper | Δ.  Exit codes: 0 ok, 1 --check failed, 2 bad input.
Under torchrun each rank evaluates whole batches and rank 0 merges the metric states, so
the numbers equal a single process's run with the same batch size and intra-op thread count
(torchrun sets OMP_NUM_THREADS=1; oneDNN may round differently with other thread counts).
Set SSD_ZOO_DEBUG=1 to see tracebacks.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

PROG = "eval_ssd.py"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the usage too)
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=" ".join(__doc__.split("\n\n")[0].split()),
                epilog=__doc__.split("\n", 2)[2],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default="vgg16_atrous",
                   help="zoo name or Gluon-CV base network (default vgg16_atrous)")
    p.add_argument("--data-shape", type=int, default=None,
                   help="input size; default the model's (300 for short network names)")
    p.add_argument("--batch-size", type=int, default=16, help="images per batch (16)")
    p.add_argument("--dataset", default="voc",
                   help="voc | coco | a VOC-layout folder | a COCO-format .json (voc)")
    p.add_argument("--data-root", default=None,
                   help="voc: folder with VOCdevkit (~/.ssd_zoo/datasets/voc); coco: folder "
                        "with annotations/ (~/.ssd_zoo/datasets/coco); .json: image folder")
    p.add_argument("--split", default=None,
                   help="VOC split name (test) or COCO split (val2017)")
    p.add_argument("--root", default=None, help="weights cache (default $SSD_ZOO_HOME)")
    p.add_argument("--weights", default=None,
                   help=".safetensors / .pth / Gluon .params file or URL")
    p.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                   help="published weights (default: yes unless --weights)")
    p.add_argument("--classes", default=None,
                   help="custom models: comma-separated names or a file with one per line")
    p.add_argument("--metric", choices=("voc07", "voc", "coco"), default=None,
                   help="default voc07 for VOC layout, coco for COCO json")
    p.add_argument("--cuda", action="store_true", help="run on cuda:LOCAL_RANK")
    p.add_argument("--num-workers", "-j", type=int, default=None,
                   help="data loading processes (default min(4, CPUs))")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--fast", action="store_true",
                   help="ssd_zoo.fast.optimize_for_inference (fp32: same detections within "
                   "the Gluon-CV parity tolerances; 1.8x faster for ssd_300_vgg16 on a "
                   "2-core AVX-512 CPU)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when |ours - Gluon-CV| > --tolerance")
    p.add_argument("--tolerance", type=float, default=0.1,
                   help="--check tolerance in mAP points (0.1)")
    p.add_argument("--output", default=None,
                   help="results JSON (default results/eval/<network>_<dataset>.json)")
    p.add_argument("--save-detections", default=None,
                   help="COCO metric: also write the detections as official COCO results")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = os.environ.get("SSD_ZOO_DEBUG") == "1"
    try:
        from ssd_zoo.evaluation import CheckFailed, EvalConfig, EvalError, run
    except ImportError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    cfg = EvalConfig(
        network=args.network, data_shape=args.data_shape, batch_size=args.batch_size,
        dataset=args.dataset, data_root=args.data_root, split=args.split, root=args.root,
        cuda=args.cuda, num_workers=args.num_workers if args.num_workers is not None
        else min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1), weights=args.weights,
        pretrained=args.pretrained, classes=args.classes, check=args.check,
        tolerance=args.tolerance, output=args.output, metric=args.metric,
        precision=args.precision, fast=args.fast, progress=not args.no_progress,
        save_detections=args.save_detections,
        command=" ".join(shlex.quote(a) for a in ["eval/eval_ssd.py"] + argv))
    try:
        run(cfg)
    except CheckFailed as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except EvalError as e:
        if debug:
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # unexpected: still one line unless debugging
        if debug:
            raise
        print(f"{PROG}: error: {type(e).__name__}: {e} (SSD_ZOO_DEBUG=1 shows the "
              "traceback)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
