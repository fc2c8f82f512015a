"""Optimisers, learning-rate schedules and the weight EMA that recipes name."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from fmtool.choices import Optimizer, Schedule
from fmtool.engine.recipe import Recipe


def make_optimizer(model: nn.Module, recipe: Recipe, fused: bool = False) -> torch.optim.Optimizer:
    """`adam` adds weight decay to the gradient (the report's Adam); `adamw` decouples it.

    `fused` updates every weight in one kernel (`fused_optimizer` says where that pays)."""
    optimizer = Optimizer.parse(recipe.optimizer, "optimizer")
    kind = torch.optim.Adam if optimizer == Optimizer.adam else torch.optim.AdamW
    return kind(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay,
                fused=fused or None)


def fused_optimizer(device: torch.device) -> bool:
    """Fused on CUDA, where the default update launches kernels per group of weights and a small
    model's step waits on those launches; on the CPU the default is kept (it is what was measured
    and what resumed runs continue with)."""
    return device.type == "cuda"


def make_schedule(optimizer: torch.optim.Optimizer, recipe: Recipe,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """StepLR steps once per epoch; onecycle and cosine (with linear warm-up) once per batch."""
    total = max(recipe.epochs * steps_per_epoch, 1)
    schedule = Schedule.parse(recipe.schedule, "schedule")
    if schedule == Schedule.step:
        return torch.optim.lr_scheduler.StepLR(optimizer, recipe.step_size, recipe.gamma)
    if schedule == Schedule.onecycle:
        # OneCycleLR divides by (warm-up batches - 1), and by the batches after the warm-up: a
        # warm-up of exactly one batch, or of all of them (1.0, refused by the recipe), would
        # divide by zero. One batch is nudged to a hair more, which changes no learning rate.
        # No warm-up (0) is taken as given: the cycle starts at its peak and comes down.
        pct = recipe.warmup
        while float(pct * total) - 1 == 0 and total > 1:
            pct = math.nextafter(pct, 1.0)
        while float(pct * total) - 1 == total - 1:  # a warm-up a hair below 1, many batches
            pct = math.nextafter(pct, 0.0)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.lr, total_steps=total, pct_start=pct)
    warm = int(recipe.warmup * total)  # cosine, with a linear warm-up

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min((step - warm) / max(total - warm, 1), 1.0)
        return 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def steps_per_batch(recipe: Recipe) -> bool:
    return recipe.schedule != Schedule.step


class WeightEMA:
    """An exponential moving average of a model's weights, updated after every optimiser step.

    The decay ramps up as (1 + t) / (10 + t) towards `decay`, so early averages do not remember
    the random initialisation. Buffers (BatchNorm statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_params = list(self.model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1 - decay)
        buffers = list(self.model.buffers())
        if buffers:  # one launch for all of them, not one per buffer
            torch._foreach_copy_(buffers, list(model.buffers()))

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]
