"""Caffe graph (prototxt) + weights (caffemodel blobs) -> ``CaffeNet`` (an nn.Module).

``CaffeNet.forward(data)`` takes what ``cv2.dnn.blobFromImage`` returns (float32
N x C x H x W; any H, W: priors follow the actual size, as in OpenCV after setInput) and
returns the network's output blob (the DetectionOutput (1, 1, K, 7) for an SSD), or a
tuple when the net has several outputs.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from . import layers as L
from . import ssd_layers as S
from .proto import CaffeFormatError
from .textformat import TextMessage, parse_prototxt

LAYER_TYPES = {
    "Convolution": L.Convolution, "Deconvolution": L.Deconvolution,
    "InnerProduct": L.InnerProduct, "BatchNorm": L.BatchNorm, "Scale": L.Scale,
    "ReLU": L.ReLU, "PReLU": L.PReLU, "Pooling": L.Pooling, "Eltwise": L.Eltwise,
    "Concat": L.Concat, "Slice": L.Slice, "Flatten": L.Flatten, "Permute": L.Permute,
    "Reshape": L.Reshape, "Softmax": L.Softmax, "Power": L.Power, "Sigmoid": L.Sigmoid,
    "TanH": L.TanH, "Dropout": L.Identity, "Split": L.Identity,
    "Normalize": S.Normalize, "PriorBox": S.PriorBox, "DetectionOutput": S.DetectionOutput,
}
# V1 ``layers { type: CONVOLUTION }`` enum names -> current type names.
V1_TYPES = {"CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution",
            "INNER_PRODUCT": "InnerProduct", "RELU": "ReLU", "POOLING": "Pooling",
            "ELTWISE": "Eltwise", "CONCAT": "Concat", "SLICE": "Slice", "FLATTEN": "Flatten",
            "SOFTMAX": "Softmax", "POWER": "Power", "SIGMOID": "Sigmoid", "TANH": "TanH",
            "DROPOUT": "Dropout", "SPLIT": "Split"}
V1_TYPE_IDS = {3: "CONCAT", 4: "CONVOLUTION", 6: "DROPOUT", 8: "FLATTEN", 14: "INNER_PRODUCT", 17: "POOLING",
               18: "RELU", 19: "SIGMOID", 20: "SOFTMAX", 22: "SPLIT", 23: "TANH",
               25: "ELTWISE", 26: "POWER", 33: "SLICE", 39: "DECONVOLUTION"}
SKIPPED = {"Silence"}


def _phase_ok(layer: TextMessage) -> bool:
    """Caffe's include/exclude rules for the TEST phase."""
    def is_test(rule):
        return rule.enum("phase", ["TRAIN", "TEST"], "") == "TEST" if rule.has("phase") \
            else None
    inc = layer.all("include")
    if inc and not any(is_test(r) in (True, None) for r in inc):
        return False
    return not any(is_test(r) is True for r in layer.all("exclude"))


def _layer_type(layer: TextMessage, v1: bool) -> str:
    t = layer.get("type", "")
    if v1:
        if isinstance(t, int) or str(t).isdigit():
            t = V1_TYPE_IDS.get(int(t), str(t))
        t = V1_TYPES.get(str(t), str(t))
    return str(t)


