"""FaceShifterNet, the layout of FaceShifter's exported weights (``aei.*``, ``hear.*``)."""
from __future__ import annotations

import torch
import torch.nn as nn

from methods.faceshifter.aei import AEINet
from methods.faceshifter.configs import Architecture
from methods.faceshifter.hear import HEARNet

TEMPLATE = "ffhq-256"


class FaceShifterNet(nn.Module):
    """AEI-Net and HEAR-Net in one module."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.aei, self.hear = AEINet(arch), HEARNet(arch)

    def forward(self, target: torch.Tensor, z_src: torch.Tensor, z_tgt: torch.Tensor) -> torch.Tensor:
        """Ŷ_s,t refined by HEAR-Net; ``target`` in [-1, 1]."""
        both = self.aei.generator(self.aei.encoder(target), torch.cat([z_src, z_tgt]))
        y_st, y_tt = both.chunk(2)
        return self.hear(y_st, target - y_tt)


def parameter_count(arch: Architecture) -> int:
    """AEI-Net + HEAR-Net parameters, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in FaceShifterNet(arch).parameters())
