#!/usr/bin/env python
"""Convert a Gluon-CV SSD .params file into ssd_zoo weights (.safetensors or .pth).

    python converters/convert_gluoncv.py --network ssd_300_vgg16_atrous_voc \
        --params ssd_300_vgg16_atrous_voc-0e169fbb.params --output ssd300_voc.safetensors

The output loads with ``ssd_zoo.get_model(NAME, weights=OUT)``.  No MXNet needed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True, help="registered model name (ssd_zoo.list_models())")
    p.add_argument("--params", required=True, help="Gluon .params file (either naming scheme)")
    p.add_argument("--output", required=True, help="output .safetensors (default) or .pth")
    p.add_argument("--classes", nargs="+", help="class names, for *_custom networks")
    p.add_argument("--verbose", action="store_true", help="print the key map")
    args = p.parse_args(argv)
    from ssd_zoo.convert.cli import convert_gluon_file
    try:
        key_map, out = convert_gluon_file(args.network, args.params, args.output,
                                          classes=args.classes)
    except (ValueError, OSError) as e:
        print(f"convert_gluoncv: error: {e}", file=sys.stderr)
        return 2
    if args.verbose:
        for src, dst in key_map.items():
            print(f"{src} -> {dst}")
    print(f"converted {len(key_map)} tensors of {args.params} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
