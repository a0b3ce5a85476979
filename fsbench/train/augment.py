"""Image operations of training: the in-the-wild degradations of training crops (:class:`AugmentConfig`,
:class:`Degradation`), synthetic occluders (:func:`occlude_batch`), and the differentiable operations they share
with the identity loss's random views (:mod:`fsbench.train.identity`).

Studio portraits are evenly lit, sharp, clean, frontal and centred; ordinary photographs are not, and a swapper
that only saw portraits gives smudged, waxy swaps on them. A recipe's ``augment`` degrades training crops on the
fly the way a scene, a camera and a face detector do, in their order:

1. an occluder in the scene (:meth:`Degradation.occlude`: a random ellipse or polygon, flat-coloured or cut from
   another crop of the batch: hair, skin, background, a piece of another face), where the method wants one;
2. the crop jittered in scale, shift and rotation (detection and alignment error);
3. white balance (red against blue gain, a green tint), gamma, brightness, contrast and saturation;
4. a Gaussian blur (focus, motion, a cheap lens);
5. the face resampled down (a small face in the frame), and at that resolution
6. signal-dependent sensor noise and
7. a JPEG re-encoding, before
8. the crop is resampled back up to its side.

Mirroring is the methods' own: every recipe mirrors its crops with probability ½. Where each degradation goes (the
target, whose degradations the swap must reproduce; the source, whose identity must survive them; a ground truth,
degraded as its target) is each method's call, documented with its training code.

Draws come from the step's generator (:func:`fsbench.train.loop.step_rng`), so a resumed run degrades its batches
as an uninterrupted run would. A :class:`Degradation` holds one draw's per-crop parameters and applies them
deterministically: images given the same one (a target and its ground truth; a crop with and without its
occluder) are degraded alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fsbench.train.config import JPEG_BEST, AugmentConfig

OCCLUDER_SIDE = 64  # px of a drawn occluder before it is scaled onto the crop

# (rng, batch B×3×H×W in [0, 1], index in the batch) -> an RGBA float32 occluder for that crop
Occluder = Callable[[np.random.Generator, torch.Tensor, int], np.ndarray]


# the differentiable operations, per-sample parameters given (B-long tensors, or B×1×1×1 factors)

def affine(x: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``x`` (``B×C×H×W``) rotated by ``angle`` (radians), scaled by ``scale`` and shifted by ``shift`` (``B×2``,
    fractions of the side) about its centre, per sample; borders reflected."""
    shift = shift * 2  # affine_grid coordinates span 2 per side
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """A separable Gaussian blur of ``x`` with ``sigma`` (``B×1``, pixels, above 0) per sample and a kernel of
    ``2·radius + 1`` taps."""
    b, c = x.shape[:2]
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (b·c)×k
    y = x.reshape(1, b * c, *x.shape[2:])
    y = F.pad(y, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel[:, None, None, :], groups=b * c)
    y = F.conv2d(y, kernel[:, None, :, None], groups=b * c)
    return y.reshape_as(x)


def colour(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor
           ) -> torch.Tensor:
    """Brightness, contrast (about the image's mean) and saturation (about its grey) scaled by ``B×1×1×1``
    factors; clamped to [0, 1]."""
    x = x * brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * saturation + grey
    return x.clamp(0, 1)


def downscale(x: torch.Tensor, side: int) -> torch.Tensor:
    """``x`` resampled down to ``side``² with antialiasing (in fp32: torch's antialiased resize has no bf16 kernel,
    which bf16 autocast training would hand it)."""
    return F.interpolate(x.float(), size=(side, side), mode="bilinear", align_corners=False, antialias=True)


def upscale(x: torch.Tensor, side: int) -> torch.Tensor:
    """``x`` resampled (bilinear) to ``side``²."""
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)


# the degradations that need no gradient

def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """``C×H×W`` RGB in [0, 1] encoded as JPEG at ``quality`` (OpenCV: 4:2:0 chroma) and decoded."""
    rgb = x.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    _, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return torch.from_numpy(decoded).permute(2, 0, 1).to(x).div(255)


