"""A deterministic synthetic detection dataset: coloured shapes on textured backgrounds.

``ds[i] -> (HxWx3 uint8 RGB image, label float32 (K, 6) [x1, y1, x2, y2, class_id, 0])``,
the same interface as VOCDetection.  Every sample is a pure function of (seed, i), so any
process, worker or rank sees the same data.  Used by tests and the learning benchmark.
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

SHAPE_CLASSES = ("circle", "square", "triangle", "cross")


class SyntheticDetection:
    """Args:
        num_samples: dataset length.
        seed: base seed (use different seeds for train and val splits).
        size_range: (min, max) side length in pixels of the generated images.
        max_objects: at most this many shapes per image (at least one).
        classes: a prefix of SHAPE_CLASSES may be requested with ``num_classes``.
    """

    def __init__(self, num_samples: int = 64, seed: int = 0, size_range=(160, 320),
                 max_objects: int = 4, num_classes: int = 4):
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if not 1 <= num_classes <= len(SHAPE_CLASSES):
            raise ValueError(f"num_classes must be in 1..{len(SHAPE_CLASSES)}")
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.size_range = tuple(int(s) for s in size_range)
        self.max_objects = int(max_objects)
        self._classes = SHAPE_CLASSES[:num_classes]

    @property
    def classes(self) -> Tuple[str, ...]:
        return self._classes

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return f"SyntheticDetection(num_samples={self.num_samples}, seed={self.seed})"

    def __getitem__(self, idx: int):
        if not 0 <= idx < self.num_samples:
            raise IndexError(idx)
        rng = np.random.default_rng([self.seed, idx])
        h, w = (int(v) for v in rng.integers(self.size_range[0], self.size_range[1] + 1, 2))
        img = self._background(rng, h, w)
        rows = []
        for _ in range(int(rng.integers(1, self.max_objects + 1))):
            cls = int(rng.integers(len(self._classes)))
            side = int(rng.integers(max(12, min(h, w) // 8), max(16, min(h, w) // 2)))
            x1 = int(rng.integers(0, w - side))
            y1 = int(rng.integers(0, h - side))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            self._draw(img, self._classes[cls], x1, y1, side, colour)
            rows.append([x1, y1, x1 + side, y1 + side, cls, 0])
        return img, np.asarray(rows, np.float32).reshape(-1, 6)

    @staticmethod
    def _background(rng, h: int, w: int) -> np.ndarray:
        """Low-frequency colour noise plus stripes."""
        coarse = rng.integers(0, 256, (max(2, h // 32), max(2, w // 32), 3)).astype(np.uint8)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        period = float(rng.uniform(6, 24))
        angle = float(rng.uniform(0, np.pi))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        img += 30.0 * stripes[..., None]
        img += rng.normal(0, 8, img.shape)
        return np.clip(img, 0, 255).astype(np.uint8)

    @staticmethod
    def _draw(img, shape: str, x1: int, y1: int, side: int, colour) -> None:
        x2, y2 = x1 + side - 1, y1 + side - 1
        if shape == "circle":
            cv2.circle(img, (x1 + side // 2, y1 + side // 2), side // 2, colour, -1)
        elif shape == "square":
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, -1)
        elif shape == "triangle":
            pts = np.array([[x1 + side // 2, y1], [x1, y2], [x2, y2]], np.int32)
            cv2.fillPoly(img, [pts], colour)
        else:  # cross
            t = max(2, side // 4)
            c = x1 + side // 2
            m = y1 + side // 2
            cv2.rectangle(img, (c - t // 2, y1), (c + t // 2, y2), colour, -1)
            cv2.rectangle(img, (x1, m - t // 2), (x2, m + t // 2), colour, -1)
