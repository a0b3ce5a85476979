"""FSTriplets-style training data rebuilt from images fsbench can have.

MobileFSGAN trains on (source, target, ground truth) triplets. FSTriplets itself is private; this module makes
the same kinds of triplet from aligned crops and their 68 dlib landmarks:

* ``frames``: two frames of one person as source and ground truth; the target is an identity-changing edit of the
  ground truth (landmark-driven face-shape warp plus texture and age-like changes), so the swap must put the
  source identity back onto the target's attributes.
* four single-image types, X one image: ``id_target`` (target = identity edit of X, source = ground truth = X),
  ``id_source`` (source = ground truth = identity edit of X, target = X), ``attr_target`` (target = ground truth
  = attribute edit of X, source = X: the occluder must stay) and ``attr_source`` (source = attribute edit of X,
  target = ground truth = X: the source's occluder must not come through).
* ``pair`` (random source and target, no ground truth) and ``same`` (source = target = ground truth).

Every edit is a pure function of (image, landmarks, numpy Generator): the same seed gives the same pixels.
Occluders are drawn from the landmarks (surgical-mask-like covers, glasses, sunglasses); mask covers can carry
fabric photos (insightface's surgical-mask textures, see ``configs.MASK_TEXTURES``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from fsbench.api import UsageError
from fsbench.train import IdentityDraw

Edit = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]

JAW, BROWS, NOSE = slice(0, 17), slice(17, 27), slice(27, 36)
RIGHT_EYE, LEFT_EYE, MOUTH = slice(36, 42), slice(42, 48), slice(48, 68)


def face_hull_mask(shape: tuple[int, int], lm: np.ndarray, feather: float = 0.04) -> np.ndarray:
    """Feathered mask (H×W float32 in [0, 1]) of the landmarks' convex hull, extended up to the brows' top."""
    h, w = shape
    points = lm.copy()
    brows = points[BROWS].copy()
    brows[:, 1] -= 0.12 * (lm[8, 1] - lm[27, 1])  # a strip of forehead above the brows
    hull = cv2.convexHull(np.concatenate([points[JAW], brows]).astype(np.int32))
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    k = max(3, int(feather * w) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def _blend(image: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = image.astype(np.float32) * (1 - mask[..., None]) + edited.astype(np.float32) * mask[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _rbf_warp(image: np.ndarray, src: np.ndarray, dst: np.ndarray, sigma: float) -> np.ndarray:
    """Move pixels at ``src`` to ``dst`` with a Gaussian-RBF displacement field (backward-mapped, on a coarse
    grid, then upsampled); the image border is pinned."""
    h, w = image.shape[:2]
    grid = 64
    ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float32)
    pts = np.stack([xs * (w - 1) / (grid - 1), ys * (h - 1) / (grid - 1)], -1).reshape(-1, 2)
    border = np.concatenate([np.stack([np.linspace(0, w - 1, 9), np.zeros(9)], 1),
                             np.stack([np.linspace(0, w - 1, 9), np.full(9, h - 1)], 1),
                             np.stack([np.zeros(9), np.linspace(0, h - 1, 9)], 1),
                             np.stack([np.full(9, w - 1), np.linspace(0, h - 1, 9)], 1)]).astype(np.float32)
    ctrl = np.concatenate([dst, border])  # backward map: for each output point, where to sample
    disp = np.concatenate([src - dst, np.zeros_like(border)])
    kernel = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * sigma**2))  # noqa: E731
    weights = np.linalg.solve(kernel(ctrl, ctrl) + 1e-3 * np.eye(len(ctrl)), disp)
    field = (kernel(pts, ctrl) @ weights).reshape(grid, grid, 2).astype(np.float32)
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    mx, my = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, mx + field[..., 0], my + field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def shape_warp(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Face-shape change driven by landmarks: jaw width, chin length, eye spacing, nose and mouth width."""
    centre = lm[30]
    face = np.linalg.norm(lm[16] - lm[0])
    dst = lm.astype(np.float32).copy()
    jaw = rng.uniform(-0.09, 0.09)
    dst[JAW, 0] += (lm[JAW, 0] - centre[0]) * jaw
    dst[6:11, 1] += rng.uniform(-0.05, 0.06) * face
    eyes = rng.uniform(-0.05, 0.05) * face
    dst[RIGHT_EYE, 0] -= eyes / 2
    dst[LEFT_EYE, 0] += eyes / 2
    dst[31:36, 0] += (lm[31:36, 0] - lm[33, 0]) * rng.uniform(-0.2, 0.3)
    dst[MOUTH, 0] += (lm[MOUTH, 0] - lm[MOUTH, 0].mean()) * rng.uniform(-0.15, 0.15)
    keep = [0, 16, 27, 30, 33]  # anchor the face's frame so the edit is a change of shape, not a shift
    dst[keep[2:]] = lm[keep[2:]]
    return _rbf_warp(image, lm.astype(np.float32), dst, sigma=0.18 * face)


