"""Training configurations: a method's recipe nests the scaffold's parts (loop, identity loss, in-the-wild
augmentation, weight average, monitor) beside its own fields and its architecture.

A recipe is a named preset or a JSON file of its fields (nested objects for the nested parts); ``fsbench train
--set KEY=JSON`` overrides one field, a nested one by its dotted path (``loop.steps=2000``,
``identity_loss.recognisers=["sface","facenet"]``, ``arch.width=0.25``).
"""
from __future__ import annotations

import json
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar

from fsbench.errors import UsageError

T = TypeVar("T")

PRECISIONS = ("fp32", "bf16", "auto")
# AugmentConfig's fields by kind, and the best JPEG quality it draws
_PROBABILITIES = ("p", "geometry", "colour", "blur", "low_res", "noise", "jpeg", "occlusion")
_STRENGTHS = ("shift", "scale", "rotate_deg", "white_balance", "gamma", "brightness", "contrast", "saturation",
              "blur_sigma", "noise_sigma")
JPEG_BEST = 95


@dataclass(frozen=True)
class LoopConfig:
    """How the trainer runs a recipe: steps, batch per rank, seed (see :func:`fsbench.train.loop.step_rng`), how
    often it checkpoints, logs losses and draws a sample grid, and the precision of its steps (``bf16``: under
    bfloat16 autocast, weights, optimiser state and checkpoints staying fp32; ``auto``: bf16 where the device has
    native bf16 kernels, else fp32)."""

    steps: int = 500_000
    batch: int = 8
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 10
    sample_every: int = 500
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UsageError(f"training precision must be fp32, bf16 or auto, got {self.precision!r}")


@dataclass(frozen=True)
class IdentityLossConfig:
    """The identity loss (:class:`fsbench.train.identity.IdentityEnsemble`): its recognisers (never dlib; ():
    the generator's identity encoder alone, as the papers) and whether each sees a random augmentation."""

    recognisers: tuple[str, ...] = ()
    augment: bool = False

    def resolved(self, encoder: str) -> tuple[str, ...]:
        """The loss's recognisers, given the generator's identity encoder."""
        return self.recognisers or (encoder,)


@dataclass(frozen=True)
class AverageConfig:
    """An exponential moving average of the generators' weights (:mod:`fsbench.train.average`; not in the papers):
    the monitor scores it and the export holds it. ``decay`` 0: none, the live weights are exported."""

    decay: float = 0.0


@dataclass(frozen=True)
class AugmentConfig:
    """In-the-wild degradations of training crops (:class:`fsbench.train.augment.Degradation`). ``p`` of the crops are degraded (0: none,
    the crops as they are); each of those gets each degradation with its own probability (``geometry``,
    ``colour``, ``blur``, ``low_res``, ``noise``, ``jpeg``, ``occlusion``), at a strength drawn uniformly up to its
    limit (blur and noise sigmas from a quarter of it, so that a chosen one shows). Shifts, blur sigmas and resampled sides are fractions of the crop side, so a recipe means the same at
    any resolution; ``noise_sigma`` is in image units (the range [0, 1])."""

    p: float = 0.0
    geometry: float = 0.5
    shift: float = 0.04  # ± per axis
    scale: float = 0.08  # ± relative
    rotate_deg: float = 8.0  # ±
    colour: float = 0.8
    white_balance: float = 0.2  # red gain 1 + w, blue gain 1 − w, w in ±white_balance; green tint a quarter of it
    gamma: float = 0.35  # exponent exp(±gamma)
    brightness: float = 0.25  # ± relative, as contrast and saturation
    contrast: float = 0.3
    saturation: float = 0.4
    blur: float = 0.3
    blur_sigma: float = 0.01
    low_res: float = 0.4
    low_res_min: float = 0.35  # the smallest resampled side
    noise: float = 0.3
    noise_sigma: float = 0.04
    jpeg: float = 0.5
    jpeg_quality: int = 30  # the lowest JPEG quality; the highest is JPEG_BEST
    occlusion: float = 0.25

    def __post_init__(self) -> None:
        bad = [n for n in _PROBABILITIES if not 0 <= getattr(self, n) <= 1]
        bad += [n for n in _STRENGTHS if getattr(self, n) < 0]
        bad += [] if 0 < self.low_res_min <= 1 else ["low_res_min"]
        bad += [] if 1 <= self.jpeg_quality <= JPEG_BEST else ["jpeg_quality"]
        if bad:
            raise UsageError(f"augment: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)} out of range "
                             f"(probabilities in [0, 1], strengths at least 0, low_res_min in (0, 1], jpeg_quality "
                             f"1 to {JPEG_BEST})")


@dataclass(frozen=True)
class MonitorConfig:
    """Validation swaps scored with dlib every ``every`` steps into ``monitor.jsonl``
    (:class:`fsbench.train.monitor.Monitor`); 0: none."""

    every: int = 0


def _set(values: dict[str, Any], key: str, value: Any, cls: type) -> None:
    *parents, last = key.split(".")
    node = values
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise _unknown(cls, [key])
        node = node[part]
    node[last] = value


def keys(cls: type) -> list[str]:
    """Every settable key of a recipe class, nested ones by their dotted path."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        sub = hints[f.name]
        out += [f"{f.name}.{k}" for k in keys(sub)] if is_dataclass(sub) else [f.name]
    return out


def _unknown(root: type, names: list[str]) -> ValueError:
    listed = ", ".join(f"'{n}'" for n in names)
    return UsageError(f"unknown config key{'s' if len(names) > 1 else ''} {listed} for {root.__name__} "
                      f"(known: {', '.join(keys(root))})")


def build(cls: type[T], values: Mapping[str, Any], root: type | None = None, prefix: str = "") -> T:
    """``cls`` from nested plain values; unknown keys are errors that list the known ones (of ``root``, the recipe,
    by dotted paths), and JSON lists become tuples where the field's default is a tuple."""
    root = root or cls
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise _unknown(root, [prefix + k for k in unknown])
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        if is_dataclass(hints[key]):
            if not isinstance(value, Mapping):
                raise UsageError(f"config key '{prefix + key}' of {root.__name__} takes an object of "
                                 f"{hints[key].__name__} fields, got {value!r}")
            value = build(hints[key], value, root, f"{prefix}{key}.")
        elif isinstance(value, list) and isinstance(known[key].default, tuple):
            value = tuple(value)
        out[key] = value
    try:
        return cls(**out)
    except TypeError as err:
        raise UsageError(f"{root.__name__}: {err}") from None


def _preset_values(cls: type, presets: Mapping[str, Any], name: str) -> dict[str, Any]:
    if name in presets:
        return asdict(presets[name])
    if Path(name).is_file():
        try:
            values = json.loads(Path(name).read_text())
        except json.JSONDecodeError as err:
            raise UsageError(f"{name}: not a JSON object of {cls.__name__} fields ({err})") from err
        if not isinstance(values, dict):
            raise UsageError(f"{name}: not a JSON object of {cls.__name__} fields")
        return asdict(build(cls, values))
    raise UsageError(f"unknown config '{name}' for {cls.__name__} (known: {', '.join(presets)}, or a JSON file)")


def resolve_config(cls: type[T], presets: Mapping[str, T], name: str, overrides: Mapping[str, Any]) -> T:
    """``cls`` from ``presets[name]`` or from the JSON file ``name`` (fields not in it keep their defaults), then
    ``overrides`` (dotted keys for nested fields). Unknown names and keys are errors that list the known ones."""
    values = _preset_values(cls, presets, name)
    for key, value in overrides.items():
        _set(values, key, value, cls)
    return build(cls, values)
