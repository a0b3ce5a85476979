"""Synthetic occlusions for HEAR-Net training (no occlusion labels are used or produced).

Occluders: the four surgical-mask photos of the insightface wheel (cut out of their white background) and random
solid shapes (ellipses and polygons). Each is pasted with a random rotation, scale, position and colour, whose
mean is then pulled towards the target's colour (colour matching), so the occluder is not trivially separable
(:func:`fsbench.train.augment.paste`).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import torch

from fsbench.api import asset_path
from fsbench.train.augment import OCCLUDER_SIDE, flat_shape, occlude_batch as paste_occluders

MASK_ASSETS = tuple(f"media/insightface/mask_{c}.jpg" for c in ("black", "blue", "green", "white"))
_WHITE = 230  # pixels brighter than this in every channel are the photo's background


@functools.cache
def mask_occluders() -> tuple[np.ndarray, ...]:
    """RGBA float32 cut-outs (alpha 0 on the white background), tightly cropped."""
    out = []
    for name in MASK_ASSETS:
        rgb = cv2.cvtColor(cv2.imread(str(asset_path(name))), cv2.COLOR_BGR2RGB)
        alpha = (~np.all(rgb > _WHITE, axis=2)).astype(np.uint8)
        alpha = cv2.morphologyEx(alpha, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
        ys, xs = np.nonzero(alpha)
        box = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
        soft = cv2.GaussianBlur(alpha[box].astype(np.float32), (5, 5), 0)
        out.append(np.dstack([rgb[box].astype(np.float32) / 255.0, soft]))
    return tuple(out)


def occluder(rng: np.random.Generator, images: torch.Tensor, i: int) -> np.ndarray:
    """A mask photo or a random solid shape (RGBA), half and half."""
    if rng.random() < 0.5:
        return mask_occluders()[rng.integers(len(MASK_ASSETS))]
    return flat_shape(rng, OCCLUDER_SIDE)


def occlude_batch(images: torch.Tensor, rng: np.random.Generator, p: float) -> torch.Tensor:
    """``B×3×H×W`` in [0, 1]; each image gets an occluder with probability ``p``."""
    return paste_occluders(images, rng, lambda i: rng.random() < p, occluder)
