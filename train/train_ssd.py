#!/usr/bin/env python
"""Train an SSD (Gluon-CV recipe) on one or many processes.

  python train/train_ssd.py --network mobilenet0.25 --data-shape 300 --dataset synthetic
  torchrun --nproc_per_node=2 train/train_ssd.py --network vgg16_atrous --dataset voc \\
      --dataset-root ~/data/VOCdevkit --batch-size 16
  python -m torch.distributed.launch --nproc_per_node=2 train/train_ssd.py ...

--dataset voc|coco|synthetic|<path>: a path is a custom dataset in VOC layout
(Annotations/, JPEGImages/, ImageSets/Main/{train,val}.txt, optional classes.txt).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EXIT_USAGE, EXIT_ERROR, EXIT_NONFINITE = 2, 1, 3


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Train an SSD (Gluon-CV flags).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--network", default="vgg16_atrous", help="backbone: vgg16_atrous, resnet50_v1, "
      "mobilenet1.0, mobilenet0.25, resnet34_v1b, ...")
    a("--data-shape", type=int, default=300, help="input size (a base size of the catalog)")
    a("--dataset", default="voc", help="voc | coco | synthetic | <path of a VOC-layout folder>")
    a("--dataset-root", default="~/.mxnet/datasets", help="folder holding VOCdevkit / coco")
    a("--num-samples", type=int, default=512, help="--dataset synthetic: training images "
      "(validation: a quarter, at least 8)")
    a("--augmentation", choices=("ssd", "color", "flip"), default="ssd",
      help="ssd: Gluon-CV's (photometric, zoom-out, IoU crop, flip); color: without zoom-out "
      "and crop (short runs from scratch); flip: flip only")
    a("--batch-size", type=int, default=32, help="per process")
    a("--test-batch-size", type=int, default=None, help="validation batch (default: batch size)")
    a("--epochs", type=int, default=240)
    a("--lr", type=float, default=0.001)
    a("--lr-mode", choices=("step", "cos"), default="step")
    a("--lr-decay", type=float, default=0.1)
    a("--lr-decay-epoch", default="160,200", help="comma-separated epochs (step mode)")
    a("--warmup-epochs", type=float, default=0.0)
    a("--warmup-factor", type=float, default=1.0 / 3)
    a("--momentum", type=float, default=0.9)
    a("--wd", type=float, default=0.0005)
    a("--val-interval", type=int, default=1, help="validate every N epochs (0: never)")
    a("--log-interval", type=int, default=100, help="iterations between log lines")
    a("--save-dir", default="runs/ssd", help="last.pth, best.safetensors, TensorBoard logs")
    a("--resume", default=None, help="a last.pth to continue from")
    a("--seed", type=int, default=233)
    a("--num-workers", "-j", type=int, default=4)
    a("--amp", action="store_true", help="autocast: bf16 on CPU, fp16 + GradScaler on CUDA")
    a("--syncbn", action="store_true", help="BatchNorm statistics over all processes")
    a("--pretrained-base", dest="pretrained_base", action="store_true", default=True,
      help="start from ImageNet backbone weights")
    a("--no-pretrained-base", dest="pretrained_base", action="store_false")
    a("--transfer", default=None, metavar="ZOO_NAME", help="start from a pretrained zoo model; "
      "keep the weights of classes whose names match, re-initialize the rest")
    a("--cuda", action="store_true", help="train on CUDA (nccl backend)")
    a("--deterministic", action="store_true", help="torch.use_deterministic_algorithms")
    a("--local-rank", "--local_rank", dest="local_rank", type=int, default=None,
      help="set by python -m torch.distributed.launch (LOCAL_RANK wins)")
    a("--dist-timeout", type=float, default=1800.0, help="collective timeout (s)")
    a("--stop-after-epoch", type=int, default=None, help=argparse.SUPPRESS)
    a("--inject-nan-iter", type=int, default=None, help=argparse.SUPPRESS)
    a("--debug-check-sync", action="store_true", help=argparse.SUPPRESS)
    a("--debug-exit-rank", type=int, nargs=2, default=None, metavar=("RANK", "ITER"),
      help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        args.lr_decay_epoch = tuple(int(e) for e in args.lr_decay_epoch.split(",") if e.strip())
    except ValueError:
        p.error(f"--lr-decay-epoch must be comma-separated integers, got {args.lr_decay_epoch!r}")
    for name in ("batch_size", "epochs", "data_shape", "num_samples"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.num_workers < 0 or args.lr <= 0:
        p.error("--num-workers must be >= 0 and --lr > 0")
    args.test_batch_size = args.test_batch_size or args.batch_size
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from ssd_zoo.train import setup
    from ssd_zoo.train.distributed import DistributedSetupError, cleanup, init_distributed
    from ssd_zoo.train.engine import NonFiniteLoss, TrainConfig, fit

    if args.cuda and not torch.cuda.is_available():
        print("error: --cuda given but CUDA is not available on this machine", file=sys.stderr)
        return EXIT_USAGE
    try:
        info = init_distributed(args.cuda, args.local_rank, args.dist_timeout)
    except DistributedSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    logging.basicConfig(level=logging.INFO if info.is_main else logging.WARNING,
                        format=f"%(asctime)s [rank {info.rank}] %(message)s", stream=sys.stdout)
    try:
        torch.manual_seed(args.seed)
        if args.deterministic:
            torch.use_deterministic_algorithms(True)
        train_set, val_set, classes = setup.build_datasets(args)
        net = setup.build_net(args, classes)
        cfg = TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, test_batch_size=args.test_batch_size,
            lr=args.lr, lr_mode=args.lr_mode, lr_decay=args.lr_decay,
            lr_decay_epochs=args.lr_decay_epoch, warmup_epochs=args.warmup_epochs,
            warmup_factor=args.warmup_factor, momentum=args.momentum, wd=args.wd,
            num_workers=args.num_workers, val_interval=args.val_interval,
            log_interval=args.log_interval, save_dir=os.path.expanduser(args.save_dir),
            resume=args.resume, seed=args.seed, amp=args.amp, syncbn=args.syncbn,
            stop_after_epoch=args.stop_after_epoch, inject_nan_iter=args.inject_nan_iter,
            check_sync=args.debug_check_sync, exit_rank_at=args.debug_exit_rank,
            extra=vars(args))
        result = fit(net, setup.augmented(train_set, net, args.seed, args.augmentation), val_set, cfg, info)
        if info.is_main:
            print(f"done: best mAP {result['best_map']:.4f}, {result['iterations']} iterations,"
                  f" checkpoints in {cfg.save_dir}", flush=True)
        return 0
    except NonFiniteLoss as e:
        last = Path(os.path.expanduser(args.save_dir)) / "last.pth"
        if info.is_main:
            print(f"error: {e}; stopped before the update. Last good checkpoint: "
                  f"{last if last.exists() else 'none yet'}", file=sys.stderr, flush=True)
        return EXIT_NONFINITE
    except (ValueError, FileNotFoundError, setup.SetupError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RuntimeError as e:  # e.g. a peer process died (gloo/nccl error or timeout)
        if os.environ.get("SSD_ZOO_DEBUG"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error (rank {info.rank}): {type(e).__name__}: {first}", file=sys.stderr,
              flush=True)
        return EXIT_ERROR
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
