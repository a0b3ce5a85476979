"""Detection, 68-point landmarks, alignment and paste-back on real pictures from the embedded media."""
from __future__ import annotations

import cv2
import dlib
import numpy as np
import pytest

from fsbench import assets
from fsbench.faces.align import align_face
from fsbench.faces.detect import Face, detect_face, detect_faces
from fsbench.faces.errors import FaceError, FaceIndexError, NoFaceError
from fsbench.faces.io import read_frames, read_image
from fsbench.faces.landmarks import landmarks68, predictor68
from fsbench.faces.paste import paste_back, paste_mask
from fsbench.faces.templates import TEMPLATES


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(assets.path("media/skimage/astronaut.png"))


@pytest.fixture(scope="module")
def face(astronaut) -> Face:
    return detect_face(astronaut, source="astronaut.png")


def _assert_plausible(face: Face, image: np.ndarray) -> None:
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    x, y, w, h = face.box
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32 and face.box.dtype == np.float32
    assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
    assert ((face.landmarks >= (x, y)) & (face.landmarks <= (x + w, y + h))).all()
    assert lx < nx < rx and mlx < mrx  # template order: image-left eye and mouth corner first
    assert max(ly, ry) < ny < min(mly, mry)  # eyes above nose above mouth


# --- detection ---------------------------------------------------------------------------------------------------------

def test_astronaut_one_plausible_face(astronaut, face):
    faces = detect_faces(astronaut)
    assert len(faces) == 1 and faces[0].score > 0.8
    np.testing.assert_array_equal(faces[0].landmarks, face.landmarks)
    _assert_plausible(face, astronaut)


def test_mirror_image_keeps_template_order(astronaut, face):
    mirrored = detect_face(np.ascontiguousarray(astronaut[:, ::-1]))
    _assert_plausible(mirrored, astronaut)
    # mirroring swaps left and right: the mirrored face's point i is the original's partner point, reflected
    back = mirrored.landmarks[[1, 0, 2, 4, 3]] * (-1, 1) + (astronaut.shape[1] - 1, 0)
    assert np.linalg.norm(back - face.landmarks, axis=1).max() < 8


def test_large_image_is_detected_downscaled_and_mapped_back(astronaut, face):
    big = cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)  # 1536², over MAX_SIDE
    found = detect_face(big)
    width = 3 * float(face.box[2])
    assert np.abs(found.box - 3 * face.box).max() < 0.05 * width
    assert np.linalg.norm(found.landmarks - 3 * face.landmarks, axis=1).max() < 0.08 * width


def test_several_faces_largest_first_and_selectable():
    image = read_image(assets.path("media/pyfeat/multi_face.jpg"))
    faces = detect_faces(image)
    assert len(faces) == 5
    areas = [float(f.box[2] * f.box[3]) for f in faces]
    assert areas == sorted(areas, reverse=True)
    for f in faces:
        _assert_plausible(f, image)
    np.testing.assert_array_equal(detect_face(image, index=3).box, faces[3].box)
    with pytest.raises(FaceIndexError) as info:
        detect_face(image, index=5, source="multi_face.jpg")
    assert isinstance(info.value, IndexError) and isinstance(info.value, FaceError)
    assert "multi_face.jpg" in str(info.value) and "only 5 face(s)" in str(info.value)
    with pytest.raises(ValueError):
        detect_face(image, index=-1)


def test_picture_without_face():
    path = assets.path("media/pyfeat/free-mountain-vector-01.jpg")
    image = read_image(path)
    assert detect_faces(image) == []
    with pytest.raises(NoFaceError) as info:
        detect_face(image, source=str(path))
    assert str(path) in str(info.value)


def test_video_frame_without_face():
    # face_noface.mov (HEVC): the man for the first ~72 frames, then a cartoon without faces
    path = assets.path("media/pyfeat/face_noface.mov")
    with_face, without = read_frames(path, [0, 160])
    _assert_plausible(detect_face(with_face, source=f"{path}#0"), with_face)
    with pytest.raises(NoFaceError) as info:
        detect_face(without, source=f"{path}#160")
    assert f"{path}#160" in str(info.value)


def test_tiny_and_invalid_inputs():
    assert detect_faces(np.zeros((16, 16, 3), np.uint8)) == []
    for bad in (np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8), np.zeros((64, 64, 3), np.float32)):
        with pytest.raises(ValueError):
            detect_faces(bad)


# --- 68 landmarks ------------------------------------------------------------------------------------------------------

