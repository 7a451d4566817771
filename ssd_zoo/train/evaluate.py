"""Validation during training: Gluon's SSDDefaultValTransform (OpenCV resize to the data
shape, boxes scaled alike) + VOC07 mAP, sharded over ranks and merged exactly."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..transforms import transform_val
from .distributed import DistInfo, all_gather_objects


class ValDataset(Dataset):
    """(image uint8 HWC, label (K, 5+)) -> (x (3,S,S), gt (K, 6) [x1,y1,x2,y2,cls,difficult]
    in resized pixels).  ``indices``: the shard of this rank."""

    def __init__(self, dataset, data_shape: int, mean, std, indices: Sequence[int]):
        self.dataset = dataset
        self.size = int(data_shape)
        self.mean, self.std = tuple(mean), tuple(std)
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        img, label = self.dataset[self.indices[i]]
        h, w = img.shape[:2]
        x = transform_val(img, self.size, self.size, self.mean, self.std)[0]
        lab = np.asarray(label, np.float32).reshape(len(label), -1) if len(label) else \
            np.zeros((0, 6), np.float32)
        gt = np.zeros((len(lab), 6), np.float32)
        gt[:, :4] = lab[:, :4] * np.array([self.size / w, self.size / h] * 2, np.float32)
        gt[:, 4] = lab[:, 4]
        if lab.shape[1] > 5:
            gt[:, 5] = lab[:, 5]
        return x, torch.from_numpy(gt)


def collate_val(batch):
    """-> images (B,3,S,S), gt (B, M, 6) padded with -1."""
    images = torch.stack([b[0] for b in batch])
    m = max([1] + [len(b[1]) for b in batch])
    gt = torch.full((len(batch), m, 6), -1.0)
    for i, b in enumerate(batch):
        gt[i, :len(b[1])] = b[1]
    return images, gt


@torch.no_grad()
def evaluate_voc07(net, dataset, classes, info: DistInfo, batch_size: int = 8,
                   num_workers: int = 0) -> float:
    """VOC07 mAP (IoU 0.5) of ``net`` (the unwrapped SSD) on ``dataset``; every rank
    evaluates its shard, all ranks return the same number."""
    from ..metrics import VOC07MApMetric
    preset = net.preset
    shard = range(info.rank, len(dataset), info.world_size)
    loader = DataLoader(ValDataset(dataset, preset.base_size, preset.mean, preset.std, shard),
                        batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_val)
    metric = VOC07MApMetric(iou_thresh=0.5, class_names=list(classes))
    was_training = net.training
    net.eval()
    try:
        for images, gt in loader:
            ids, scores, bboxes = net(images.to(info.device))
            metric.update(bboxes.cpu(), ids.cpu(), scores.cpu(), gt[..., :4], gt[..., 4],
                          gt[..., 5])
    finally:
        net.train(was_training)
    states = all_gather_objects(metric.state(), info)
    total = VOC07MApMetric(iou_thresh=0.5, class_names=list(classes))
    for s in states:
        total.merge(s)
    value = float(total.get()[1][-1])
    return value if np.isfinite(value) else 0.0
