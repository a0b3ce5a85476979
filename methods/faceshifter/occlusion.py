"""Synthetic occlusions for HEAR-Net training (no occlusion labels are used or produced).

Occluders: the four surgical-mask photos of the insightface wheel (cut out of their white background) and random
solid shapes (ellipses and polygons). Each is pasted with a random rotation, scale, position and colour, whose
mean is then pulled towards the target's colour (colour matching), so the occluder is not trivially separable.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import torch

from fsbench.api import asset_path

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


def _shape(rng: np.random.Generator, side: int) -> np.ndarray:
    """A random solid ellipse or polygon, RGBA, ``side``² pixels."""
    alpha = np.zeros((side, side), np.uint8)
    if rng.random() < 0.5:
        axes = (int(side * rng.uniform(0.2, 0.5)), int(side * rng.uniform(0.2, 0.5)))
        cv2.ellipse(alpha, (side // 2, side // 2), axes, 0, 0, 360, 1, -1)
    else:
        pts = (rng.uniform(0.05, 0.95, (int(rng.integers(3, 7)), 2)) * side).astype(np.int32)
        cv2.fillPoly(alpha, [cv2.convexHull(pts)], 1)
    rgb = np.broadcast_to(rng.uniform(0, 1, 3).astype(np.float32), (side, side, 3))
    return np.dstack([rgb, alpha.astype(np.float32)])


def occlude(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random occluder pasted on an ``H×W×3`` float32 image in [0, 1]."""
    size = image.shape[0]
    occ = mask_occluders()[rng.integers(len(MASK_ASSETS))] if rng.random() < 0.5 else _shape(rng, 64)
    occ = occ.copy()
    occ[..., :3] *= rng.uniform(0.6, 1.4, 3).astype(np.float32)  # colour jitter
    target_mean = image.reshape(-1, 3).mean(0)
    occ_mean = (occ[..., :3] * occ[..., 3:]).sum((0, 1)) / max(occ[..., 3].sum(), 1.0)
    occ[..., :3] += rng.uniform(0.0, 0.5) * (target_mean - occ_mean)  # pull towards the target's colours
    scale = size * rng.uniform(0.25, 0.6) / max(occ.shape[:2])
    centre = rng.uniform(0.3, 0.75, 2) * size
    m = cv2.getRotationMatrix2D((occ.shape[1] / 2, occ.shape[0] / 2), rng.uniform(-45, 45), scale)
    m[:, 2] += centre - np.array([occ.shape[1], occ.shape[0]]) / 2
    warped = cv2.warpAffine(occ, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3:]
    return np.clip((1 - alpha) * image + alpha * warped[..., :3], 0, 1)


def occlude_batch(images: torch.Tensor, rng: np.random.Generator, p: float) -> torch.Tensor:
    """``B×3×H×W`` in [0, 1]; each image gets an occluder with probability ``p``."""
    out = images.clone()
    for i in range(len(images)):
        if rng.random() < p:
            img = images[i].permute(1, 2, 0).numpy()
            out[i] = torch.from_numpy(occlude(img, rng)).permute(2, 0, 1)
    return out
