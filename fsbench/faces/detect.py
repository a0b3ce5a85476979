"""Face detection with five landmarks: YuNet (OpenCV Zoo, 2023mar int8bq), run by ``cv2.FaceDetectorYN``.

Why OpenCV and not onnxruntime: onnxruntime refuses this file (its per-tensor bias ``DequantizeLinear`` nodes
carry a ``block_size``), while OpenCV runs it and accepts any input size. OpenCV's output was checked against
onnxruntime running the same weights expanded to fp32 with numpy: boxes and landmarks agreed within 2e-5 px and
scores within 1e-7 on astronaut, multi_face, single_face and BWPictureHuman.

YuNet's landmark order is right eye, left eye, nose, right and left mouth corner *of the subject*, which for a
face looking at the camera is image-left eye first — the order of ``fsbench.faces.templates``. No reordering
is done; the tests check the order on the astronaut and on its mirror image.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from fsbench import assets
from fsbench.faces.errors import FaceIndexError, NoFaceError
from fsbench.workers import per_thread

MAX_SIDE = 640  # longer side for detection; see detect_faces
MIN_SCORE = 0.6  # see detect_faces
NMS_IOU = 0.3  # OpenCV Zoo's defaults
TOP_K = 5000


@dataclass
class Face:
    """One detected face, in pixel coordinates of the image it was detected in."""

    box: np.ndarray  # [x, y, w, h], float32
    score: float
    landmarks: np.ndarray  # 5×2 float32: image-left eye, image-right eye, nose, image-left/right mouth corner


_create_lock = threading.Lock()  # OpenCV's log level is process-wide: one thread lowers and restores it at a time


def _new_detector() -> cv2.FaceDetectorYN:
    # OpenCV 5 warns on every create that its new graph engine ignores target selection; nothing to act on
    with _create_lock:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            return cv2.FaceDetectorYN.create(str(assets.path("yunet")), "", (320, 320), 0.5, NMS_IOU, TOP_K)
        finally:
            cv2.utils.logging.setLogLevel(previous)


def _check_image(image: np.ndarray) -> None:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError("expected an RGB uint8 array of shape H×W×3, got "
                         f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}")


def detection_size(height: int, width: int) -> tuple[int, int]:
    """The (height, width) YuNet sees for an image of this size: downscaled to ``MAX_SIDE`` on its longer side."""
    scale = min(1.0, MAX_SIDE / max(height, width))
    return (max(1, round(height * scale)), max(1, round(width * scale))) if scale < 1.0 else (height, width)


def detect_faces(image: np.ndarray, min_score: float = MIN_SCORE) -> list[Face]:
    """All faces in an RGB uint8 image scoring at least ``min_score``, largest box first.

    The default ``MIN_SCORE`` (0.6) keeps faces YuNet is unsure of in grainy black-and-white pictures
    (BWPictureHuman scores 0.7) and gave no detection on the face-free frames of no_face.mp4 and face_noface.mov.
    Images whose longer side exceeds ``MAX_SIDE`` are downscaled for detection and the results mapped back.
    """
    _check_image(image)
    h, w = image.shape[:2]
    size = detection_size(h, w)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # YuNet was trained on OpenCV's BGR order
    if size != (h, w):
        bgr = cv2.resize(bgr, size[::-1], interpolation=cv2.INTER_AREA)
    det = per_thread("yunet", _new_detector)  # it keeps its input size: one per thread
    det.setInputSize((bgr.shape[1], bgr.shape[0]))
    det.setScoreThreshold(min_score)
    _, rows = det.detect(bgr)
    if rows is None:
        return []
    # map back with the per-axis ratio actually used by the rounded resize
    sx, sy = w / bgr.shape[1], h / bgr.shape[0]
    faces = [Face(box=(row[:4] * np.float32([sx, sy, sx, sy])).astype(np.float32),
                  score=float(row[14]),
                  landmarks=(row[4:14].reshape(5, 2) * np.float32([sx, sy])).astype(np.float32))
             for row in rows]
    return sorted(faces, key=lambda f: -float(f.box[2] * f.box[3]))


def detect_face(image: np.ndarray, index: int = 0, source: str = "", min_score: float = MIN_SCORE) -> Face:
    """The ``index``-th largest face (0: the largest). ``source`` names the image or frame in error messages.

    Raises ``NoFaceError`` if no face is found and ``FaceIndexError`` (an ``IndexError``) if fewer than
    ``index + 1`` faces are.
    """
    if index < 0:
        raise ValueError(f"face index must be >= 0, got {index}")
    faces = detect_faces(image, min_score)
    if not faces:
        raise NoFaceError(source, min_score)
    if index >= len(faces):
        raise FaceIndexError(source, index, len(faces))
    return faces[index]
