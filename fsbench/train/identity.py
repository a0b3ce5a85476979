"""An identity loss that a generator cannot game cheaply: several recognisers, each seeing the swap through random
differentiable augmentation.

A loss on one recogniser's embedding of the exact output pixels can be lowered by patterns that move that one
network and nothing else: the loss falls while the swaps come no closer to the source. Here every recogniser sees
its own random view of the swap: a small shift, scale and rotation (``affine_grid``), a blur, a colour jitter and
sometimes a downsampling, before it re-aligns the crop to its own input size; the target is the embedding of the
un-augmented source. The benchmark's evaluation recognisers (dlib's ResNet, ArcFace MobileFaceNet) are refused: a
method trained on one would be scored by its own loss.

Randomness comes from torch's global generator, which the training loop seeds per step (resumable runs); the
operations are :mod:`fsbench.train.augment`'s.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from fsbench.api import identity_encoder
from fsbench.errors import UsageError
from fsbench.train import augment as ops
from fsbench.train.config import IdentityLossConfig

EVALUATION_ONLY = ("dlib", "arcface-mbf")  # recognisers that score the benchmark: never a training signal

# augmentation ranges (uniform, per sample): small enough that a recogniser's embedding of a real face barely moves
SHIFT = 0.04  # of the crop side, each axis
SCALE = 0.06  # relative, either way
ROTATE_DEG = 6.0
BLUR_SIGMA = 1.2  # px at the crop's size: sigma drawn in [0, BLUR_SIGMA]
BRIGHTNESS, CONTRAST, SATURATION = 0.1, 0.15, 0.2  # ± relative
DOWNSAMPLE_P, DOWNSAMPLE_MIN = 0.5, 0.5  # with probability P, down to a factor in [MIN, 1] and back up


def _spread(shape: tuple[int, ...], r: float) -> torch.Tensor:
    """Uniform draws in ±``r`` from torch's generator."""
    return (torch.rand(shape) * 2 - 1) * r


def _affine(x: torch.Tensor) -> torch.Tensor:
    b = x.shape[0]
    angle = _spread((b,), math.radians(ROTATE_DEG))
    scale = 1 + _spread((b,), SCALE)
    return ops.affine(x, angle, scale, _spread((b, 2), SHIFT))


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A Gaussian blur with a random sigma per sample (sigma 0 leaves the sample unchanged)."""
    sigma = (torch.rand(x.shape[0], 1, dtype=x.dtype) * BLUR_SIGMA).to(x.device).clamp_min(1e-3)
    return ops.gaussian_blur(x, sigma, math.ceil(2 * BLUR_SIGMA))


def _colour(x: torch.Tensor) -> torch.Tensor:
    b = x.shape[0]
    brightness, contrast, saturation = ((1 + _spread((b, 1, 1, 1), r)).to(x) for r in (BRIGHTNESS, CONTRAST,
                                                                                        SATURATION))
    return ops.colour(x, brightness, contrast, saturation)


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """With probability ``DOWNSAMPLE_P`` (one draw per batch: one size per resize), down and back up."""
    if torch.rand(()) >= DOWNSAMPLE_P:
        return x
    side = x.shape[-1]
    low = max(8, round(side * (DOWNSAMPLE_MIN + (1 - DOWNSAMPLE_MIN) * float(torch.rand(())))))
    return ops.upscale(ops.downscale(x, low), side)


def photometric(x: torch.Tensor) -> torch.Tensor:
    """:func:`augment` without its geometric part (for targets that move with geometry, such as head pose)."""
    return _downsample(_colour(_blur(x)))


def augment(x: torch.Tensor) -> torch.Tensor:
    """A random differentiable view of crops ``B×3×H×W`` in [0, 1]: same shape, gradients flow to ``x``."""
    return photometric(_affine(x))


class IdentityEnsemble:
    """Frozen differentiable recognisers (:func:`identity_encoder` names) used together as a loss.

    ``encoders`` may pass already-built encoders by name (to share one with the generator's input, or for a
    recogniser that is not a fsbench backend); each needs ``.embed(crops in [0, 1], template)``.
    """

    def __init__(self, names: Sequence[str], augment: bool = True, device: str | torch.device = "cpu",
                 encoders: Mapping[str, Any] | None = None) -> None:
        names = tuple(names)
        if not names:
            raise UsageError("the identity loss needs at least one recogniser")
        refused = [n for n in names if n in EVALUATION_ONLY]
        if refused:
            raise UsageError(f"identity loss recogniser(s) {', '.join(refused)} refused: "
                             f"{' and '.join(EVALUATION_ONLY)} are the benchmark's evaluation recognisers and never a "
                             "training signal (use sface, facenet)")
        encoders = dict(encoders or {})
        self.names, self.augment = names, augment
        self.encoders = [encoders[n] if n in encoders else identity_encoder(n, device) for n in names]
        for name, enc in zip(names, self.encoders):
            if not hasattr(enc, "embed"):
                raise UsageError(f"identity loss recogniser '{name}' is not differentiable (no .embed); "
                                 "training needs one (sface, facenet, or a torch ArcFace backend)")
            net = getattr(enc, "net", None)
            if isinstance(net, torch.nn.Module):
                net.eval().requires_grad_(False)

    def embed(self, crops: torch.Tensor, template: str) -> list[torch.Tensor]:
        """Each recogniser's L2-normalised embeddings of the un-augmented crops (in [0, 1])."""
        return [F.normalize(enc.embed(crops, template), dim=1) for enc in self.encoders]

    def cosines(self, crops: torch.Tensor, source: Sequence[torch.Tensor], template: str) -> torch.Tensor:
        """``B×K`` cosine of each recogniser's embedding of (its own augmented view of) ``crops`` to ``source``
        (:meth:`embed` of the sources), differentiable w.r.t. ``crops``."""
        cols = []
        for enc, target in zip(self.encoders, source):
            view = augment(crops) if self.augment else crops
            cols.append(F.cosine_similarity(F.normalize(enc.embed(view, template), dim=1), target, dim=1))
        return torch.stack(cols, 1)

    def loss(self, crops: torch.Tensor, source: Sequence[torch.Tensor], template: str) -> torch.Tensor:
        """Per sample: 1 − cos averaged over the recognisers (FaceShifter's identity loss, ensembled)."""
        return 1 - self.cosines(crops, source, template).mean(1)

    @classmethod
    def of(cls, cfg: IdentityLossConfig, encoder_name: str, encoder: Any, device: str | torch.device
           ) -> IdentityEnsemble:
        """A recipe's identity loss, sharing the generator's identity encoder (``encoder_name``) where it is one of
        the loss's recognisers."""
        return cls(cfg.resolved(encoder_name), cfg.augment, device, encoders={encoder_name: encoder})

    def describe(self) -> dict[str, Any]:
        """What a checkpoint and a method card record about the identity loss."""
        return {"recognisers": list(self.names), "augment": self.augment}
