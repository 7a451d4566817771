#!/usr/bin/env python
"""Download Pascal VOC 2007 (trainval + test) and/or 2012 (trainval) into DIR/VOCdevkit.

    python scripts/download_voc.py --root ~/data/voc --years 2007 2012

Then: ``VOCDetection('~/data/voc/VOCdevkit', splits=((2007, 'test'),))``.
Archives are fetched to DIR/archives (atomic, md5-checked) and extracted in place.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _download import download, extract  # noqa: E402  (no torch import: fast --help)

MIRROR = "https://thor.robots.ox.ac.uk/pascal/VOC"
ARCHIVES = {  # year -> [(file, md5)]; md5s as published by torchvision's VOC dataset
    2007: [("voc2007/VOCtrainval_06-Nov-2007.tar", "c52e279531787c972589f7e41ab4ae64"),
           ("voc2007/VOCtest_06-Nov-2007.tar", "b6e924de25625d8de591ea690078ad9f")],
    2012: [("voc2012/VOCtrainval_11-May-2012.tar", "6cd6e144f989b92b3379bac3b3de84fd")],
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("~/.ssd_zoo/datasets/voc"),
                    help="target folder (VOCdevkit/ is created inside)")
    ap.add_argument("--years", type=int, nargs="+", default=[2007, 2012],
                    choices=sorted(ARCHIVES))
    ap.add_argument("--mirror", default=MIRROR, help="base URL of the VOC archives")
    ap.add_argument("--keep-archives", action="store_true", help="keep the .tar files")
    args = ap.parse_args(argv)
    root = args.root.expanduser()
    for year in args.years:
        for rel, md5 in ARCHIVES[year]:
            tar = download(f"{args.mirror}/{rel}", root / "archives" / Path(rel).name, md5)
            extract(tar, root)
            if not args.keep_archives:
                tar.unlink()
    print(f"done: {root / 'VOCdevkit'}")


if __name__ == "__main__":
    main()
