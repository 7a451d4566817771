"""Test-time preprocessing identical to Gluon-CV's (same OpenCV kernels and rounding).

Gluon-CV resizes with OpenCV inside MXNet.  Interpolation codes are OpenCV's
(0 nearest, 1 bilinear, 2 bicubic, 3 area, 4 lanczos); 9 = "auto": bicubic when
enlarging both sides, area when shrinking both, bilinear otherwise.
"""
from __future__ import annotations

import os
from typing import Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from .resize_cubic import resize_cubic

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageReadError(ValueError):
    """An image file is missing, unreadable or corrupt."""


def imread_rgb(path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB (OpenCV decoder, like mx.image.imread)."""
    path = os.fspath(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read ({e.strerror or e})") from None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ImageReadError(f"{path}: not a decodable image (corrupt or unsupported format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def interp_method(interp: int, old_hw: Tuple[int, int], new_hw: Tuple[int, int]) -> int:
    """MXNet's _get_interp_method (9 = auto)."""
    if interp == 9:
        (oh, ow), (nh, nw) = old_hw, new_hw
        if nh > oh and nw > ow:
            return 2
        if nh < oh and nw < ow:
            return 3
        return 1
    if interp not in (0, 1, 2, 3, 4):
        raise ValueError(f"unknown interp method {interp}")
    return interp


def imresize(img: np.ndarray, width: int, height: int, interp: int = 1) -> np.ndarray:
    """Resize HxWx3 uint8 to (height, width) like gluoncv.data.transforms.image.imresize.

    Bicubic (2, and 9 when enlarging) uses our reimplementation of the OpenCV 3.4.2 kernel
    linked into MXNet 1.9.1 (OpenCV 4.x's cv2.resize rounds differently there); the other
    methods give identical results in both versions and stay on cv2.resize.
    """
    h, w = img.shape[:2]
    method = interp_method(interp, (h, w), (height, width))
    if method == 2 and img.dtype == np.uint8:
        return resize_cubic(img, int(width), int(height))
    return cv2.resize(img, (int(width), int(height)), interpolation=method)


def short_within_size(h: int, w: int, short: int, max_size: int,
                      mult_base: int = 1) -> Tuple[int, int]:
    """(new_h, new_w) of Gluon's resize_short_within (numpy round-half-even)."""
    size_min, size_max = (h, w) if w > h else (w, h)
    scale = float(short) / float(size_min)
    if np.round(scale * size_max / mult_base) * mult_base > max_size:
        scale = float(np.floor(max_size / mult_base) * mult_base) / float(size_max)
    new_w = int(np.round(w * scale / mult_base) * mult_base)
    new_h = int(np.round(h * scale / mult_base) * mult_base)
    return new_h, new_w


def resize_short_within(img: np.ndarray, short: int, max_size: int, mult_base: int = 1,
                        interp: int = 2) -> np.ndarray:
    """Resize so the short side is ``short`` and the long side <= ``max_size``."""
    h, w = img.shape[:2]
    new_h, new_w = short_within_size(h, w, short, max_size, mult_base)
    return imresize(img, new_w, new_h, interp=interp)


def to_normalized_tensor(img: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN,
                         std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """HxWx3 uint8 RGB -> (1,3,H,W) float32 ((x/255 - mean)/std), as mx to_tensor+normalize."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 image, got {img.dtype} {img.shape}")
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).to(torch.float32) / 255.0
    m = torch.tensor(mean, dtype=torch.float32).reshape(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).reshape(3, 1, 1)
    return ((x - m) / s).unsqueeze(0)


def transform_test(imgs, short: int = 512, max_size: int = 1024,
                   mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
    """Gluon-CV's ssd transform_test on HxWx3 uint8 RGB array(s).

    Returns (x (1,3,H,W), resized uint8 image) for one image, two lists for a list.
    """
    single = isinstance(imgs, np.ndarray)
    items = [imgs] if single else list(imgs)
    tensors, origs = [], []
    for img in items:
        img = resize_short_within(img, short, max_size)
        origs.append(img)
        tensors.append(to_normalized_tensor(img, mean, std))
    return (tensors[0], origs[0]) if single else (tensors, origs)


def load_test(filenames: Union[str, os.PathLike, Sequence], short: int = 512,
              max_size: int = 1024, mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD):
    """Gluon-CV's ssd load_test: read file(s), then transform_test."""
    single = isinstance(filenames, (str, os.PathLike))
    files = [filenames] if single else list(filenames)
    imgs = [imread_rgb(f) for f in files]
    return transform_test(imgs[0] if single else imgs, short, max_size, mean, std)


def transform_val(img: np.ndarray, width: int, height: int,
                  mean: Sequence[float] = IMAGENET_MEAN,
                  std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """Gluon-CV's SSDDefaultValTransform image part: resize to (height, width) with interp
    9, normalize -> (1,3,height,width)."""
    return to_normalized_tensor(imresize(img, width, height, interp=9), mean, std)
