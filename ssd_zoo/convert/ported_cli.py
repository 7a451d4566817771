"""Shared body of converters/convert_torchvision.py and converters/convert_amdegroot.py."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence


def run(prog: str, doc: str, convert: Callable, network: str,
        argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``--checkpoint IN --output OUT [--verbose]``, convert, write; 0 on success,
    2 with one ``prog: error: ...`` line on stderr otherwise."""
    p = argparse.ArgumentParser(prog=prog, description=doc.strip().split("\n\n")[0],
                                epilog=f"The output loads with ssd_zoo.get_model("
                                       f"'{network}', weights=OUT).")
    p.add_argument("--checkpoint", required=True, help="upstream .pth state_dict")
    p.add_argument("--output", required=True, help="output .safetensors (default) or .pth")
    p.add_argument("--verbose", action="store_true", help="print the key map")
    args = p.parse_args(argv)
    try:
        import torch
        from .cli import save_state_dict
        path = Path(args.checkpoint)
        if not path.is_file():
            raise ValueError(f"{path}: no such file")
        try:
            source = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated / not a torch file / pickled code
            raise ValueError(f"{path}: cannot read as a torch state_dict "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        if isinstance(source, dict) and isinstance(source.get("state_dict"), dict):
            source = source["state_dict"]
        if not isinstance(source, dict):
            raise ValueError(f"{path}: holds a {type(source).__name__}, not a state_dict")
        state, key_map = convert(source, label=str(path))
        meta = {"network": network, "source": path.name, "format": "ssd_zoo"}
        out = save_state_dict(state, args.output, meta)
    except (ValueError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    if args.verbose:
        for src, dst in key_map.items():
            print(f"{src} -> {dst}")
    print(f"converted {len(key_map)} tensors of {args.checkpoint} -> {out}")
    return 0
