"""Hopenet (Ruiz et al., "Fine-Grained Head Pose Estimation Without Keypoints", CVPR-W 2018) in plain torch.

Parameter names and shapes are those of ``Hopenet`` in natanielruiz/deep-head-pose ``code/hopenet.py``: the
torchvision ResNet-50 trunk, ``fc_yaw``/``fc_pitch``/``fc_roll`` (2048→66) and the vestigial ``fc_finetune``
(2051→3) that the official class creates and never calls, so ``hopenet_robust_alpha1.pkl`` loads with
``strict=True``. (``fc_angles`` belongs to that repository's other class, the plain ResNet regressor.)

Preprocessing follows ``code/test_on_video_dlib.py``, the official video script whose face box is relative to
the detection: it loosens dlib's CNN face box to ``[x − w/2, x + w + w/2] × [y − 3h/4, y + h + h/4]`` (twice
the box, shifted up), clips it to the frame, and applies ``Scale(224)`` (shorter side to 224, bilinear),
``CenterCrop(224)`` and ImageNet normalisation. (``test_on_video.py`` instead adds fixed 50/50/50/30 pixel
margins to a Dockerface box, which depends on the video's resolution.) Aligned crops carry no detection, so
the face box is the one dlib's CNN detector typically returns for a face aligned to the template
(:data:`FACE_BOX_FFHQ256`), and the aligned crop plays the part of the frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fsbench.faces.align import template_to_template
from fsbench.nets.imagenet import expected_angle, normalise
from fsbench.nets.resnet import ResNet

NUM_BINS = 66
BIN_OFFSET = 99.0  # bin i covers [3i − 99, 3i − 96)
INPUT_SIZE = 224

# dlib's CNN face detector (mmod_human_face_detector.dat, upsampled once, as test_on_video_dlib.py calls it) on
# 49 faces of the embedded media, expressed in ffhq-256 crop coordinates through each face's five YuNet points:
# the per-coordinate median (left, top, right, bottom); the spread between faces is 8 to 13 px (std).
FACE_BOX_FFHQ256 = (53.8, 75.7, 188.5, 211.1)


class Hopenet(ResNet):
    """ResNet-50 with three 66-bin classification heads; ``forward`` returns (yaw, pitch, roll) logits."""

    def __init__(self) -> None:
        super().__init__((3, 4, 6, 3), num_classes=None)
        self.fc_yaw = nn.Linear(self.feature_dim, NUM_BINS)
        self.fc_pitch = nn.Linear(self.feature_dim, NUM_BINS)
        self.fc_roll = nn.Linear(self.feature_dim, NUM_BINS)
        self.fc_finetune = nn.Linear(self.feature_dim + 3, 3)  # unused, kept for the official state dict

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = torch.flatten(self.features(x), 1)
        return self.fc_yaw(f), self.fc_pitch(f), self.fc_roll(f)


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """Expected angle of the softmax over the last dimension: ``Σ softmax · idx · 3 − 99`` (official test code)."""
    return expected_angle(logits, BIN_OFFSET)


def box_in_crop(box_ffhq256: tuple[float, float, float, float], template: str,
                size: int) -> tuple[np.ndarray, float, float]:
    """(centre, half width, half height) in a ``template`` crop of side ``size`` of a face box given in ffhq-256
    crop coordinates at 256 (left, top, right, bottom)."""
    m = template_to_template("ffhq-256", 256, template, size)
    x0, y0, x1, y1 = box_ffhq256
    centre = m[:, :2] @ np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + m[:, 2]
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # templates are upright: rotation is negligible
    return centre, (x1 - x0) * scale / 2, (y1 - y0) * scale / 2


def load_hopenet(path: str | Path) -> Hopenet:
    """The official state dict (``torch.load(weights_only=True)``) in a :class:`Hopenet`, strict, in eval mode.

    Files saved before PyTorch 0.4.1 have no BatchNorm ``num_batches_tracked``; torch fills those in itself.
    """
    net = Hopenet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


def input_box(template: str, size: int) -> tuple[int, int, int, int]:
    """The loosened, clipped box (left, top, right, bottom; integer pixels, right/bottom exclusive) that the
    official script would cut from a frame that is a ``template`` crop of side ``size``."""
    centre, half_w, half_h = box_in_crop(FACE_BOX_FFHQ256, template, size)
    left, top = int(round(centre[0] - half_w)), int(round(centre[1] - half_h))
    w, h = int(round(2 * half_w)), int(round(2 * half_h))
    # the official arithmetic on integer boxes (Python 2 integer division)
    left, right = left - 2 * w // 4, left + w + 2 * w // 4
    top, bottom = top - 3 * h // 4, top + h + h // 4
    return max(left, 0), max(top, 0), min(right, size), min(bottom, size)


def preprocess(crops: torch.Tensor, template: str) -> torch.Tensor:
    """``B×3×224×224`` network input from ``B×3×S×S`` RGB crops in [0, 1] aligned with ``template``."""
    left, top, right, bottom = input_box(template, crops.shape[-1])
    x = crops[..., top:bottom, left:right]
    h, w = x.shape[-2:]
    # Scale(224): the shorter side becomes 224 (PIL bilinear, which torch's antialiased bilinear matches)
    oh, ow = (INPUT_SIZE, int(INPUT_SIZE * w / h)) if h <= w else (int(INPUT_SIZE * h / w), INPUT_SIZE)
    x = F.interpolate(x, size=(oh, ow), mode="bilinear", antialias=True, align_corners=False)
    i, j = int((oh - INPUT_SIZE) / 2 + 0.5), int((ow - INPUT_SIZE) / 2 + 0.5)  # CenterCrop, Python 2 rounding
    return normalise(x[..., i:i + INPUT_SIZE, j:j + INPUT_SIZE])
