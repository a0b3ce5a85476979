"""An exponential moving average of a generator's weights: what a run monitors and exports, not the live weights.

A GAN generator's live weights wander with its discriminator from step to step; their average over the last
~1/(1 − decay) steps makes samples of steadier quality (Karras et al. 2018 and StyleGAN's G_ema; neither face-
swapping paper uses one). Parameters are averaged in fp32; buffers (batch-norm statistics) follow the live network.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

import torch

from fsbench.errors import UsageError
from fsbench.train.checkpoint import unwrap


class WeightAverage:
    """``average`` ← decay · ``average`` + (1 − decay) · live, after every training step
    (:class:`fsbench.train.loop.Trainer`)."""

    def __init__(self, live: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise UsageError(f"weight-average decay must lie in (0, 1), got {decay}")
        self.live, self.decay = unwrap(live), decay
        self.average = copy.deepcopy(self.live).eval().requires_grad_(False)

    @torch.no_grad()
    def reset(self) -> None:
        """The average := the live weights (a run starting, or resuming a state saved before averaging began)."""
        self.average.load_state_dict(self.live.state_dict())

    @torch.no_grad()
    def update(self) -> None:
        for a, p in zip(self.average.parameters(), self.live.parameters()):
            a.lerp_(p, 1 - self.decay)
        for a, b in zip(self.average.buffers(), self.live.buffers()):
            a.copy_(b)


def exported(live: torch.nn.Module, average: WeightAverage | None) -> torch.nn.Module:
    """The network a run exports and its monitor scores: the weight average where there is one, else the live
    network (outside its DDP wrapper)."""
    return average.average if average else unwrap(live)


@contextmanager
def evaluated(live: torch.nn.Module, average: WeightAverage | None) -> Iterator[torch.nn.Module]:
    """:func:`exported` in eval mode and without gradients for the block (its mode restored after): how a run swaps
    for its monitor and sample grids, on one rank, not through DDP (whose forward synchronises the ranks)."""
    net = exported(live, average)
    training = net.training
    net.eval()
    try:
        with torch.no_grad():
            yield net
    finally:
        net.train(training)
