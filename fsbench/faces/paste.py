"""Paste an aligned (possibly swapped) crop back into its frame through the template's soft face mask."""
from __future__ import annotations

import functools

import cv2
import numpy as np

from fsbench.faces.templates import face_mask

BORDER_FEATHER = 0.08  # fraction of the crop side over which the mask fades to 0 at the crop's edges


@functools.lru_cache(maxsize=16)
def paste_mask(template: str, size: int) -> np.ndarray:
    """``face_mask(template, size)`` faded to 0 at the crop's edges (size×size float32; do not modify).

    The template ellipses reach past the crop (face_mask is 1.0 on the bottom row of arcface-112 and 0.99 on
    that of ffhq-256); without the fade a swapped crop would leave a hard edge where the crop ends.
    """
    i = np.arange(size, dtype=np.float32)
    ramp = np.clip(np.minimum(i, size - 1 - i) / (BORDER_FEATHER * size), 0.0, 1.0)
    return face_mask(template, size) * np.minimum.outer(ramp, ramp)


def paste_back(frame: np.ndarray, crop: np.ndarray, matrix: np.ndarray, template: str) -> np.ndarray:
    """Blend ``crop`` (uint8, S×S×3, aligned by the frame→crop ``matrix`` from ``align_face``) into a copy of
    ``frame`` (uint8 H×W×3) through ``paste_mask(template, S)`` warped alongside (crop bicubic; mask bilinear, which
    cannot leave [0, 1]).

    Only the frame rectangle the crop covers is warped and blended; every pixel outside it, and every pixel where
    the warped mask is 0, is returned unchanged.
    """
    if crop.ndim != 3 or crop.shape[0] != crop.shape[1] or crop.dtype != np.uint8 or frame.dtype != np.uint8:
        raise ValueError(f"expected a square uint8 crop and a uint8 frame, got crop {crop.dtype} {crop.shape}, "
                         f"frame {frame.dtype} {frame.shape}")
    size = crop.shape[0]
    h, w = frame.shape[:2]
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))  # crop → frame
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inv.T
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [w, h])
    out = frame.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    inv[:, 2] -= (x0, y0)  # crop → region of interest
    roi = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(crop, inv, roi, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(paste_mask(template, size), inv, roi, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.round(region + mask * (warped.astype(np.float32) - region)).astype(np.uint8)
    return out
