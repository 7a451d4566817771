"""Name -> catalog entry lookup, glob listing, and ``get_model``."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import logging
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from .zoo import CATALOG, ModelEntry, SSDPreset

log = logging.getLogger(__name__)
PRESET_FIELDS = {f.name for f in dataclasses.fields(SSDPreset)}
PRECISIONS = ("fp32", "bf16")


def list_models(pattern: str = "*", pretrained: bool = False) -> List[str]:
    """Registered names matching a glob ``pattern`` (sorted); only those with published
    weights when ``pretrained``."""
    return sorted(n for n, e in CATALOG.items()
                  if fnmatch.fnmatchcase(n, pattern) and (e.has_weights or not pretrained))


def get_entry(name: str) -> ModelEntry:
    """The catalog entry of ``name``; ValueError naming the closest matches otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {type(name).__name__}")
    try:
        return CATALOG[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(CATALOG), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} (list_models() shows all "
                         f"{len(CATALOG)})") from None


def find_entry(backbone: str, data_shape: Optional[int] = None,
               dataset: Optional[str] = None) -> ModelEntry:
    """The catalog entry with ``preset.backbone == backbone`` (and ``base_size ==
    data_shape`` when given): the one trained on ``dataset`` when it exists, else the
    ``_custom`` one, else the first by name; an entry's ``train_entry`` replaces it (an
    upstream preset with a flaw that training must not inherit).  Gluon-CV's ``--network resnet50_v1
    --data-shape 512`` style, resolved from the catalog (names are never assembled)."""
    matches = [e for e in CATALOG.values() if e.preset.backbone == backbone
               and (data_shape is None or e.preset.base_size == data_shape)]
    if not matches:
        combos = sorted({(e.preset.backbone, e.preset.base_size) for e in CATALOG.values()})
        avail = ", ".join(f"{b}@{s}" for b, s in combos)
        raise ValueError(f"no SSD with backbone {backbone!r}"
                         + (f" at data shape {data_shape}" if data_shape else "")
                         + f"; available: {avail}")
    for pick in ([e for e in matches if dataset and e.dataset == dataset],
                 [e for e in matches if e.classes is None], matches):
        if pick:
            entry = sorted(pick, key=lambda e: e.name)[0]
            return CATALOG[entry.train_entry] if entry.train_entry else entry
    raise AssertionError("unreachable")


