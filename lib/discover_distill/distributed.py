"""One script for one process or many: torchrun's environment, rank-0 helpers, shard assignment.

Under `torchrun --nproc_per_node=K` the variables RANK / WORLD_SIZE / LOCAL_RANK are set; the
same script then joins a process group (NCCL on GPUs, gloo on CPU). Without them it is a plain
single process and nothing here touches torch.distributed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_dist_info() -> DistInfo:
    """Rank/world from torchrun's environment (single process when unset)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group when launched by torchrun; returns this process's DistInfo."""
    info = env_dist_info()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= info.world_size
    return value


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if it is True on any rank (so all ranks pause at the same step)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shard_items(items: list, index: int, count: int) -> list:
    """The items of shard `index` out of `count` (round-robin, so shards stay balanced)."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index}/{count} is not valid (need 0 <= i < n)")
    return items[index::count]
