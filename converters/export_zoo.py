#!/usr/bin/env python
"""Convert every upstream Gluon-CV SSD weight file into publishable .safetensors + manifest.

For a maintainer with internet:
    python converters/export_zoo.py --output release/ [--names ssd_300_*]
Downloads (sha1-checked) each model-store zip, converts it, and writes
release/{name}-{sha256[:8]}.safetensors and release/manifest.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--names", default="*", help="glob of model names (default: all with weights)")
    p.add_argument("--root", help="weight cache root (default $SSD_ZOO_HOME / torch hub dir)")
    args = p.parse_args(argv)
    import ssd_zoo
    from ssd_zoo.publish import export_converted
    names = ssd_zoo.list_models(args.names, pretrained=True)
    if not names:
        print(f"export_zoo: error: no model with weights matches {args.names!r}", file=sys.stderr)
        return 2
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(names), unit="model", disable=not sys.stderr.isatty())
        rows = export_converted(names, args.output, root=args.root,
                                progress=lambda row: (bar.update(1), print(
                                    f"{row['name']}: {row['file']} sha256 {row['sha256']}")))
        bar.close()
    except Exception as e:  # one line, no traceback
        print(f"export_zoo: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"wrote {len(rows)} files and {Path(args.output) / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
