"""A differentiable head-pose estimate for training losses: a small CNN fitted to MediaPipe's pose of the training
crops, so that a generator can be told to keep the target's pose.

Why: a swap takes a share of the source's head pose when the identity loss's recognisers are not pose-invariant
(the monitor's ``pose_from_source`` measures that share).
MediaPipe's pose is not differentiable; this network is its stand-in. It sees training identities
only (it is fitted on the training crops), and the loss runs it on both the swap and the target, so a bias it has
on a face cancels.

Its labels are MediaPipe's, the benchmark's second pose column (``pose_error@mediapipe-pose``), so that column is
not independent of a method trained with this term; the default ``pose_error`` (``whenet``) never takes
part in training. dlib's 68 landmarks with a perspective-n-point fit to a generic 3-D head would be an independent
teacher, but they agree with MediaPipe on yaw and hardly on pitch and roll.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fsbench.train.checkpoint import export_weights
from fsbench.weights import load_weights
from fsbench.train.data import FaceCrops
from fsbench.train.identity import photometric

INPUT = 64  # px: pose is a coarse property of the face, and the loss network should cost little beside the GAN
SCALE_DEG = 5.0  # the loss's unit: a 5° error in one angle costs 1
FILE = "pose_prior.safetensors"
VAL_SHARE = 0.1  # identities held out of the fit to report its accuracy


class PosePrior(nn.Module):
    """Crops ``B×3×H×W`` in [0, 1] (the training template) → ``B×3`` (yaw, pitch, roll) in degrees, MediaPipe's
    convention. Four stride-2 convolutions and a linear layer on the 4×4 map (position matters for pose)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((3, 16), (16, 32), (32, 64), (64, 128)):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1), nn.GroupNorm(8, cout), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(128 * (INPUT // 16) ** 2, 3)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(crops.float(), size=(INPUT, INPUT), mode="bilinear", align_corners=False, antialias=True)
        return self.head(self.features(x * 2 - 1).flatten(1)) * SCALE_DEG


def mirror_pose(pose: torch.Tensor) -> torch.Tensor:
    """The pose of the horizontally mirrored face: yaw and roll change sign, pitch does not."""
    return pose * pose.new_tensor([-1.0, 1.0, -1.0])


def pose_loss(prior: PosePrior, swap: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per sample: the squared pose difference of ``swap`` (gradients flow) and ``target`` (no gradients), crops in
    [0, 1], in units of ``SCALE_DEG``, summed over the three angles."""
    with torch.no_grad():
        want = prior(target)
    return ((prior(swap) - want) / SCALE_DEG).pow(2).sum(1)


def _labels(crops: FaceCrops) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The crops MediaPipe reads, with their pose (degrees) and identity labels."""
    from fsbench.metrics.pose import read_faces

    x = crops.tensor(np.arange(len(crops)))
    pose = read_faces(x, crops.template)[0]
    ok = pose.isfinite().all(1)
    return x[ok], pose[ok], torch.from_numpy(crops.identities)[ok]


def fit(crops: FaceCrops, steps: int = 3000, batch: int = 64, seed: int = 0) -> tuple[PosePrior, dict[str, float]]:
    """Fit a :class:`PosePrior` to MediaPipe's reading of ``crops`` (mirrored at random, colour-, blur- and
    resolution-augmented (:func:`fsbench.train.identity.photometric`); no geometric augmentation, which would change
    the pose). Returns it (eval mode) with the mean absolute error per angle on held-out identities."""
    x, pose, ids = _labels(crops)
    gen = torch.Generator().manual_seed(seed)
    names = ids.unique()
    val_ids = names[torch.randperm(len(names), generator=gen)[: max(1, round(len(names) * VAL_SHARE))]]
    val = torch.isin(ids, val_ids)
    train_x, train_pose = x[~val], pose[~val]
    with torch.random.fork_rng(devices=[]):  # the caller's global generator is left where it was
        torch.manual_seed(seed)
        net = PosePrior()
        opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
        for _ in range(steps):
            pick = torch.randint(len(train_x), (batch,), generator=gen)
            xb, pb = train_x[pick], train_pose[pick]
            flip = torch.rand(batch, generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            pb = torch.where(flip[:, None], mirror_pose(pb), pb)
            loss = F.smooth_l1_loss(net(photometric(xb)) / SCALE_DEG, pb / SCALE_DEG)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        err = (net(x[val]) - pose[val]).abs().mean(0)
    return net, {"val_mae_yaw": round(float(err[0]), 3), "val_mae_pitch": round(float(err[1]), 3),
                 "val_mae_roll": round(float(err[2]), 3), "val_faces": int(val.sum()),
                 "label_std": [round(float(s), 3) for s in pose.std(0)], "steps": steps, "seed": seed}


def pose_prior(run_dir: Path, crops: FaceCrops) -> PosePrior:
    """The run's pose prior: ``run_dir/pose_prior.safetensors`` when an earlier call fitted it, else fitted now and
    saved there (a function of the training crops and the seed, so a resumed run keeps the one it started with)."""
    path = run_dir / FILE
    if path.exists():
        return load_weights(path, PosePrior()).eval().requires_grad_(False)
    net, report = fit(crops)
    run_dir.mkdir(parents=True, exist_ok=True)
    export_weights(path, net, {"fit": json.dumps(report), "template": crops.template})
    print(f"pose prior fitted ({path}): held-out mean abs error yaw {report['val_mae_yaw']}°, "
          f"pitch {report['val_mae_pitch']}°, roll {report['val_mae_roll']}° (label std {report['label_std']})")
    return net

