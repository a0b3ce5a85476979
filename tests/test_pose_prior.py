"""The pose prior behind FaceShifter's pose term: MediaPipe's mirror convention, a fit that learns,
a loss that only moves the swap, one fit per run."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fsbench.metrics.pose import read_faces
from fsbench.train import pose_prior
from fsbench.train.data import FaceCrops


def _rolled(crop: torch.Tensor, degrees: list[float]) -> torch.Tensor:
    """``crop`` rotated in the image plane by each angle (a known change of roll)."""
    angle = torch.tensor(degrees) * math.pi / 180
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    x = crop.expand(len(degrees), -1, -1, -1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="reflection", align_corners=False)


def test_mirroring_flips_yaw_and_roll_as_mediapipe_reads_them(face_crop) -> None:
    crops = _rolled(face_crop, [-8.0, 0.0, 8.0])
    pose = read_faces(crops, "ffhq-256")[0]
    mirrored = read_faces(crops.flip(-1), "ffhq-256")[0]
    assert pose.isfinite().all() and mirrored.isfinite().all()
    assert (pose_prior.mirror_pose(pose) - mirrored).abs().max() < 1.5  # MediaPipe's own noise: ~0.4° measured
    assert (pose[2, 2] - pose[0, 2]).abs() > 10  # the rotations are read as roll, so the check has a signal


def test_fit_learns_roll_and_reports_held_out_error(face_crop) -> None:
    degrees = [float(d) for d in np.linspace(-12, 12, 25)]
    images = (_rolled(face_crop, degrees) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    crops = FaceCrops(images=images, identities=np.arange(25) % 5, names=[f"p{i}" for i in range(5)],
                      template="ffhq-256")
    before = torch.random.get_rng_state()
    net, report = pose_prior.fit(crops, steps=300, batch=16)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert report["val_faces"] == 5 and report["steps"] == 300
    label_std = report["label_std"][2]
    assert label_std > 5 and report["val_mae_roll"] < 0.5 * label_std  # better than predicting the mean


def test_pose_loss_is_zero_on_the_target_and_moves_only_the_swap(face_crop) -> None:
    torch.manual_seed(0)
    prior = pose_prior.PosePrior().eval().requires_grad_(False)
    target = _rolled(face_crop, [0.0, 5.0])
    assert pose_prior.pose_loss(prior, target, target).abs().max() == 0
    swap = _rolled(face_crop, [10.0, -5.0]).requires_grad_(True)
    target.requires_grad_(True)
    loss = pose_prior.pose_loss(prior, swap, target)
    assert loss.shape == (2,) and (loss > 0).all()
    loss.sum().backward()
    assert swap.grad is not None and swap.grad.abs().sum() > 0 and target.grad is None


def test_a_run_fits_its_prior_once_and_reloads_it(tmp_path: Path, monkeypatch) -> None:
    crops = FaceCrops(images=np.zeros((2, 64, 64, 3), np.uint8), identities=np.array([0, 1]), names=["a", "b"],
                      template="ffhq-256")
    fitted = []

    def fake_fit(c: FaceCrops) -> tuple[pose_prior.PosePrior, dict]:
        fitted.append(c)
        torch.manual_seed(len(fitted))
        return pose_prior.PosePrior().eval(), {"val_mae_yaw": 1.0, "val_mae_pitch": 1.0, "val_mae_roll": 1.0,
                                               "label_std": [1.0, 1.0, 1.0]}

    monkeypatch.setattr(pose_prior, "fit", fake_fit)
    first = pose_prior.pose_prior(tmp_path / "run", crops)
    again = pose_prior.pose_prior(tmp_path / "run", crops)
    assert len(fitted) == 1 and (tmp_path / "run" / pose_prior.FILE).exists()
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert not again.training and not any(p.requires_grad for p in again.parameters())
