"""HEAR-Net (FaceShifter Fig. 12): a U-Net on concat(Ŷ_s,t, ΔY_t) with 5 down- and 5 up-samplings.

ΔY_t = X_t − AEI(X_t, X_t) is the heuristic error: what AEI-Net fails to reconstruct of the target (occlusions).
Images are in [-1, 1]; ΔY_t in [-2, 2].
"""
from __future__ import annotations

import torch
import torch.nn as nn

from methods.faceshifter.aei import unet_layers, unet_levels
from methods.faceshifter.configs import Architecture

HEAR_PLAN = (64, 128, 256, 512, 512)


class HEARNet(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        enc = [arch.channels(c) for c in HEAR_PLAN]
        self.down, self.up = unet_layers(6, enc)
        self.out = nn.ConvTranspose2d(2 * enc[0], 3, 4, 2, 1)  # the fifth up-sampling, to RGB

    def forward(self, swapped: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        finest = unet_levels(self.down, self.up, torch.cat([swapped, error], dim=1))[-1]
        return torch.tanh(self.out(finest))
