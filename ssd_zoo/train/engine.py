"""The training loop: DDP, AMP, per-iteration lr schedule, NaN guard, validation,
TensorBoard, atomic checkpoints and exact resume.

``fit(net, train_set, val_set, cfg, info)`` trains the (unwrapped) SSD ``net`` in place.
Every random choice is a function of (seed, epoch, sample index) or restored from the
checkpoint, so N ranks x batch B equal 1 rank x batch N*B (with ``syncbn`` when the model
has BatchNorm) and a resumed run equals an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Tuple

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from . import checkpoint as ckpt_io
from .augment import AugmentedDataset
from .distributed import DistInfo, all_reduce_sum, barrier
from .evaluate import evaluate_voc07
from .loss import SSDMultiBoxLoss
from .schedule import SSDLRLambda, make_scheduler
from .syncbn import convert_sync_batchnorm
from .targets import SSDTargetEncoder, collate_with_targets

log = logging.getLogger("ssd_zoo.train")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN/Inf; training stopped before the update."""


@dataclass
class TrainConfig:
    epochs: int = 240
    batch_size: int = 32                    # per process
    test_batch_size: int = 32
    lr: float = 0.001
    lr_mode: str = "step"
    lr_decay: float = 0.1
    lr_decay_epochs: Tuple[int, ...] = (160, 200)
    warmup_epochs: float = 0.0
    warmup_factor: float = 1.0 / 3
    momentum: float = 0.9
    wd: float = 0.0005
    num_workers: int = 4
    val_interval: int = 1
    log_interval: int = 100
    save_dir: str = "runs/ssd"
    resume: Optional[str] = None
    seed: int = 233
    amp: bool = False
    syncbn: bool = False
    stop_after_epoch: Optional[int] = None  # stop (checkpointed) after this epoch index
    inject_nan_iter: Optional[int] = None   # testing: make the loss NaN at this iteration
    check_sync: bool = False                # testing: verify ranks hold identical weights
    exit_rank_at: Optional[Tuple[int, int]] = None  # testing: (rank, iteration) dies
    extra: dict = field(default_factory=dict)  # recorded in the checkpoint (CLI args)


def compute_anchors(net, data_shape: int, device) -> torch.Tensor:
    """anchors_cxcywh (A, 4) of ``net`` for square inputs of ``data_shape``."""
    was = net.training
    net.eval()
    with torch.no_grad():
        anchors = net.head_outputs(torch.zeros(1, 3, data_shape, data_shape, device=device))[2]
    net.train(was)
    return anchors.cpu()


