"""Per-sample scoring: metric backends' features of swaps and real crops, turned into the protocol's values.

The runner prepares crops, swaps, caches and writes results; what a swap scores is decided here.
"""
from __future__ import annotations

import difflib
import sys
from typing import Any, Iterable

import numpy as np
import torch
from tqdm import tqdm

from fsbench.errors import UsageError
from fsbench.faces.crops import EVAL_TEMPLATE, CropStore, to_tensor
from fsbench.metrics.base import Backend
from fsbench.metrics.computes import finite
from fsbench.metrics.definitions import (INPUTS, MetricDef, MetricInputs, figure_key, metric, plugin_metrics, slot,
                                         slot_family)
from fsbench.metrics.identity import cosine
from fsbench.progress import bar as progress_bar
from fsbench.protocols.base import Item, Pair

# The primary backend of each family, and the further ones every run also reports (figure names in
# fsbench/metrics/definitions.py). The default pose_error comes from an estimator no method trains against;
# MediaPipe's pose, which FaceShifter's pose term was fitted to, stays beside it. Identity is reported by dlib's
# ResNet and by ArcFace.
DEFAULT_BACKENDS = {"identity": "dlib", "pose": "hopenet-shufflenet", "expression": "mediapipe-blendshapes",
                    "distribution": "mobilenet-v2"}
EXTRA_BACKENDS = {"identity": ("arcface-mbf",), "pose": ("mediapipe-pose",)}


def default_backends() -> dict[str, str]:
    """Family → primary backend: :data:`DEFAULT_BACKENDS`, then the ``default_backend`` a metric declared by another
    package names for a family of its own."""
    extra = {m.family: m.default_backend for m in plugin_metrics()
             if m.family not in DEFAULT_BACKENDS and m.default_backend}
    return {**DEFAULT_BACKENDS, **extra}


