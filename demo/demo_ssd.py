#!/usr/bin/env python
"""Detect objects with a zoo SSD and write annotated images (Gluon-CV's demo_ssd.py).

    python demo/demo_ssd.py                       # offline: bundled face SSD on demo/images
    python demo/demo_ssd.py --network ssd_300_vgg16_atrous_voc --images street.jpg photos/
    python demo/demo_ssd.py --network ssd_512_resnet50_v1_coco --images 'shots/*.jpg' --json
    python demo/demo_ssd.py --video clip.mp4 --out out/video

Without --network it runs ssd_300_res10_face_caffe, whose weights ship in ssd_zoo/assets
(no download).  Annotated images go to --out (one per input), detections to stdout
(--json: one JSON document instead).  Exit codes: 0 ok, 1 some input failed (each named on
one `error:` line; the others are still processed), 2 bad arguments / network / --cuda.
Set SSD_ZOO_DEBUG=1 for tracebacks.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

PROG = "demo_ssd.py"
DEFAULT_IMAGES = ROOT / "demo" / "images"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"error: {message} (see {PROG} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default=None,
                   help="registered model name (default: the bundled face detector)")
    p.add_argument("--images", nargs="+", default=None, metavar="PATH",
                   help="image files, folders or globs (default: demo/images; none with "
                        "--video)")
    p.add_argument("--weights", help="local path or URL of weights instead of the published ones")
    p.add_argument("--cuda", action="store_true", help="run on the GPU")
    p.add_argument("--fast", action="store_true",
                   help="ssd_zoo.fast.optimize_for_inference: same detections, faster on CPU")
    p.add_argument("--threshold", type=float, default=0.5, help="minimum score drawn (0.5)")
    p.add_argument("--short", type=int, default=None,
                   help="resize the short side to this (default: the model's size)")
    p.add_argument("--out", default="out/demo", help="folder for annotated images (out/demo)")
    p.add_argument("--video", metavar="FILE", help="a video: annotated copy written to "
                                                   "OUT/<stem>_det.mp4")
    p.add_argument("--max-frames", type=int, default=None, help="stop the video after N frames")
    p.add_argument("--show", action="store_true", help="display results (needs a display)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document with every detection (instead of text)")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch (8)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not 0.0 <= args.threshold <= 1.0:
        print(f"error: --threshold {args.threshold}: must be within [0, 1]", file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print(f"error: --batch-size {args.batch_size}: must be >= 1", file=sys.stderr)
        return 2
    import logging  # hub warnings (e.g. a failed source) are folded into our one error line
    logging.getLogger("ssd_zoo").addHandler(logging.NullHandler())
    from ssd_zoo import demo
    report = demo.Report()
    name = args.network or demo.DEFAULT_NETWORK
    try:
        net = demo.load_network(name, weights=args.weights, cuda=args.cuda, fast=args.fast)
    except demo.DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        out_dir = demo.prepare_out_dir(args.out)
    except demo.DemoError as exc:  # still detect and print; exit non-zero at the end
        report.error(str(exc))
        out_dir = None
    specs = args.images if args.images is not None else \
        ([] if args.video else [_shown(DEFAULT_IMAGES)])
    paths = demo.collect_images(specs, report)
    if paths:
        demo.process_images(net, paths, out_dir, report, threshold=args.threshold,
                            short=args.short, batch_size=args.batch_size, quiet=args.json)
    if args.video:
        demo.process_video(net, args.video, out_dir, report, threshold=args.threshold,
                           short=args.short, max_frames=args.max_frames, quiet=args.json)
    if args.json:
        print(demo.to_json(name, report))
    else:
        done = len(report.records)
        print(f"{name}: {done} image(s)/frame(s) processed"
              + (f", annotated output in {out_dir}" if out_dir and done else "")
              + (f"; {len(report.errors)} error(s)" if report.errors else ""))
    if args.show:
        why = demo.show(out_dir, report.records)
        if why:
            print(f"note: {why}; annotated files are in {out_dir}", file=sys.stderr)
    return 1 if report.errors else 0


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it (shorter output)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _entry() -> int:
    if os.environ.get("SSD_ZOO_DEBUG"):
        return main()
    try:
        return main()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, no traceback (SSD_ZOO_DEBUG=1 shows it)
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {type(exc).__name__}: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_entry())
