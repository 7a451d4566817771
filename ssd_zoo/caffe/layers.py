"""Torch implementations of the generic Caffe layers (the SSD-specific ones live in
``ssd_layers.py``).  Tensors are NCHW float32 like Caffe blobs.

Every layer is built as ``Cls(param, blobs, ctx)``: ``param`` is the layer's
``TextMessage`` from the prototxt, ``blobs`` its weights (Caffe layouts, kept as is in
``self.blobs`` so a saved module holds exactly the caffemodel's numbers), ``ctx`` a
"file: layer 'name' (Type)" string for error messages.  ``forward(*bottoms)`` returns one
tensor or a tuple of tensors (one per top).
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .proto import CaffeFormatError
from .textformat import TextMessage


class CaffeLayer(nn.Module):
    """Base: holds the Caffe blobs and checks their count/shapes against the prototxt."""

    n_blobs: Sequence[int] = (0,)  # accepted blob counts

    def __init__(self, param: TextMessage, blobs: List[torch.Tensor], ctx: str):
        super().__init__()
        self.ctx = ctx
        if len(blobs) not in self.n_blobs:
            raise CaffeFormatError(f"{ctx}: has {len(blobs)} weight blobs, expected "
                                   f"{' or '.join(map(str, self.n_blobs))}")
        self.blobs = nn.ParameterList([nn.Parameter(b, requires_grad=b.is_floating_point())
                                       for b in blobs])

    def blob(self, i: int, shape: Sequence[int], what: str, field: str) -> None:
        """Check blobs[i] has ``shape`` (legacy 4-D/extra-1 shapes with the same values are
        reshaped in place); ``field`` names the prototxt field the shape comes from."""
        b = self.blobs[i]
        shape = [int(s) for s in shape]
        if list(b.shape) == shape:
            return
        squeezed = [d for d in b.shape if d != 1] == [d for d in shape if d != 1]
        if b.numel() == math.prod(shape) and squeezed:
            with torch.no_grad():
                self.blobs[i] = nn.Parameter(b.detach().reshape(shape).clone(),
                                             requires_grad=b.requires_grad)
            return
        raise CaffeFormatError(f"{self.ctx}: blobs[{i}] ({what}) has shape {list(b.shape)} "
                               f"but the prototxt ({field}) implies {shape}")


def _hw(p: TextMessage, name: str, default: int | None, ctx: str):
    """Caffe's (h, w) from ``name`` (repeated) or ``name_h``/``name_w``."""
    if p.has(f"{name}_h") or p.has(f"{name}_w"):
        return p.num(f"{name}_h", default, int), p.num(f"{name}_w", default, int)
    vals = p.nums(name, int)
    if not vals:
        if default is None:
            raise CaffeFormatError(f"{ctx}: missing field '{name}' (or {name}_h/{name}_w)")
        return default, default
    if len(vals) > 2:
        raise CaffeFormatError(f"{ctx}: field '{name}' has {len(vals)} values; only 2-D "
                               "convolutions are supported")
    return vals[0], vals[-1]


