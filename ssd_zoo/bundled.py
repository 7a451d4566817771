"""Converted Caffe SSDs (``ModelEntry.kind == 'caffe'``) behind the zoo's SSD contract.

A :class:`CaffeSSD` wraps a :class:`ssd_zoo.caffe.CaffeNet` (whose forward takes an
OpenCV-style blob and returns DetectionOutput rows) so that it looks like the Gluon-style
SSDs to :func:`ssd_zoo.detect` and the demo: ``forward(x)`` takes the (N,3,H,W) RGB pixels
that ``transform_test`` makes with ``preset.mean == (0, 0, 0)`` and ``preset.std == 1/255``
(i.e. values 0..255) and returns ``(ids, scores, boxes)`` of shapes (N,K,1), (N,K,1),
(N,K,4), boxes in the pixels of ``x``, rows padded with -1.

Preprocessing is OpenCV's ``cv2.dnn.blobFromImage(bgr, 1.0, (W, H), mean)``: bilinear
``cv2.resize`` of the uint8 image to the net's input size, BGR, minus ``caffe_mean``, no
scaling, so on an unresized image the result equals OpenCV dnn's.

Weights of bundled entries ship in ``ssd_zoo/assets/`` (no download); see
``ssd_zoo/assets/README.md`` for where each file came from and how it was made.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

ASSETS = Path(__file__).resolve().parent / "assets"


class CaffeSSD(nn.Module):
    """A Caffe SSD (DetectionOutput head) with the zoo's ``(ids, scores, boxes)`` contract.

    Args:
        net: the CaffeNet (single input, DetectionOutput (1,1,M,7) output).
        classes: foreground class names; Caffe label ``l`` (1-based, 0 = background)
            becomes id ``l - 1``.
        input_size: (width, height) the net was trained at.
        caffe_mean: per-channel mean subtracted from the BGR 0..255 pixels.
        max_detections: rows per image in the output (DetectionOutput's keep_top_k).
    """

    def __init__(self, net: nn.Module, classes: Sequence[str], input_size: Tuple[int, int],
                 caffe_mean: Sequence[float], max_detections: int = 200):
        super().__init__()
        self.net = net
        self.classes = tuple(classes)
        self.input_size = tuple(int(v) for v in input_size)
        self.register_buffer("caffe_mean", torch.tensor(caffe_mean, dtype=torch.float32)
                             .reshape(1, 3, 1, 1), persistent=False)
        self.max_detections = int(max_detections)

    def blob(self, x: torch.Tensor) -> torch.Tensor:
        """RGB 0..255 (N,3,H,W) -> the OpenCV blob (N,3,h,w): resize, BGR, minus mean."""
        import cv2
        w, h = self.input_size
        imgs = x.detach().round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        out = []
        for img in imgs:
            if img.shape[:2] != (h, w):
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
            out.append(img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32))
        blob = torch.from_numpy(np.stack(out)).to(self.caffe_mean.device)
        return blob - self.caffe_mean

    def forward(self, x: torch.Tensor):
        n, _, height, width = x.shape
        det = self.net(self.blob(x)).reshape(-1, 7).float()
        k = self.max_detections
        ids = torch.full((n, k, 1), -1.0, device=det.device)
        scores = torch.full((n, k, 1), -1.0, device=det.device)
        boxes = torch.full((n, k, 4), -1.0, device=det.device)
        scale = torch.tensor([width, height, width, height], dtype=torch.float32,
                             device=det.device)
        for i in range(n):
            rows = det[(det[:, 0] == i) & (det[:, 1] >= 1)]
            rows = rows[torch.argsort(rows[:, 2], descending=True, stable=True)][:k]
            m = len(rows)
            ids[i, :m, 0] = rows[:, 1] - 1
            scores[i, :m, 0] = rows[:, 2]
            boxes[i, :m] = rows[:, 3:7] * scale
        return ids, scores, boxes


def bundled_path(entry) -> Path:
    """The shipped weights file of ``entry`` (FileNotFoundError naming it if absent)."""
    path = ASSETS / entry.bundled_file
    if not path.is_file():
        raise FileNotFoundError(f"{entry.name}: bundled weights {path} are missing (a broken "
                                "checkout? they ship with the repository)")
    return path


def get_caffe_model(entry, pretrained: bool = False, weights: Optional[str] = None,
                    sha256: Optional[str] = None, root=None, precision: str = "fp32"
                    ) -> CaffeSSD:
    """Build a ``kind='caffe'`` entry: the bundled file (``pretrained``) or ``weights`` (a
    path/URL of a file written by ``converters/convert_caffe.py``)."""
    from . import caffe
    if pretrained and weights is not None:
        raise ValueError("pass either pretrained=True or weights=..., not both")
    if precision != "fp32":
        raise ValueError(f"{entry.name} (a converted Caffe net) supports precision='fp32' only")
    if pretrained:
        path = bundled_path(entry)
    elif weights is not None:
        from . import hub
        path = hub.fetch_user_weights(str(weights), sha256=sha256, root=root)
    else:
        raise ValueError(f"{entry.name} is a converted Caffe model without a random-init "
                         "form: pass pretrained=True (bundled weights) or weights=PATH")
    net = caffe.load(path)
    extra = dict(entry.extra)
    caffe_mean = tuple(float(v) for v in extra["caffe_mean"].split(","))
    model = CaffeSSD(net, entry.classes, (entry.preset.base_size,) * 2, caffe_mean,
                     max_detections=entry.preset.post_nms)
    model.entry_name = entry.name
    model.preset = entry.preset
    model.precision = precision
    model.weights_file = str(path)
    return model.eval()


__all__ = ["CaffeSSD", "get_caffe_model", "bundled_path", "ASSETS"]
