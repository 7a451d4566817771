#!/usr/bin/env python
"""Download MS COCO 2014 and/or 2017 images + instance annotations into DIR.

    python scripts/download_coco.py --root ~/data/coco --years 2017 --splits val

Layout: DIR/annotations/instances_<split><year>.json, DIR/<split><year>/*.jpg, i.e.
``COCODetection('~/data/coco', split='val2017')``.  Atomic downloads, then extraction.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _download import download, extract  # noqa: E402  (no torch import: fast --help)

BASE = "http://images.cocodataset.org"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("~/.ssd_zoo/datasets/coco"))
    ap.add_argument("--years", type=int, nargs="+", default=[2017], choices=[2014, 2017])
    ap.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val"])
    ap.add_argument("--no-images", action="store_true", help="annotations only")
    ap.add_argument("--base-url", default=BASE)
    ap.add_argument("--keep-archives", action="store_true", help="keep the .zip files")
    args = ap.parse_args(argv)
    root = args.root.expanduser()
    files = []
    for year in args.years:
        files.append(f"annotations/annotations_trainval{year}.zip")
        if not args.no_images:
            files += [f"zips/{split}{year}.zip" for split in args.splits]
    for rel in files:
        archive = download(f"{args.base_url}/{rel}", root / "archives" / Path(rel).name)
        extract(archive, root)
        if not args.keep_archives:
            archive.unlink()
    print(f"done: {root}")


if __name__ == "__main__":
    main()
