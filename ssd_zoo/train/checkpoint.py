"""Training checkpoints: atomic ``last.pth`` (loadable with ``weights_only=True``) and
weights-only ``.safetensors``.  RNG states are stored as tensors / plain Python types."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from ..atomic import atomic_write as _atomic

CHECKPOINT_VERSION = 1


def rng_state() -> Dict:
    """torch (CPU + CUDA), numpy and Python RNG states as weights_only-safe values."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out = {"torch": torch.get_rng_state(),
           "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                     "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
           "python": {"version": int(py_state[0]), "state": torch.tensor(py_state[1], dtype=torch.int64)}}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: Dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, state: Dict) -> None:
    """torch.save ``state`` to ``path`` atomically (temp file in the same dir + rename)."""
    state = dict(state, version=CHECKPOINT_VERSION)
    _atomic(Path(path), lambda tmp: torch.save(state, tmp))


def load_checkpoint(path, map_location="cpu") -> Dict:
    """Load a checkpoint written by ``save_checkpoint`` (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - one-line report
        raise ValueError(f"{path}: not a readable training checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from e
    missing = {"model", "optimizer", "scheduler", "epoch"} - set(ckpt)
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (missing {sorted(missing)})")
    return ckpt


def save_weights_safetensors(path, model_state: Dict[str, torch.Tensor], metadata=None) -> None:
    """Weights-only safetensors, written atomically, with a canonical (sorted) header: the
    same weights and metadata give the same bytes."""
    from ..formats.safetensors_canonical import save_bytes
    tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    data = save_bytes(tensors, meta)
    _atomic(Path(path), lambda tmp: Path(tmp).write_bytes(data))