def test_landmarks68_agree_with_dlib_own_box_and_yunet(astronaut, face):
    points = landmarks68(astronaut, face)
    assert points.shape == (68, 2) and points.dtype == np.float32
    hog_box = dlib.get_frontal_face_detector()(astronaut, 0)[0]  # the boxes the predictor was trained on
    reference = np.array([[p.x, p.y] for p in predictor68()(astronaut, hog_box).parts()], np.float32)
    eye_l, eye_r = points[36:42].mean(0), points[42:48].mean(0)
    iod = float(np.linalg.norm(eye_r - eye_l))
    assert np.linalg.norm(points - reference, axis=1).mean() < 0.05 * iod
    five = np.stack([eye_l, eye_r, points[30], points[48], points[54]])
    assert np.linalg.norm(five - face.landmarks, axis=1).max() < 0.25 * iod


# --- alignment ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_aligned_crop_puts_the_face_on_the_template(astronaut, face, template):
    crop, matrix = align_face(astronaut, face.landmarks, template)
    size = TEMPLATES[template].size
    target = TEMPLATES[template].points_at()
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8 and matrix.shape == (2, 3)
    mapped = face.landmarks @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped.mean(0), target.mean(0), atol=1e-3)  # least squares: centroids coincide
    redetected = detect_face(crop, source=f"astronaut {template} crop").landmarks
    error = np.linalg.norm(redetected - target, axis=1)
    assert error.mean() < 6 and error.max() < 10, error  # YuNet's own scatter is 2–9 px at this scale


def test_align_custom_size_and_bad_landmarks(astronaut, face):
    crop, matrix = align_face(astronaut, face.landmarks, "arcface-112", size=224)
    assert crop.shape == (224, 224, 3)
    mapped = face.landmarks @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped.mean(0), TEMPLATES["arcface-112"].points_at(224).mean(0), atol=1e-3)
    with pytest.raises(ValueError):
        align_face(astronaut, face.landmarks[:4], "arcface-112")


# --- paste-back --------------------------------------------------------------------------------------------------------

def _footprint(matrix: np.ndarray, size: int, shape: tuple[int, ...]) -> np.ndarray:
    """Frame pixels that the crop (plus a 2 px margin for interpolation) covers."""
    inside = cv2.warpAffine(np.ones((size, size), np.uint8), cv2.invertAffineTransform(matrix), shape[1::-1])
    return cv2.dilate(inside, np.ones((5, 5), np.uint8)).astype(bool)


def test_copy_target_round_trip_leaves_no_seam(astronaut, face):
    crop, matrix = align_face(astronaut, face.landmarks, "ffhq-256")
    out = paste_back(astronaut, crop, matrix, "ffhq-256")
    assert out.shape == astronaut.shape and out.dtype == np.uint8 and out is not astronaut
    diff = np.abs(out.astype(int) - astronaut.astype(int)).max(-1)
    mask = cv2.warpAffine(paste_mask("ffhq-256", 256), cv2.invertAffineTransform(matrix), astronaut.shape[1::-1])
    assert diff[mask > 0.5].mean() < 1.5 and diff[mask > 0.5].max() < 25  # measured 0.7 and 9
    assert diff[mask > 0].mean() < 1.5  # the feathered band too
    assert not diff[~_footprint(matrix, 256, astronaut.shape)].any()  # identical away from the face


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_swapped_crop_lands_on_the_face_without_hard_edges(astronaut, face, template):
    crop, matrix = align_face(astronaut, face.landmarks, template)
    green = np.zeros_like(crop)
    green[..., 1] = 255
    flat = np.full_like(astronaut, 128)  # on a flat frame the change is exactly the blend weight
    out = paste_back(flat, green, matrix, template)
    cx, cy = np.round(face.landmarks.mean(0)).astype(int)
    np.testing.assert_array_equal(out[cy, cx], (0, 255, 0))
    weight = (out[..., 1].astype(np.float32) - 128) / 127
    step = max(np.abs(np.diff(weight, axis=0)).max(), np.abs(np.diff(weight, axis=1)).max())
    # measured 0.24 (arcface-112) and 0.17 (ffhq-256); 0.85+ where the template ellipse leaves the crop unfaded
    assert step < 0.3
    assert not (out != flat).any(-1)[~_footprint(matrix, crop.shape[0], flat.shape)].any()


def test_face_partly_outside_the_frame(astronaut, face):
    frame = np.ascontiguousarray(astronaut[100:, 215:])  # cuts through the eyes and the left cheek
    landmarks = face.landmarks - (215, 100)
    crop, matrix = align_face(frame, landmarks, "ffhq-256")
    assert crop.shape == (256, 256, 3)
    out = paste_back(frame, crop, matrix, "ffhq-256")
    assert out.shape == frame.shape
    assert not (out != frame).any(-1)[~_footprint(matrix, 256, frame.shape)].any()
    far = paste_back(frame, crop, matrix + [[0, 0, 5000], [0, 0, 5000]], "ffhq-256")  # crop maps far off-frame
    np.testing.assert_array_equal(far, frame)
