"""Per-sample scoring: metric backends' features of swaps and real crops, turned into the protocol's values.

The runner prepares crops, swaps, caches and writes results; what a swap scores is decided here.
"""
from __future__ import annotations

import difflib
import sys
from typing import Any, Callable, Iterable

import numpy as np
import torch
from tqdm import tqdm

from fsbench.errors import UsageError
from fsbench.faces.crops import EVAL_TEMPLATE, CropStore, to_tensor
from fsbench.faces.templates import face_mask
from fsbench.metrics import temporal
from fsbench.metrics.base import Backend
from fsbench.metrics.definitions import METRICS, figure_key, slot, slot_family
from fsbench.metrics.distribution import frechet_from_features
from fsbench.metrics.identity import cosine, identity_centers, retrieval_topk
from fsbench.progress import bar as progress_bar
from fsbench.protocols.base import Item, Pair

# The primary backend of each family, and the further ones every run also reports (figure names in
# fsbench/metrics/definitions.py). The default pose_error comes from an estimator no method trains against;
# MediaPipe's pose, which FaceShifter's pose term was fitted to, stays beside it. Identity is reported by dlib's
# ResNet and by ArcFace.
DEFAULT_BACKENDS = {"identity": "dlib", "pose": "hopenet-shufflenet", "expression": "mediapipe-blendshapes",
                    "distribution": "mobilenet-v2"}
EXTRA_BACKENDS = {"identity": ("arcface-mbf",), "pose": ("mediapipe-pose",)}


