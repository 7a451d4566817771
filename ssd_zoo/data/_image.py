"""Image decoding shared by the dataset readers."""
from __future__ import annotations

import os
from typing import Union

import cv2
import numpy as np


def read_image_rgb(path: Union[str, os.PathLike]) -> np.ndarray:
    """Decode an image file to an HxWx3 uint8 RGB array.

    Same route as MXNet's ``mx.image.imread(path, 1)`` (file bytes -> ``cv2.imdecode``
    with IMREAD_COLOR -> BGR to RGB), so the pixels match Gluon-CV's for the same libjpeg.
    """
    path = os.fspath(path)
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"missing image {path}") from None
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise ValueError(f"{path}: not a decodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
