"""dlib's face chip (``dlib.get_face_chip``) from five landmarks, in numpy and batched.

The steps are dlib's (dlib/image_transforms/interpolation.h, ``get_face_chip_details`` and
``extract_image_chips``; dlib/geometry/point_transforms.h, ``find_similarity_transform``):

1. dlib's mean 5-point face shape, padded (``(padding + p) / (2 padding + 1)``) and scaled to the chip, is matched
   to the landmarks by a least-squares similarity transform (Umeyama's closed form: fsbench.faces.align's).
2. That transform gives a rotation angle, a scale and the chip's centre in the image; dlib stores them as a
   rectangle ``centered_drect(centre, size·scale, size·scale)`` (which subtracts 1 from each side) and the angle.
3. The chip's corner pixels map to that rectangle's corners rotated about its centre, inside a crop of the image
   (the rotated rectangle grown by 2 px, clipped to the image, rounded to integers); every chip pixel is sampled
   bilinearly from that crop, truncated to uint8; pixels whose 2×2 neighbourhood leaves the crop are 0.

dlib downsamples through an image pyramid first when the chip's rectangle is more than about twice the chip's size;
that path is not reproduced and such a face is refused (fsbench cuts chips from 256 px crops, where the scale is
about 1.2).
"""
from __future__ import annotations

import math

import numpy as np

from fsbench.faces.align import similarity_transform

# dlib's mean face shape for shape_predictor_5 (get_face_chip_details): the outer and inner corners of the
# (image) left eye, then of the right eye, then the bottom of the nose, in [0, 1] chip coordinates
MEAN_SHAPE_5 = np.array([(0.8595674595992, 0.2134981538014), (0.6460604764104, 0.2289674387677),
                         (0.1205750620789, 0.2137274526848), (0.3340850613712, 0.2290642403242),
                         (0.4901123135679, 0.6277975316475)])


def _rotate(points: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    p = points - centre
    return np.stack([cos * p[:, 0] - sin * p[:, 1], sin * p[:, 0] + cos * p[:, 1]], 1) + centre


def face_chip(image: np.ndarray, landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """``dlib.get_face_chip(image, shape, size, padding)`` for an ``H×W×3`` uint8 image and the ``5×2`` integer
    landmarks of dlib's ``shape_predictor_5`` (x, y); returns the ``size×size×3`` uint8 chip."""
    h, w = image.shape[:2]
    template = (padding + MEAN_SHAPE_5) / (2 * padding + 1) * size
    affine = similarity_transform(template, landmarks)  # Umeyama, as dlib's find_similarity_transform
    m, t = affine[:, :2], affine[:, 2]
    angle = math.atan2(m[1, 0], m[0, 0])
    scale = math.hypot(m[0, 0], m[1, 0])
    centre = m @ np.array([size / 2, size / 2]) + t
    half = (size * scale - 1) / 2  # centered_drect: width − 1
    left, top, right, bottom = centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half
    if ((right - left) / 2 + 1) ** 2 > size * size:  # pyramid_down<2>::rect_down(rect).area() > chip area
        raise ValueError(f"face too large for its chip (scale {scale:.2f}): dlib would downsample it through an "
                         "image pyramid, which is not reproduced")
    corners = np.array([(left, top), (right, top), (left, bottom), (right, bottom)])
    rotated = _rotate(corners, np.array([(left + right) / 2, (top + bottom) / 2]), angle)
    # the crop dlib samples from: the rotated rectangle grown by 2, clipped to the image, rounded half away from 0
    box_lo = np.floor(np.maximum(rotated.min(0) - 2, 0) + 0.5)
    box_hi = np.floor(np.minimum(rotated.max(0) + 2, (w - 1, h - 1)) + 0.5)
    crop_w, crop_h = (box_hi - box_lo + 1).astype(int)
    # the chip's top-left, top-right and bottom-left pixels map to those corners, in crop coordinates
    local = corners - box_lo
    tl, tr, bl = _rotate(local[:3], local[[0, 3]].mean(0), angle)
    cols, rows = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    x = (tr[0] - tl[0]) / (size - 1) * cols + (bl[0] - tl[0]) / (size - 1) * rows + tl[0]
    y = (tr[1] - tl[1]) / (size - 1) * cols + (bl[1] - tl[1]) / (size - 1) * rows + tl[1]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < crop_w) & (y0 + 1 < crop_h)
    lr, tb = (x - x0)[..., None], (y - y0)[..., None]
    flat = image.reshape(h * w, 3)
    at = (np.where(inside, y0, 0) + int(box_lo[1])) * w + np.where(inside, x0, 0) + int(box_lo[0])
    # np.take on the flat pixel rows: 5x faster than fancy indexing here
    top_l, top_r, bot_l, bot_r = (np.take(flat, at + k, axis=0).astype(np.float64) for k in (0, 1, w, w + 1))
    # (1 − tb)·((1 − lr)·tl + lr·tr) + tb·((1 − lr)·bl + lr·br), dlib's order of operations, in place
    top_l *= 1 - lr
    top_l += np.multiply(lr, top_r, out=top_r)
    top_l *= 1 - tb
    bot_l *= 1 - lr
    bot_l += np.multiply(lr, bot_r, out=bot_r)
    bot_l *= tb
    top_l += bot_l
    top_l[~inside] = 0
    return top_l.astype(np.uint8)  # dlib's static_cast: truncation
