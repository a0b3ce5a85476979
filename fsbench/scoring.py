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
from fsbench.faces.templates import face_mask
from fsbench.metrics.base import Backend
from fsbench.metrics.computes import finite
from fsbench.metrics.definitions import (INPUTS, PIXELS, MetricDef, MetricInputs, figure_key, metric,
                                         plugin_metrics, slot, slot_family)
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
    orphans = sorted(set(families) - set(defaults) - {PIXELS})
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
    specs = [s for s in (metric(m) for m in metric_names) if not s.per_sequence]  # those: score_sequences
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


def _scored_run(sequence: tuple[str, ...], index: dict[str, int]) -> list[int]:
    """Indices into the scored pairs of the longest run of consecutive frames of ``sequence`` that were scored (a
    failed frame or ``--limit`` cuts a sequence; a value never spans a missing frame)."""
    best: list[int] = []
    run: list[int] = []
    for pair_id in sequence:
        run = run + [index[pair_id]] if pair_id in index else []
        best = run if len(run) > len(best) else best
    return best


def _per_run(spec: MetricDef, swap: np.ndarray, target: np.ndarray, runs: list[list[int]]) -> list[float | None]:
    """``spec``'s compute over each run's rows of the per-frame features ``swap`` and ``target``; None under two
    frames."""
    return [finite(spec.run_sequence(swap[run], target[run])) if len(run) > 1 else None for run in runs]


def _pixels(spec: MetricDef, swap_crops: list[np.ndarray], target_crops: list[np.ndarray], runs: list[list[int]],
            template: str) -> list[float | None]:
    """``spec``'s compute on each run's crops in the template's face mask, stacking one run's crops at a time; None
    under two frames."""
    mask = face_mask(template, swap_crops[0].shape[0])
    return [finite(spec.run_sequence(np.stack([swap_crops[k] for k in run]), np.stack([target_crops[k] for k in run]),
                                     mask)) if len(run) > 1 else None for run in runs]


def score_sequences(metric_names: tuple[str, ...], backends: dict[str, Backend], scored: list[Pair],
                    swaps: list[np.ndarray], crops: CropStore, sequences: list[tuple[str, ...]],
                    method_template: str) -> list[dict[str, Any]]:
    """The temporal figures of each frame sequence that has a scored frame: its source, first and last target
    frame, frame count and values (None under two frames). Swaps and targets are both measured on crops in the
    method's template (the target's method crop is what an unchanged target returns), so the target's own motion
    cancels exactly; identity and pose jitter once per backend slot of their family, flicker in the template's
    face mask."""
    specs = [s for s in (metric(m) for m in metric_names) if s.per_sequence]
    index = {p.id: i for i, p in enumerate(scored)}
    runs = [run for run in (_scored_run(seq, index) for seq in sequences) if run] if specs else []
    if not runs:
        return []
    used = sorted({i for run in runs for i in run})
    row_of = {i: k for k, i in enumerate(used)}
    rows = [[row_of[i] for i in run] for run in runs]
    swap_crops = [swaps[i] for i in used]
    target_crops = [crops.method_crop(scored[i].target) for i in used]
    values: list[dict[str, float | None]] = [{} for _ in runs]
    for slot_name, backend in backends.items():
        jitters = [s for s in specs if s.family == slot_family(slot_name)]
        if not jitters:
            continue
        f_swap = backend_features(backend, swap_crops, method_template)
        f_target = backend_features(backend, target_crops, method_template)
        for spec in jitters:
            for row, value in zip(values, _per_run(spec, f_swap, f_target, rows)):
                row[figure_key(spec.name, slot_name)] = value
    for spec in [s for s in specs if s.family == PIXELS]:
        for row, value in zip(values, _pixels(spec, swap_crops, target_crops, rows, method_template)):
            row[spec.name] = value
    return [{"source": scored[run[0]].source.id, "first_target": scored[run[0]].target.id,
             "last_target": scored[run[-1]].target.id, "frames": len(run), "values": row}
            for run, row in zip(runs, values)]


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
