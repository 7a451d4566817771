"""Inference speed levers for ssd_zoo SSDs, with Gluon-CV's detections kept.

``optimize_for_inference(net)`` wraps an SSD in :class:`FastSSD`:

* channels_last weights and input (oneDNN's native NHWC convolutions; the head outputs are
  then already NHWC, so the permute before the concat costs no copy);
* fp32 on CPU: the backbone's 3x3 / stride-1 convolutions (VGG16 from conv1_2 on) run as
  Winograd F(4x4, 3x3), F(6x6, 3x3) on large maps (ssd_zoo/winograd.py, 4x / 5.1x fewer
  multiply-adds; fused C++
  transforms from ssd_zoo/winograd_ext.py, with a pure-PyTorch fallback);
* eval-mode BatchNorm folded into the preceding convolutions (ssd_zoo/fold_bn.py; for bf16
  in fp32 before the cast: one bf16 rounding per conv+BN, not two);
* optional bf16 backbone (AVX512-BF16 / AMX CPUs, GPUs), predictors kept in fp32;
* a post-processor that does the same work as :class:`ssd_zoo.postprocess.GluonPostProcessor`
  on pre-filtered candidates: one global top-k on the class-major scores, then the box
  decode only for the selected candidates, then the greedy pass on a small matrix;
* optional ``torch.jit.freeze`` (conv+ReLU fusion, oneDNN weight prepacking) and
  ``torch.compile``; neither helped measurably on the 2-core AVX-512 machine this was tuned
  on (see benchmarks/speed.py), so both are off by default.

With the fp32 defaults, results equal Gluon-CV's row by row within the parity tolerances
(tests/test_gluon_parity.py::test_fast_fp32_parity, tests/test_fast.py).
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .metrics.agreement import detection_agreement  # noqa: F401  (re-exported)
from .postprocess_fast import (FastPostProcessor, greedy_nms, iou_matrix,  # noqa: F401
                               stable_topk)


PRECISIONS = ("fp32", "bf16")
#: Winograd only where it pays (ssd_zoo.winograd.transform_intensity >= this).  With the
#: fused C++ transforms (ssd_zoo.winograd_ext) and F(6x6) on large maps: every VGG16 3x3
#: conv but conv1_1 (3 -> 64); vgg300 heads 298 ms direct, 185 with F(4x4) from 40, 174
#: with F(6x6) on >= 48 px maps, 164 from 25 (7 interleaved rounds, 2-core AVX-512 EPYC).
WINOGRAD_MIN_INTENSITY = 25.0
#: the same with the PyTorch-op fallback transforms (no compiler; F(4x4) only): VGG16 from
#: conv3_1 on, ResNet bottlenecks with 256+ channels; the thinner layers stay direct.
WINOGRAD_MIN_INTENSITY_TORCH = 80.0
#: F(4x4, 3x3): 4x fewer multiply-adds than direct (F(2x2): 2.25x), ~1e-5 relative per
#: layer; the Gluon parity test of the fast path holds with it.
WINOGRAD_TILE = 4
#: ... and F(6x6, 3x3) on maps of at least ssd_zoo.winograd.LARGE_TILE_MIN_SIDE (48) px,
#: with the fused transforms
WINOGRAD_LARGE_TILE = 6


def bf16_is_native(device_type: str = "cpu") -> bool:
    """Whether bf16 convolutions run natively: any CUDA device, or a CPU with AVX512-BF16 or
    AMX.  Elsewhere oneDNN emulates bf16 (measured 8x SLOWER than fp32 on an AVX2 EPYC)."""
    if device_type == "cuda":
        return True
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def warn_if_bf16_emulated(precision: str, device_type: str = "cpu") -> None:
    """A RuntimeWarning when ``precision='bf16'`` would run emulated (see bf16_is_native)."""
    if precision == "bf16" and not bf16_is_native(device_type):
        warnings.warn("precision='bf16' on a CPU without AVX512-BF16/AMX runs emulated and "
                      "is several times slower than fp32 (8x on an AVX2 EPYC): use fp32 "
                      "here, or ssd_zoo.fast.optimize_for_inference(net) for speed",
                      RuntimeWarning, stacklevel=3)


def autocast_ctx(precision: str, device_type: str = "cpu"):
    """``torch.autocast`` to bf16 for ``precision='bf16'``, a no-op context for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return contextlib.nullcontext()


