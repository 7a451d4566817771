"""SSD assembly: backbone + per-head conv predictors + anchor generators + box coder +
post-processor, all passed in.  Gluon-CV compatible forward contract."""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
from torch import nn

from ..anchors import SSDAnchorGenerator
from ..box_coder import BoxCoder
from ..fast import autocast_ctx
from ..postprocess import GluonPostProcessor
from .backbones.base import Backbone


class SSD(nn.Module):
    """Single Shot MultiBox Detector.

    ``net.eval(); ids, scores, bboxes = net(x)`` for x (N,3,H,W) float, RGB normalized
    ((x/255 - mean)/std): ids (N,K,1) with -1 on padding rows, scores (N,K,1), bboxes
    (N,K,4) boxes_xyxy in input pixels (K = post_nms, 100 by default).
    In training mode the forward returns (cls_logits (N,A,C+1), box_offsets (N,A,4),
    anchors_cxcywh (A,4)).

    Args:
        backbone: returns one feature map per head.
        anchor_generators: one per head.
        classes: foreground class names (background is implicit, index 0 of the logits).
        box_coder: decodes offsets; postprocessor: Gluon-exact NMS.
        predictor_kernel, predictor_pad: conv size of the class/box predictors.
    """

    def __init__(self, backbone: Backbone, anchor_generators: Sequence[SSDAnchorGenerator],
                 classes: Sequence[str], box_coder: BoxCoder = None,
                 postprocessor: GluonPostProcessor = None, predictor_kernel: int = 3,
                 predictor_pad: int = 1):
        super().__init__()
        if len(anchor_generators) != len(backbone.out_channels):
            raise ValueError(f"{len(anchor_generators)} anchor generators for "
                             f"{len(backbone.out_channels)} feature maps")
        self.backbone = backbone
        self.anchor_generators = nn.ModuleList(anchor_generators)
        self.classes = tuple(classes)
        self.box_coder = box_coder or BoxCoder()
        self.postprocessor = postprocessor or GluonPostProcessor()
        c1 = len(self.classes) + 1
        self.class_predictors = nn.ModuleList()
        self.box_predictors = nn.ModuleList()
        for ch, ag in zip(backbone.out_channels, anchor_generators):
            k = ag.num_anchors
            self.class_predictors.append(nn.Conv2d(ch, k * c1, predictor_kernel,
                                                   padding=predictor_pad))
            self.box_predictors.append(nn.Conv2d(ch, k * 4, predictor_kernel,
                                                 padding=predictor_pad))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def head_outputs(self, x: torch.Tensor):
        """Raw predictions: cls_logits (N,A,C+1), box_offsets (N,A,4), anchors (A,4)."""
        with autocast_ctx(getattr(self, "precision", "fp32"), x.device.type):  # bf16 hook
            feats = self.backbone(x)
        feats = [f.float() for f in feats]  # predictors in fp32 (no-op for fp32 features)
        n, c1 = x.shape[0], self.num_classes + 1
        cls = [p(f).permute(0, 2, 3, 1).reshape(n, -1, c1)
               for f, p in zip(feats, self.class_predictors)]
        box = [p(f).permute(0, 2, 3, 1).reshape(n, -1, 4)
               for f, p in zip(feats, self.box_predictors)]
        anchors = [ag(f) for f, ag in zip(feats, self.anchor_generators)]
        return torch.cat(cls, 1), torch.cat(box, 1), torch.cat(anchors, 0)

    def forward(self, x: torch.Tensor):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SSD expects a (N, 3, H, W) tensor, got shape {tuple(x.shape)}")
        if not torch.is_floating_point(x):
            raise ValueError(f"SSD expects a float tensor (normalized RGB), got {x.dtype}")
        cls, box, anchors = self.head_outputs(x)
        if self.training:
            return cls, box, anchors
        boxes = self.box_coder.decode(box.float(), anchors)
        return self.postprocessor(cls, boxes)

    def set_nms(self, nms_thresh: float = 0.45, nms_topk: int = 400, post_nms: int = 100):
        self.postprocessor.nms_thresh = nms_thresh
        self.postprocessor.nms_topk = nms_topk
        self.postprocessor.post_nms = post_nms

    # -- Gluon name mapping -------------------------------------------------------------
    def gluon_key_map(self) -> Dict[str, Tuple[str, ...]]:
        """{our state_dict key: Gluon names (structural, prefixed w/o ``ssd<N>_``)}."""
        out = {f"backbone.{k}": v for k, v in self.backbone.gluon_key_map().items()}
        for i in range(len(self.class_predictors)):
            for attr in ("weight", "bias"):
                out[f"class_predictors.{i}.{attr}"] = (
                    f"class_predictors.{i}.predictor.{attr}", f"convpredictor{2 * i}_conv0_{attr}")
                out[f"box_predictors.{i}.{attr}"] = (
                    f"box_predictors.{i}.predictor.{attr}", f"convpredictor{2 * i + 1}_conv0_{attr}")
        return out

    def gluon_constants(self, alloc_size: int = 128) -> Dict[str, Tuple[Tuple[str, ...], torch.Tensor]]:
        """Constants Gluon stores in .params, with the values this architecture implies."""
        out = {}
        asz = alloc_size
        for i, ag in enumerate(self.anchor_generators):
            out[f"anchors{i}"] = ((f"anchor_generators.{i}.anchors",
                                   f"ssdanchorgenerator{i}_anchor_{i}"), ag.gluon_constant(asz))
            asz = max(asz // 2, 16)
        return out