class CaffeNet(nn.Module):
    """The layers of a Caffe deploy net, run in prototxt order on a dict of named blobs.

    Attributes: ``prototxt`` (the source text, so the module can be saved and rebuilt),
    ``input_names``, ``input_shapes`` (declared, may be empty), ``layer_names``,
    ``layer_types``, ``output_names``; ``layers`` (nn.ModuleList, one per layer).
    """

    def __init__(self, prototxt: str, blobs: Dict[str, List[torch.Tensor]],
                 source: str = "<prototxt>", weights_source: str = "<weights>"):
        super().__init__()
        self.prototxt = prototxt
        net = parse_prototxt(prototxt, source)
        self.input_names = [str(n) for n in net.all("input")]
        shapes = [m.nums("dim", int) for m in net.all("input_shape")]
        dims = net.nums("input_dim", int)
        if dims:
            shapes = [dims[i:i + 4] for i in range(0, len(dims), 4)]
        self.input_shapes = shapes
        v1 = not net.has("layer") and net.has("layers")
        specs = [s for s in net.all("layers" if v1 else "layer") if _phase_ok(s)]
        self.layers = nn.ModuleList()
        self.layer_names, self.layer_types, self.bottoms, self.tops = [], [], [], []
        available = list(self.input_names)
        known = set(available)
        for spec in specs:
            name, ltype = str(spec.get("name", "")), _layer_type(spec, v1)
            bottoms = [str(b) for b in spec.all("bottom")]
            tops = [str(t) for t in spec.all("top")]
            ctx = f"{source}: layer '{name}' ({ltype})"
            if ltype == "Input":
                shp = spec.msg("input_param").all("shape")
                self.input_names += tops
                self.input_shapes += [s.nums("dim", int) for s in shp]
                available += tops
                known.update(tops)
                continue
            if ltype in SKIPPED:
                continue
            if ltype not in LAYER_TYPES:
                raise CaffeFormatError(f"{ctx}: unsupported layer type '{ltype}' (field "
                                       f"'type'; supported: {', '.join(sorted(LAYER_TYPES))})")
            missing = [b for b in bottoms if b not in known]
            if missing:
                raise CaffeFormatError(f"{ctx}: bottom blob(s) {missing} are produced by no "
                                       "earlier layer or input (field 'bottom')")
            wctx = f"{weights_source}: layer '{name}' ({ltype})"
            self.layers.append(LAYER_TYPES[ltype](spec, blobs.get(name, []), wctx))
            self.layer_names.append(name)
            self.layer_types.append(ltype)
            self.bottoms.append(bottoms)
            self.tops.append(tops)
            available = list(dict.fromkeys([a for a in available if a not in bottoms] + tops))
            known.update(tops)
        if not self.input_names:
            raise CaffeFormatError(f"{source}: no input declared (field 'input' or an Input "
                                   "layer)")
        self.output_names = [a for a in available if a not in self.input_names]
        unused = sorted(set(blobs) - set(self.layer_names))
        self.unused_weights = unused  # e.g. training-only layers in the caffemodel

    def forward(self, *inputs: torch.Tensor, outputs: Optional[Sequence[str]] = None):
        """Run the net -> its output blob (a tuple if it has several).  ``outputs`` names
        blobs to return instead, always as a tuple in that order."""
        if len(inputs) != len(self.input_names):
            raise ValueError(f"the net takes {len(self.input_names)} input(s) "
                             f"{self.input_names}, got {len(inputs)}")
        env = {n: torch.as_tensor(x, dtype=torch.float32) for n, x in
               zip(self.input_names, inputs)}
        for layer, name, ltype, bottoms, tops in zip(self.layers, self.layer_names,
                                                     self.layer_types, self.bottoms, self.tops):
            try:
                out = layer(*[env[b] for b in bottoms])
            except RuntimeError as exc:
                raise RuntimeError(f"layer '{name}' ({ltype}) failed on bottom shapes "
                                   f"{[list(env[b].shape) for b in bottoms]}: {exc}") from exc
            outs = out if isinstance(out, tuple) else (out,)
            if len(outs) != len(tops):
                raise CaffeFormatError(f"layer '{name}' ({ltype}) makes {len(outs)} blobs but "
                                       f"has {len(tops)} tops (field 'top')")
            env.update(zip(tops, outs))
        if outputs is not None:
            missing = [n for n in outputs if n not in env]
            if missing:
                raise KeyError(f"no blob(s) named {missing} in the net")
            return tuple(env[n] for n in outputs)
        res = tuple(env[n] for n in self.output_names)
        return res[0] if len(res) == 1 else res


def blobs_to_tensors(blobs: Dict[str, List[np.ndarray]]) -> Dict[str, List[torch.Tensor]]:
    return {k: [torch.from_numpy(np.ascontiguousarray(a)) for a in v] for k, v in blobs.items()}
