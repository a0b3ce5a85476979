"""MobileFaceNet (ArcFace, 512-d, ``fsbench.nets.mobilefacenet``) fed as the public code feeds it: an
FFHQ-aligned crop cut to rows/columns 26:230 of 256, resized to 112, RGB in [-1, 1]."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from fsbench.api import load_mobilefacenet as load_mobilefacenet_net


class MobileFaceNetEncoder:
    """``embed(crops in [0, 1], template)`` for ffhq-256-aligned crops of any size, with gradients."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.net = net

    def embed(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        if template != "ffhq-256":
            raise ValueError(f"MobileFaceNet embeds ffhq-256 crops (the public code's cut), got '{template}'")
        s = crops.shape[-1]
        a, b = round(26 * s / 256), round(230 * s / 256)
        x = F.interpolate(crops[:, :, a:b, a:b], size=(112, 112), mode="bilinear", align_corners=True)
        return self.net(x * 2 - 1)


def load_mobilefacenet(path: str | Path, device: str | torch.device = "cpu") -> MobileFaceNetEncoder:
    """The user's ``RGB_model_mobilefacenet.pth`` (weights_only load, strict keys), frozen."""
    return MobileFaceNetEncoder(load_mobilefacenet_net(path).to(device))
