"""The `classic` baseline (landmark warp + colour transfer + Poisson blending) and `fsbench.api.landmarks68`,
on real faces of the embedded media (Obama and Biden from face_recognition's test images, the astronaut)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fsbench import assets, registry
from fsbench.api import landmarks68
from fsbench.faces.align import align_face, template_to_template
from fsbench.faces.detect import detect_face
from fsbench.faces.io import read_image
from fsbench.faces.templates import TEMPLATES
from methods.baselines.classic import Classic, blend_mask, piecewise_affine_warp

TEMPLATE = "ffhq-256"


def _crop(name: str) -> np.ndarray:
    image = read_image(assets.path(name))
    return align_face(image, detect_face(image, source=name).landmarks, TEMPLATE, 256)[0]


def _tensor(crops: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


def _uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _hull(points: np.ndarray) -> np.ndarray:
    mask = np.zeros((256, 256), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return mask.astype(bool)


@pytest.fixture(scope="module")
def crops() -> dict[str, np.ndarray]:
    return {"obama": _crop("media/face_recognition/obama.jpg"), "biden": _crop("media/face_recognition/biden.jpg")}


@pytest.fixture(scope="module")
def swapped(crops: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(source, target, output) for obama→biden, biden→obama and obama→obama, in one batch."""
    source = _tensor([crops["obama"], crops["biden"], crops["obama"]])
    target = _tensor([crops["biden"], crops["obama"], crops["obama"]])
    return source, target, Classic().swap(source, target)


def test_registered_with_its_card() -> None:
    cls = registry.methods.get("classic")
    assert cls is Classic
    assert registry.methods._entries["classic"].origin.startswith("entry point")
    assert (cls.card.name, cls.card.version, cls.card.template, cls.card.input_size) == ("classic", "1", TEMPLATE, 256)


def test_output_is_a_crop_like_the_target(swapped: tuple[torch.Tensor, ...]) -> None:
    _, target, out = swapped
    assert out.shape == target.shape and out.dtype == target.dtype
    assert out.min() >= 0 and out.max() <= 1


def test_outside_the_face_hull_the_output_is_the_target(swapped: tuple[torch.Tensor, ...]) -> None:
    _, target, out = swapped
    for i in range(2):
        hull = torch.from_numpy(_hull(landmarks68(_uint8(target[i]), TEMPLATE)))
        assert torch.equal(out[i][:, ~hull], target[i][:, ~hull])
        assert (out[i][:, hull] - target[i][:, hull]).abs().mean() > 0.02  # and inside it, the face changed


def test_inside_the_mask_the_output_has_the_warped_source_s_detail(swapped: tuple[torch.Tensor, ...]) -> None:
    # Poisson blending keeps the (colour-matched) source's gradients: measured 3 to 6 times closer to those of the
    # warped source than the target's are, on these pairs and obama↔astronaut.
    source, target, out = swapped
    for i in range(2):
        src, tgt, swap = _uint8(source[i]), _uint8(target[i]), _uint8(out[i])
        tgt_points = landmarks68(tgt, TEMPLATE)
        warped, covered = piecewise_affine_warp(src, landmarks68(src, TEMPLATE), tgt_points, (256, 256))
        inner = cv2.erode((blend_mask(tgt_points, (256, 256)) & covered).astype(np.uint8), np.ones((5, 5))) > 0

        def gradients(image: np.ndarray) -> np.ndarray:
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
            return np.stack([cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)], axis=-1)[inner]

        ref = gradients(warped)
        assert np.abs(gradients(swap) - ref).mean() < 0.5 * np.abs(gradients(tgt) - ref).mean()


def test_identity_moves_to_the_source(swapped: tuple[torch.Tensor, ...]) -> None:
    # SFace cosine to the source, measured: obama→biden 0.39 and biden→obama 0.42, against 0.12 for the target.
    from fsbench.metrics.identity import SFace, cosine

    source, target, out = swapped
    backend = SFace()
    src, tgt, swap = (backend.features(x[:2], TEMPLATE) for x in (source, target, out))
    assert (cosine(swap, src) > cosine(tgt, src) + 0.15).all()


def test_swapping_a_face_with_itself_changes_little(swapped: tuple[torch.Tensor, ...]) -> None:
    # Measured on 48 crops of the embedded stills and videos: 54.6 dB at worst (Poisson solver round-off).
    _, target, out = swapped
    mse = ((out[2] - target[2]) ** 2).mean().item()
    assert mse == 0 or 10 * np.log10(1 / mse) > 45


def test_deterministic(swapped: tuple[torch.Tensor, ...]) -> None:
    source, target, out = swapped
    assert torch.equal(Classic().swap(source[:1], target[:1]), out[:1])


@pytest.mark.parametrize("role", ["source", "target"])
def test_a_crop_without_a_face_fails_clearly(crops: dict[str, np.ndarray], role: str) -> None:
    face, grey = _tensor([crops["obama"]]), torch.full((1, 3, 256, 256), 0.5)
    source, target = (grey, face) if role == "source" else (face, grey)
    with pytest.raises(ValueError, match=f"item 0 of the batch: classic: {role} crop: no face"):
        Classic().swap(source, target)


def test_rejects_mismatched_batches() -> None:
    with pytest.raises(ValueError, match="same B"):
        Classic().swap(torch.zeros(2, 3, 256, 256), torch.zeros(1, 3, 256, 256))


def test_landmarks68_on_an_aligned_crop(crops: dict[str, np.ndarray]) -> None:
    points = landmarks68(crops["obama"], TEMPLATE)
    assert points.shape == (68, 2) and points.dtype == np.float32
    template = TEMPLATES[TEMPLATE].points_at(256)
    eyes = np.stack([points[36:42].mean(0), points[42:48].mean(0)])  # iBUG eye contours, image-left first
    # the eye centres lie on the template's eye points: measured 0.04 to 0.16 of the inter-ocular distance
    assert (np.linalg.norm(eyes - template[:2], axis=1) < 0.25 * np.linalg.norm(template[1] - template[0])).all()


def test_landmarks68_agrees_across_templates(crops: dict[str, np.ndarray]) -> None:
    # The same face re-aligned to arcface-112 (a tighter crop; the face box is derived from its own points):
    # the points agree with the ffhq-256 ones mapped into it, measured 0.6 to 1.6 px on average.
    matrix = template_to_template(TEMPLATE, 256, "arcface-112", 112)
    small = cv2.warpAffine(crops["biden"], matrix, (112, 112), flags=cv2.INTER_AREA)
    mapped = landmarks68(crops["biden"], TEMPLATE) @ matrix[:, :2].T + matrix[:, 2]
    assert np.linalg.norm(landmarks68(small, "arcface-112") - mapped, axis=1).mean() < 3


@pytest.mark.parametrize("crop, message", [
    (np.full((256, 256, 3), 128, np.uint8), "no face"),
    (np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8), "no face"),
    (np.zeros((256, 200, 3), np.uint8), "square RGB uint8"),
    (np.zeros((256, 256, 3), np.float32), "square RGB uint8"),
])
def test_landmarks68_rejects_what_is_not_an_aligned_face(crop: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        landmarks68(crop, TEMPLATE)


def test_landmarks68_rejects_an_unknown_template(crops: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="unknown template"):
        landmarks68(crops["obama"], "ffhq-1024")