def get_model(name: str, pretrained: bool = False, weights: Optional[str] = None,
              sha256: Optional[str] = None, classes: Optional[Sequence[str]] = None,
              root=None, precision: str = "fp32", pretrained_base: bool = False,
              **overrides) -> torch.nn.Module:
    """Build a registered SSD, optionally with weights.

    Args:
        name: a registered name (``list_models()``), e.g. 'ssd_512_resnet50_v1_coco'.
        pretrained: load the entry's published weights (downloaded, hash-checked,
            converted and cached; see ssd_zoo.hub).
        weights: a local path or http(s) URL of .safetensors / .pth / Gluon .params.
        sha256: enforced hash of ``weights``.
        classes: class names; required for ``*_custom`` models.  With ``pretrained`` on a
            custom model, weights of classes whose names match the source model's are kept.
        root: weight cache root (default $SSD_ZOO_HOME or torch hub dir / 'ssd_zoo').
        precision: 'fp32' (exact parity) or 'bf16' (autocast inference, faster on CPUs
            with AVX512-BF16 / on GPUs).
        **overrides: any SSDPreset field (e.g. nms_thresh=0.5, post_nms=200).
    Returns: the SSD in eval mode.
    """
    from .models.builder import build_ssd
    entry = get_entry(name)
    if entry.kind == "caffe":  # converted Caffe SSD with bundled weights (ssd_zoo/bundled.py)
        from .bundled import get_caffe_model
        if overrides or classes is not None or pretrained_base:
            raise ValueError(f"{name} is a converted Caffe net: preset overrides, classes= "
                             "and pretrained_base do not apply")
        return get_caffe_model(entry, pretrained, weights, sha256, root, precision)
    bad = set(overrides) - PRESET_FIELDS
    if bad:
        raise ValueError(f"unknown option(s) {sorted(bad)} for {name}; preset fields are "
                         f"{sorted(PRESET_FIELDS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    preset = dataclasses.replace(entry.preset, **overrides) if overrides else entry.preset
    if entry.classes is None and classes is None:
        raise ValueError(f"{name} is a custom model: pass classes=[...]")
    if classes is not None and not (isinstance(classes, (list, tuple)) and classes
                                    and all(isinstance(c, str) for c in classes)):
        raise ValueError("classes must be a non-empty list of strings")
    net_classes = tuple(classes) if classes is not None else entry.classes
    if pretrained and weights is not None:
        raise ValueError("pass either pretrained=True or weights=..., not both")

    if pretrained and entry.classes is None:
        net = _custom_from_pretrained(entry, net_classes, root, preset)
    else:
        net = build_ssd(preset, net_classes)
        if pretrained:
            if not entry.has_weights and "manual_weights" in entry.extra:
                raise ValueError(f"{name}: {entry.extra['manual_weights']}")
            if not entry.has_weights:
                raise ValueError(f"{name} has no published weights; models with weights: "
                                 f"{', '.join(list_models(pretrained=True))}")
            path = resolve_pretrained(entry, net, root)
            load_state_dict_strict(net, state_from_file(net, path, entry.extra.get("converter")),
                                   label=str(path))
        elif weights is not None:
            load_weights(net, weights, sha256=sha256, root=root,
                         converter=entry.extra.get("converter"))
        elif pretrained_base:
            from .pretrained_base import load_pretrained_base
            load_pretrained_base(net, preset.backbone, root=root)
    net.entry_name = name
    net.preset = preset
    net.precision = precision
    if precision == "bf16":
        from .fast import warn_if_bf16_emulated
        warn_if_bf16_emulated(precision)
        # NHWC conv weights: oneDNN's fast bf16 convolutions.  Only conv weights: other 4-D
        # tensors (VGG's init_scale buffer) stay contiguous, as DDP's buffer broadcast needs.
        # fp32 stays NCHW by default (the exact-parity path); ssd_zoo.fast has the faster one.
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.to(memory_format=torch.channels_last)
    return net.eval()


def resolve_pretrained(entry: ModelEntry, net, root=None) -> Path:
    """Local safetensors of ``entry``'s published weights (download/convert/cache once)."""
    from . import hub
    from .convert.gluon import CONVERTER_VERSION, convert_gluon_params

    def convert(params_path):
        return convert_gluon_params(params_path, net)[0]

    convert.version = CONVERTER_VERSION  # part of the cache key: a fix rebuilds caches
    return hub.resolve(entry.name, entry.sources, convert, root=root)


def _ported_converters():
    from .convert.amdegroot import convert_amdegroot_ssd300
    from .convert.torchvision import convert_torchvision_ssd300
    return {"torchvision": convert_torchvision_ssd300, "amdegroot": convert_amdegroot_ssd300}


def state_from_file(net, path, converter: Optional[str] = None) -> dict:
    """State dict for ``net`` from a local weights file: Gluon .params are converted; a
    checkpoint in an upstream PyTorch layout is converted by ``converter`` (the catalog
    entry's ``extra['converter']``) unless its keys are already ours."""
    from . import hub
    from .convert.gluon import convert_gluon_params
    loaded = hub.load_state_dict_file(path)
    if isinstance(loaded, hub.RawGluonParams):
        return convert_gluon_params(dict(loaded), net, label=str(path))[0]
    if converter and not set(loaded) <= set(net.state_dict()):
        return _ported_converters()[converter](loaded, label=str(path))[0]
    return loaded


def load_weights(net, weights, sha256: Optional[str] = None, root=None,
                 converter: Optional[str] = None) -> None:
    """Load a state dict (path/URL of .safetensors, .pth or Gluon .params) strictly."""
    from . import hub
    path = hub.fetch_user_weights(str(weights), sha256=sha256, root=root)
    load_state_dict_strict(net, state_from_file(net, path, converter), label=str(path))


def load_state_dict_strict(net, state, label: str = "weights") -> None:
    """``load_state_dict(strict=True)`` with shape errors reported as one ValueError."""
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(f"{label} does not fit this model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}")
    full = dict(own)
    full.update(state)
    net.load_state_dict(full, strict=True)


def _custom_from_pretrained(entry: ModelEntry, classes, root, preset):
    """Gluon-CV's `_custom` + pretrained: start from the COCO model, keep the predictor
    rows of classes whose names match, re-initialize the others."""
    from .models.builder import build_ssd
    from .models.transfer import transfer_classes
    if entry.custom_init_from is None:
        raise ValueError(f"{entry.name} has no pretrained source model to start from")
    src = get_model(entry.custom_init_from, pretrained=True, root=root)
    net = build_ssd(preset, classes)
    transfer_classes(src, net)
    return net
