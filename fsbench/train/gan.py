"""GAN losses: hinge adversarial losses (both papers use them) and a frozen ImageNet network for perceptual ones."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_d_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Discriminator hinge loss summed over scales: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits))


def hinge_g_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Generator hinge loss summed over scales: -E[D(G(z))]."""
    return sum(-f.mean() for f in fake_logits)


def perceptual_network(device: str | torch.device = "cpu") -> torch.nn.Module:
    """ImageNet MobileNetV2 (the embedded torchvision file), frozen, for perceptual/attribute losses; its
    ``features`` children give the intermediate maps. Label losses built on it as MobileNetV2, not VGG."""
    from fsbench import assets
    from fsbench.nets.mobilenet_v2 import load_mobilenet_v2

    net = load_mobilenet_v2(assets.path("mobilenet-v2-imagenet")).to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
