"""Winograd F(m x m, 3 x 3) convolution for the fp32 fast path (ssd_zoo.fast).

A 3x3 / stride 1 / pad 1 convolution computes each m x m output tile from an a x a input
tile (a = m + 2) with a*a multiplications per (input channel, output channel) pair instead
of 9*m*m: the input tiles and the filters are transformed (V = B^T d B, U = G g G^T), the
a*a tile positions become a*a independent matrix products (one ``torch.bmm``:
(P, C) x (C, K)), and the output transform (Y = A^T M A) turns each product back into an
m x m tile (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
F(2x2,3x3) does 2.25x fewer multiply-adds than the direct convolution, F(4x4,3x3) 4x; the
matrix products dominate on the deep VGG/ResNet layers (>= 256 channels), the transforms
are memory-bound einsums.

The transform matrices come from Toom-Cook interpolation points (``toom_cook``), computed
in exact fractions.  Numerics (tests/test_winograd.py): relative to a float64 reference, an
F(2x2) layer is as exact as the direct fp32 convolution (~1e-6 of the output range),
F(4x4) with points (0, +-1, +-1/2) ~4x less (~1e-5).

Why hand-written: PyTorch exposes no Winograd convolution for fp32 on CPU (oneDNN's is not
reachable from ``torch.nn.functional.conv2d``).
"""
from __future__ import annotations

import threading
from fractions import Fraction
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd_ext

#: interpolation points per output tile size m (a - 1 finite points plus infinity)
POINTS = {2: (0, 1, -1), 4: (0, 1, -1, Fraction(1, 2), Fraction(-1, 2)),
          6: (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))}
#: WinogradConv2d switches to F(6x6, 3x3) for feature maps whose shorter side is at least
#: this: 8-22 % faster than F(4x4) from 64x64 up (fewer multiply-adds per output), slower at
#: 38x38 and below (larger filters to stream, more padding), measured with the fused
#: transforms on VGG16/ResNet50 layer shapes; ~1.5x the F(4x4) rounding error (1.1e-5 vs
#: 7e-6 relative).
LARGE_TILE_MIN_SIDE = 48


def _poly_mul(u, v):
    out = [Fraction(0)] * (len(u) + len(v) - 1)
    for i, x in enumerate(u):
        for j, y in enumerate(v):
            out[i + j] += x * y
    return out


def toom_cook(m: int, points: Sequence = None) -> Tuple[torch.Tensor, ...]:
    """(A^T (m, a), G (a, 3), B^T (a, a)) float64 of F(m, 3) for 1-D correlation:
    ``y = A^T [(G g) * (B^T d)]`` equals ``y_i = sum_k d_{i+k} g_k`` for d of length a = m+2.
    ``points``: a-1 distinct finite interpolation points (infinity is the a-th)."""
    pts = [Fraction(p) for p in (POINTS[m] if points is None else points)]
    a = m + 2
    if len(pts) != a - 1 or len(set(pts)) != len(pts):
        raise ValueError(f"F({m},3) needs {a - 1} distinct points, got {points}")
    at = [[p ** j for p in pts] + [Fraction(int(j == m - 1))] for j in range(m)]
    g, bt = [], []
    for p in pts:
        others = [q for q in pts if q != p]
        den = Fraction(1)
        lagrange = [Fraction(1)]
        for q in others:
            den *= p - q
            lagrange = _poly_mul(lagrange, [-q, Fraction(1)])
        g.append([1 / den, p / den, p * p / den])
        bt.append(lagrange + [Fraction(0)] * (a - len(lagrange)))
    g.append([Fraction(0), Fraction(0), Fraction(1)])
    full = [Fraction(1)]
    for q in pts:
        full = _poly_mul(full, [-q, Fraction(1)])
    bt.append(full)

    def tensor(rows):
        return torch.tensor([[float(x) for x in r] for r in rows], dtype=torch.float64)
    return tensor(at), tensor(g), tensor(bt)


def winograd_filter(weight: torch.Tensor, m: int = 4) -> torch.Tensor:
    """Conv weights (K, C, 3, 3) -> transformed filters U (a*a, C, K) float32 (a = m + 2),
    tile position (i, j) at index a*i + j.  Computed in float64."""
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"expected (K, C, 3, 3) weights, got {tuple(weight.shape)}")
    g = toom_cook(m)[1]
    u = torch.einsum("ai,kcij,bj->abck", g, weight.detach().double().cpu(), g)
    return u.reshape(-1, weight.shape[1], weight.shape[0]).to(torch.float32).contiguous()


