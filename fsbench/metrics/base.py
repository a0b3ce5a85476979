"""What every metric backend is: a network that turns aligned crops into per-sample feature vectors.

Metrics (identity cosine, retrieval, pose and expression error, Fréchet distance) are computed from these
features; the backend only says what it measured, with which files, under which label.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

Family = Literal["identity", "pose", "expression", "distribution"]  # the built-in families


@dataclass(frozen=True)
class BackendInfo:
    name: str  # registry name
    family: Family | str  # a built-in family, or one a package's metric declares (fsbench/metrics/definitions.py)
    kind: Literal["embedded", "reference"]  # embedded: works out of the box; reference: the paper's network
    label: str  # the name its figures are printed under (only the Inception backend may say FID)
    assets: tuple[str, ...]  # asset names (fsbench.assets) it loads
    dim: int  # feature length
    description: str = ""


def check_crops(crops: torch.Tensor) -> None:
    """Backends take float ``B×3×S×S`` RGB crops in [0, 1]; anything else is a caller's bug, said plainly."""
    if crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[2] != crops.shape[3] or not crops.is_floating_point():
        raise ValueError(f"expected float B×3×S×S RGB crops in [0, 1], got {tuple(crops.shape)} {crops.dtype}")


class Backend(ABC):
    """Feature extractor over aligned crops.

    ``features(crops, template)`` takes float ``B×3×H×W`` RGB crops in [0, 1] aligned with the named template
    (any size) and returns ``B×dim`` float32 on the CPU. A row is NaN where the backend could not measure that
    crop (e.g. no face found); the protocol records such samples as failed. Constructing a backend whose
    reference file is absent raises :class:`fsbench.assets.AssetError` naming the file and the command to add it.
    """

    info: ClassVar[BackendInfo]
    batch_size: ClassVar[int] = 32

    def __init__(self, device: str | torch.device = "cpu") -> None:
        from fsbench import assets

        self.device = torch.device(device)
        for name in self.info.assets:  # a missing file fails here, naming it, not at the first batch
            assets.path(name)

    @abstractmethod
    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        ...

    def weight_sha256(self) -> dict[str, str]:
        """sha256 of every file the backend loaded, for provenance."""
        from fsbench import assets

        return {name: assets.sha256(name) for name in self.info.assets}
