"""One spectral-normalised PatchGAN per generator output scale (the public code's MultiScaleGradientDiscriminator)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm


def patch_discriminator(channels: int = 16, layers: int = 4) -> nn.Sequential:
    """pix2pixHD NLayerDiscriminator: 4×4 convs, ``layers`` of stride 2, then two of stride 1; BN after the first."""
    seq: list[nn.Module] = [spectral_norm(nn.Conv2d(3, channels, 4, 2, 2)), nn.LeakyReLU(0.2, True)]
    width = channels
    for i in range(1, layers + 1):
        prev, width = width, min(width * 2, 512)
        stride = 2 if i < layers else 1
        seq += [spectral_norm(nn.Conv2d(prev, width, 4, stride, 2)), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True)]
    seq.append(spectral_norm(nn.Conv2d(width, 1, 4, 1, 2)))
    return nn.Sequential(*seq)


class MultiScaleGradientDiscriminator(nn.Module):
    """``forward(full, half, quarter) -> [logits]`` for the three generator heads (MSG-GAN style)."""

    def __init__(self, channels: int = 16, layers: int = 4) -> None:
        super().__init__()
        self.discriminator_256 = patch_discriminator(channels, layers)
        self.discriminator_128 = patch_discriminator(channels, layers)
        self.discriminator_64 = patch_discriminator(channels, layers)

    def forward(self, full: torch.Tensor, half: torch.Tensor, quarter: torch.Tensor) -> list[torch.Tensor]:
        return [self.discriminator_256(full), self.discriminator_128(half), self.discriminator_64(quarter)]