class Convolution(CaffeLayer):
    """``convolution_param``: num_output, bias_term, kernel/stride/pad (+_h/_w), dilation,
    group.  Weights (O, I/group, kh, kw), bias (O,)."""

    n_blobs = (1, 2)
    transposed = False

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("convolution_param")
        self.num_output = p.num("num_output", None, int)
        if self.num_output is None:
            raise CaffeFormatError(f"{ctx}: missing field 'convolution_param.num_output'")
        self.kernel = _hw(p, "kernel", None, ctx) if (p.has("kernel_h") or p.has("kernel_w")) \
            else _hw(p, "kernel_size", None, ctx)
        self.stride = _hw(p, "stride", 1, ctx)
        self.pad = _hw(p, "pad", 0, ctx)
        dil = p.nums("dilation", int) or [1]
        self.dilation = (dil[0], dil[-1])
        self.group = p.num("group", 1, int)
        bias_term = p.flag("bias_term", True)
        if len(blobs) != 1 + bias_term:
            raise CaffeFormatError(f"{ctx}: has {len(blobs)} blobs but bias_term is "
                                   f"{str(bias_term).lower()} (field "
                                   f"'convolution_param.bias_term')")
        w = self.blobs[0]
        if w.dim() != 4 or self.num_output % self.group:
            raise CaffeFormatError(f"{ctx}: blobs[0] (weights) has shape {list(w.shape)}; "
                                   "expected 4-D (field 'convolution_param')")
        if self.transposed:
            shape = [w.shape[0], self.num_output // self.group, *self.kernel]
        else:
            shape = [self.num_output, w.shape[1], *self.kernel]
        self.blob(0, shape, "weights", "convolution_param.num_output/kernel_size/group")
        if bias_term:
            self.blob(1, [self.num_output], "bias", "convolution_param.num_output")

    def forward(self, x):
        bias = self.blobs[1] if len(self.blobs) > 1 else None
        op = F.conv_transpose2d if self.transposed else F.conv2d
        if self.transposed:
            return op(x, self.blobs[0], bias, self.stride, self.pad, 0, self.group,
                      self.dilation)
        return op(x, self.blobs[0], bias, self.stride, self.pad, self.dilation, self.group)


class Deconvolution(Convolution):
    """Transposed convolution; weights (I, O/group, kh, kw) as Caffe stores them."""

    transposed = True


class InnerProduct(CaffeLayer):
    """``inner_product_param``: num_output, bias_term, axis, transpose."""

    n_blobs = (1, 2)

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("inner_product_param")
        self.num_output = p.num("num_output", None, int)
        self.axis = p.num("axis", 1, int)
        self.transpose = p.flag("transpose", False)
        w = self.blobs[0]
        k = w.numel() // max(self.num_output or 1, 1)
        self.blob(0, [k, self.num_output] if self.transpose else [self.num_output, k],
                  "weights", "inner_product_param.num_output")
        if p.flag("bias_term", True) != (len(blobs) == 2):
            raise CaffeFormatError(f"{ctx}: blob count disagrees with "
                                   "'inner_product_param.bias_term'")
        if len(blobs) == 2:
            self.blob(1, [self.num_output], "bias", "inner_product_param.num_output")

    def forward(self, x):
        w = self.blobs[0].t() if self.transpose else self.blobs[0]
        bias = self.blobs[1] if len(self.blobs) > 1 else None
        return F.linear(x.flatten(self.axis), w, bias)


class BatchNorm(CaffeLayer):
    """Caffe BatchNorm (no affine part; a Scale layer follows).  Blobs: mean (C,),
    variance (C,), scale factor (1,): the stored sums are divided by the factor (0 -> 0).
    ``use_global_stats: false`` normalizes with the batch's own statistics (biased var);
    ``moving_average_fraction`` only matters when training in Caffe and is ignored."""

    n_blobs = (0, 3)

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("batch_norm_param")
        self.eps = p.num("eps", 1e-5)
        self.use_global_stats = p.flag("use_global_stats", True)
        for b in self.blobs:  # running statistics, not trainable weights
            b.requires_grad_(False)
        if self.use_global_stats and not blobs:
            raise CaffeFormatError(f"{ctx}: use_global_stats is true but the layer has no "
                                   "blobs (mean, variance, scale factor)")
        if blobs:
            c = self.blobs[0].numel()
            self.blob(0, [c], "mean", "batch_norm_param")
            self.blob(1, [c], "variance", "batch_norm_param")
            self.blob(2, [1], "moving-average scale factor", "batch_norm_param")

    def forward(self, x):
        shape = [1, -1] + [1] * (x.dim() - 2)
        if not self.use_global_stats:
            dims = [0] + list(range(2, x.dim()))
            mean = x.mean(dims, keepdim=True)
            var = ((x - mean) ** 2).mean(dims, keepdim=True)
            return (x - mean) / torch.sqrt(var + self.eps)
        factor = self.blobs[2][0]
        inv = torch.where(factor == 0, torch.zeros_like(factor), 1.0 / factor)
        w = 1.0 / torch.sqrt(self.blobs[1] * inv + self.eps)
        b = -self.blobs[0] * inv * w
        return x * w.view(shape) + b.view(shape)


def _broadcast(v: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    """View parameter ``v`` (shape of x's axes axis..axis+v.dim()) for broadcasting."""
    if v.numel() == 1:
        return v.reshape([1] * x.dim())
    return v.reshape([1] * axis + list(v.shape) + [1] * (x.dim() - axis - v.dim()))


class Scale(CaffeLayer):
    """``scale_param``: axis, num_axes, bias_term.  y = x * scale (+ bias); the scale is
    blobs[0] or, with two bottoms, the second bottom."""

    n_blobs = (0, 1, 2)

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("scale_param")
        self.axis = p.num("axis", 1, int)
        self.bias_term = p.flag("bias_term", False)
        self.n_bottom = len(param.all("bottom"))
        want = (self.n_bottom == 1) + self.bias_term
        if len(blobs) != want:
            raise CaffeFormatError(f"{ctx}: has {len(blobs)} blobs, expected {want} (field "
                                   f"'scale_param.bias_term' is {str(self.bias_term).lower()})")
        if self.bias_term:
            self.blob(len(blobs) - 1, list(self.blobs[0].shape) if self.n_bottom == 1
                      else list(self.blobs[-1].shape), "bias", "scale_param.bias_term")

    def forward(self, x, scale=None):
        axis = self.axis % x.dim()
        s = scale if scale is not None else self.blobs[0]
        y = x * _broadcast(s, x, axis)
        if self.bias_term:
            y = y + _broadcast(self.blobs[-1], x, axis)
        return y


class ReLU(CaffeLayer):
    """``relu_param.negative_slope`` (default 0)."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        self.slope = param.msg("relu_param").num("negative_slope", 0.0)

    def forward(self, x):
        return F.relu(x) if self.slope == 0 else F.leaky_relu(x, self.slope)


class PReLU(CaffeLayer):
    """Per-channel (or ``channel_shared``) learned negative slope, blobs[0] (C,) / (1,)."""

    n_blobs = (1,)

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        shared = param.msg("prelu_param").flag("channel_shared", False)
        self.blob(0, [1] if shared else [self.blobs[0].numel()], "slope",
                  "prelu_param.channel_shared")

    def forward(self, x):
        return F.prelu(x, self.blobs[0])


class Pooling(CaffeLayer):
    """MAX / AVE pooling with Caffe's output size ceil((H + 2p - k) / s) + 1 (minus one
    when the last window would start in the right/bottom padding) and AVE divisors that
    count padding up to H + p: exactly torch's ceil_mode=True, count_include_pad=True.
    ``round_mode: FLOOR`` and ``global_pooling`` are honoured."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("pooling_param")
        self.pool = p.enum("pool", ["MAX", "AVE", "STOCHASTIC"], "MAX")
        if self.pool == "STOCHASTIC":
            raise CaffeFormatError(f"{ctx}: pooling_param.pool STOCHASTIC is not supported")
        self.global_pooling = p.flag("global_pooling", False)
        self.ceil = p.enum("round_mode", ["CEIL", "FLOOR"], "CEIL") == "CEIL"
        self.kernel = None if self.global_pooling else (
            _hw(p, "kernel", None, ctx) if p.has("kernel_h") else _hw(p, "kernel_size", None,
                                                                       ctx))
        self.stride = _hw(p, "stride", 1, ctx)
        self.pad = _hw(p, "pad", 0, ctx)

    def forward(self, x):
        if self.global_pooling:
            red = x.amax((2, 3), keepdim=True) if self.pool == "MAX" else \
                x.mean((2, 3), keepdim=True)
            return red
        if self.pool == "MAX":
            return F.max_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil)
        return F.avg_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil,
                            count_include_pad=True)