def winograd_conv3x3(x: torch.Tensor, u: torch.Tensor, bias=None, m: int = 4,
                     at: torch.Tensor = None, bt: torch.Tensor = None,
                     relu: bool = False) -> torch.Tensor:
    """3x3, stride 1, pad 1 convolution of x (N, C, H, W) float32 with transformed filters
    ``u`` (a*a, C, K) from ``winograd_filter(w, m)`` -> (N, K, H, W), channels_last memory;
    ``relu`` applies max(., 0) to the result.  ``at``/``bt``: float32 A^T and B^T of
    ``toom_cook(m)`` (computed when omitted).  On CPU the transforms run in the fused C++
    kernels of ssd_zoo.winograd_ext when it could be built (and the call is not being
    traced or compiled), else in PyTorch ops."""
    n, c, h, w = x.shape
    a = m + 2
    if u.shape[:2] != (a * a, c):
        raise ValueError(f"input has {c} channels and F({m},3) needs {a * a} tile positions; "
                         f"filters are {tuple(u.shape)}")
    if at is None or bt is None:
        at, _, bt = (t.to(x.dtype) for t in toom_cook(m))
    # the C++ kernels are opaque to torch.jit.trace (it would bake their output in as a
    # constant) and to torch.compile: those get the PyTorch ops
    traced = (torch.jit.is_tracing() or torch.jit.is_scripting()
              or torch.compiler.is_compiling())
    ext = winograd_ext.get() if x.device.type == "cpu" and not traced else None
    if ext is not None:
        return _winograd_fused(ext, x, u, bias, m, at, bt, relu)
    y = _winograd_torch(x, u, bias, m, at, bt)
    return y.clamp_min_(0) if relu else y


#: per-thread scratch memory of the fused path, shared by all layers (each layer uses it
#: only during its own call): rewriting touched memory is ~4x faster than a fresh allocation
_scratch = threading.local()


def _scratch_view(slot: str, shape: Tuple[int, ...]) -> torch.Tensor:
    numel = 1
    for d in shape:
        numel *= d
    buf = getattr(_scratch, slot, None)
    if buf is None or buf.numel() < numel:
        buf = torch.empty(numel, dtype=torch.float32)
        setattr(_scratch, slot, buf)
    return buf[:numel].view(shape)


