"""An exponential moving average of a generator's weights: what a run monitors and exports, not the live weights.

A GAN generator's live weights wander with its discriminator from step to step; their average over the last
~1/(1 − decay) steps makes samples of steadier quality (Karras et al. 2018 and StyleGAN's G_ema; neither face-
swapping paper uses one). Parameters are averaged in fp32; buffers (batch-norm statistics) follow the live network.
"""
from __future__ import annotations

import copy

import torch

from fsbench.train.checkpoint import unwrap


class WeightAverage:
    """``average`` ← decay · ``average`` + (1 − decay) · live, after every training step (``fsbench.api.Trainer``)."""

    def __init__(self, live: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"weight-average decay must lie in (0, 1), got {decay}")
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
