"""Process-group setup for torchrun, ``python -m torch.distributed.launch`` and plain runs.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; the legacy launcher
passes ``--local-rank N`` (or ``--local_rank``) and sets the rest.  Backend: nccl on CUDA,
gloo on CPU.  A finite collective timeout makes surviving ranks fail with an error instead of
hanging forever when a peer dies.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist


class DistributedSetupError(RuntimeError):
    """The launch environment is inconsistent or the process group cannot be created."""


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str) -> Optional[int]:
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise DistributedSetupError(f"environment variable {name}={v!r} is not an integer") from None


def init_distributed(use_cuda: bool = False, local_rank: Optional[int] = None,
                     timeout_s: float = 1800.0) -> DistInfo:
    """Create the process group when launched with WORLD_SIZE > 1, else a single process.

    Args:
        use_cuda: use cuda:{local_rank} and nccl (caller checked CUDA is available).
        local_rank: from ``--local-rank``; LOCAL_RANK in the environment wins when both set.
        timeout_s: collective timeout in seconds.
    """
    world = _env_int("WORLD_SIZE") or 1
    rank = _env_int("RANK") or 0
    env_local = _env_int("LOCAL_RANK")
    local = env_local if env_local is not None else (local_rank or 0)
    if world < 1 or not 0 <= rank < world:
        raise DistributedSetupError(f"invalid RANK={rank} for WORLD_SIZE={world}")
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise DistributedSetupError(f"LOCAL_RANK {local} but only "
                                        f"{torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1:
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(var):
                raise DistributedSetupError(f"WORLD_SIZE={world} but {var} is not set; launch "
                                            "with torchrun --nproc_per_node=N")
        backend = "nccl" if use_cuda else "gloo"
        try:
            dist.init_process_group(backend=backend, rank=rank, world_size=world,
                                    timeout=datetime.timedelta(seconds=timeout_s),
                                    **({"device_id": device} if use_cuda else {}))
        except Exception as e:  # noqa: BLE001 - report one line
            raise DistributedSetupError(f"cannot initialize the {backend} process group: "
                                        f"{e}") from e
    return DistInfo(rank, world, local, device)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """In-place sum over ranks (no-op in one process); returns ``t``."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_objects(obj, info: DistInfo) -> list:
    """[obj of rank 0, obj of rank 1, ...]."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
