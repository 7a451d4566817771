"""Convert a Caffe SSD (deploy prototxt + caffemodel) into one ssd_zoo file.

    python converters/convert_caffe.py --prototxt deploy.prototxt \
        --caffemodel weights.caffemodel --output model.safetensors

The output is safetensors (no pickled code): the blobs plus the prototxt text in the
metadata; ``ssd_zoo.caffe.load(OUT)`` rebuilds the module (OpenCV-identical outputs).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ssd_zoo.caffe import CaffeFormatError, load, load_caffe, save  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prototxt", required=True, help="deploy .prototxt (text format)")
    ap.add_argument("--caffemodel", required=True, help="trained .caffemodel (binary)")
    ap.add_argument("--output", required=True, help="output .safetensors file")
    args = ap.parse_args(argv)
    for flag, path in (("--prototxt", args.prototxt), ("--caffemodel", args.caffemodel)):
        if not os.path.isfile(path):
            print(f"error: {flag} {path}: no such file", file=sys.stderr)
            return 2
    try:
        net = load_caffe(args.prototxt, args.caffemodel)
        save(net, args.output)
        load(args.output)  # read back: the file must rebuild
    except (CaffeFormatError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n = sum(b.numel() for layer in net.layers for b in layer.blobs)
    print(f"wrote {args.output}: {len(net.layers)} layers, {n} weights, outputs "
          f"{net.output_names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
