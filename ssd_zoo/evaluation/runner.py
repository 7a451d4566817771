"""``run(EvalConfig)``: resolve inputs, infer (sharded under torchrun), score, report."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from . import dist, report
from .datasets import open_dataset, parse_classes, resolve_dataset, same_classes
from .errors import CheckFailed, EvalError
from .loader import ValSamples, make_loader, shard_batches
from .scoring import METRICS, format_per_class, make_scorer


@dataclass
class EvalConfig:
    """Options of ``eval/eval_ssd.py`` (see its --help)."""
    network: str = "vgg16_atrous"
    data_shape: Optional[int] = None
    batch_size: int = 16
    dataset: str = "voc"
    data_root: Optional[str] = None
    split: Optional[str] = None
    root: Optional[str] = None
    cuda: bool = False
    num_workers: int = 4
    weights: Optional[str] = None
    pretrained: Optional[bool] = None       # None: pretrained unless weights are given
    classes: Optional[Sequence[str]] = None
    check: bool = False
    tolerance: float = 0.1
    output: Optional[str] = None
    output_dir: str = "results/eval"
    save_detections: Optional[str] = None   # COCO metric: official results json
    metric: Optional[str] = None
    precision: str = "fp32"
    fast: bool = False                      # ssd_zoo.fast.optimize_for_inference
    progress: bool = True
    command: Optional[str] = None


def resolve_network(network: str, data_shape: Optional[int], suffix: str):
    """A registered name, or Gluon-CV's ``--network <backbone> --data-shape N`` form,
    looked up in the catalog by preset (``suffix``: the dataset, voc|coco|custom)."""
    from ..registry import find_entry, get_entry
    from ..zoo import CATALOG
    if network in CATALOG:
        return CATALOG[network]
    try:
        return find_entry(network, data_shape, None if suffix == "custom" else suffix)
    except ValueError as e:
        try:  # an unknown full name: suggest close matches
            get_entry(network)
        except ValueError as e2:
            raise EvalError(f"{e2}; or: {e}") from None
        raise EvalError(str(e)) from None


def _validate(cfg: EvalConfig) -> None:
    if cfg.batch_size < 1:
        raise EvalError(f"--batch-size must be >= 1, got {cfg.batch_size}")
    if cfg.num_workers < 0:
        raise EvalError(f"--num-workers must be >= 0, got {cfg.num_workers}")
    if cfg.tolerance < 0:
        raise EvalError(f"--tolerance must be >= 0, got {cfg.tolerance}")
    if cfg.data_shape is not None and cfg.data_shape < 32:
        raise EvalError(f"--data-shape must be >= 32, got {cfg.data_shape}")
    if cfg.metric is not None and cfg.metric not in METRICS:
        raise EvalError(f"--metric must be one of {', '.join(METRICS)}, got {cfg.metric!r}")
    if cfg.precision not in ("fp32", "bf16"):
        raise EvalError(f"--precision must be fp32 or bf16, got {cfg.precision!r}")
    if cfg.pretrained and cfg.weights:
        raise EvalError("pass either --pretrained or --weights, not both")


def _plan(cfg: EvalConfig):
    """Everything that can be checked before loading data or weights (fails fast)."""
    _validate(cfg)
    if cfg.cuda and not torch.cuda.is_available():
        raise EvalError(f"--cuda given but CUDA is not available (torch {torch.__version__})")
    spec = resolve_dataset(cfg.dataset, cfg.data_root, cfg.split)
    entry = resolve_network(cfg.network, cfg.data_shape, spec.model_suffix)
    upstream = getattr(entry, "upstream", "gluoncv")
    if upstream != "gluoncv" or getattr(entry, "kind", "ssd") != "ssd":
        raise EvalError(f"{entry.name} comes from {upstream}, whose preprocessing differs "
                        "from Gluon-CV's validation transform; eval_ssd.py only evaluates "
                        "Gluon-CV models for now")
    metric = cfg.metric or ("coco" if spec.fmt == "coco" else "voc07")
    if metric == "coco" and spec.fmt != "coco":
        raise EvalError("--metric coco needs a COCO-format dataset (coco or a .json)")
    if cfg.save_detections and metric != "coco":
        raise EvalError("--save-detections writes COCO results: it needs --metric coco")
    pretrained = cfg.pretrained if cfg.pretrained is not None else not cfg.weights
    if pretrained and not entry.has_weights and entry.custom_init_from is None:
        raise EvalError(f"{entry.name} has no published weights; pass --weights FILE")
    if cfg.weights and "://" not in str(cfg.weights):
        path = Path(str(cfg.weights)).expanduser()
        if not path.is_file():
            raise EvalError(f"weights file not found: {path}")
    if cfg.check and report.reference_key(spec, metric) is None:
        raise EvalError(f"--check needs a Gluon-CV number: only voc (metric voc07) and coco "
                        f"(metric coco) have one, not {spec.name} / {metric}")
    if cfg.check and report.published(entry, report.reference_key(spec, metric)[0],
                                      "gluoncv") is None:
        raise EvalError(f"--check: the catalog has no Gluon-CV number for {entry.name}")
    return spec, entry, metric, pretrained


def _classes_for(entry, spec, cfg_classes, dataset_classes=None):
    """Class names of the network (and of a VOC-layout reader)."""
    if entry.classes is not None:
        if cfg_classes is not None and not same_classes(cfg_classes, entry.classes):
            raise EvalError(f"--classes differ from {entry.name}'s {len(entry.classes)} "
                            f"classes; use a *_custom model to evaluate other classes")
        return tuple(entry.classes)
    if cfg_classes is not None:
        return tuple(cfg_classes)
    if dataset_classes is not None:
        return tuple(dataset_classes)
    raise EvalError(f"{entry.name} is a custom model: pass --classes")


def _load_model(entry, cfg: EvalConfig, pretrained: bool, classes):
    from ..registry import get_model
    try:
        return get_model(entry.name, pretrained=pretrained, weights=cfg.weights,
                         root=cfg.root, precision=cfg.precision,
                         classes=None if entry.classes is not None else list(classes))
    except Exception as e:  # noqa: BLE001 - any failure here is about the user's weights
        what = f"cannot load weights {cfg.weights}" if cfg.weights else \
            f"cannot build {entry.name}"
        raise EvalError(f"{what}: {type(e).__name__}: {e}") from None


@torch.no_grad()
def _infer(net, loader, scorer, device, size_hw, precision, progress):
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" \
        else contextlib.nullcontext()
    with progress:
        for images, gt, indices in loader:
            x = images.to(device, non_blocking=True)
            with autocast:
                ids, scores, bboxes = net(x)
            # Gluon-CV: bboxes.clip(0, batch[0].shape[2])
            bboxes = bboxes.float().clamp(0, x.shape[2])
            scorer.update(ids.float().cpu().numpy(), scores.float().cpu().numpy(),
                          bboxes.cpu().numpy(), gt.numpy(), indices, size_hw)
            progress.update(len(indices))


def run(cfg: EvalConfig) -> dict:
    """Evaluate; returns the results record (rank 0) or ``{}`` (other ranks).

    Raises EvalError on bad input and CheckFailed when ``cfg.check`` fails.
    """
    from tqdm import tqdm
    start = time.time()
    spec, entry, metric_kind, pretrained = _plan(cfg)
    info = dist.init()
    try:
        device = dist.device_for(cfg.cuda, info)
        cls_arg = parse_classes(cfg.classes)
        # the VOC benchmark is read with its own 20 classes; a VOC-layout folder with the
        # network's (or --classes)
        voc_classes = _classes_for(entry, spec, cls_arg) \
            if spec.fmt == "voc" and not spec.standard else None
        dataset = open_dataset(spec, voc_classes)
        classes = _classes_for(entry, spec, cls_arg, dataset.classes)
        if not same_classes(classes, dataset.classes):
            raise EvalError(f"{entry.name} predicts {len(classes)} classes "
                            f"({', '.join(classes[:4])}, ...) but {spec.name} has "
                            f"{len(dataset.classes)} ({', '.join(dataset.classes[:4])}, ...)")
        if len(dataset) == 0:
            raise EvalError(f"{spec.name}: the dataset has no images")
        net = _load_model(entry, cfg, pretrained, classes).to(device).eval()
        if cfg.fast:
            from ..fast import optimize_for_inference
            net = optimize_for_inference(net, cfg.precision)
        size = int(cfg.data_shape or net.preset.base_size)
        samples = ValSamples(dataset, size, size, net.preset.mean, net.preset.std)
        batches = shard_batches(len(dataset), cfg.batch_size, info.rank, info.world)
        loader = make_loader(samples, batches, cfg.num_workers, device.type == "cuda")
        scorer = make_scorer(metric_kind, dataset, classes)
        bar = tqdm(total=sum(len(b) for b in batches), unit="img", dynamic_ncols=True,
                   desc=f"eval{' rank 0/' + str(info.world) if info.world > 1 else ''}",
                   disable=not (cfg.progress and info.is_main))
        _infer(net, loader, scorer, device, (size, size), cfg.precision, bar)
        states = dist.gather_to_main(scorer.state(), info)
    finally:
        dist.finish(info)
    if not info.is_main:
        return {}
    summary = scorer.summarize(states)
    comp = report.comparison(entry, spec, metric_kind, summary["metrics"])
    record = {
        "network": entry.name, "dataset": spec.name, "dataset_path": str(spec.root.resolve()),
        "split": spec.split, "num_images": len(dataset), "data_shape": size,
        "metric": metric_kind, "metrics": summary["metrics"],
        "per_class_ap": summary["per_class_ap"], "comparison": comp,
        **{k: v for k, v in summary.items() if k not in ("metrics", "per_class_ap")},
        "weights": report.weights_record(entry, cfg.weights, pretrained),
        "precision": cfg.precision, "fast": cfg.fast, "device": str(device), "world_size": info.world,
        "batch_size": cfg.batch_size, "threads": torch.get_num_threads(),
        "command": cfg.command or report.default_command(),
        "versions": report.versions(), "date": report.now_iso(),
        "seconds": round(time.time() - start, 3),
    }
    out = Path(cfg.output) if cfg.output else \
        Path(cfg.output_dir) / f"{entry.name}_{spec.name}.json"
    if cfg.save_detections:
        scorer.save_detections(cfg.save_detections)
        record["detections"] = str(Path(cfg.save_detections).resolve())
    report.write_json(out, record)
    record["output"] = str(out)
    print(f"per-class AP ({metric_kind}):\n{format_per_class(summary['per_class_ap'])}")
    print(report.format_table(entry.name, spec.name, comp))
    print(f"results written to {out}")
    if cfg.check:
        delta = comp["delta_gluoncv"]
        if delta is None:
            raise CheckFailed(f"check failed: no {comp['metric']} could be computed")
        if abs(delta) > cfg.tolerance:
            raise CheckFailed(f"check failed: {comp['metric']} {comp['ours']:.2f} vs Gluon-CV "
                              f"{comp['gluoncv']:.2f} (|Δ| {abs(delta):.2f} > tolerance "
                              f"{cfg.tolerance:g})")
        print(f"check passed: |Δ| {abs(delta):.2f} <= {cfg.tolerance:g}")
    return record
