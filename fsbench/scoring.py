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

from fsbench import registry
from fsbench.errors import FsbenchError, UsageError
from fsbench.faces.crops import EVAL_TEMPLATE, CropStore, to_tensor
from fsbench.faces.templates import face_mask
from fsbench.metrics.base import Backend
from fsbench.metrics.computes import finite
from fsbench.metrics.definitions import (AGGREGATES, EMBEDDED_INPUTS, INPUTS, PIXELS, MetricDef, MetricInputs,
                                         Pixels, figure_key, metric, plugin_metrics, slot, slot_family)
from fsbench.metrics.identity import cosine
from fsbench.progress import bar as progress_bar
from fsbench.protocols.base import Item, Pair

# The primary backend of each family, and the further ones every run also reports (figure names in
# fsbench/metrics/definitions.py). The default pose_error comes from WHENet, an estimator no method trains against
# and the more mirror-consistent of the two such (docs/protocols.md, "Pose estimators"); MediaPipe's pose, which
# FaceShifter's pose term was fitted to, stays beside it. Identity is reported by dlib's ResNet and by ArcFace.
DEFAULT_BACKENDS = {"identity": "dlib", "pose": "whenet", "expression": "mediapipe-blendshapes",
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


def _origin(backend: Backend) -> str:
    """Where a backend comes from: its registry entry's origin (the entry point and the distribution that declares
    it), else its class."""
    name = backend.info.name
    if name in registry.metrics:
        return registry.metrics.origin(name)
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def backend_features(backend: Backend, crops: list[np.ndarray], template: str, bar: tqdm | None = None) -> np.ndarray:
    """``backend``'s features of uint8 RGB crops aligned with ``template``, in its batches; ``bar`` counts crops.
    Features that are not one row per crop are one error naming the backend and where it comes from."""
    out = []
    for start in range(0, len(crops), backend.batch_size):
        batch = to_tensor(crops[start:start + backend.batch_size]).to(backend.device)
        with torch.no_grad():
            features = backend.features(batch, template).float().cpu().numpy()
        if features.ndim != 2 or len(features) != len(batch):
            raise FsbenchError(f"metric backend '{backend.info.name}' ({_origin(backend)}) returned features of "
                               f"shape {features.shape} for {len(batch)} crops: a backend returns one row per crop")
        out.append(features)
        if bar is not None:
            bar.update(len(batch))
    return np.concatenate(out) if out else np.zeros((0, backend.info.dim), np.float32)


def _scored_run(clip: tuple[str, ...], index: dict[str, int]) -> list[int]:
    """Indices into the scored pairs of the longest run of consecutive frames of ``clip`` that were scored (a
    failed frame or ``--limit`` cuts a clip; a value never spans a missing frame)."""
    best: list[int] = []
    run: list[int] = []
    for pair_id in clip:
        run = run + [index[pair_id]] if pair_id in index else []
        best = run if len(run) > len(best) else best
    return best


def scored_clips(clips: list[tuple[str, ...]], scored: list[Pair]) -> list[list[int]]:
    """The protocol's ``clips`` (each its pair ids in frame order, ``ProtocolData.clips``) as rows of ``scored``,
    each cut to its longest run of scored consecutive frames; a clip with no scored frame is left out."""
    index = {p.id: i for i, p in enumerate(scored)}
    return [run for run in (_scored_run(clip, index) for clip in clips) if run]


def _inputs_by_family(specs: list[MetricDef]) -> dict[str, list[str]]:
    """Family → the inputs its metrics read, in the order of ``INPUTS`` (the order their features are computed)."""
    return {family: [i for i in INPUTS if any(i in m.inputs for m in specs if m.family == family)]
            for family in dict.fromkeys(m.family for m in specs)}


def _clip_records(scored: list[Pair], clips: list[list[int]], values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each clip once: its source, first and last target frame, frame count and per-clip values."""
    return [{"source": scored[clip[0]].source.id, "first_target": scored[clip[0]].target.id,
             "last_target": scored[clip[-1]].target.id, "frames": len(clip), "values": row}
            for clip, row in zip(clips, values)]


def _crops(wanted: set[str], scored: list[Pair], swaps: list[np.ndarray], crops: CropStore, gallery: list[Item],
           method_template: str) -> dict[str, tuple[list[np.ndarray], str]]:
    """Each ``wanted`` input's crops and the template they are aligned with: the swaps and the targets as the
    method saw them in the method's template, sources, targets and gallery as evaluation crops."""
    make = {"swap": lambda: swaps, "source": lambda: [crops.eval_crop(p.source) for p in scored],
            "target": lambda: [crops.eval_crop(p.target) for p in scored],
            "target_seen": lambda: [crops.method_crop(p.target) for p in scored],
            "gallery": lambda: [crops.eval_crop(g) for g in gallery]}
    return {i: (make[i](), method_template if i in ("swap", "target_seen") else EVAL_TEMPLATE) for i in wanted}


def score(metric_names: tuple[str, ...], backends: dict[str, Backend], scored: list[Pair], swaps: list[np.ndarray],
          crops: CropStore, gallery: list[Item], clips: list[tuple[str, ...]], method_template: str,
          progress: bool = False) -> tuple[list[dict], list[dict], dict[str, float | None]]:
    """Per-sample values (None where unmeasurable), per-clip records (:func:`_clip_records`, where a metric
    aggregates per clip) and set-level values, named by figure (``fsbench.metrics.definitions.figure_key``): every
    declared metric in ``metric_names`` (see fsbench/metrics/definitions.py) once for each backend slot of its
    family in ``backends``, and a metric of pixels once. ``clips``: the protocol's clips of consecutive frames.

    Each slot's backend embeds the inputs its family's metrics read (swaps, sources, targets, targets as the method
    saw them, gallery), once; with ``progress``, one bar counts those crops."""
    specs = [metric(m) for m in metric_names]
    needs = _inputs_by_family(specs)
    slots: dict[str, Backend | None] = {s: b for s, b in backends.items() if slot_family(s) in needs}
    slots.update({PIXELS: None} if PIXELS in needs else {})
    gallery_ok = [g for g in gallery if g.id in crops.crops]
    reads = {i for m in specs for i in m.inputs}
    wanted = reads & set(EMBEDDED_INPUTS) | ({"target_seen"} if "pixels" in reads else set())
    embedded = _crops(wanted, scored, swaps, crops, gallery_ok, method_template)
    rows = scored_clips(clips, scored) if "frames" in reads else None
    pixels = (Pixels(swaps, embedded["target_seen"][0], face_mask(method_template, crops.method_size))
              if "pixels" in reads else None)
    per_sample: list[dict[str, Any]] = [{} for _ in scored]
    per_clip: list[dict[str, Any]] = [{} for _ in rows or []]
    set_level: dict[str, float | None] = {}
    total = sum(len(embedded[i][0]) for s in slots for i in needs[slot_family(s)] if i in embedded)
    with progress_bar("score", total=total, unit="crop", disable=not progress) as bar:
        for slot_name, backend in slots.items():
            family = slot_family(slot_name)
            feats = {i: backend_features(backend, *embedded[i], bar) for i in needs[family] if i in embedded}
            inputs = MetricInputs(**{i: feats.get(i) for i in EMBEDDED_INPUTS}, clips=rows, pixels=pixels,
                                  source_identities=[p.source.identity for p in scored],
                                  gallery_identities=[g.identity for g in gallery_ok])
            for spec in [m for m in specs if m.family == family]:
                _store(spec, spec.run(inputs), figure_key(spec.name, slot_name), per_sample, per_clip, set_level)
    per_clip_metrics = any(m.aggregate == "per_clip" for m in specs)
    return per_sample, _clip_records(scored, rows, per_clip) if rows and per_clip_metrics else [], set_level


def _store(spec: MetricDef, values: Any, key: str, per_sample: list[dict[str, Any]], per_clip: list[dict[str, Any]],
           set_level: dict[str, float | None]) -> None:
    """Puts a compute's values under figure ``key``: one per pair's row, one per clip, or the one set-level value;
    a compute that gives another number of values is one error naming the metric and where it is declared."""
    if spec.aggregate == "set":
        set_level[key] = None if values is None else finite(values)
        return
    rows, unit = (per_clip, "clip") if spec.aggregate == "per_clip" else (per_sample, "pair")
    values = list(values) if isinstance(values, Iterable) else [values]
    if len(values) != len(rows):
        raise FsbenchError(f"metric '{spec.name}' ({registry.metric_definitions.origin(spec.name)}): its compute "
                           f"returned {len(values)} value(s) for {len(rows)} {unit}(s); a "
                           f"{AGGREGATES[spec.aggregate]} metric returns one value per {unit}")
    for row, value in zip(rows, values):
        row[key] = None if value is None else finite(value)


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
