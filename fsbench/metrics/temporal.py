"""Temporal consistency of a swapped clip, each figure relative to the target's own motion.

The swaps of one source onto consecutive frames of one target video form a clip. The sequence functions
(:func:`identity_jitter`, :func:`pose_jitter`, :func:`flicker`) take the per-frame features (or crops) of the
swapped frames and of the target frames, in frame order and measured the same way (same backend, same crop framing),
and return one value for the sequence: how much more the swap changes from frame to frame than the target does. A
swap that is the target (copy-target) reads exactly 0; a positive value is jitter or flicker the swap adds, a
negative one a swap steadier than the target it follows. The ``clip_*`` functions are the computes of the declared
temporal metrics (fsbench/metrics/definitions.py): a sequence function over each clip of the swaps and the targets
as the method saw them, None for a clip under two frames.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from fsbench.metrics.computes import finite

if TYPE_CHECKING:
    from fsbench.metrics.definitions import MetricDef, MetricInputs


def _check_sequence(swap: np.ndarray, target: np.ndarray) -> None:
    if swap.shape != target.shape or len(swap) < 2:
        raise ValueError(f"expected swap and target sequences of the same shape with at least 2 frames, got "
                         f"{swap.shape} and {target.shape}")


def _step_cosine_distance(embeddings: np.ndarray) -> np.ndarray:
    """1 − cosine of each frame's embedding with the next frame's."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return 1.0 - np.sum(unit[1:] * unit[:-1], axis=1)


def identity_jitter(swap: np.ndarray, target: np.ndarray) -> float:
    """Mean cosine distance between consecutive swapped frames' identity embeddings (``T×D``), minus the same for
    the target's frames."""
    swap, target = np.asarray(swap, np.float64), np.asarray(target, np.float64)
    _check_sequence(swap, target)
    return float(_step_cosine_distance(swap).mean() - _step_cosine_distance(target).mean())


def pose_jitter(swap: np.ndarray, target: np.ndarray) -> float:
    """Mean over consecutive frames of the L2 norm of (the swap's pose change − the target's pose change), poses
    being ``T×3`` (yaw, pitch, roll) in degrees: head motion the swap makes that the target does not."""
    swap, target = np.asarray(swap, np.float64), np.asarray(target, np.float64)
    _check_sequence(swap, target)
    return float(np.linalg.norm(np.diff(swap, axis=0) - np.diff(target, axis=0), axis=1).mean())


def _step_difference(frames: np.ndarray, mask: np.ndarray) -> float:
    """Mean over consecutive frames of the mask-weighted mean absolute difference of the pixels."""
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=-1)  # T−1×H×W, over the colour channels
    return float((diff * mask).sum(axis=(1, 2)).mean() / mask.sum())


def flicker(swap: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute frame-to-frame change of the swapped crops (``T×H×W×3``, 8-bit levels) inside the soft face
    ``mask`` (``H×W`` in [0, 1]), minus the same for the target's crops."""
    swap, target = np.asarray(swap, np.float32), np.asarray(target, np.float32)
    _check_sequence(swap, target)
    mask = np.asarray(mask, np.float32)
    if mask.shape != swap.shape[1:3] or mask.sum() <= 0:
        raise ValueError(f"expected a non-empty {swap.shape[1:3]} face mask, got shape {mask.shape}")
    return _step_difference(swap, mask) - _step_difference(target, mask)


def _per_clip(clips: list[list[int]] | None, swap: Sequence[np.ndarray] | None, target: Sequence[np.ndarray] | None,
              sequence: Callable[..., float], *extra: np.ndarray) -> list[float | None]:
    """``sequence`` over each clip's rows of ``swap`` and ``target`` (feature arrays, or lists of crops), stacked one
    clip at a time, and ``extra``; None for a clip under two frames."""
    assert clips is not None and swap is not None and target is not None

    def rows(x: Sequence[np.ndarray], clip: list[int]) -> np.ndarray:
        return np.stack([x[r] for r in clip])
    return [finite(sequence(rows(swap, clip), rows(target, clip), *extra)) if len(clip) > 1 else None
            for clip in clips]


def clip_identity_jitter(inputs: MetricInputs, metric: MetricDef) -> list[float | None]:
    """:func:`identity_jitter` of each clip's swap and target-as-seen embeddings."""
    return _per_clip(inputs.clips, inputs.swap, inputs.target_seen, identity_jitter)


def clip_pose_jitter(inputs: MetricInputs, metric: MetricDef) -> list[float | None]:
    """:func:`pose_jitter` of each clip's swap and target-as-seen head poses."""
    return _per_clip(inputs.clips, inputs.swap, inputs.target_seen, pose_jitter)


def clip_flicker(inputs: MetricInputs, metric: MetricDef) -> list[float | None]:
    """:func:`flicker` of each clip's swapped and target-as-seen crops in the template's face mask."""
    assert inputs.pixels is not None
    return _per_clip(inputs.clips, inputs.pixels.swap, inputs.pixels.target_seen, flicker, inputs.pixels.mask)
