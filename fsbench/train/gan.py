"""Hinge adversarial losses (both papers use them)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_d_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Discriminator hinge loss summed over scales: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits))


def hinge_g_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Generator hinge loss summed over scales: -E[D(G(z))]."""
    return sum(-f.mean() for f in fake_logits)
