"""A metric over a built-in family, and a metric with a backend of its own, declared to fsbench by entry points.

* ``id_cosine_target``: cosine of the swap's identity embedding with the target's (how much of the target's
  identity a swap keeps), measured by every identity backend of the run;
* ``colour_error``: L2 distance of the mean colour of the swap's and the target's central face region, measured
  by the ``mean-colour`` backend of the family ``colour``.
"""
from __future__ import annotations

import numpy as np
import torch

from fsbench.metrics.base import Backend, BackendInfo
from fsbench.metrics.definitions import MetricDef, MetricInputs


def cosine_to_target(inputs: MetricInputs, metric: MetricDef) -> list[float | None]:
    swap = inputs.swap / np.linalg.norm(inputs.swap, axis=1, keepdims=True)
    target = inputs.target / np.linalg.norm(inputs.target, axis=1, keepdims=True)
    return [float(c) if np.isfinite(c) else None for c in (swap * target).sum(axis=1)]


ID_COSINE_TARGET = MetricDef(
    "id_cosine_target", "identity", "cosine(swap, target)", False, ("swap", "target"), cosine_to_target,
    "cosine of the swapped face's and the target face's identity embeddings", unit="cosine")

COLOUR_ERROR = MetricDef(
    "colour_error", "colour", "L2 of mean RGB of the central half, swap vs target", False, ("swap", "target"),
    "fsbench.metrics.computes:distance_to_target", "how far the swap's mean face colour is from the target's",
    unit="RGB in [0, 1]", label="colour ({backend})", default_backend="mean-colour")


class MeanColour(Backend):
    info = BackendInfo("mean-colour", "colour", "embedded", "mean-colour", (), 3,
                       "mean RGB of the central half of the crop")

    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        side = crops.shape[-1]
        centre = crops[:, :, side // 4: 3 * side // 4, side // 4: 3 * side // 4]
        return centre.mean(dim=(2, 3)).float().cpu()
