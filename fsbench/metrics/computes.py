"""The computes of the built-in metrics (fsbench/metrics/definitions.py): backend features → metric values.

Each takes the :class:`~fsbench.metrics.definitions.MetricInputs` of one backend slot and the metric's declaration
and returns one value per pair (None where unmeasurable) or, for a set-level metric, one value.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from fsbench.metrics.distribution import frechet_from_features
from fsbench.metrics.identity import cosine, identity_centers, retrieval_topk

if TYPE_CHECKING:
    from fsbench.metrics.definitions import MetricDef, MetricInputs


def finite(x: float) -> float | None:
    """``x`` as a float, None where it is not finite."""
    return None if not np.isfinite(x) else float(x)


def cosine_to_source(inputs: MetricInputs, metric: MetricDef) -> list[float | None]:
    """Cosine of each swap's embedding with its source's."""
    values = cosine(torch.from_numpy(inputs.swap), torch.from_numpy(inputs.source)).numpy()
    return [finite(v) for v in values]


def distance_to_target(inputs: MetricInputs, metric: MetricDef) -> list[float | None]:
    """L2 distance of each swap's feature vector to its target's (pose angles, expression vectors)."""
    return [finite(v) for v in np.linalg.norm(inputs.swap - inputs.target, axis=1)]


def _hits(inputs: MetricInputs, k: int, by_identity: bool) -> list[float | None]:
    """Whether the source identity is among the ``k`` nearest gallery faces (or identity centres) of each swap;
    None where the swap could not be measured."""
    swaps, gallery = torch.from_numpy(inputs.swap), torch.from_numpy(inputs.gallery)
    labels = inputs.gallery_identities
    if by_identity:
        gallery, labels = identity_centers(gallery, labels)
    hits = retrieval_topk(swaps, gallery, inputs.source_identities, labels, ks=[k])[k]
    valid = torch.isfinite(swaps).all(dim=1)
    return [float(hit) if ok else None for hit, ok in zip(hits.tolist(), valid.tolist())]


def top_k_frame(inputs: MetricInputs, metric: MetricDef) -> list[float | None]:
    """Top-k retrieval in the per-frame gallery (every real face of the protocol)."""
    assert metric.top_k is not None
    return _hits(inputs, metric.top_k, by_identity=False)


def top_k_identity(inputs: MetricInputs, metric: MetricDef) -> list[float | None]:
    """Top-k retrieval among the gallery's identity centres."""
    assert metric.top_k is not None
    return _hits(inputs, metric.top_k, by_identity=True)


def finite_frechet(a: np.ndarray, b: np.ndarray) -> float | None:
    """Fréchet distance over the rows a backend could measure; None with fewer than two on either side."""
    a, b = a[np.isfinite(a).all(1)], b[np.isfinite(b).all(1)]
    return finite(frechet_from_features(a, b)) if len(a) > 1 and len(b) > 1 else None


def frechet_to_gallery(inputs: MetricInputs, metric: MetricDef) -> float | None:
    """Fréchet distance of the swaps' features to the gallery's real faces'."""
    return finite_frechet(inputs.swap, inputs.gallery)
