"""Input pipelines of the ported upstreams, so ported models see what they were trained on.

* torchvision (``GeneralizedRCNNTransform`` with ``fixed_size``): per image (3,H,W) float
  RGB in 0..1: normalize ``(x - mean) / std`` first, THEN bilinear-resize
  (``F.interpolate``, align_corners=False) to the fixed size; detections are scaled back
  by original/resized size (float32 ratios).
* ssd.pytorch (``BaseTransform`` + ``VOCDetection.pull_item``): cv2.imread BGR uint8,
  ``cv2.resize`` (bilinear) to 300x300, float32 minus (104, 117, 123) per BGR channel,
  then reversed to RGB: the net sees (R-123, G-117, B-104).  This equals the preset's
  ((x/255 - mean)/std) up to float rounding (<= 2e-5).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

AMDEGROOT_BGR_MEANS = (104.0, 117.0, 123.0)


def torchvision_inputs(images: Sequence[torch.Tensor], mean: Sequence[float],
                       std: Sequence[float], size: Tuple[int, int] = (300, 300)
                       ) -> Tuple[torch.Tensor, List[Tuple[int, int]]]:
    """List of (3,H,W) float 0..1 RGB -> (x (N,3,h,w), original (H,W) sizes)."""
    out, sizes = [], []
    for img in images:
        if img.dim() != 3 or img.shape[0] != 3 or not img.is_floating_point():
            raise ValueError(f"expected (3,H,W) float images in 0..1, got {img.dtype} "
                             f"{tuple(img.shape)}")
        m = torch.as_tensor(mean, dtype=img.dtype, device=img.device)[:, None, None]
        s = torch.as_tensor(std, dtype=img.dtype, device=img.device)[:, None, None]
        x = (img - m) / s
        x = F.interpolate(x[None], size=[size[0], size[1]], mode="bilinear",
                          align_corners=False)[0]
        out.append(x)
        sizes.append((int(img.shape[-2]), int(img.shape[-1])))
    return torch.stack(out), sizes


def torchvision_rescale(bboxes: torch.Tensor, original_sizes: Sequence[Tuple[int, int]],
                        size: Tuple[int, int] = (300, 300)) -> torch.Tensor:
    """bboxes (N,K,4) xyxy in network pixels -> original image pixels (-1 pads kept)."""
    out = bboxes.clone()
    for i, (h, w) in enumerate(original_sizes):
        rh = torch.tensor(h, dtype=torch.float32) / torch.tensor(size[0], dtype=torch.float32)
        rw = torch.tensor(w, dtype=torch.float32) / torch.tensor(size[1], dtype=torch.float32)
        valid = (bboxes[i] != -1).any(-1)
        scaled = torch.stack([bboxes[i, :, 0] * rw, bboxes[i, :, 1] * rh,
                              bboxes[i, :, 2] * rw, bboxes[i, :, 3] * rh], -1)
        out[i] = torch.where(valid[:, None], scaled, bboxes[i])
    return out


def amdegroot_input(bgr: np.ndarray, size: int = 300) -> torch.Tensor:
    """HxWx3 uint8 BGR (cv2.imread) -> (1,3,size,size) float32 (R-123, G-117, B-104)."""
    import cv2
    if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 BGR image, got {bgr.dtype} {bgr.shape}")
    x = cv2.resize(bgr, (size, size)).astype(np.float32)
    x -= np.array(AMDEGROOT_BGR_MEANS, dtype=np.float32)
    x = np.ascontiguousarray(x[:, :, ::-1])
    return torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0)
