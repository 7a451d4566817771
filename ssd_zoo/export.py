"""Export an SSD with its decode and Gluon-semantics NMS to ONNX (and TorchScript).

The eager post-processor's fixed-point NMS loop does not trace; here the whole pipeline is
rewritten with export-friendly operators and the same semantics:

* anchors computed in-graph from the feature-map shapes (so dynamic input sizes work);
* softmax, class-major scores, one global top-k (ONNX TopK breaks ties by lower index
  first, i.e. like a stable sort; scores at the cut that tie exactly are the only case
  where the selection could differ from the eager path's, as in Gluon);
* box decode of the selected candidates, class-aware IoU > thresh matrix;
* greedy NMS as a scripted loop over the top-k candidates (an ONNX ``Loop``): exact,
  whatever the suppression-chain length;
* the kept rows compacted in score order, ``post_nms`` rows, -1 padding.

Outputs ``ids`` (N,P,1) float, ``scores`` (N,P,1), ``bboxes`` (N,P,4): the PyTorch model's.
Export-time restriction: the number of candidates (classes x anchors) must be >= nms_topk
for every input size you feed (true for any realistic size).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import List, Tuple

import torch
from torch import nn

from .postprocess import pairwise_iou_xyxy

log = logging.getLogger(__name__)


def _greedy_keep_loop(suppress: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Greedy NMS, one candidate at a time (exportable as an ONNX Loop).

    suppress (N, K, K) bool, ``suppress[n, i, j]``: i (earlier, higher score) removes j if
    i is kept; only j > i is used.  valid (N, K) bool.  Returns keep (N, K) bool.
    """
    k = suppress.size(1)
    later = torch.ones(k, k, dtype=torch.bool, device=suppress.device).triu(1)
    s = suppress & later.unsqueeze(0)
    keep = valid
    for i in range(k):
        row = s.select(1, i)                       # (N, K): what candidate i suppresses
        kept_i = keep.select(1, i).unsqueeze(1)    # (N, 1)
        keep = keep & ~(row & kept_i)
    return keep


_SCRIPTED = {}


