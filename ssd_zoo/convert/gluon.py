"""Gluon-CV (MXNet) ``.params`` -> ssd_zoo state_dict, by name, one-to-one.

Both Gluon naming schemes are accepted: structural names written by
``save_parameters`` (``features.stages.0.0.weight``) and prefixed names written by
``collect_params().save`` (``ssd0_vggatrousextractor0_conv0_weight``; the leading
``ssd<N>_`` is optional).  Every source tensor must be consumed, every target filled,
shapes must be equal.  Constants stored in the file (anchors, VGG's init_scale) are not
loaded: they are checked against the values our model computes.
"""
from __future__ import annotations

import logging
import re
from typing import Dict, Mapping, Tuple

import numpy as np
import torch

log = logging.getLogger(__name__)
SSD_PREFIX = re.compile(r"^ssd\d+_")
#: bump when a conversion fix changes outputs; cached conversions are then rebuilt
CONVERTER_VERSION = "1"


class ConversionError(ValueError):
    """The source weights do not fit the target architecture."""


def strip_ssd_prefix(name: str) -> str:
    return SSD_PREFIX.sub("", name, count=1)


def map_gluon_arrays(arrays: Mapping[str, np.ndarray],
                     gluon_names: Mapping[str, Tuple[str, ...]],
                     target: Mapping[str, torch.Tensor],
                     constants: Mapping[str, Tuple[Tuple[str, ...], torch.Tensor]] = None,
                     label: str = "weights",
                     atol: float = 1e-4) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Map Gluon arrays onto a target state_dict.

    Args:
        arrays: {gluon name: array} as read from a .params file.
        gluon_names: {target key: accepted gluon names} (after stripping ``ssd<N>_``).
        target: the target state_dict (for shapes and dtypes); keys absent from
            ``gluon_names`` (e.g. ``num_batches_tracked``) are kept as they are.
        constants: {constant id: (accepted gluon names, expected tensor)}; such source
            tensors are verified (max |diff| <= atol) instead of loaded.
        label: file name for error messages.
    Returns:
        (state_dict, key_map) where key_map maps each source name to its target key
        (or to ``'<constant:id>'``).
    Raises:
        ConversionError naming the tensors that are unexpected, missing, duplicated or
        of the wrong shape.
    """
    constants = dict(constants or {})
    inverse: Dict[str, str] = {}
    for key, names in gluon_names.items():
        for n in names:
            if n in inverse and inverse[n] != key:
                raise ConversionError(f"ambiguous gluon name {n!r}: {inverse[n]} and {key}")
            inverse[n] = key
    for cid, (names, _) in constants.items():
        for n in names:
            inverse[n] = f"<constant:{cid}>"

    state = {k: v for k, v in target.items() if k not in gluon_names}
    key_map: Dict[str, str] = {}
    filled: Dict[str, str] = {}
    unexpected, bad_shape, bad_const = [], [], []
    for src, arr in arrays.items():
        name = strip_ssd_prefix(src)
        key = inverse.get(name)
        if key is None:
            unexpected.append(src)
            continue
        if key in filled:
            raise ConversionError(f"{label}: {src!r} and {filled[key]!r} both map to {key!r}")
        filled[key] = src
        key_map[src] = key
        tensor = torch.from_numpy(np.array(arr, copy=True))
        if key.startswith("<constant:"):
            expected = constants[key[len("<constant:"):-1]][1]
            if tuple(tensor.shape) != tuple(expected.shape):
                bad_const.append(f"{src}: shape {tuple(tensor.shape)} != {tuple(expected.shape)}")
            elif not torch.allclose(tensor.float(), expected.float(), atol=atol, rtol=0):
                diff = (tensor.float() - expected.float()).abs().max().item()
                bad_const.append(f"{src}: differs from the architecture's value by {diff:g}")
            continue
        want = target[key]
        if tuple(tensor.shape) != tuple(want.shape):
            bad_shape.append(f"{src} -> {key}: file {tuple(tensor.shape)}, "
                             f"model {tuple(want.shape)}")
            continue
        state[key] = tensor.to(want.dtype)
    missing = [k for k in gluon_names if k not in filled]
    problems = []
    if bad_shape:
        problems.append(f"{len(bad_shape)} shape mismatch(es): " + "; ".join(bad_shape[:5]))
    if unexpected:
        problems.append(f"{len(unexpected)} tensor(s) in the file that this architecture "
                        f"does not have: {unexpected[:5]}")
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing from the file: "
                        f"{[gluon_names[k][0] for k in missing[:5]]}")
    if bad_const:
        problems.append("constants disagree (anchors/init_scale of another preset?): "
                        + "; ".join(bad_const[:3]))
    if problems:
        raise ConversionError(f"{label} does not fit this architecture: "
                              + " | ".join(problems))
    log.debug("converted %d tensors from %s", len(key_map), label)
    return state, key_map


def convert_gluon_params(source, net, label: str = None):
    """Convert a Gluon SSD ``.params`` (path, bytes or {name: array}) for ``net``.

    ``net`` is an ssd_zoo SSD of the same architecture; it provides the name map
    (``gluon_key_map``), target shapes and the constants to verify (anchors).
    Returns (state_dict, key_map).
    """
    from ..formats.mxnet_params import read_params
    if isinstance(source, Mapping):
        arrays, label = source, label or "<arrays>"
    else:
        arrays = read_params(source)
        label = label or str(source)
    return map_gluon_arrays(arrays, net.gluon_key_map(), net.state_dict(),
                            constants=net.gluon_constants(), label=label)
