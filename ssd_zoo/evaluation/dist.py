"""Minimal torch.distributed plumbing for evaluation under ``torchrun``.

Only one collective is used (gathering the picklable metric states on rank 0), so the
process group always uses gloo, on CPU and CUDA runs alike.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import List

import torch
import torch.distributed as dist

from .errors import EvalError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise EvalError(f"environment variable {name}={value!r} is not an integer") from None


def init(timeout_s: float = 1800.0) -> Dist:
    """A process group when launched with WORLD_SIZE > 1 (torchrun), else single process."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise EvalError(f"invalid RANK={rank} for WORLD_SIZE={world}")
    if world > 1 and not dist.is_initialized():
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(var):
                raise EvalError(f"WORLD_SIZE={world} but {var} is not set; launch with "
                                "torchrun --nproc_per_node=N")
        dist.init_process_group("gloo", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s))
    return Dist(rank, world, local)


def gather_to_main(obj, info: Dist) -> List:
    """``[obj of rank 0, obj of rank 1, ...]`` on rank 0; ``[]`` on the other ranks."""
    if info.world == 1:
        return [obj]
    out = [None] * info.world if info.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out if info.is_main else []


def finish(info: Dist) -> None:
    if info.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def device_for(cuda: bool, info: Dist) -> torch.device:
    """cuda:LOCAL_RANK with ``cuda``, else the CPU; EvalError when CUDA is unavailable."""
    if not cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise EvalError("--cuda given but CUDA is not available (torch "
                        f"{torch.__version__}, {torch.cuda.device_count()} device(s))")
    if info.local_rank >= torch.cuda.device_count():
        raise EvalError(f"LOCAL_RANK {info.local_rank} but only "
                        f"{torch.cuda.device_count()} CUDA device(s)")
    torch.cuda.set_device(info.local_rank)
    return torch.device("cuda", info.local_rank)
