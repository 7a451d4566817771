"""Rename a foreign state_dict into ssd_zoo keys, Detectron2-converter style.

Mapping is BY NAME through an ordered rule table; the result is checked: one-to-one,
every source tensor consumed, every expected target filled, shapes equal.  Tensor
surgeries (reshapes, channel reorders) are named functions applied after renaming and
logged; a rule table without surgeries copies every tensor unchanged.
"""
from __future__ import annotations

import logging
import re
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import torch

from .gluon import ConversionError

log = logging.getLogger(__name__)
Rule = Tuple[str, Callable[[re.Match], str]]   # (full-match regex, match -> target key)
Surgery = Tuple[str, Callable[[torch.Tensor], torch.Tensor]]   # (description, fn)


def rename_key(name: str, rules: Sequence[Rule]) -> Optional[str]:
    """The target key of source ``name`` under the first matching rule, or None."""
    for pattern, to in rules:
        m = re.fullmatch(pattern, name)
        if m:
            return to(m)
    return None


def convert_by_rules(source: Mapping[str, torch.Tensor], rules: Sequence[Rule],
                     target_shapes: Mapping[str, Tuple[int, ...]],
                     surgeries: Mapping[str, Surgery] = None,
                     label: str = "checkpoint") -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Map ``source`` onto ``target_shapes``' keys.

    Returns (state_dict, key_map {source key: target key}).  Raises ConversionError naming
    unmapped source tensors, targets mapped twice, missing targets and shape mismatches.
    """
    surgeries = dict(surgeries or {})
    state: Dict[str, torch.Tensor] = {}
    key_map: Dict[str, str] = {}
    unexpected, bad_shape, twice = [], [], []
    for src, tensor in source.items():
        if not isinstance(tensor, torch.Tensor):
            unexpected.append(f"{src} (a {type(tensor).__name__}, not a tensor)")
            continue
        dst = rename_key(src, rules)
        if dst is None or dst not in target_shapes:
            unexpected.append(src if dst is None else f"{src} -> {dst} (no such target)")
            continue
        if dst in state:
            first = next(k for k, v in key_map.items() if v == dst)
            twice.append(f"{src} and {first} -> {dst}")
            continue
        if dst in surgeries:
            what, fn = surgeries[dst]
            log.info("surgery on %s -> %s: %s", src, dst, what)
            tensor = fn(tensor)
        if tuple(tensor.shape) != tuple(target_shapes[dst]):
            bad_shape.append(f"{src} -> {dst}: {tuple(tensor.shape)} vs "
                             f"{tuple(target_shapes[dst])}")
            continue
        state[dst] = tensor.detach().clone().contiguous()
        key_map[src] = dst
    missing = [k for k in target_shapes if k not in state]
    problems = []
    if twice:
        problems.append("mapped twice: " + "; ".join(twice[:5]))
    if bad_shape:
        problems.append(f"{len(bad_shape)} shape mismatch(es): " + "; ".join(bad_shape[:5]))
    if unexpected:
        problems.append(f"{len(unexpected)} unmapped tensor(s): {unexpected[:5]}")
    if missing:
        problems.append(f"{len(missing)} missing tensor(s): {missing[:5]}")
    if problems:
        raise ConversionError(f"{label}: " + " | ".join(problems))
    assert len(set(key_map.values())) == len(key_map) == len(source)
    return state, key_map


def target_shapes_of(build: Callable[[], torch.nn.Module],
                     prefix: str = "") -> Dict[str, Tuple[int, ...]]:
    """{state_dict key: shape} of the module ``build()`` makes (built on the meta device,
    so no memory or init time), restricted to keys starting with ``prefix``."""
    with torch.device("meta"):
        net = build()
    return {k: tuple(v.shape) for k, v in net.state_dict().items() if k.startswith(prefix)}


def strip_prefix(source: Mapping[str, torch.Tensor], prefix: str
                 ) -> Tuple[Dict[str, torch.Tensor], str]:
    """Drop ``prefix`` (e.g. DataParallel's 'module.') when EVERY key carries it.
    Returns (tensors, the prefix removed or '')."""
    if source and all(k.startswith(prefix) for k in source):
        log.info("stripping %r from every key", prefix)
        return {k[len(prefix):]: v for k, v in source.items()}, prefix
    return dict(source), ""
