"""ImageNet input normalisation and the binned-angle decoding that the head-pose networks share.

Hopenet, its ShuffleNetV2 variant and WHENet all take ImageNet-normalised 224×224 RGB and give each angle as a
classification over 3° bins, read out as the softmax expectation; MobileNetV2 takes the same normalisation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BIN_WIDTH = 3.0  # degrees per bin of every head-pose network here


def normalise(x: torch.Tensor) -> torch.Tensor:
    """``B×3×H×W`` RGB in [0, 1] -> ImageNet mean/std normalised."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def cut_and_resize(crops: torch.Tensor, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """The ``box`` region (left, top, right, bottom; right/bottom exclusive) of ``B×3×H×W`` crops, resized to
    ``size``² (bilinear, the aspect ratio not kept) and ImageNet-normalised. The crops are made contiguous first:
    resizing a channels-last batch takes 1.6× the time, for the same values."""
    left, top, right, bottom = box
    x = F.interpolate(crops.contiguous()[..., top:bottom, left:right], size=(size, size), mode="bilinear", align_corners=False)
    return normalise(x)


def expected_angle(logits: torch.Tensor, offset: float) -> torch.Tensor:
    """Expected angle of the softmax over the last dimension's bins: ``Σ softmax · idx · 3 − offset``."""
    idx = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return (F.softmax(logits, dim=-1) * idx).sum(-1) * BIN_WIDTH - offset