def chosen_backends(families: set[str] | list[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Slot → backend name for a run measuring ``families``, in the order of :func:`default_backends` (MediaPipe's
    pose reading comes before the blendshapes that reuse it): each family's primary backend (``overrides`` of
    family → name replace the default), then its further default backends other than that primary. A family
    without a default backend is refused."""
    overrides = overrides or {}
    defaults = default_backends()
    orphans = sorted(set(families) - set(defaults))
    if orphans:
        raise UsageError(f"no backend measures metric family {', '.join(orphans)}: a metric of a family of its own "
                         f"names the backend that measures it (default_backend)")
    chosen: dict[str, str] = {}
    for family in [f for f in defaults if f in families]:
        primary = overrides.get(family, defaults[family])
        chosen[slot(family)] = primary
        chosen.update({slot(family, extra): extra for extra in EXTRA_BACKENDS.get(family, ()) if extra != primary})
    return chosen


def check_backend_choice(requested: dict[str, str]) -> None:
    """Refuse a ``--backend FAMILY=NAME`` choice whose family is unknown or whose backend measures another family
    (an unknown backend name is the registry's UnknownNameError): a misspelt family would be ignored silently."""
    from fsbench import registry

    families = default_backends()
    for family, name in requested.items():
        if family not in families:
            close = difflib.get_close_matches(family, list(families), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"--backend {family}={name}: unknown metric family '{family}'{hint}; the families "
                             f"are {', '.join(families)}")
        measures = registry.metrics.get(name).info.family
        if measures != family:
            raise UsageError(f"--backend {family}={name}: backend '{name}' measures {measures}, not {family}")


def choose_backends(requested: dict[str, str], families: Iterable[str]) -> dict[str, str]:
    """Slot → backend name for a run measuring ``families`` (:func:`chosen_backends`), after refusing a requested
    family or backend that does not exist or does not match; a requested family the protocol does not measure is
    named in a warning."""
    check_backend_choice(requested)
    families = set(families)
    unused = sorted(set(requested) - families)
    if unused:
        print(f"warning: this protocol measures no {', '.join(unused)}: --backend "
              f"{', '.join(f'{f}={requested[f]}' for f in unused)} is not used", file=sys.stderr)
    return chosen_backends(families, requested)


def backend_features(backend: Backend, crops: list[np.ndarray], template: str, bar: tqdm | None = None) -> np.ndarray:
    """``backend``'s features of uint8 RGB crops aligned with ``template``, in its batches; ``bar`` counts crops."""
    out = []
    for start in range(0, len(crops), backend.batch_size):
        batch = to_tensor(crops[start:start + backend.batch_size]).to(backend.device)
        with torch.no_grad():
            out.append(backend.features(batch, template).float().cpu().numpy())
        if bar is not None:
            bar.update(len(batch))
    return np.concatenate(out) if out else np.zeros((0, backend.info.dim), np.float32)


def clips(pairs: list[Pair]) -> list[list[int]]:
    """The rows of ``pairs`` grouped into clips (one source swapped into frames of one target video), each in
    frame order; pairs of still targets form no clip."""
    groups: dict[tuple, list[int]] = {}
    for row, p in enumerate(pairs):
        if p.target.frame is not None:
            key = (p.source.id, p.target.asset, p.target.path, p.target.face_index)
            groups.setdefault(key, []).append(row)
    return [sorted(rows, key=lambda r: pairs[r].target.frame) for rows in groups.values()]


def _inputs_by_family(specs: list[MetricDef]) -> dict[str, list[str]]:
    """Family → the inputs its metrics read, in the order of ``INPUTS`` (the order their features are computed)."""
    return {family: [i for i in INPUTS if any(i in m.inputs for m in specs if m.family == family)]
            for family in dict.fromkeys(m.family for m in specs)}


def score(metric_names: tuple[str, ...], backends: dict[str, Backend], scored: list[Pair], swaps: list[np.ndarray],
          crops: CropStore, gallery: list[Item], method_template: str,
          progress: bool = False) -> tuple[list[dict], dict[str, float | None]]:
    """Per-sample metric values (None where unmeasurable) and set-level values, named by figure
    (``fsbench.metrics.definitions.figure_key``): every declared metric in ``metric_names`` (see
    fsbench/metrics/definitions.py) once for each backend slot of its family in ``backends``.

    Each slot's backend embeds the inputs its family's metrics read (swaps, sources, targets, gallery), once;
    with ``progress``, one bar counts those crops."""
    specs = [metric(m) for m in metric_names]
    needs = _inputs_by_family(specs)
    active = {s: b for s, b in backends.items() if slot_family(s) in needs}
    gallery_ok = [g for g in gallery if g.id in crops.crops]
    real = {"source": [p.source for p in scored], "target": [p.target for p in scored], "gallery": gallery_ok}
    total = sum(len(scored) if i == "swap" else len(real[i]) for s in active for i in needs[slot_family(s)]
                if i != "frames")
    per_sample: list[dict[str, Any]] = [{} for _ in scored]
    set_level: dict[str, float | None] = {}
    with progress_bar("score", total=total, unit="crop", disable=not progress) as bar:
        for slot_name, backend in active.items():
            family = slot_family(slot_name)
            feats = {i: backend_features(backend, swaps, method_template, bar) if i == "swap" else
                     backend_features(backend, [crops.eval_crop(x) for x in real[i]], EVAL_TEMPLATE, bar)
                     for i in needs[family] if i != "frames"}
            inputs = MetricInputs(feats.get("swap"), feats.get("source"), feats.get("target"), feats.get("gallery"),
                                  [p.source.identity for p in scored], [g.identity for g in gallery_ok],
                                  clips(scored) if "frames" in needs[family] else None)
            for spec in [m for m in specs if m.family == family]:
                _store(spec, spec.run(inputs), inputs, figure_key(spec.name, slot_name), per_sample, set_level)
    return per_sample, set_level


def _store(spec: MetricDef, values: Any, inputs: MetricInputs, key: str, per_sample: list[dict[str, Any]],
           set_level: dict[str, float | None]) -> None:
    """Puts a compute's values under figure ``key``: one per pair's row, one per clip on the clip's first row, or
    the one set-level value."""
    if spec.aggregate == "set":
        set_level[key] = None if values is None else finite(values)
        return
    rows = [clip[0] for clip in inputs.clips or []] if spec.aggregate == "per_clip" else range(len(per_sample))
    values = list(values)
    if len(values) != len(rows):
        raise ValueError(f"metric '{spec.name}' gave {len(values)} values for {len(rows)} "
                         f"{'clips' if spec.aggregate == 'per_clip' else 'pairs'}")
    for row, value in zip(rows, values):
        per_sample[row][key] = None if value is None else finite(value)


def same_person_cosine(backend: Backend, pairs: list[tuple[Item, Item]], crops: CropStore) -> list[float | None]:
    """Identity cosine of each real same-person pair (the protocol's ceiling); None where a face was not found."""
    found = [i for i, (a, b) in enumerate(pairs) if a.id in crops.crops and b.id in crops.crops]
    values: list[float | None] = [None] * len(pairs)
    if found:
        fa = torch.from_numpy(backend_features(backend, [crops.eval_crop(pairs[i][0]) for i in found], EVAL_TEMPLATE))
        fb = torch.from_numpy(backend_features(backend, [crops.eval_crop(pairs[i][1]) for i in found], EVAL_TEMPLATE))
        for i, c in zip(found, cosine(fa, fb).numpy()):
            values[i] = finite(c)
    return values