def greedy_keep_loop(suppress: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``_greedy_keep_loop`` compiled by TorchScript once (so tracing keeps the loop)."""
    if "fn" not in _SCRIPTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # jit.script deprecation notice
            _SCRIPTED["fn"] = torch.jit.script(_greedy_keep_loop)
    return _SCRIPTED["fn"](suppress, valid)


def anchors_in_graph(generator, feature: torch.Tensor) -> torch.Tensor:
    """anchors_cxcywh (H*W*A, 4) of an SSDAnchorGenerator, computed with tensor ops from
    ``feature``'s shape (traceable with dynamic sizes); equals ``generator.grid(H, W)``."""
    h, w = feature.shape[-2], feature.shape[-1]
    wh = generator.cell_shapes().to(torch.float32).to(feature.device)     # (A, 2)
    a = wh.shape[0]
    cy = (torch.arange(h, device=feature.device).to(torch.float32)
          + generator.offsets[0]) * generator.step
    cx = (torch.arange(w, device=feature.device).to(torch.float32)
          + generator.offsets[1]) * generator.step
    cyy = cy.unsqueeze(1).expand(-1, cx.shape[0])
    cxx = cx.unsqueeze(0).expand(cy.shape[0], -1)
    centers = torch.stack([cxx, cyy], -1).reshape(-1, 1, 2).expand(-1, a, 2)
    out = torch.cat([centers, wh.unsqueeze(0).expand(centers.shape[0], a, 2)], -1)
    if generator.clip:
        ih, iw = generator.im_size
        lim = torch.tensor([iw, ih, iw, ih], dtype=torch.float32, device=feature.device)
        out = torch.minimum(out.clamp(min=0), lim)
    return out.reshape(-1, 4)


class ExportableSSD(nn.Module):
    """The SSD's eval forward written with traceable/exportable operators only.

    forward(x (N,3,H,W) normalized RGB) -> ids (N,P,1), scores (N,P,1), bboxes (N,P,4).
    Shares the parameters of ``net``.
    """

    def __init__(self, net):
        super().__init__()
        self.net = net
        p = net.postprocessor
        self.nms_thresh, self.nms_topk = float(p.nms_thresh), int(p.nms_topk)
        self.post_nms, self.score_thresh = int(p.post_nms), float(p.score_thresh)
        if self.nms_topk <= 0 or self.post_nms <= 0 or self.post_nms > self.nms_topk:
            raise ValueError("export needs 0 < post_nms <= nms_topk (got post_nms="
                             f"{self.post_nms}, nms_topk={self.nms_topk})")

    def forward(self, x: torch.Tensor):
        net = self.net
        feats = net.backbone(x)
        n, c1 = x.shape[0], net.num_classes + 1
        cls = torch.cat([p(f).permute(0, 2, 3, 1).reshape(n, -1, c1)
                         for f, p in zip(feats, net.class_predictors)], 1)
        box = torch.cat([p(f).permute(0, 2, 3, 1).reshape(n, -1, 4)
                         for f, p in zip(feats, net.box_predictors)], 1)
        anchors = torch.cat([anchors_in_graph(ag, f)
                             for f, ag in zip(feats, net.anchor_generators)], 0)
        return self.postprocess(cls, box, anchors)

    def postprocess(self, cls: torch.Tensor, box: torch.Tensor, anchors: torch.Tensor):
        n, a = cls.shape[0], cls.shape[1]
        probs = torch.softmax(cls.float(), dim=-1)[..., 1:]
        scores = probs.transpose(1, 2).reshape(n, -1)                    # class-major
        k = self.nms_topk
        vals, idx = torch.topk(scores, k, dim=1, largest=True, sorted=True)
        valid = vals > self.score_thresh
        cls_ids = torch.div(idx, a, rounding_mode="floor")
        anchor_idx = idx - cls_ids * a
        gather4 = anchor_idx.unsqueeze(-1).expand(-1, -1, 4)
        sel_off = torch.gather(box.float(), 1, gather4)
        sel_anc = torch.gather(anchors.unsqueeze(0).expand(n, -1, -1), 1, gather4)
        boxes = self.net.box_coder.decode(sel_off, sel_anc)
        if 0 < self.nms_thresh < 1:
            iou = pairwise_iou_xyxy(boxes, boxes)
            same = cls_ids.unsqueeze(2) == cls_ids.unsqueeze(1)
            keep = greedy_keep_loop((iou > self.nms_thresh) & same, valid)
        else:
            keep = valid
        # compact: kept rows first, each group in score order (unique keys, exact in fp32)
        rank = torch.arange(k, 0, -1, device=cls.device).to(torch.float32)
        key = keep.to(torch.float32) * float(2 * k) + rank
        _, order = torch.topk(key, self.post_nms, dim=1, largest=True, sorted=True)
        keep = torch.gather(keep, 1, order)
        neg = torch.full_like(vals[:, :self.post_nms], -1.0)
        ids = torch.where(keep, torch.gather(cls_ids, 1, order).to(torch.float32), neg)
        out_scores = torch.where(keep, torch.gather(vals, 1, order), neg)
        out_boxes = torch.where(keep.unsqueeze(-1),
                                torch.gather(boxes, 1, order.unsqueeze(-1).expand(-1, -1, 4)),
                                neg.unsqueeze(-1))
        return ids.unsqueeze(-1), out_scores.unsqueeze(-1), out_boxes


def export_onnx(net, path, data_shape: Tuple[int, int] = None, dynamic: bool = False,
                opset: int = 17, batch: int = 1) -> Path:
    """Export ``net`` (an ssd_zoo SSD, fp32) with decode and NMS to an ONNX file.

    Args:
        net: the SSD; path: output .onnx file (written atomically).
        data_shape: (H, W) of the example input (default: the preset's base size).
        dynamic: dynamic batch, height and width axes.
        opset: ONNX opset (>= 11 for stable TopK ties and Loop).
    Returns: the path written.
    """
    path = Path(path)
    module = ExportableSSD(net.float().eval()).eval()
    x = _example(net, data_shape, batch)
    dyn = None
    if dynamic:
        dyn = {"data": {0: "batch", 2: "height", 3: "width"}, "ids": {0: "batch"},
               "scores": {0: "batch"}, "bboxes": {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape-derived constants
        torch.onnx.export(module, (x,), str(tmp), input_names=["data"],
                          output_names=["ids", "scores", "bboxes"], dynamic_axes=dyn,
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    tmp.replace(path)
    log.info("wrote %s", path)
    return path


def export_torchscript(net, path, data_shape: Tuple[int, int] = None) -> Path:
    """Trace the exportable SSD (decode + NMS included) to a TorchScript file."""
    path = Path(path)
    module = ExportableSSD(net.float().eval()).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, (_example(net, data_shape, 1),), check_trace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    traced.save(str(tmp))
    tmp.replace(path)
    return path


def _example(net, data_shape, batch) -> torch.Tensor:
    if data_shape is None:
        size = net.preset.base_size if getattr(net, "preset", None) else 300
        data_shape = (size, size)
    h, w = data_shape
    device = next(net.parameters()).device
    return torch.randn(batch, 3, int(h), int(w), generator=torch.Generator().manual_seed(0)
                       ).to(device)


def onnx_detect(session, x) -> List:
    """Run an onnxruntime session of an exported SSD on x (numpy/torch) -> [ids, scores,
    bboxes] numpy arrays."""
    arr = x.numpy() if isinstance(x, torch.Tensor) else x
    return session.run(["ids", "scores", "bboxes"], {"data": arr.astype("float32")})
