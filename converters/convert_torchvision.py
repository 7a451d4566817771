#!/usr/bin/env python
"""Convert a torchvision ssd300_vgg16 checkpoint into ssd_zoo weights.

    python converters/convert_torchvision.py --checkpoint ssd300_vgg16_coco-b556d3b4.pth \
        --output ssd300_vgg16_torchvision_coco.safetensors
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from ssd_zoo.convert.ported_cli import run
    from ssd_zoo.convert.torchvision import NAME, convert_torchvision_ssd300
    return run("convert_torchvision", __doc__, convert_torchvision_ssd300, NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
