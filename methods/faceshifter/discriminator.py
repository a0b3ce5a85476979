"""Multi-scale PatchGAN discriminator (pix2pixHD-style), trained with the hinge loss as in FaceShifter."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from methods.faceshifter.configs import Architecture

SCALES = 3  # the image and its 2× and 4× average-pooled versions


def _patch_d(arch: Architecture) -> nn.Sequential:
    nf = arch.channels(64)
    layers: list[nn.Module] = [nn.Conv2d(3, nf, 4, 2, 1), nn.LeakyReLU(0.2)]
    for _ in range(1, arch.d_layers):
        layers += [nn.Conv2d(nf, 2 * nf, 4, 2, 1), nn.BatchNorm2d(2 * nf), nn.LeakyReLU(0.2)]
        nf *= 2
    layers += [nn.Conv2d(nf, nf, 4, 1, 1), nn.BatchNorm2d(nf), nn.LeakyReLU(0.2), nn.Conv2d(nf, 1, 4, 1, 1)]
    return nn.Sequential(*layers)


class MultiScaleDiscriminator(nn.Module):
    """``SCALES`` PatchGANs on the image and its 2× and 4× average-pooled versions; returns one logit map each."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.scales = nn.ModuleList(_patch_d(arch) for _ in range(SCALES))

    def forward(self, *batches: torch.Tensor) -> tuple[list[torch.Tensor], ...]:
        """One list of logit maps per batch. Batches go through separately (BatchNorm statistics of real and fake
        images are not mixed) but in one call, so that DDP sees a single forward per backward."""
        return tuple(self._scales(x) for x in batches)

    def _scales(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for k, d in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            out.append(d(x))
        return out