def sensor_noise(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Gaussian noise whose standard deviation grows with the signal (read noise plus shot noise): ``sigma`` at
    white, half of it at black; drawn from ``seed``."""
    noise = np.random.default_rng(seed).standard_normal(tuple(x.shape), dtype=np.float32)
    return x + torch.from_numpy(noise).to(x) * sigma * (0.25 + 0.75 * x.clamp(0, 1)).sqrt()


@dataclass(frozen=True)
class Degradation:
    """One draw of :class:`AugmentConfig`'s degradations for a batch of ``n`` crops: per-crop parameters (numpy
    arrays of length ``n``; a degradation that a crop does not get holds its neutral value)."""

    geometry: np.ndarray  # bool
    angle: np.ndarray  # radians
    scale: np.ndarray
    shift: np.ndarray  # n×2, fractions of the side
    colour: np.ndarray  # bool
    gains: np.ndarray  # n×3: red, green, blue
    gamma: np.ndarray
    factors: np.ndarray  # n×3: brightness, contrast, saturation
    blur: np.ndarray  # sigma, fraction of the side; 0: none
    low_res: np.ndarray  # resampled side, fraction of the side; 1: none
    noise: np.ndarray  # sigma; 0: none
    seeds: np.ndarray  # the noise's seeds
    jpeg: np.ndarray  # quality; 0: none
    occluded: np.ndarray  # bool: the crops :meth:`occlude` gives an occluder

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, cfg: AugmentConfig) -> Degradation:
        """Degradations for ``n`` crops from ``rng`` (a fixed number of draws per crop, whatever is chosen)."""
        on = rng.random(n) < cfg.p

        def chosen(p: float) -> np.ndarray:
            return on & (rng.random(n) < p)

        def spread(r: float, shape: tuple[int, ...] = (n,)) -> np.ndarray:
            return rng.uniform(-r, r, shape)

        geometry, angle = chosen(cfg.geometry), np.radians(spread(cfg.rotate_deg))
        scale, shift = 1 + spread(cfg.scale), spread(cfg.shift, (n, 2))
        colour, warmth, tint = chosen(cfg.colour), spread(cfg.white_balance), spread(cfg.white_balance / 4)
        gains = np.stack([1 + warmth, 1 + tint, 1 - warmth], 1)
        gamma, factors = np.exp(spread(cfg.gamma)), 1 + spread(1.0, (n, 3)) * [cfg.brightness, cfg.contrast,
                                                                               cfg.saturation]
        blur = np.where(chosen(cfg.blur), rng.uniform(cfg.blur_sigma / 4, cfg.blur_sigma, n), 0.0)
        low_res = np.where(chosen(cfg.low_res), rng.uniform(cfg.low_res_min, 1, n), 1.0)
        noise = np.where(chosen(cfg.noise), rng.uniform(cfg.noise_sigma / 4, cfg.noise_sigma, n), 0.0)
        seeds = rng.integers(2**63, size=n)
        quality = np.where(chosen(cfg.jpeg), rng.integers(cfg.jpeg_quality, JPEG_BEST + 1, n), 0)
        return cls(geometry, angle, scale, shift, colour, gains, gamma, factors, blur, low_res, noise, seeds,
                   quality, chosen(cfg.occlusion))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The crops ``x`` (``n×3×S×S`` in [0, 1]) degraded: same shape, dtype and range; no gradient (in ``x``'s
        dtype also under a training step's bf16 autocast)."""
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            out = x.detach().clone()
            rows = np.flatnonzero(self.geometry)
            if rows.size:
                out[rows] = affine(out[rows], *(_t(a[rows], out) for a in (self.angle, self.scale, self.shift)))
            rows = np.flatnonzero(self.colour)
            if rows.size:
                out[rows] = self._colour(out[rows], rows)
            rows = np.flatnonzero(self.blur > 0)
            if rows.size:
                sigma = _t(self.blur[rows, None] * x.shape[-1], out).clamp_min(1e-3)
                out[rows] = gaussian_blur(out[rows], sigma, math.ceil(2 * float(sigma.max())))
            for i in np.flatnonzero((self.low_res < 1) | (self.noise > 0) | (self.jpeg > 0)):
                out[i] = self._camera(out[i], int(i))
            return out.clamp(0, 1)

    def _colour(self, x: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        x = (x * _t(self.gains[rows], x)[:, :, None, None]).clamp(0, 1)
        x = x ** _t(self.gamma[rows], x)[:, None, None, None]
        factors = _t(self.factors[rows], x)[:, :, None, None, None]
        return colour(x, factors[:, 0], factors[:, 1], factors[:, 2])

    def _camera(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """One crop (``3×S×S``) down to its small side, with its noise and JPEG there, and back up."""
        side = x.shape[-1]
        small = max(8, round(side * float(self.low_res[i])))
        y = downscale(x[None], small)[0].to(x.dtype) if small < side else x
        if self.noise[i] > 0:
            y = sensor_noise(y, float(self.noise[i]), int(self.seeds[i])).clamp(0, 1)
        if self.jpeg[i] > 0:
            y = jpeg(y, int(self.jpeg[i]))
        return upscale(y[None], side)[0] if small < side else y

    def occlude(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """The crops ``x`` (``n×3×S×S`` in [0, 1]) with a scene occluder (:func:`scene_occluder`) on each crop that
        this draw gives one."""
        return occlude_batch(x, rng, lambda i: bool(self.occluded[i]), scene_occluder)


def source_views(src: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Source crops (``B×3×S×S`` in [0, 1]) as a generator sees them (a scene occluder where drawn, then a
    :class:`Degradation`: the identity must come through both) and as a discriminator's real photographs (the same
    degradation without the occluder: the swaps carry degradations, never a synthetic occluder)."""
    deg = Degradation.draw(rng, len(src), cfg)
    return deg(deg.occlude(src, rng)), deg(src)


def _t(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=like.dtype, device=like.device)


# occluders

def shape_alpha(rng: np.random.Generator, side: int) -> np.ndarray:
    """A random solid ellipse or convex polygon: a ``side``² float32 alpha of 0 and 1."""
    alpha = np.zeros((side, side), np.uint8)
    if rng.random() < 0.5:
        axes = (int(side * rng.uniform(0.2, 0.5)), int(side * rng.uniform(0.2, 0.5)))
        cv2.ellipse(alpha, (side // 2, side // 2), axes, 0, 0, 360, 1, -1)
    else:
        pts = (rng.uniform(0.05, 0.95, (int(rng.integers(3, 7)), 2)) * side).astype(np.int32)
        cv2.fillPoly(alpha, [cv2.convexHull(pts)], 1)
    return alpha.astype(np.float32)


def flat_shape(rng: np.random.Generator, side: int) -> np.ndarray:
    """A :func:`shape_alpha` of one random colour, RGBA."""
    alpha = shape_alpha(rng, side)
    rgb = np.broadcast_to(rng.uniform(0, 1, 3).astype(np.float32), (side, side, 3))
    return np.dstack([rgb, alpha])


def scene_occluder(rng: np.random.Generator, images: torch.Tensor, i: int) -> np.ndarray:
    """A :func:`shape_alpha` of one colour, or of a window of another crop of the batch (hair, skin, background,
    part of a face), resized to the occluder's side; RGBA."""
    if rng.random() < 0.5:
        return flat_shape(rng, OCCLUDER_SIDE)
    alpha = shape_alpha(rng, OCCLUDER_SIDE)
    others = [j for j in range(len(images)) if j != i] or [i]
    donor = images[others[int(rng.integers(len(others)))]].permute(1, 2, 0).numpy()
    side = donor.shape[0]
    window = int(side * rng.uniform(0.25, 0.6))
    y, x = (int(v) for v in rng.integers(0, side - window + 1, 2))
    patch = cv2.resize(np.ascontiguousarray(donor[y:y + window, x:x + window]), (OCCLUDER_SIDE, OCCLUDER_SIDE),
                       interpolation=cv2.INTER_AREA)
    return np.dstack([patch.astype(np.float32), alpha])


def paste(image: np.ndarray, occluder: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``occluder`` (RGBA) pasted on an ``H×W×3`` float32 image in [0, 1] with a random colour jitter, its mean
    colour pulled part of the way to the image's (so it is not trivially separable), and a random rotation, scale
    (a quarter to 0.6 of the side) and place over the face."""
    size = image.shape[0]
    occ = occluder.copy()
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


def occlude_batch(images: torch.Tensor, rng: np.random.Generator, chosen: Callable[[int], bool],
                  occluder: Occluder) -> torch.Tensor:
    """``B×3×H×W`` in [0, 1] (float32, CPU), an ``occluder`` :func:`paste`\\ d on each crop ``i`` where
    ``chosen(i)``; crops are visited in order, so ``chosen`` may draw from ``rng`` too."""
    out = images.clone()
    for i in range(len(images)):
        if chosen(i):
            img = images[i].permute(1, 2, 0).numpy()
            out[i] = torch.from_numpy(paste(img, occluder(rng, images, i), rng)).permute(2, 0, 1)
    return out
