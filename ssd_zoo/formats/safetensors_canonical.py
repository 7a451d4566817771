"""Reproducible safetensors bytes.

The safetensors library serialises its header's ``__metadata__`` map in random order (a
Rust HashMap), so a file with two or more metadata keys gets different bytes, and a
different sha256, each time it is written.  :func:`canonical` rewrites the header JSON with
sorted keys.  The sorted header has the same length, so the data offsets still hold.
"""
from __future__ import annotations

import json
import struct
from typing import Dict, Mapping, Optional

import torch


def canonical(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its header's keys sorted; tensors untouched.
    Raises ValueError if ``data`` is not safetensors."""
    if len(data) < 8:
        raise ValueError("not a safetensors file: shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"not a safetensors file: header of {n} bytes in {len(data)} bytes")
    raw = data[8:8 + n]
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a safetensors file: header is not JSON ({exc})") from None
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body = text.encode("utf-8")
    if len(body) > n:   # cannot happen for safetensors' own compact JSON; never truncate
        raise ValueError(f"canonical header is {len(body)} bytes, the original {n}")
    return data[:8] + body.ljust(n, b" ") + data[8 + n:]


def save_bytes(tensors: Mapping[str, torch.Tensor],
               metadata: Optional[Dict[str, str]] = None) -> bytes:
    """``safetensors.torch.save`` with a canonical header: the same tensors and metadata
    always give the same bytes."""
    from safetensors.torch import save
    return canonical(save(dict(tensors), metadata=metadata))
