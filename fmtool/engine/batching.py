"""Seeded orders and batched inference: the two ways fmtool walks through a tensor of data.

Every random order (an epoch's batches, a subset, a held-out split) is a permutation drawn from
its own CPU generator seeded from the recipe, never from the global RNG. So the order depends on
(seed, epoch) alone, is the same on every device, and a resumed run replays it exactly.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

EPOCH_STRIDE = 100_003  # a prime: (seed, epoch) pairs never share a generator seed in practice


def seeded_permutation(count: int, seed: int) -> torch.Tensor:
    """A permutation of range(count) that depends on `seed` only.

    Generators take 64-bit seeds; derived seeds (seed * EPOCH_STRIDE + epoch, seed + 1) wrap
    around modulo 2**64, so every recipe seed (0..2**63 - 1) works and small ones are unchanged."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed % 2**64))


def epoch_batches(count: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The index batches of one epoch: a seeded shuffle of range(count), cut into batches."""
    return list(seeded_permutation(count, seed * EPOCH_STRIDE + epoch).split(batch_size))


def seeded_subset(count: int, limit: int | None, seed: int) -> torch.Tensor:
    """`limit` indices of range(count) drawn at random (all of them, in order, without a limit)."""
    if limit is None or limit >= count:
        return torch.arange(count)
    return seeded_permutation(count, seed)[:limit]


def chunks(items: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(items), batch_size):
        yield items[start:start + batch_size]


@torch.inference_mode()
def map_batches(function: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                batch_size: int, device: torch.device,
                on_batch: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """`function` applied to `inputs` in batches moved to `device`, under inference mode.

    Returns each batch's output as a float CPU tensor (the caller concatenates or splits them);
    `on_batch(n)` is called after each batch of n inputs, for a progress bar.
    """
    outputs = []
    for chunk in chunks(inputs, batch_size):
        outputs.append(function(chunk.to(device, non_blocking=True)).float().cpu())
        if on_batch is not None:
            on_batch(len(chunk))
    return outputs