class Trainer:
    def __init__(self, net, train_set, val_set, cfg: TrainConfig, info: DistInfo):
        self.cfg, self.info = cfg, info
        self.net = net.to(info.device)
        self.classes = tuple(net.classes)
        size = net.preset.base_size
        self.encoder = SSDTargetEncoder(compute_anchors(self.net, size, info.device),
                                        net.preset.box_stds)
        from ..anchors import head_coverages
        cover = head_coverages(self.net, size) if hasattr(self.net, "anchor_generators") else [1]
        if min(cover) < 0.9:
            log.warning("anchor centres of heads %s reach only %s of the %d-pixel input: "
                        "objects in the right/bottom part get no close anchor (steps %s)",
                        [i for i, c in enumerate(cover) if c < 0.9],
                        [round(c, 2) for c in cover], size, net.preset.steps)
        if cfg.syncbn and info.distributed:
            self.net = convert_sync_batchnorm(self.net, info.device.type == "cuda")
            self.net.preset, self.net.classes = net.preset, net.classes
        self.net.train()
        self.model = (DDP(self.net, device_ids=[info.device.index] if info.device.type == "cuda"
                          else None) if info.distributed else self.net)
        if not isinstance(train_set, AugmentedDataset):
            raise TypeError("train_set must be an AugmentedDataset")
        self.train_set, self.val_set = train_set, val_set
        self.sampler = DistributedSampler(train_set, num_replicas=info.world_size,
                                          rank=info.rank, shuffle=True, seed=cfg.seed)
        self.loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=self.sampler,
                                 num_workers=cfg.num_workers, drop_last=True,
                                 collate_fn=collate_with_targets(self.encoder),
                                 pin_memory=info.device.type == "cuda")
        if len(self.loader) == 0:
            raise ValueError(f"{len(train_set)} training samples over {info.world_size} "
                             f"process(es) do not fill one batch of {cfg.batch_size}")
        params = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.wd)
        self.scheduler = make_scheduler(self.optimizer, SSDLRLambda(
            cfg.lr_mode, len(self.loader), cfg.epochs, cfg.lr_decay, cfg.lr_decay_epochs,
            cfg.warmup_epochs, cfg.warmup_factor))
        cuda = info.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and cuda)
        self.amp_dtype = torch.float16 if cuda else torch.bfloat16
        self.loss_fn = SSDMultiBoxLoss(neg_ratio=3.0)
        self.save_dir = Path(cfg.save_dir)
        self.start_epoch, self.best_map, self.global_iter = 0, -1.0, 0
        self.writer = None

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, epoch: int) -> dict:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": epoch, "global_iter": self.global_iter, "best_map": self.best_map,
                "rng": ckpt_io.rng_state(),
                "sampler": {"epoch": epoch + 1, "seed": self.cfg.seed,
                            "num_replicas": self.info.world_size},
                "classes": list(self.classes), "config": _plain(asdict(self.cfg))}

    def resume(self, path) -> None:
        ck = ckpt_io.load_checkpoint(path)
        if list(ck.get("classes", self.classes)) != list(self.classes):
            raise ValueError(f"{path}: checkpoint classes {ck['classes']} differ from the "
                             f"dataset's {list(self.classes)}")
        self.net.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        ckpt_io.set_rng_state(ck["rng"])
        self.start_epoch = int(ck["epoch"]) + 1
        self.global_iter = int(ck.get("global_iter", 0))
        self.best_map = float(ck.get("best_map", -1.0))
        log.info("resumed from %s (epoch %d done)", path, ck["epoch"])

    def _save(self, epoch: int, val_map: Optional[float]) -> None:
        if val_map is not None and val_map > self.best_map:
            self.best_map = val_map
            if self.info.is_main:
                ckpt_io.save_weights_safetensors(
                    self.save_dir / "best.safetensors", self.net.state_dict(),
                    {"epoch": epoch, "mAP": val_map, "classes": ",".join(self.classes),
                     "model": getattr(self.net, "entry_name", "")})
        if self.info.is_main:
            ckpt_io.save_checkpoint(self.save_dir / "last.pth", self.state_dict(epoch))
        barrier(self.info)

    def check_weights_in_sync(self) -> None:
        """Raise unless every rank holds bit-identical weights and buffers."""
        from .distributed import all_gather_objects
        digests = all_gather_objects(weights_digest(self.net), self.info)
        if len(set(digests)) != 1:
            raise RuntimeError(f"ranks diverged after step {self.global_iter}: {digests}")
        log.info("step %d: weights identical on %d rank(s) (%s)", self.global_iter,
                 len(digests), digests[0][:12])

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        cfg, info = self.cfg, self.info
        if cfg.resume:
            self.resume(cfg.resume)
        if info.is_main:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            self.writer = _tensorboard(self.save_dir)
        last_map = None
        stop = cfg.epochs if cfg.stop_after_epoch is None else min(cfg.epochs, cfg.stop_after_epoch + 1)
        for epoch in range(self.start_epoch, stop):
            self.train_epoch(epoch)
            val_map = None
            if self.val_set is not None and cfg.val_interval > 0 and \
                    ((epoch + 1) % cfg.val_interval == 0 or epoch + 1 == cfg.epochs):
                val_map = evaluate_voc07(self.net, self.val_set, self.classes, info,
                                         cfg.test_batch_size, cfg.num_workers)
                last_map = val_map
                log.info("[Epoch %d] validation mAP=%.4f (best %.4f)", epoch, val_map,
                         max(val_map, self.best_map))
                if self.writer:
                    self.writer.add_scalar("val/mAP", val_map, epoch)
            self._save(epoch, val_map)
        if self.writer:
            self.writer.close()
        return {"best_map": self.best_map, "last_map": last_map, "iterations": self.global_iter}

    def train_epoch(self, epoch: int) -> None:
        cfg, info = self.cfg, self.info
        self.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)
        self.net.train()
        n_batches = len(self.loader)
        t0 = tic = time.perf_counter()
        acc = torch.zeros(2, dtype=torch.float64)
        seen = 0
        for i, (images, cls_t, box_t) in enumerate(self.loader):
            images = images.to(info.device, non_blocking=True)
            cls_t = cls_t.to(info.device, non_blocking=True)
            box_t = box_t.to(info.device, non_blocking=True)
            num_pos = all_reduce_sum((cls_t > 0).sum().to(torch.float64).reshape(1), info)
            with torch.autocast(info.device.type, dtype=self.amp_dtype, enabled=cfg.amp):
                cls_p, box_p, _ = self.model(images)
            total, cls_loss, box_loss = self.loss_fn(cls_p, box_p, cls_t, box_t,
                                                     float(num_pos.item()))
            if cfg.inject_nan_iter is not None and self.global_iter == cfg.inject_nan_iter:
                total = total * float("nan")
            stats = torch.stack([cls_loss.detach().double().cpu(), box_loss.detach().double().cpu(),
                                 (~torch.isfinite(total.detach())).double().cpu()])
            stats = all_reduce_sum(stats.to(info.device), info).cpu()
            if stats[2] > 0:
                raise NonFiniteLoss(f"non-finite loss at epoch {epoch}, iteration {i} (global "
                                    f"{self.global_iter}): cls={stats[0]:.4g} box={stats[1]:.4g}")
            self.optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over ranks; the loss is already normalized globally
            self.scaler.scale(total * info.world_size).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.global_iter += 1
            if cfg.check_sync:
                self.check_weights_in_sync()
            if cfg.exit_rank_at is not None and tuple(cfg.exit_rank_at) == (
                    info.rank, self.global_iter):
                log.warning("rank %d exits on purpose (--debug-exit-rank)", info.rank)
                os._exit(17)
            acc += stats[:2]
            seen += 1
            if cfg.log_interval > 0 and ((i + 1) % cfg.log_interval == 0 or i + 1 == n_batches):
                now = time.perf_counter()
                speed = seen * cfg.batch_size * info.world_size / max(now - tic, 1e-9)
                lr = self.optimizer.param_groups[0]["lr"]
                cls_m, box_m = (acc / seen).tolist()
                log.info("[Epoch %d][Batch %d/%d] lr=%.3e box_loss=%.4f cls_loss=%.4f "
                         "speed=%.1f img/s", epoch, i + 1, n_batches, lr, box_m, cls_m, speed)
                if self.writer:
                    self.writer.add_scalar("train/box_loss", box_m, self.global_iter)
                    self.writer.add_scalar("train/cls_loss", cls_m, self.global_iter)
                    self.writer.add_scalar("train/lr", lr, self.global_iter)
                    self.writer.add_scalar("train/speed", speed, self.global_iter)
                acc.zero_()
                seen, tic = 0, now
        log.info("[Epoch %d] done in %.1f s", epoch, time.perf_counter() - t0)


def weights_digest(net) -> str:
    """sha1 over the bytes of every parameter and buffer (state-dict order)."""
    h = hashlib.sha1()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _plain(obj):
    """Config values as weights_only-safe plain types."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def _tensorboard(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception as e:  # noqa: BLE001 - tensorboard is optional
        log.warning("TensorBoard logging disabled (%s)", e)
        return None
    return SummaryWriter(log_dir=str(log_dir))


def fit(net, train_set, val_set, cfg: TrainConfig, info: DistInfo) -> dict:
    """Train ``net`` (see module docstring); returns {'best_map', 'last_map', 'iterations'}."""
    return Trainer(net, train_set, val_set, cfg, info).fit()
