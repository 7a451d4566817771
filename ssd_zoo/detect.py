"""A friendly one-call API: images in, detections in original-image pixels out."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Sequence, Union

import numpy as np
import torch

from .transforms import imread_rgb, transform_test

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

ImageLike = Union[str, os.PathLike, np.ndarray, "Image.Image"]  # PIL.Image.Image


def _to_rgb_array(image) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        return imread_rgb(image)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"array images must be HxWx3 uint8 RGB, got {image.dtype} "
                             f"{image.shape}")
        return image
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    raise ValueError(f"unsupported image type {type(image).__name__}; pass a path, a PIL "
                     "image or an HxWx3 uint8 RGB array")


@torch.no_grad()
def detect(net, images: Union[ImageLike, Sequence[ImageLike]], threshold: float = 0.5,
           short: int = None, max_size: int = 1024) -> Union[Dict, List[Dict]]:
    """Run ``net`` on images the way Gluon-CV's demo does (load_test resize).

    Args:
        net: an ssd_zoo SSD.
        images: a path / PIL image / HxWx3 uint8 RGB array, or a list of them.
        threshold: minimum score kept.
        short: resize short side (default: the model's base size).
    Returns:
        per image a dict: ``boxes`` (K,4) float32 boxes_xyxy in ORIGINAL image pixels,
        ``labels`` (K,) int64 class indices, ``scores`` (K,), ``names`` (list of str).
        A single dict for a single image.
    """
    single = not isinstance(images, (list, tuple))
    items = [images] if single else list(images)
    preset = getattr(net, "preset", None)
    short = short or (preset.base_size if preset else 512)
    mean = preset.mean if preset else (0.485, 0.456, 0.406)
    std = preset.std if preset else (0.229, 0.224, 0.225)
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    results = []
    for image in items:
        rgb = _to_rgb_array(image)
        x, resized = transform_test(rgb, short=short, max_size=max_size, mean=mean, std=std)
        with _precision_ctx(net, device):
            ids, scores, boxes = net(x.to(device))
        ids, scores, boxes = ids[0, :, 0].float().cpu(), scores[0, :, 0].float().cpu(), \
            boxes[0].float().cpu()
        keep = (ids >= 0) & (scores >= threshold)
        sy = rgb.shape[0] / resized.shape[0]
        sx = rgb.shape[1] / resized.shape[1]
        scale = torch.tensor([sx, sy, sx, sy])
        labels = ids[keep].to(torch.int64)
        results.append({"boxes": (boxes[keep] * scale).numpy().astype(np.float32),
                        "labels": labels.numpy(), "scores": scores[keep].numpy(),
                        "names": [net.classes[i] for i in labels.tolist()]})
    net.train(was_training)
    return results[0] if single else results


def _precision_ctx(net, device):
    if getattr(net, "precision", "fp32") == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext()