@dataclass(frozen=True)
class BackboneRewrites:
    """What the fast path rewrites in a (copied) backbone, applied by :meth:`apply`.

    fold_bn: fold eval BatchNorm into the preceding convolutions (ssd_zoo/fold_bn.py); in
        fp32, before any bf16 cast, so bf16 rounds once per conv+BN instead of twice.
    winograd_min_intensity: 3x3 convolutions with C*K/(C+K) >= this run as Winograd
        (0: none; ssd_zoo/winograd.py; fp32 only).
    winograd_tile / winograd_large_tile: F(m x m, 3x3) tile, and the tile for large maps
        (None: ``winograd_tile`` everywhere).
    """
    fold_bn: bool = False
    winograd_min_intensity: float = 0.0
    winograd_tile: int = WINOGRAD_TILE
    winograd_large_tile: Optional[int] = None

    @property
    def any(self) -> bool:
        return self.fold_bn or self.winograd_min_intensity > 0

    def apply(self, backbone: nn.Module) -> Dict[str, int]:
        """Rewrite ``backbone`` in place; returns {'folded_batchnorms', 'winograd_layers'}."""
        out = {"folded_batchnorms": 0, "winograd_layers": 0}
        if self.fold_bn:
            from .fold_bn import fold_batchnorms
            out["folded_batchnorms"] = fold_batchnorms(backbone)
        if self.winograd_min_intensity > 0:
            from .winograd import replace_with_winograd
            out["winograd_layers"] = replace_with_winograd(
                backbone, self.winograd_min_intensity, self.winograd_tile,
                self.winograd_large_tile)
        return out


class SSDHeads(nn.Module):
    """Backbone + predictors of an SSD: x -> (cls_logits (N,A,C+1), box_offsets (N,A,4)).

    The anchors are left out so that the module can be traced/frozen/compiled; they only
    depend on the feature-map sizes and are cached per input size by :class:`FastSSD`.
    With ``precision='bf16'`` the backbone runs under bf16 autocast with its convolution
    weights stored in bf16 (a copy: no per-call weight casts; the other parameters and
    buffers, e.g. VGG's init_scale and L2Normalization scale, stay fp32 as autocast wants),
    and the predictors run in fp32 on its features (~4 % of the FLOPs; keeps scores and
    boxes closer to fp32, as ``get_model(..., precision='bf16')`` does).  ``rewrites``
    are applied to a copy of the backbone (BatchNorm folding before the bf16 cast; Winograd
    in fp32 only).  Modules whose weights change dtype, memory format or structure are
    copies: ``net`` itself is never modified.
    """

    def __init__(self, net, precision: str = "fp32", channels_last: bool = False,
                 rewrites: BackboneRewrites = BackboneRewrites()):
        super().__init__()
        self.precision = precision
        self.backbone = net.backbone
        self.class_predictors = net.class_predictors
        self.box_predictors = net.box_predictors
        copied = rewrites.any
        if copied:
            if precision != "fp32" and rewrites.winograd_min_intensity > 0:
                raise ValueError("Winograd is an fp32 path")
            self.backbone = copy.deepcopy(self.backbone).eval()
            self.rewritten = rewrites.apply(self.backbone)
        if precision == "bf16":
            if not copied:
                self.backbone = copy.deepcopy(self.backbone)
            for m in self.backbone.modules():
                if isinstance(m, nn.Conv2d):
                    m.to(torch.bfloat16)
        if channels_last:
            cl = torch.channels_last
            if precision != "bf16" and not copied:
                self.backbone = copy.deepcopy(self.backbone)
            self.backbone = self.backbone.to(memory_format=cl)
            self.class_predictors = copy.deepcopy(self.class_predictors).to(memory_format=cl)
            self.box_predictors = copy.deepcopy(self.box_predictors).to(memory_format=cl)
        self.c1 = len(net.classes) + 1

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        with autocast_ctx(self.precision, x.device.type):
            feats = [f.float() for f in self.backbone(x)]
        n = x.shape[0]
        cls = [p(f).permute(0, 2, 3, 1).reshape(n, -1, self.c1)
               for f, p in zip(feats, self.class_predictors)]
        box = [p(f).permute(0, 2, 3, 1).reshape(n, -1, 4)
               for f, p in zip(feats, self.box_predictors)]
        return torch.cat(cls, 1), torch.cat(box, 1)