def chosen_backends(families: set[str] | list[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Slot → backend name for a run measuring ``families``, in the order of :data:`DEFAULT_BACKENDS` (MediaPipe's
    pose reading comes before the blendshapes that reuse it): each family's primary backend (``overrides`` of
    family → name replace the default), then its further default backends other than that primary."""
    overrides = overrides or {}
    chosen: dict[str, str] = {}
    for family in [f for f in DEFAULT_BACKENDS if f in families]:
        primary = overrides.get(family, DEFAULT_BACKENDS[family])
        chosen[slot(family)] = primary
        chosen.update({slot(family, extra): extra for extra in EXTRA_BACKENDS.get(family, ()) if extra != primary})
    return chosen


def check_backend_choice(requested: dict[str, str]) -> None:
    """Refuse a ``--backend FAMILY=NAME`` choice whose family is unknown or whose backend measures another family
    (an unknown backend name is the registry's UnknownNameError): a misspelt family would be ignored silently."""
    from fsbench import registry

    for family, name in requested.items():
        if family not in DEFAULT_BACKENDS:
            close = difflib.get_close_matches(family, list(DEFAULT_BACKENDS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"--backend {family}={name}: unknown metric family '{family}'{hint}; the families "
                             f"are {', '.join(DEFAULT_BACKENDS)}")
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


def _value(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


_CROPS_PER_PAIR = {"identity": 2, "pose": 2, "expression": 2, "distribution": 1}  # and, with a gallery, one each


def score(metric_names: tuple[str, ...], backends: dict[str, Backend], scored: list[Pair], swaps: list[np.ndarray],
          crops: CropStore, gallery: list[Item], method_template: str,
          progress: bool = False) -> tuple[list[dict], dict[str, float | None]]:
    """Per-sample metric values (None where unmeasurable) and set-level values (Fréchet distances), named by
    figure (``fsbench.metrics.definitions.figure_key``) for each backend slot in ``backends``.

    With ``progress``, one bar counts the crops the backends embed (swaps, real faces, gallery)."""
    per_sample: list[dict[str, Any]] = [{} for _ in scored]
    set_level: dict[str, float | None] = {}
    families = {METRICS[m].family for m in metric_names}
    active = {s: b for s, b in backends.items() if slot_family(s) in families}
    gallery_ok = [g for g in gallery if g.id in crops.crops]
    n, n_gal = len(scored), len(gallery_ok)
    total = sum(_CROPS_PER_PAIR[slot_family(s)] * n + n_gal * (slot_family(s) in ("identity", "distribution"))
                for s in active)
    with progress_bar("score", total=total, unit="crop", disable=not progress) as bar:
        def features(backend: Backend, images: list[np.ndarray], template: str) -> np.ndarray:
            return backend_features(backend, images, template, bar)

        for slot_name, backend in active.items():
            family = slot_family(slot_name)
            if family == "identity":
                f_swap = torch.from_numpy(features(backend, swaps, method_template))
                f_src = torch.from_numpy(features(backend, [crops.eval_crop(p.source) for p in scored], EVAL_TEMPLATE))
                f_gal = torch.from_numpy(features(backend, [crops.eval_crop(g) for g in gallery_ok], EVAL_TEMPLATE))
                _identity_values(metric_names, slot_name, f_swap, f_src, f_gal, scored, gallery_ok, per_sample,
                                 set_level)
            elif family == "distribution":
                f_swap = features(backend, swaps, method_template)
                f_real = features(backend, [crops.eval_crop(g) for g in gallery_ok], EVAL_TEMPLATE)
                set_level[figure_key("fd", slot_name)] = finite_frechet(f_swap, f_real)
            else:
                f_swap = features(backend, swaps, method_template)
                f_tgt = features(backend, [crops.eval_crop(p.target) for p in scored], EVAL_TEMPLATE)
                key = figure_key(f"{family}_error", slot_name)
                for row, dist in zip(per_sample, np.linalg.norm(f_swap - f_tgt, axis=1)):
                    row[key] = _value(dist)
    return per_sample, set_level


def _identity_values(metric_names: tuple[str, ...], slot_name: str, f_swap: torch.Tensor, f_src: torch.Tensor,
                     f_gal: torch.Tensor, scored: list[Pair], gallery_ok: list[Item], per_sample: list[dict],
                     set_level: dict[str, float | None]) -> None:
    """The identity figures of one backend slot: cosine to the source, retrieval in both galleries, FD-id."""
    cos = cosine(f_swap, f_src).numpy()
    if "fd_id" in metric_names:
        set_level[figure_key("fd_id", slot_name)] = finite_frechet(f_swap.numpy(), f_gal.numpy())
    labels = [p.source.identity for p in scored]
    gal_labels = [g.identity for g in gallery_ok]
    ks = sorted({METRICS[m].top_k for m in metric_names if METRICS[m].top_k})
    frame_hits = retrieval_topk(f_swap, f_gal, labels, gal_labels, ks=ks)
    centers, center_labels = identity_centers(f_gal, gal_labels)
    ident_hits = retrieval_topk(f_swap, centers, labels, center_labels, ks=ks)
    for i, row in enumerate(per_sample):
        valid = bool(torch.isfinite(f_swap[i]).all())
        row[figure_key("id_cosine", slot_name)] = _value(cos[i])
        for k in ks:
            row[figure_key(f"id_top{k}_frame", slot_name)] = float(frame_hits[k][i]) if valid else None
            row[figure_key(f"id_top{k}_identity", slot_name)] = float(ident_hits[k][i]) if valid else None


def finite_frechet(a: np.ndarray, b: np.ndarray) -> float | None:
    """Fréchet distance over the rows a backend could measure; None with fewer than two on either side."""
    a, b = a[np.isfinite(a).all(1)], b[np.isfinite(b).all(1)]
    return _value(frechet_from_features(a, b)) if len(a) > 1 and len(b) > 1 else None


# the temporal metrics computed from a backend's per-frame features, by metric (see fsbench/metrics/temporal.py)
_FEATURE_JITTER = {"id_jitter": temporal.identity_jitter, "pose_jitter": temporal.pose_jitter}


def _scored_run(sequence: tuple[str, ...], index: dict[str, int]) -> list[int]:
    """Indices into the scored pairs of the longest run of consecutive frames of ``sequence`` that were scored (a
    failed frame or ``--limit`` cuts a sequence; a value never spans a missing frame)."""
    best: list[int] = []
    run: list[int] = []
    for pair_id in sequence:
        run = run + [index[pair_id]] if pair_id in index else []
        best = run if len(run) > len(best) else best
    return best


def _per_run(compute: Callable[[np.ndarray, np.ndarray], float], swap: np.ndarray, target: np.ndarray,
             runs: list[list[int]]) -> list[float | None]:
    """``compute`` over each run's rows of the per-frame features ``swap`` and ``target``; None under two frames."""
    return [_value(compute(swap[run], target[run])) if len(run) > 1 else None for run in runs]


def _flicker(swap_crops: list[np.ndarray], target_crops: list[np.ndarray], runs: list[list[int]],
             template: str) -> list[float | None]:
    """Flicker of each run in the template's face mask, stacking one run's crops at a time; None under two frames."""
    mask = face_mask(template, swap_crops[0].shape[0])
    return [_value(temporal.flicker(np.stack([swap_crops[k] for k in run]), np.stack([target_crops[k] for k in run]),
                                    mask)) if len(run) > 1 else None for run in runs]


def score_sequences(metric_names: tuple[str, ...], backends: dict[str, Backend], scored: list[Pair],
                    swaps: list[np.ndarray], crops: CropStore, sequences: list[tuple[str, ...]],
                    method_template: str) -> list[dict[str, Any]]:
    """The temporal figures of each frame sequence that has a scored frame: its source, first and last target
    frame, frame count and values (None under two frames). Swaps and targets are both measured on crops in the
    method's template (the target's method crop is what an unchanged target returns), so the target's own motion
    cancels exactly; identity and pose jitter once per backend slot of their family, flicker in the template's
    face mask."""
    names = [m for m in metric_names if METRICS[m].per_sequence]
    index = {p.id: i for i, p in enumerate(scored)}
    runs = [run for run in (_scored_run(seq, index) for seq in sequences) if run] if names else []
    if not runs:
        return []
    used = sorted({i for run in runs for i in run})
    row_of = {i: k for k, i in enumerate(used)}
    rows = [[row_of[i] for i in run] for run in runs]
    swap_crops = [swaps[i] for i in used]
    target_crops = [crops.method_crop(scored[i].target) for i in used]
    values: list[dict[str, float | None]] = [{} for _ in runs]
    for slot_name, backend in backends.items():
        jitters = [m for m in names if METRICS[m].family == slot_family(slot_name) and m in _FEATURE_JITTER]
        if not jitters:
            continue
        f_swap = backend_features(backend, swap_crops, method_template)
        f_target = backend_features(backend, target_crops, method_template)
        for m in jitters:
            for row, value in zip(values, _per_run(_FEATURE_JITTER[m], f_swap, f_target, rows)):
                row[figure_key(m, slot_name)] = value
    if "flicker" in names:
        for row, value in zip(values, _flicker(swap_crops, target_crops, rows, method_template)):
            row["flicker"] = value
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
            values[i] = _value(c)
    return values
