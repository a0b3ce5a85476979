"""The pluggable identity network: SFace (embedded, 128-d) or the user's MobileFaceNet file (512-d, the paper's;
``fsbench assets add mobilefacenet /path/RGB_model_mobilefacenet.pth``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fsbench.api import UsageError, asset_path, identity_encoder

TEMPLATE = "ffhq-256"
DIMS = {"sface": 128, "mobilefacenet": 512}


class IdentityNet:
    """Frozen recogniser; ``embed(images in [0, 1], ffhq-256-aligned, any size)`` → L2-normalised rows with
    gradients to the images."""

    def __init__(self, name: str, device: str | torch.device = "cpu") -> None:
        if name not in DIMS:
            raise UsageError(f"unknown identity network '{name}' (known: {', '.join(DIMS)})")
        self.name, self.dim = name, DIMS[name]
        if name == "sface":
            self._encoder = identity_encoder("sface", device=device)
        else:
            from methods.mobilefsgan.mobilefacenet import load_mobilefacenet

            self._encoder = load_mobilefacenet(asset_path("mobilefacenet"), device)

    @property
    def encoder(self) -> object:
        """The recogniser itself (``.embed(crops, template)``), to share with the identity loss."""
        return self._encoder

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self._encoder.embed(images, TEMPLATE), dim=1)
