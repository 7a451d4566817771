#!/usr/bin/env python
"""Convert an amdegroot/ssd.pytorch SSD300 checkpoint into ssd_zoo weights.

    python converters/convert_amdegroot.py --checkpoint ssd300_mAP_77.43_v2.pth \
        --output ssd300_vgg16_amdegroot_voc.safetensors

Also takes ssd_300_VOC0712.pth, and vgg16_reducedfc.pth (backbone tensors only).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from ssd_zoo.convert.amdegroot import NAME, convert_amdegroot_ssd300
    from ssd_zoo.convert.ported_cli import run
    return run("convert_amdegroot", __doc__, convert_amdegroot_ssd300, NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
