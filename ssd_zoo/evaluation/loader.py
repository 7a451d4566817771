"""Validation samples (Gluon-CV's SSDDefaultValTransform), batching and rank sharding."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..transforms import transform_val


def resize_label(label: np.ndarray, in_wh, out_wh) -> np.ndarray:
    """Label rows -> (K, 6) float32 ``[x1, y1, x2, y2, class, difficult]`` in the resized frame.

    Same arithmetic as ``gluoncv.data.transforms.bbox.resize`` (float64 copy times the
    Python-float scale ``out / in``) followed by ``astype(float32)``.  A missing difficult
    column (COCO) becomes 0, which the VOC metric treats like Gluon-CV's ``None``.
    """
    lab = np.asarray(label).reshape(len(label), -1) if len(label) else np.zeros((0, 6))
    box = lab[:, :4].astype(np.float64)
    x_scale = out_wh[0] / in_wh[0]
    y_scale = out_wh[1] / in_wh[1]
    box[:, 1] = y_scale * box[:, 1]
    box[:, 3] = y_scale * box[:, 3]
    box[:, 0] = x_scale * box[:, 0]
    box[:, 2] = x_scale * box[:, 2]
    out = np.zeros((len(lab), 6), np.float32)
    out[:, :4] = box
    out[:, 4] = lab[:, 4]
    if lab.shape[1] > 5:
        out[:, 5] = lab[:, 5]
    return out


class ValSamples(Dataset):
    """``dataset[i] -> (image, label)`` -> ``(x (3,H,W) float32, gt (K,6) float32, i)``."""

    def __init__(self, dataset, width: int, height: int, mean, std):
        self.dataset = dataset
        self.width, self.height = int(width), int(height)
        self.mean, self.std = tuple(mean), tuple(std)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int):
        img, label = self.dataset[idx]
        h, w = img.shape[:2]
        x = transform_val(img, self.width, self.height, self.mean, self.std)[0]
        gt = resize_label(label, (w, h), (self.width, self.height))
        return x, torch.from_numpy(gt), int(idx)


def collate(batch):
    """-> images (B,3,H,W), gt (B,M,6) padded with -1 (Gluon's ``Pad(pad_val=-1)``),
    dataset indices (list)."""
    images = torch.stack([b[0] for b in batch])
    m = max(len(b[1]) for b in batch)
    gt = torch.full((len(batch), m, 6), -1.0, dtype=torch.float32)
    for i, b in enumerate(batch):
        gt[i, :len(b[1])] = b[1]
    return images, gt, [b[2] for b in batch]


def shard_batches(n: int, batch_size: int, rank: int = 0, world: int = 1) -> List[List[int]]:
    """Batches ``[0..B-1], [B..2B-1], ...`` of a single process; this rank gets every
    ``world``-th one starting at ``rank``.  No index is padded or repeated, and every image is
    inferred in exactly the batch it would be in a single process (same numerics)."""
    batches = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
    return batches[rank::world]


def make_loader(samples: Dataset, batches: Sequence[Sequence[int]], num_workers: int,
                pin_memory: bool) -> DataLoader:
    return DataLoader(samples, batch_sampler=[list(b) for b in batches], collate_fn=collate,
                      num_workers=num_workers, pin_memory=pin_memory)