def _winograd_fused(ext, x, u, bias, m, at, bt, relu):
    n, c, h, w = x.shape
    a, k = m + 2, u.shape[2]
    tiles = n * -(-h // m) * -(-w // m)
    v = ext.input_transform(x.permute(0, 2, 3, 1).contiguous(), bt, m,
                            _scratch_view("v", (tiles, a * a, c)))
    prod = torch.bmm(v.permute(1, 0, 2), u, out=_scratch_view("prod", (a * a, tiles, k)))
    y = ext.output_transform(prod, at, m, n, h, w, bias, relu)
    return y.permute(0, 3, 1, 2)


def _winograd_torch(x, u, bias, m, at, bt):
    """The transforms as PyTorch ops (the fallback of winograd_conv3x3)."""
    n, c, h, w = x.shape
    a = m + 2
    th, tw = -(-h // m), -(-w // m)                                  # tiles per axis
    hp, wp = m * th + 2, m * tw + 2
    xp = F.pad(x, (1, wp - w - 1, 1, hp - h - 1)).permute(0, 2, 3, 1).contiguous()
    s_n, s_h, s_w, s_c = xp.stride()                                 # (N, Hp, Wp, C)
    # each transform is one (a x a) @ (a x everything) product on a gathered copy
    cols = xp.as_strided((a, n, hp, tw, c), (s_w, s_n, s_h, m * s_w, s_c))
    dc = (bt @ cols.reshape(a, -1)).view(a, n, hp, tw, c)            # d B over columns j
    s = dc.stride()
    rows = dc.as_strided((a, a, n, th, tw, c), (s[2], s[0], s[1], m * s[2], s[3], s[4]))
    v = (bt @ rows.reshape(a, -1)).view(a * a, n * th * tw, c)       # B^T (d B): [i, j]
    prod = torch.bmm(v, u).view(a, a * n * th * tw * u.shape[2])     # [i, j] (P, K)
    k = u.shape[2]
    y = (at @ prod).view(m, a, n * th * tw * k)                      # A^T M: [p, j]
    y = torch.matmul(at, y).view(m, m, n, th, tw, k)                 # (A^T M) A: [p, q]
    y = y.permute(2, 3, 0, 4, 1, 5).reshape(n, th * m, tw * m, k)
    if (th * m, tw * m) != (h, w):
        y = y[:, :h, :w]
    y = y + bias if bias is not None else y.contiguous()
    return y.permute(0, 3, 1, 2)


class WinogradConv2d(nn.Module):
    """Drop-in for an ``nn.Conv2d`` with kernel 3, stride 1, padding 1, dilation 1,
    groups 1 (fp32 inference; the weights are transformed once, at construction).
    ``relu=True``: also applies the ReLU that followed the convolution (fused on CPU).
    ``large_m``: the tile used on maps whose shorter side is >= ``large_min_side`` (its
    filters are transformed on the first such call; None: always ``m``)."""

    def __init__(self, conv: nn.Conv2d, m: int = 4, relu: bool = False,
                 large_m: int = None, large_min_side: int = LARGE_TILE_MIN_SIDE):
        super().__init__()
        if not winograd_eligible(conv):
            raise ValueError(f"not a 3x3/stride 1/pad 1/dilation 1/groups 1 conv: {conv}")
        self.in_channels, self.out_channels, self.m = conv.in_channels, conv.out_channels, m
        self.relu = bool(relu)
        self.large_m, self.large_min_side = large_m, large_min_side
        at, _, bt = toom_cook(m)
        self.register_buffer("u", winograd_filter(conv.weight, m))
        self.register_buffer("at", at.float())
        self.register_buffer("bt", bt.float())
        self.register_buffer("bias", None if conv.bias is None
                             else conv.bias.detach().float().clone())
        # the 3x3 weights (1/4 of the F(4x4) filters' size) for the large-map filters
        self.register_buffer("weight", conv.weight.detach().float().clone()
                             if large_m else None)
        self.register_buffer("u_large", None)
        self.register_buffer("_at_large", None)
        self.register_buffer("_bt_large", None)

    def _large(self):
        if self.u_large is None:
            at, _, bt = toom_cook(self.large_m)
            dev = self.weight.device
            self.u_large = winograd_filter(self.weight, self.large_m).to(dev)
            self._at_large, self._bt_large = at.float().to(dev), bt.float().to(dev)
        return self.u_large, self._at_large, self._bt_large

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"WinogradConv2d is fp32 only, got {x.dtype}")
        if self.large_m and min(x.shape[-2:]) >= self.large_min_side:
            u, at, bt = self._large()
            return winograd_conv3x3(x, u, self.bias, self.large_m, at, bt, self.relu)
        return winograd_conv3x3(x, self.u, self.bias, self.m, self.at, self.bt, self.relu)

    def extra_repr(self) -> str:
        large = (f", F({self.large_m}x{self.large_m},3x3) from {self.large_min_side} px"
                 if self.large_m else "")
        return (f"{self.in_channels}, {self.out_channels}, F({self.m}x{self.m},3x3)" + large
                + (", relu" if self.relu else ""))


def winograd_eligible(conv: nn.Module, min_intensity: float = 0.0) -> bool:
    """True for a plain 3x3 / stride 1 / pad 1 / dilation 1 / groups 1 ``nn.Conv2d`` whose
    ``transform_intensity`` is at least ``min_intensity``."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros"
            and transform_intensity(conv.in_channels, conv.out_channels) >= min_intensity)


def transform_intensity(cin: int, cout: int) -> float:
    """C*K / (C+K): the matrix products grow with C*K per pixel, the transforms' memory
    traffic with C+K; Winograd pays off above ~80 (measured on VGG16/ResNet50 layer shapes:
    128->256 yes, 128->128 and below no)."""
    return cin * cout / float(cin + cout)


def replace_with_winograd(module: nn.Module, min_intensity: float = 80.0, m: int = 4,
                          large_m: int = None) -> int:
    """Swap every eligible conv under ``module`` (``winograd_eligible``) for a
    :class:`WinogradConv2d` F(m x m, 3x3), in place; returns how many were swapped.  The
    threshold keeps the shallow, thin layers direct: there the transforms' memory traffic
    costs more than the saved multiplications (benchmarks/speed.py).  Inside an
    ``nn.Sequential``, a ReLU right after a swapped conv is fused into it (and replaced by
    ``nn.Identity``)."""
    swapped = 0
    children = list(module.named_children())
    for i, (name, child) in enumerate(children):
        if winograd_eligible(child, min_intensity):
            nxt = children[i + 1][1] if i + 1 < len(children) else None
            fuse = isinstance(module, nn.Sequential) and type(nxt) is nn.ReLU
            setattr(module, name, WinogradConv2d(child, m, relu=fuse, large_m=large_m))
            if fuse:
                setattr(module, children[i + 1][0], nn.Identity())
            swapped += 1
        elif not isinstance(child, WinogradConv2d):
            swapped += replace_with_winograd(child, min_intensity, m, large_m)
    return swapped
