#!/usr/bin/env python
"""Convert an original (weiliu89) Caffe VGG16 SSD300/SSD512 into native ssd_zoo weights.

    python converters/convert_caffe_ssd.py --prototxt deploy.prototxt \
        --caffemodel VGG_VOC0712_SSD_300x300_iter_120000.caffemodel \
        --network ssd_300_vgg16_caffe_voc0712 --output ssd300_voc0712.safetensors

The output (safetensors, no pickled code) loads with
``ssd_zoo.get_model(NETWORK, weights=OUT)``: a trainable/evaluable native SSD
(BGR->RGB folded into conv1_1, Caffe priors, Caffe DetectionOutput post-processing).
--network defaults to the catalog entry the prototxt matches.  For the generic
(OpenCV-exact, not trainable) import of any Caffe SSD use converters/convert_caffe.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    prog = "convert_caffe_ssd"
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--prototxt", required=True, help="weiliu89 deploy.prototxt")
    ap.add_argument("--caffemodel", required=True, help="trained .caffemodel")
    ap.add_argument("--network", default=None,
                    help="catalog name, e.g. ssd_300_vgg16_caffe_voc0712 (default: inferred)")
    ap.add_argument("--output", required=True, help="output .safetensors (or .pth)")
    ap.add_argument("--verbose", action="store_true", help="print the key map")
    args = ap.parse_args(argv)
    try:
        from ssd_zoo.caffe import read_caffemodel
        from ssd_zoo.convert.caffe_native import CONVERTER_VERSION, convert_caffe_ssd
        from ssd_zoo.convert.cli import save_state_dict
        for flag, path in (("--prototxt", args.prototxt), ("--caffemodel", args.caffemodel)):
            if not Path(path).is_file():
                raise ValueError(f"{flag} {path}: no such file")
        try:
            text = Path(args.prototxt).read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{args.prototxt}: not a text prototxt ({e})") from None
        from ssd_zoo.caffe.textformat import parse_prototxt
        net = parse_prototxt(text, args.prototxt)
        blobs = read_caffemodel(args.caffemodel)
        from ssd_zoo.convert.caffe_native import infer_network
        network = args.network or infer_network(net)
        state, key_map = convert_caffe_ssd(blobs, net, network, label=args.caffemodel)
        meta = {"network": network, "source": Path(args.caffemodel).name, "format": "ssd_zoo",
                "converter": f"caffe_native/{CONVERTER_VERSION}",
                "surgeries": "bgr_to_rgb(conv1_1),normalize_scale(conv4_3_norm)"}
        out = save_state_dict(state, args.output, meta)
    except (ValueError, OSError) as e:  # ConversionError/CaffeFormatError are ValueErrors
        msg = " ".join(str(e).split())
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
    if args.verbose:
        for src, dst in key_map.items():
            print(f"{src} -> {dst}")
    print(f"converted {len(key_map)} tensors of {args.caffemodel} -> {out} "
          f"(load with ssd_zoo.get_model('{network}', weights='{out}'))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
