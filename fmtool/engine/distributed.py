"""Data-parallel training under `torchrun`: process group set-up, sharding, and reductions.

`torchrun --nproc-per-node N -m fmtool train cnn ...` starts N copies of the command with RANK,
LOCAL_RANK and WORLD_SIZE set. Each copy trains on its own shard of every global batch (the
epoch's order is the same on every rank, so the union of the shards is exactly the batch a
single process would see), DistributedDataParallel averages the gradients, and only rank 0
prints, writes metrics and saves checkpoints. `--batch-size` is per process: the global batch is
batch_size x world_size (see docs/commands.md, "Many GPUs or machines", on scaling the learning rate).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env() -> None:
    """Joins the torchrun process group when launched by torchrun; without torchrun, nothing.

    gloo carries CPU tensors and NCCL CUDA ones, so the device can be chosen afterwards.
    """
    if world_size_from_env() <= 1 or is_distributed():
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)


def local_device(device: torch.device) -> torch.device:
    """Under torchrun each process drives the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and is_distributed():
        local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(local)
        return local
    return device


def agree(value: Any) -> Any:
    """Rank 0's value on every rank (for example a run name made from the clock)."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard_batches(batches: list[torch.Tensor], per_rank: int) -> list[torch.Tensor]:
    """This rank's part of each global batch of `per_rank * world` indices.

    Every rank gets a non-empty part of every batch it steps on (a rank with nothing to do would
    leave the others waiting in the gradient all-reduce), so a final global batch smaller than
    the world is dropped.
    """
    if not is_distributed():
        return batches
    world, me = world_size(), rank()
    merged = torch.cat(batches) if batches else torch.empty(0, dtype=torch.long)
    global_batches = merged.split(per_rank * world)
    return [b.tensor_split(world)[me] for b in global_batches if len(b) >= world]


def all_reduce_sums(sums: dict[str, float], device: torch.device) -> dict[str, float]:
    """Adds each value across ranks (metric sums such as loss*count, correct, count)."""
    if not is_distributed() or not sums:
        return sums
    keys = sorted(sums)
    reduce_device = device if device.type == "cuda" else torch.device("cpu")
    values = torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64, device=reduce_device)
    dist.all_reduce(values)
    return dict(zip(keys, values.tolist()))


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def barrier() -> None:
    """Waits until every rank gets here (nothing without torchrun)."""
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()
