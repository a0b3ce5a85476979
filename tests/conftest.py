"""Fixtures shared by several test modules."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def face_crop() -> torch.Tensor:
    from fsbench import assets
    from fsbench.faces import io
    from fsbench.faces.align import align_face
    from fsbench.faces.detect import detect_face

    image = io.read_image(assets.path("media/face_recognition/obama.jpg"))
    crop = align_face(image, detect_face(image).landmarks, "ffhq-256", 128)[0]
    return torch.from_numpy(crop).permute(2, 0, 1).float() / 255
