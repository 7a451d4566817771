"""CLI-facing builders: catalog entry from (network, data shape), datasets, the network.

Kept apart from the engine so the engine never sees argparse namespaces.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Tuple

from ..registry import find_entry
from ..zoo import ModelEntry
from .augment import AugmentedDataset, SSDTrainTransform


class SetupError(ValueError):
    """Bad user input for the training CLI (one-line message)."""


def select_entry(network: str, data_shape: int, dataset: Optional[str] = None) -> ModelEntry:
    """The catalog entry for ``--network`` (a backbone) at ``--data-shape``: the one trained
    on ``dataset`` (voc/coco: Gluon-CV's exact anchors for that dataset) when it exists,
    else the ``_custom`` one (see ssd_zoo.registry.find_entry)."""
    try:
        return find_entry(network, data_shape, dataset)
    except ValueError as e:
        raise SetupError(str(e)) from None


def _custom_classes(root: Path) -> Tuple[str, ...]:
    f = root / "classes.txt"
    if f.is_file():
        names = [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]
    else:
        import xml.etree.ElementTree as ET
        names = sorted({(o.findtext("name") or "").strip()
                        for x in sorted((root / "Annotations").glob("*.xml"))
                        for o in ET.parse(x).getroot().iter("object")} - {""})
    if not names:
        raise SetupError(f"{root}: no classes (write classes.txt, one name per line)")
    return tuple(names)


def build_datasets(args):
    """(train dataset, val dataset or None, classes) from the CLI args."""
    name = args.dataset
    if name == "synthetic":
        from ..data.synthetic import SyntheticDetection
        train = SyntheticDetection(args.num_samples, seed=args.seed)
        val = SyntheticDetection(max(8, args.num_samples // 4), seed=args.seed + 10_000)
        return train, val, train.classes
    root = Path(os.path.expanduser(args.dataset_root))
    if name == "voc":
        from ..data import VOCDetection
        voc = root / "VOCdevkit" if (root / "VOCdevkit").is_dir() else root
        if not voc.is_dir():
            raise SetupError(f"VOC root {voc} does not exist (set --dataset-root)")
        train = VOCDetection(voc, splits=((2007, "trainval"), (2012, "trainval")))
        val = VOCDetection(voc, splits=((2007, "test"),))
        return train, val, tuple(train.classes)
    if name == "coco":
        from ..data import COCODetection
        coco = root / "coco" if (root / "coco").is_dir() else root
        if not coco.is_dir():
            raise SetupError(f"COCO root {coco} does not exist (set --dataset-root)")
        train = COCODetection(coco, split="train2017", skip_empty=True)
        val = COCODetection(coco, split="val2017")
        return train, val, tuple(train.classes)
    path = Path(os.path.expanduser(name))
    if not path.is_dir():
        raise SetupError(f"--dataset must be voc, coco, synthetic or an existing folder, "
                         f"got {name!r}")
    from ..data import VOCDetection
    classes = _custom_classes(path)
    sets = path / "ImageSets" / "Main"
    if not (sets / "train.txt").is_file():
        raise SetupError(f"{path}: custom dataset needs ImageSets/Main/train.txt (VOC layout)")
    train = VOCDetection(path, splits=((None, "train"),), classes=classes)
    val = VOCDetection(path, splits=((None, "val"),), classes=classes) \
        if (sets / "val.txt").is_file() else None
    return train, val, classes


def build_net(args, classes: Sequence[str]):
    """The SSD for --network/--data-shape with ``classes``; --transfer / --pretrained-base."""
    from ..registry import get_entry, get_model
    entry = select_entry(args.network, args.data_shape, args.dataset)
    if args.transfer:
        src_entry = get_entry(args.transfer)
        if src_entry.preset != entry.preset and (
                src_entry.preset.backbone, src_entry.preset.base_size) != (
                entry.preset.backbone, entry.preset.base_size):
            raise SetupError(f"--transfer {args.transfer} has backbone "
                             f"{src_entry.preset.backbone}@{src_entry.preset.base_size}, not "
                             f"{args.network}@{args.data_shape}")
        from ..models.transfer import transfer_classes
        src = get_model(args.transfer, pretrained=True)
        net = get_model(src_entry.name, classes=list(classes))
        mapping = transfer_classes(src, net)
        print(f"transfer: kept {len(mapping)}/{len(classes)} class(es) from {args.transfer}",
              flush=True)
    else:
        try:
            net = get_model(entry.name, classes=list(classes),
                            pretrained_base=args.pretrained_base)
        except ImportError as e:
            raise SetupError(f"--pretrained-base is not available ({e}); use "
                             "--no-pretrained-base") from e
    return net.train()


def augmented(dataset, net, seed: int, recipe: str = "ssd") -> AugmentedDataset:
    """``dataset`` with the training transform of ``net``'s preset (``recipe``: see
    ssd_zoo.train.augment.RECIPES)."""
    p = net.preset
    return AugmentedDataset(dataset, SSDTrainTransform(p.base_size, p.mean, p.std, recipe),
                            seed)
