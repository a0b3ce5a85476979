"""MobileFSGAN losses as in the paper and its public code.

Images here are in [-1, 1] (the generator's tanh range). Identity: hinge on (1 − cos) with margin 0.02, averaged
over the samples that still violate it. Pixel: half the squared error against the triplet's ground truth, only
for samples that have one. Attribute (perceptual): weighted L1 between feature maps of the output and the target,
on VGG19 when the user supplied it, else on the embedded ImageNet MobileNetV2 (labelled so in logs and the card).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fsbench.api import UsageError
from fsbench.nets import imagenet

ID_MARGIN = 0.02
# the public code's VGG-loss weights for relu1_1 … relu5_1; the MobileNetV2 substitute uses the same five weights
# for five feature maps at strides 2, 4, 8, 16, 32
PERCEPTUAL_WEIGHTS = (0.0, 0.6, 0.8, 1.0, 1.2)


def identity_loss(cosine: torch.Tensor, margin: float = ID_MARGIN) -> torch.Tensor:
    """relu(1 − cos − margin), summed and divided by the number of samples above the margin (as the public code).
    ``cosine``: B (one recogniser) or B×K (an ensemble: the mean over the (sample, recogniser) terms above it)."""
    loss = F.relu(1 - cosine - margin)
    active = (loss.detach() > 0).sum().clamp(min=1)
    return loss.sum() / active


def pixel_loss(predicted: torch.Tensor, truth: torch.Tensor, has_truth: torch.Tensor) -> torch.Tensor:
    """0.5·MSE over the samples with a ground truth (zero when none has one)."""
    weights = has_truth.to(predicted.dtype).view(-1, 1, 1, 1).expand_as(predicted)
    return 0.5 * ((predicted - truth) ** 2 * weights).sum() / weights.sum().clamp(min=1)


class PerceptualLoss(nn.Module):
    """Weighted L1 between feature maps of a frozen ImageNet network (inputs in [-1, 1], RGB)."""

    def __init__(self, slices: list[nn.Module], label: str) -> None:
        super().__init__()
        self.slices = nn.ModuleList(slices)
        self.label = label
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "PerceptualLoss":  # frozen: BN statistics never update
        return super().train(False)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = imagenet.normalise((x + 1) / 2)
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            reference = self._features(target)
        return sum(w * F.l1_loss(p, r) for w, p, r in zip(PERCEPTUAL_WEIGHTS, self._features(predicted), reference)
                   if w)


# MobileNetV2 ``features`` indices closing each stride: 2 (1), 4 (3), 8 (6), 16 (13), 32 (17)
_MOBILENET_CUTS = (2, 4, 7, 14, 18)
# VGG19 ``features`` indices of relu1_1 … relu5_1 + 1 (the public code's slices)
_VGG_CUTS = (2, 7, 12, 21, 30)


def _slices(features: nn.Sequential, cuts: tuple[int, ...]) -> list[nn.Module]:
    children = list(features.children())
    return [nn.Sequential(*children[a:b]) for a, b in zip((0,) + cuts[:-1], cuts)]


def perceptual_loss(backbone: str, device: str | torch.device = "cpu", vgg19_file: str = "") -> PerceptualLoss:
    """``mobilenet_v2`` (embedded) or ``vgg19`` (the user's torchvision ``vgg19-dcbb9e9d.pth``)."""
    from fsbench.train import perceptual_network

    if backbone == "mobilenet_v2":
        return PerceptualLoss(_slices(perceptual_network(device).features, _MOBILENET_CUTS),
                              "perceptual-MobileNetV2").to(device)
    if backbone == "vgg19":
        from fsbench.train import load_vgg19_features

        return PerceptualLoss(_slices(load_vgg19_features(vgg19_file), _VGG_CUTS), "perceptual-VGG19").to(device)
    raise UsageError(f"unknown perceptual backbone '{backbone}' (mobilenet_v2, vgg19)")