def texture_edit(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Skin tone and texture inside the face: shift in Lab, then smoothing or freckle-like noise."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] = lab[..., 0] * rng.uniform(0.85, 1.15)
    lab[..., 1] += rng.uniform(-8, 8)
    lab[..., 2] += rng.uniform(-10, 10)
    edited = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    if rng.random() < 0.5:
        edited = cv2.bilateralFilter(edited, 7, 40, 5)
    else:
        noise = cv2.GaussianBlur(rng.normal(0, 1, image.shape[:2]).astype(np.float32), (3, 3), 0)
        edited = np.clip(edited.astype(np.float32) - 18 * np.maximum(noise - 1.0, 0)[..., None], 0, 255)
    return _blend(image, edited, face_hull_mask(image.shape[:2], lm))


def age_edit(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Age-like change: forehead, crow's-feet and nasolabial lines, less saturation, greyer brows."""
    h, w = image.shape[:2]
    face = np.linalg.norm(lm[16] - lm[0])
    lines = np.zeros((h, w), np.float32)
    thickness = max(1, int(face / 120))
    top = lm[BROWS, 1].min()
    for i in range(int(rng.integers(2, 5))):  # forehead
        y = top - (0.05 + 0.045 * i) * face
        xs = np.linspace(lm[19, 0], lm[24, 0], 12)
        ys = y + rng.normal(0, 0.006 * face, 12)
        cv2.polylines(lines, [np.stack([xs, ys], 1).astype(np.int32)], False, 1.0, thickness)
    for corner, mouth, sign in ((36, 48, -1), (45, 54, 1)):  # crow's feet, nasolabial folds
        for k in range(3):
            a = lm[corner] + np.array([sign * 0.04 * face, (k - 1) * 0.03 * face])
            cv2.line(lines, tuple(a.astype(int)), tuple((a + [sign * 0.06 * face, (k - 1) * 0.02 * face]).astype(int)),
                     1.0, thickness)
        fold = np.stack([lm[31 if sign < 0 else 35] + [sign * 0.03 * face, 0], lm[mouth] + [sign * 0.03 * face, 0]])
        cv2.polylines(lines, [fold.astype(np.int32)], False, 1.0, thickness + 1)
    lines = cv2.GaussianBlur(lines, (3, 3), 0) * rng.uniform(0.25, 0.45)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] *= rng.uniform(0.65, 0.9)
    edited = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    edited *= 1 - lines[..., None]
    brows = np.zeros((h, w), np.float32)
    for part in (slice(17, 22), slice(22, 27)):
        cv2.polylines(brows, [lm[part].astype(np.int32)], False, 1.0, max(2, int(face / 25)))
    brows = cv2.GaussianBlur(brows, (5, 5), 0) * rng.uniform(0.3, 0.6)
    edited = edited * (1 - brows[..., None]) + 200 * brows[..., None]
    return _blend(image, edited, face_hull_mask(image.shape[:2], lm))


def identity_edit(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shape warp, then texture and/or age change (at least one)."""
    out = shape_warp(image, lm, rng)
    warped_lm = lm  # texture and age masks are wide and feathered: the pre-warp landmarks are close enough
    choice = int(rng.integers(0, 3))
    if choice in (0, 2):
        out = texture_edit(out, warped_lm, rng)
    if choice in (1, 2):
        out = age_edit(out, warped_lm, rng)
    return out


_MASK_COLOURS = ((235, 238, 240), (120, 170, 215), (110, 190, 170), (35, 35, 40))


def mask_occluder(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator,
                  textures: Sequence[np.ndarray] = ()) -> np.ndarray:
    """A surgical-mask-like cover from the nose bridge over the jaw, with shading and ear straps: a fabric photo
    (one of ``textures``, RGB, stretched over the cover's box) or a flat colour with drawn pleats."""
    face = np.linalg.norm(lm[16] - lm[0])
    top = lm[28 + int(rng.integers(0, 3))]
    outline = np.concatenate([lm[1:16], [lm[15] * 0.5 + top * 0.5 + [0.08 * face, 0]], [top],
                              [lm[1] * 0.5 + top * 0.5 - [0.08 * face, 0]]]).astype(np.int32)
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.fillPoly(mask, [outline], 1.0)
    colour = np.array(_MASK_COLOURS[int(rng.integers(0, len(_MASK_COLOURS)))], np.float32) * rng.uniform(0.9, 1.05)
    if textures:
        texture = textures[int(rng.integers(0, len(textures)))]
        x0, y0, w, h = cv2.boundingRect(outline)
        cover = np.zeros(image.shape, np.float32)
        patch = cv2.resize(texture, (max(w, 1), max(h, 1)), interpolation=cv2.INTER_AREA).astype(np.float32)
        ys, xs = slice(max(y0, 0), min(y0 + h, image.shape[0])), slice(max(x0, 0), min(x0 + w, image.shape[1]))
        cover[ys, xs] = patch[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        colour = patch.reshape(-1, 3).mean(0)
    else:
        cover = np.broadcast_to(colour, image.shape).copy()
        span = lm[8, 1] - top[1]
        for k in range(1, 4):  # pleats
            y = int(top[1] + span * k / 4)
            cover[max(0, y - 1):y + 1] *= 0.82
    shade = np.linspace(1.0, 0.8, image.shape[0], dtype=np.float32)[:, None, None]
    cover = np.clip(cover * shade, 0, 255)
    out = image.astype(np.float32)
    for a, b in ((lm[1], lm[0] - [0.02 * face, 0.1 * face]), (lm[15], lm[16] + [0.02 * face, -0.1 * face])):
        cv2.line(out, tuple(a.astype(int)), tuple(b.astype(int)), tuple(float(c) for c in colour),
                 max(1, int(face / 80)))
    soft = cv2.GaussianBlur(mask, (3, 3), 0)[..., None]
    return np.clip(out * (1 - soft) + cover * soft + 0.5, 0, 255).astype(np.uint8)


def glasses(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator, sun: bool | None = None) -> np.ndarray:
    """Glasses-like overlay: frames around both eyes and a bridge; sunglasses fill the lenses dark."""
    sun = bool(rng.random() < 0.4) if sun is None else sun
    face = np.linalg.norm(lm[16] - lm[0])
    out = image.astype(np.float32)
    lenses = np.zeros(image.shape[:2], np.float32)
    frame = np.zeros(image.shape[:2], np.float32)
    thickness = max(1, int(face * rng.uniform(0.012, 0.025)))
    axes = (int(face * rng.uniform(0.13, 0.16)), int(face * rng.uniform(0.08, 0.11)))
    centres = [lm[RIGHT_EYE].mean(0), lm[LEFT_EYE].mean(0)]
    angle = float(np.degrees(np.arctan2(*(centres[1] - centres[0])[::-1])))
    for c in centres:
        cv2.ellipse(lenses, tuple(c.astype(int)), axes, angle, 0, 360, 1.0, -1)
        cv2.ellipse(frame, tuple(c.astype(int)), axes, angle, 0, 360, 1.0, thickness)
    inner = [c + (o - c) / np.linalg.norm(o - c) * axes[0] for c, o in zip(centres, centres[::-1])]
    cv2.line(frame, tuple(inner[0].astype(int)), tuple(inner[1].astype(int)), 1.0, thickness)
    for c, ear in zip(centres, (lm[0], lm[16])):
        start = c + (ear - c) / np.linalg.norm(ear - c) * axes[0]
        cv2.line(frame, tuple(start.astype(int)), tuple(ear.astype(int)), 1.0, thickness)
    colour = np.array([rng.uniform(10, 90)] * 3, np.float32)
    if sun:
        tint = rng.uniform(0.75, 0.92)
        out = out * (1 - tint * lenses[..., None]) + colour * 0.3 * tint * lenses[..., None]
    frame = cv2.GaussianBlur(frame, (3, 3), 0)[..., None]
    return np.clip(out * (1 - frame) + colour * frame + 0.5, 0, 255).astype(np.uint8)


def attribute_edit(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator,
                   textures: Sequence[np.ndarray] = ()) -> np.ndarray:
    """An occluder (fabric ``textures`` if given) or a glasses-like overlay."""
    return mask_occluder(image, lm, rng, textures) if rng.random() < 0.5 else glasses(image, lm, rng)


KINDS = ("pair", "same", "frames", "id_target", "id_source", "attr_target", "attr_source")


@dataclass
class Triplets:
    """Samples triplets from aligned crops (N×S×S×3 uint8), identity labels and 68 landmarks (NaN where dlib
    found none: those crops only serve ``pair`` and ``same``)."""

    images: np.ndarray
    identities: np.ndarray
    landmarks: np.ndarray
    mix: dict[str, float]
    textures: Sequence[np.ndarray] = field(default_factory=tuple)  # RGB fabric photos for mask occluders
    per_identity: bool = False  # every image drawn as an identity uniformly, then one of its images

    def __post_init__(self) -> None:
        unknown = set(self.mix) - set(KINDS)
        if unknown:
            raise UsageError(f"unknown triplet kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
        self._with_lm = np.flatnonzero(~np.isnan(self.landmarks).any(axis=(1, 2)))
        ids, counts = np.unique(self.identities[self._with_lm], return_counts=True)
        self._multi = self._with_lm[np.isin(self.identities[self._with_lm], ids[counts >= 2])]
        kinds = [k for k in KINDS if self.mix.get(k, 0) > 0]
        if "frames" in kinds and len(self._multi) == 0:
            raise UsageError("'frames' triplets need an identity with two crops that have landmarks")
        if not kinds:
            raise UsageError("triplet mix is empty")
        p = np.array([self.mix[k] for k in kinds], np.float64)
        self._kinds, self._p = kinds, p / p.sum()
        pools = {"all": np.arange(len(self.images)), "landmarks": self._with_lm, "multi": self._multi}
        self._pools = {k: (v, IdentityDraw(self.identities[v]) if self.per_identity else None)
                       for k, v in pools.items()}

    def _pick(self, rng: np.random.Generator, pool: str) -> int:
        """One image of a pool (all, landmarks, multi): uniformly, or with ``per_identity`` per identity."""
        indices, draw = self._pools[pool]
        return int(indices[draw(rng, 1)[0]] if draw else indices[rng.integers(len(indices))])

    def sample(self, rng: np.random.Generator) -> tuple[str, np.ndarray, np.ndarray, np.ndarray | None]:
        """(kind, source, target, ground truth or None), uint8 crops."""
        kind = self._kinds[int(rng.choice(len(self._kinds), p=self._p))]
        if kind == "pair":
            return kind, self.images[self._pick(rng, "all")], self.images[self._pick(rng, "all")], None
        if kind == "same":
            x = self.images[self._pick(rng, "all")]
            return kind, x, x, x
        if kind == "frames":
            i = self._pick(rng, "multi")
            mates = self._multi[(self.identities[self._multi] == self.identities[i]) & (self._multi != i)]
            j = int(mates[rng.integers(len(mates))])
            return kind, self.images[j], identity_edit(self.images[i], self.landmarks[i], rng), self.images[i]
        i = self._pick(rng, "landmarks")
        x, lm = self.images[i], self.landmarks[i]
        if kind == "id_target":
            return kind, x, identity_edit(x, lm, rng), x
        if kind == "id_source":
            edited = identity_edit(x, lm, rng)
            return kind, edited, x, edited
        edited = attribute_edit(x, lm, rng, self.textures)
        return (kind, x, edited, edited) if kind == "attr_target" else (kind, edited, x, x)