class FastSSD(nn.Module):
    """An SSD prepared for inference (see :func:`optimize_for_inference`).

    ``forward(x)`` -> (ids, scores, bboxes) like the SSD's eval forward.  ``net`` is the
    wrapped SSD (shared parameters); ``heads`` the backbone+predictors actually run (maybe
    a frozen TorchScript or compiled module).
    """

    def __init__(self, net, heads, precision="fp32", channels_last=True):
        super().__init__()
        self.net = net
        self.heads = heads
        self.precision = precision
        self.channels_last = channels_last
        self.postprocessor = FastPostProcessor.like(net)
        self._anchors: Dict[Tuple[int, int, str], torch.Tensor] = {}
        self.classes = net.classes
        self.preset = getattr(net, "preset", None)

    def anchors_for(self, x: torch.Tensor) -> torch.Tensor:
        """anchors_cxcywh (A,4) for inputs of x's spatial size (cached per size)."""
        key = (x.shape[-2], x.shape[-1], str(x.device))
        if key not in self._anchors:
            with torch.no_grad():
                probe = x[:1].float().contiguous()
                feats = self.net.backbone(probe)
                self._anchors[key] = torch.cat(
                    [ag(f) for f, ag in zip(feats, self.net.anchor_generators)], 0)
        return self._anchors[key]

    @torch.no_grad()
    def forward(self, x: torch.Tensor):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SSD expects a (N, 3, H, W) tensor, got shape {tuple(x.shape)}")
        anchors = self.anchors_for(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        cls, box = self.heads(x)
        return self.postprocessor(cls.float(), box.float(), anchors)


def winograd_plan() -> Tuple[float, Optional[int]]:
    """(transform intensity from which convolutions run as Winograd, tile for large maps or
    None): lower threshold and F(6x6) when the fused C++ transforms are available (built on
    first use, see ssd_zoo.winograd_ext)."""
    from . import winograd_ext
    if winograd_ext.get() is not None:
        return WINOGRAD_MIN_INTENSITY, WINOGRAD_LARGE_TILE
    return WINOGRAD_MIN_INTENSITY_TORCH, None


def optimize_for_inference(net, precision: str = "fp32", channels_last: bool = None,
                           freeze: bool = False, compile: bool = False,
                           example_input: torch.Tensor = None,
                           winograd: bool = None, fold_bn: bool = None) -> FastSSD:
    """Prepare an ssd_zoo SSD for fast inference; returns a :class:`FastSSD`.

    Args:
        net: an SSD; not modified (parameters are shared where their layout is kept,
            copied where they are converted to bf16 / NHWC).
        precision: 'fp32' (Gluon-exact within parity tolerances) or 'bf16' (bf16 backbone).
        channels_last: NHWC weights and inputs (faster with oneDNN on CPU; default on).
            NHWC convolutions sum in another order (scores move by ~1e-6); the fp32 result
            still meets the Gluon-CV parity tolerances (tests/test_gluon_parity.py
            ::test_fast_fp32_parity), near-tie order aside.
        freeze: trace + ``torch.jit.freeze`` (conv+ReLU fusion, weight prepacking) the
            backbone and predictors, on ``example_input`` (default 1x3xSxS of the preset).
        compile: ``torch.compile`` the backbone and predictors (slow first call).
        winograd: run the backbone's 3x3/stride-1 convolutions of C*K/(C+K) >=
            the ``winograd_plan()`` threshold as Winograd F(4x4,3x3) (F(6x6) on large maps) (ssd_zoo/winograd.py: 4x fewer
            multiply-adds, ~1e-5 relative difference per layer; the fused transforms are
            compiled on first use, ~30 s once).  Default: on for fp32 on CPU, else off.
        fold_bn: fold eval-mode BatchNorm into the preceding convolutions (ssd_zoo/fold_bn.py;
            ResNet/MobileNet backbones; for bf16 the folding is done in fp32 first).
            Default: on.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    warn_if_bf16_emulated(precision, next(net.parameters()).device.type)
    net.eval()
    if channels_last is None:
        channels_last = True
    if winograd is None:
        winograd = precision == "fp32" and next(net.parameters()).device.type == "cpu"
    if fold_bn is None:
        fold_bn = True
    threshold, large_tile = winograd_plan() if winograd else (0.0, None)
    rewrites = BackboneRewrites(fold_bn=fold_bn, winograd_min_intensity=threshold,
                                winograd_large_tile=large_tile)
    heads = SSDHeads(net, precision, channels_last, rewrites).eval()
    if freeze:
        if example_input is None:
            size = net.preset.base_size if getattr(net, "preset", None) else 300
            example_input = torch.zeros(1, 3, size, size,
                                        device=next(net.parameters()).device)
        if channels_last:
            example_input = example_input.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            traced = torch.jit.trace(heads, example_input, check_trace=False)
            heads = torch.jit.freeze(traced)
    if compile:
        heads = torch.compile(heads, dynamic=False)
    return FastSSD(net, heads, precision=precision, channels_last=channels_last).eval()
