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



@pytest.fixture
def declare(monkeypatch):
    """Declares a metric (a :class:`fsbench.metrics.definitions.MetricDef`) for one test, as an installed package
    would, with the origin ``test``."""
    from fsbench import registry

    reg = registry.metric_definitions
    reg.names()
    monkeypatch.setattr(reg, "_entries", dict(reg._entries))

    def add(spec):
        reg.register(spec.name, spec, origin="test")
        return spec
    return add


@pytest.fixture
def step_run():
    """A minimal :class:`fsbench.train.GANRun` class for tests of the trainer: ``step_run(modules, optimizers,
    step_fn, averages=None)``; its swap passes the target through, its sample grid is an empty file."""
    from fsbench.train import GANRun

    class StepRun(GANRun):
        def __init__(self, modules: dict, optimizers: dict, step_fn, averages: dict | None = None) -> None:
            self.modules, self.optimizers, self.averages, self.step_fn = modules, optimizers, averages or {}, step_fn

        def step(self, step: int) -> dict[str, float]:
            return self.step_fn(step)

        def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return target

        def sample(self, step: int, path) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")

    return StepRun


@pytest.fixture
def quick_pose_fit(monkeypatch) -> list[int]:
    """:func:`fsbench.train.pose_prior.fit` replaced by an untrained prior (the real fit reads every training crop
    with MediaPipe: tests/test_pose_prior.py); returns the list of the crop counts it was called with."""
    from fsbench.train import pose_prior

    fits: list[int] = []

    def quick_fit(crops):
        fits.append(len(crops))
        return pose_prior.PosePrior().eval().requires_grad_(False), {"val_mae_yaw": 0, "val_mae_pitch": 0,
                                                                      "val_mae_roll": 0, "label_std": [0, 0, 0]}

    monkeypatch.setattr(pose_prior, "fit", quick_fit)
    return fits