class Eltwise(CaffeLayer):
    """``eltwise_param``: operation SUM (with per-bottom ``coeff``), PROD, MAX."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("eltwise_param")
        self.op = p.enum("operation", ["PROD", "SUM", "MAX"], "SUM")
        self.coeff = p.nums("coeff")
        n = len(param.all("bottom"))
        if self.coeff and (self.op != "SUM" or len(self.coeff) != n):
            raise CaffeFormatError(f"{ctx}: field 'eltwise_param.coeff' needs one value per "
                                   f"bottom ({n}) and operation SUM")

    def forward(self, *xs):
        if self.op == "PROD":
            out = xs[0]
            for x in xs[1:]:
                out = out * x
            return out
        if self.op == "MAX":
            out = xs[0]
            for x in xs[1:]:
                out = torch.maximum(out, x)
            return out
        coeff = self.coeff or [1.0] * len(xs)
        out = xs[0] * coeff[0] if coeff[0] != 1 else xs[0]
        for c, x in zip(coeff[1:], xs[1:]):
            out = out + (x * c if c != 1 else x)
        return out


class Concat(CaffeLayer):
    """``concat_param.axis`` (default 1; legacy ``concat_dim``)."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("concat_param")
        self.axis = p.num("axis", p.num("concat_dim", 1, int), int)

    def forward(self, *xs):
        return torch.cat(xs, self.axis)


