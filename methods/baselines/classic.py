"""classic: the learning-free landmark swap of the FaceForensics++ "FaceSwap" kind.

For each (source, target) pair of aligned crops:

1. 68 landmarks on both crops (:func:`fsbench.api.landmarks68`, dlib's predictor);
2. a piecewise-affine warp of the source onto the target's geometry over the Delaunay triangulation of the
   target's landmarks (vectorised: every pixel is mapped through the affine map of its triangle, then one
   ``cv2.remap``, so there are no seams between triangles);
3. Reinhard colour transfer (per-channel mean and standard deviation in CIELAB) of the warped source to the
   target, measured inside the blend mask;
4. Poisson blending (``cv2.seamlessClone``) into the target inside the convex hull of the target's landmarks,
   eroded so that the jaw-line points, which lie on the face contour, keep the target's background and neck.
   The output is the target, bit for bit, outside that mask.

Why Poisson and not a feathered alpha: seamlessClone matches the swapped face to the target's skin along the
whole mask boundary, where the Reinhard transfer only matches global statistics; on the embedded media a
feathered alpha (Gaussian, 15 px) left visible steps of brightness at the brows and jaw that seamlessClone
does not. seamlessClone zeroes the outer pixel ring of its mask itself, so a mask touching the image border
shifts the patch it places (cloning a crop onto itself: 38 dB inside such a mask, 50 to 54 dB with a 2-pixel
margin); the mask therefore keeps that margin, and the patch is centred where the mask's bounding box is.

The swap covers eyebrows to chin (the 68 landmarks' hull): the forehead, hair and ears stay the target's, as in
FaceForensics++'s FaceSwap videos.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from scipy.spatial import Delaunay

from fsbench.api import Method, MethodCard, landmarks68


def piecewise_affine_warp(image: np.ndarray, src_points: np.ndarray, dst_points: np.ndarray,
                          size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` so that ``src_points`` land on ``dst_points``, affinely within each Delaunay triangle.

    The triangulation is of ``dst_points`` (the geometry the output takes). Returns the warped image of
    ``size`` (height, width), same dtype as ``image``, and a boolean mask of the output pixels inside the
    triangulation (elsewhere the warped image is 0).
    """
    height, width = size
    tri = Delaunay(np.asarray(dst_points, np.float64))
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    simplex = tri.find_simplex(pixels)
    inside = simplex >= 0
    # barycentric coordinates of each covered pixel in its triangle, then the same combination of source points
    affine = tri.transform[simplex[inside]]
    partial = np.einsum("nij,nj->ni", affine[:, :2], pixels[inside] - affine[:, 2])
    bary = np.concatenate([partial, 1.0 - partial.sum(axis=1, keepdims=True)], axis=1)
    corners = np.asarray(src_points, np.float64)[tri.simplices[simplex[inside]]]
    mapped = np.full((height * width, 2), -1.0)
    mapped[inside] = np.einsum("ni,nij->nj", bary, corners)
    maps = mapped.reshape(height, width, 2).astype(np.float32)
    warped = cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    covered = inside.reshape(height, width)
    warped[~covered] = 0
    return warped, covered


def reinhard_transfer(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` (RGB float32 in [0, 1]) with its CIELAB mean and standard deviation inside ``mask`` set to
    those of ``reference`` inside the same mask (Reinhard et al. 2001); float32 RGB clipped to [0, 1]."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    ref = cv2.cvtColor(reference, cv2.COLOR_RGB2LAB)
    mean, std = lab[mask].mean(axis=0), lab[mask].std(axis=0)
    ref_mean, ref_std = ref[mask].mean(axis=0), ref[mask].std(axis=0)
    matched = (lab - mean) / np.maximum(std, 1e-3) * ref_std + ref_mean
    return np.clip(cv2.cvtColor(matched.astype(np.float32), cv2.COLOR_LAB2RGB), 0.0, 1.0)


def blend_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The boolean blend mask: the convex hull of ``points``, eroded by 1/40 of the crop side and kept
    off the image border (see the module docstring)."""
    height, width = size
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    radius = max(1, round(min(height, width) / 40))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    margin = 2
    mask[:margin], mask[-margin:], mask[:, :margin], mask[:, -margin:] = 0, 0, 0, 0
    return mask.astype(bool)


def swap_crop(source: np.ndarray, target: np.ndarray, template: str) -> tuple[np.ndarray, np.ndarray]:
    """Swap one pair of aligned RGB uint8 crops; returns the swapped face (uint8, target's shape) and the
    boolean blend mask outside which the caller keeps the target. Raises ``ValueError`` naming the crop on
    which no landmarks were found."""
    points = {}
    for role, crop in (("source", source), ("target", target)):
        try:
            points[role] = landmarks68(crop, template)
        except ValueError as err:
            raise ValueError(f"classic: {role} crop: {err}") from err
    size = target.shape[:2]
    warped, covered = piecewise_affine_warp(source, points["source"], points["target"], size)
    mask = blend_mask(points["target"], size) & covered
    matched = reinhard_transfer(warped.astype(np.float32) / 255, target.astype(np.float32) / 255, mask)
    patch = np.round(matched * 255).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    # seamlessClone centres the mask's bounding box on this point: (x + w // 2, y + h // 2) puts it back in place
    blended = cv2.seamlessClone(patch, target, mask.astype(np.uint8) * 255, (x + w // 2, y + h // 2),
                                cv2.NORMAL_CLONE)
    return blended, mask


class Classic(Method):
    card = MethodCard(name="classic", version="1", input_size=256, template="ffhq-256", licence="MIT",
                      paper="FaceForensics++ FaceSwap-style: landmark warp + colour transfer + blending "
                            "(learning-free)",
                      notes={"landmarks": "dlib 68-point shape predictor (asset dlib-68)",
                             "blend": "cv2.seamlessClone inside the eroded convex hull of the target landmarks"})

    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if source.ndim != 4 or source.shape[:2] != target.shape[:2] or target.shape[1] != 3:
            raise ValueError(f"classic: expected source and target B×3×H×W with the same B, got "
                             f"{tuple(source.shape)} and {tuple(target.shape)}")
        out = target.detach().to("cpu", torch.float32).clone()
        sources = _to_uint8(source)
        targets = _to_uint8(target)
        for i, (src, tgt) in enumerate(zip(sources, targets)):
            try:
                blended, mask = swap_crop(src, tgt, self.card.template)
            except ValueError as err:
                raise ValueError(f"item {i} of the batch: {err}") from err
            face = torch.from_numpy(blended).permute(2, 0, 1).float() / 255
            region = torch.from_numpy(mask)
            out[i][:, region] = face[:, region]
        return out.to(target)


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """``B×3×H×W`` float in [0, 1] → ``B×H×W×3`` RGB uint8."""
    pixels = (images.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()
