#!/usr/bin/env python
"""Export an ssd_zoo SSD, decode and Gluon-semantics NMS included, to ONNX (or TorchScript).

    python converters/export_onnx.py --network ssd_300_vgg16_atrous_voc \
        --weights ssd300_voc.safetensors --output ssd300_voc.onnx [--dynamic]

Input ``data`` (N,3,H,W) float32, RGB normalized Gluon-style; outputs ``ids`` (N,100,1),
``scores`` (N,100,1), ``bboxes`` (N,100,4) in input pixels, -1 on padding rows: the
PyTorch model's outputs.  An output ending in .pt is written as TorchScript instead.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True, help="registered model name (ssd_zoo.list_models())")
    p.add_argument("--weights", help="weights (.safetensors / .pth / Gluon .params); "
                                     "default: the published ones (--pretrained)")
    p.add_argument("--pretrained", action="store_true",
                   help="use the published weights (downloaded and cached)")
    p.add_argument("--random", action="store_true",
                   help="export with random weights (for testing the pipeline)")
    p.add_argument("--output", required=True, help="output .onnx (or .pt for TorchScript)")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch/height/width axes")
    p.add_argument("--data-shape", type=int, nargs="+", metavar="N",
                   help="example input size: S or H W (default: the model's base size)")
    p.add_argument("--classes", nargs="+", help="class names, for *_custom networks")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    args = p.parse_args(argv)
    if sum(bool(v) for v in (args.weights, args.pretrained, args.random)) != 1:
        print("export_onnx: error: pass exactly one of --weights W, --pretrained, --random",
              file=sys.stderr)
        return 2
    shape = None
    if args.data_shape:
        if len(args.data_shape) not in (1, 2) or min(args.data_shape) < 32:
            print("export_onnx: error: --data-shape takes S or H W (each >= 32)", file=sys.stderr)
            return 2
        shape = tuple(args.data_shape) * (2 // len(args.data_shape))
    try:
        import ssd_zoo
        from ssd_zoo.export import export_onnx, export_torchscript
        net = ssd_zoo.get_model(args.network, pretrained=args.pretrained,
                                weights=args.weights, classes=args.classes)
        if args.output.endswith(".pt"):
            out = export_torchscript(net, args.output, data_shape=shape)
        else:
            out = export_onnx(net, args.output, data_shape=shape, dynamic=args.dynamic,
                              opset=args.opset)
    except (ValueError, OSError, RuntimeError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"export_onnx: error: {msg}", file=sys.stderr)
        return 2
    print(f"exported {args.network} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