class Slice(CaffeLayer):
    """``slice_param``: axis (legacy slice_dim), slice_point; equal parts when absent."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("slice_param")
        self.axis = p.num("axis", p.num("slice_dim", 1, int), int)
        self.points = p.nums("slice_point", int)
        self.n_top = len(param.all("top"))

    def forward(self, x):
        size = x.shape[self.axis]
        points = self.points or [size // self.n_top * i for i in range(1, self.n_top)]
        bounds = [0, *points, size]
        return tuple(x.narrow(self.axis, a, b - a) for a, b in zip(bounds, bounds[1:]))


class Flatten(CaffeLayer):
    """``flatten_param``: axis (1), end_axis (-1)."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("flatten_param")
        self.axis, self.end_axis = p.num("axis", 1, int), p.num("end_axis", -1, int)

    def forward(self, x):
        return torch.flatten(x, self.axis, self.end_axis)


class Permute(CaffeLayer):
    """``permute_param.order``; axes not listed follow in their original order."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        self.order = param.msg("permute_param").nums("order", int)

    def forward(self, x):
        order = list(self.order) + [a for a in range(x.dim()) if a not in self.order]
        return x.permute(order).contiguous()


class Reshape(CaffeLayer):
    """``reshape_param``: shape.dim (0 = copy input dim, -1 = infer), axis, num_axes."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("reshape_param")
        self.dims = p.msg("shape").nums("dim", int)
        self.axis, self.num_axes = p.num("axis", 0, int), p.num("num_axes", -1, int)
        if sum(d == -1 for d in self.dims) > 1:
            raise CaffeFormatError(f"{ctx}: field 'reshape_param.shape' has more than one -1")

    def forward(self, x):
        start = self.axis if self.axis >= 0 else x.dim() + 1 + self.axis
        end = x.dim() if self.num_axes == -1 else start + self.num_axes
        mid = [x.shape[start + i] if d == 0 else d for i, d in enumerate(self.dims)]
        return x.reshape(list(x.shape[:start]) + mid + list(x.shape[end:]))


class Softmax(CaffeLayer):
    """``softmax_param.axis`` (default 1)."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        self.axis = param.msg("softmax_param").num("axis", 1, int)

    def forward(self, x):
        return F.softmax(x, self.axis)


class Power(CaffeLayer):
    """y = (shift + scale * x) ^ power."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("power_param")
        self.power, self.scale = p.num("power", 1.0), p.num("scale", 1.0)
        self.shift = p.num("shift", 0.0)

    def forward(self, x):
        y = x * self.scale + self.shift if (self.scale, self.shift) != (1.0, 0.0) else x
        return y if self.power == 1.0 else y ** self.power


class Identity(CaffeLayer):
    """Dropout / Split at test time: every top is the bottom."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        self.n_top = len(param.all("top"))

    def forward(self, x):
        return x if self.n_top == 1 else (x,) * self.n_top


class Sigmoid(CaffeLayer):
    def forward(self, x):
        return torch.sigmoid(x)


class TanH(CaffeLayer):
    def forward(self, x):
        return torch.tanh(x)
