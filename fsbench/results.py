"""Result schema and provenance: one JSON file per method × protocol × run, the single source for leaderboards."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from fsbench.errors import UsageError

if TYPE_CHECKING:
    from fsbench.metrics.base import Backend
    from fsbench.protocols.base import Pair, Protocol, ProtocolData

# schema 2 records per-clip values once per clip, under "clips"; a schema-1 file holds its temporal ones under
# "sequences" and per-clip values of other metrics on the clip's first sample
SCHEMA_VERSION = 2
REQUIRED_KEYS = ("schema", "protocol", "method", "backends", "dataset", "samples", "aggregates", "environment")


class ResultsError(UsageError):
    """A results file is unreadable, invalid, or incomparable; the message names the file."""


# distributions whose versions change figures: the name recorded, then the distribution names that provide it
_VERSIONED = {"fsbench": ("fsbench",), "mediapipe": ("mediapipe",), "dlib": ("dlib-bin", "dlib"),
              "onnxruntime": ("onnxruntime", "onnxruntime-gpu"), "onnx": ("onnx",), "scipy": ("scipy",),
              "opencv": ("opencv-contrib-python", "opencv-python-headless", "opencv-python",
                         "opencv-contrib-python-headless")}


def package_versions() -> dict[str, str | None]:
    """Installed versions (None when absent) read from package metadata, without importing the packages; for
    OpenCV the distribution is named too, since several provide ``cv2``."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for key, dists in _VERSIONED.items():
        found = []
        for dist in dists:
            try:
                found.append(f"{metadata.version(dist)}" + (f" ({dist})" if key == "opencv" else ""))
            except metadata.PackageNotFoundError:
                continue
        out[key] = ", ".join(found) or None
    return out


# the CPU flag that names the widest vector unit, widest first: what a CPU timing mostly depends on
_VECTOR_UNITS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 with bf16"), ("avx512f", "AVX-512"),
                 ("avx2", "AVX2"), ("asimd", "NEON"))


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name and widest vector unit, from ``/proc/cpuinfo`` on Linux (where
    ``platform.processor()`` says only ``x86_64``, and a virtual machine's model name may not tell generations
    apart), e.g. ``AMD EPYC (AVX-512 with bf16)``; elsewhere what ``platform`` knows."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    unit = next((label for flag, label in _VECTOR_UNITS if flag in flags), None)
    return f"{name} ({unit})" if unit else name


def device_name(device: str) -> str:
    """The GPU's name on a CUDA device, else the CPU's model name: the machine a timing or a figure came from."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name()


def environment(device: str) -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            **package_versions(),
            "platform": platform.platform(), "processor": cpu_name(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device,
            "device_name": device_name(device)}


def git_commit() -> str | None:
    """The fsbench checkout's commit, with ``+dirty`` when tracked files have uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (sha + ("+dirty" if dirty else "")) if sha else None


def bootstrap_ci(values: np.ndarray, seed: int, resamples: int = 1000, level: float = 0.95) -> list[float]:
    """Percentile bootstrap interval of the mean."""
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    alpha = (1 - level) / 2
    return [float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))]


def summarise(values: list[float | None], seed: int) -> dict[str, Any]:
    """Mean, variance and 95 % bootstrap interval over the samples that have a value."""
    present = np.array([v for v in values if v is not None], np.float64)
    if len(present) == 0:
        return {"n": 0, "missing": len(values), "mean": None, "var": None, "ci95": None}
    return {"n": int(len(present)), "missing": len(values) - len(present), "mean": float(present.mean()),
            "var": float(present.var()), "ci95": bootstrap_ci(present, seed)}


def aggregates(metric_names: Iterable[str], per_sample: list[dict[str, float | None]],
               set_level: dict[str, float | None], n_scored: int, backends: dict[str, dict[str, Any]],
               gallery_identities: int, seed: int,
               per_clip: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Per figure (each metric once per backend slot of its family, ``backends`` being slot → record): its
    summary (per-sample metrics: mean, variance, 95 % bootstrap interval; per-clip metrics: the same over the
    ``per_clip`` records' values, marked ``"per": "clip"``; set-level metrics, the Fréchet distances: the one value,
    no interval, marked ``set_level``; a top-k figure that a gallery of ``gallery_identities`` cannot make
    meaningful: no value, the reason under ``absent``), the backend it was measured with and its unit."""
    from fsbench.metrics.definitions import figure_metric, figure_slot, figures, small_gallery_reason

    out = {}
    for key in figures(list(metric_names), list(backends)):
        spec = figure_metric(key)
        absent = small_gallery_reason(spec.name, gallery_identities)
        if absent:
            agg = {"n": n_scored, "mean": None, "var": None, "ci95": None, "absent": absent}
        elif spec.aggregate == "per_clip":
            agg = {**summarise([row["values"].get(key) for row in per_clip or []], seed), "per": "clip"}
        elif spec.per_sample:
            agg = summarise([row.get(key) for row in per_sample], seed)
        else:
            agg = {"n": n_scored, "mean": set_level.get(key), "var": None, "ci95": None, "set_level": True}
        backend = backends.get(figure_slot(key), {})
        out[key] = {**agg, "backend": backend.get("name"), "label": backend.get("label"), "unit": spec.unit}
    return out


@dataclass
class Measured:
    """What scoring a run's swaps gave: the pairs scored (in order), their per-metric values, the set-level
    figures (Fréchet distances), the protocol's reference figures (e.g. same-person cosine) and, where a metric
    aggregates per clip, each clip's record with its values (:func:`fsbench.scoring.score`)."""

    scored: list[Pair]
    per_sample: list[dict[str, float | None]]
    set_level: dict[str, float | None]
    reference: dict[str, Any]
    per_clip: list[dict[str, Any]] = field(default_factory=list)


def backend_record(backend: Backend) -> dict[str, Any]:
    info = backend.info
    return {"name": info.name, "kind": info.kind, "label": info.label, "description": info.description,
            "weights_sha256": backend.weight_sha256()}


def file_name(method: str, protocol: str, version: int, seed: int, tag: str = "") -> str:
    """The results file of ``method`` on a protocol version (``tag``: a variant whose figures differ from the
    default's, e.g. ``consecutive16``) with ``seed``; a rerun replaces it."""
    return f"{method}__{protocol}-v{version}{f'-{tag}' if tag else ''}__seed{seed}.json"


def record(*, protocol: Protocol, data: ProtocolData, n_pairs: int, card: dict[str, Any], precision: str,
           backends: dict[str, Backend], measured: Measured, gallery_ids: set[str], failures: dict[str, str],
           item_failures: dict[str, str], variant: dict[str, Any], timings: dict[str, Any], device: str,
           seed: int) -> dict[str, Any]:
    """The results record of one run (schema :data:`SCHEMA_VERSION`): provenance, aggregates, per-pair values.

    ``gallery_ids`` are the gallery items whose faces were found; ``variant`` holds the run's choices beyond the
    protocol's own (options, limit, storage), ``failures`` the pairs that were not scored and why."""
    records = {family: backend_record(b) for family, b in backends.items()}
    gallery = [g for g in data.gallery if g.id in gallery_ids]
    scored = measured.scored
    return {
        "schema": SCHEMA_VERSION,
        "created": now(),
        "protocol": {"name": protocol.name, "version": protocol.version, "description": protocol.description,
                     "variant": {**data.variant, **variant}},
        "method": card,
        "precision": precision,
        "backends": records,
        "dataset": data.dataset,
        "counts": {"pairs": n_pairs, "pairs_scored": len(scored), "failures": len(failures), "gallery": len(gallery)},
        "aggregates": aggregates(protocol.reported_metrics(), measured.per_sample, measured.set_level, len(scored),
                                 records, len({g.identity for g in gallery}), seed, measured.per_clip),
        "reference": measured.reference,
        **({"clips": measured.per_clip} if measured.per_clip else {}),
        "samples": [{"pair": p.id, "source": p.source.id, "target": p.target.id, "values": row}
                    for p, row in zip(scored, measured.per_sample)],
        "failures": [{"pair": pid, "reason": why} for pid, why in sorted({**data.failures, **failures}.items())],
        "item_failures": [{"item": iid, "reason": why} for iid, why in sorted(item_failures.items())],
        "timings": timings,
        "environment": environment(device),
        "git_commit": git_commit(),
        "seed": seed,
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write(path: Path, result: dict[str, Any]) -> Path:
    """Write atomically: a killed process leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=False, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ResultsError(f"{path}: cannot read it ({err.strerror or err})") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: not a readable results JSON ({err})") from err
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ResultsError(f"{path}: missing keys {', '.join(missing)}")
    if data["schema"] > SCHEMA_VERSION:
        raise ResultsError(f"{path}: schema {data['schema']} is newer than this fsbench reads ({SCHEMA_VERSION})")
    return data


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the aggregates, one metric a line, labelled with the backend that measured it."""
    from fsbench.metrics.definitions import figure_label, figure_metric

    proto = result["protocol"]
    lines = [f"{result['method']['name']} on {proto['name']} v{proto['version']}: "
             f"{result['counts']['pairs_scored']}/{result['counts']['pairs']} pairs scored, "
             f"{result['counts']['failures']} failures"]
    lines += failure_lines(result)
    width = max(len(k) for k in result["aggregates"]) if result["aggregates"] else 10
    for name, agg in result["aggregates"].items():
        spec = figure_metric(name)
        arrow = "↑" if spec.higher_is_better else "↓"
        label = figure_label(result["backends"], name)
        if agg.get("absent"):
            lines.append(f"  {name:<{width}} {arrow}  absent: {agg['absent']} ({label})")
            continue
        if agg["mean"] is None:
            lines.append(f"  {name:<{width}} {arrow}  n/a ({label})")
            continue
        unit = f" {spec.unit}" if spec.unit else ""
        if not spec.per_sample:
            spread = "  set-level figure (one value for all swaps: no interval)"
        else:
            ci = f"  95% CI [{agg['ci95'][0]:.4f}, {agg['ci95'][1]:.4f}]" if agg.get("ci95") else ""
            spread = ci + (f"  var {agg['var']:.4f}" if agg.get("var") is not None else "")
        per = " clips" if agg.get("per") == "clip" else ""
        lines.append(f"  {name:<{width}} {arrow} {agg['mean']:.4f}{unit}{spread}  n={agg['n']}{per}  [{label}]")
    return "\n".join(lines)


def failure_lines(result: dict[str, Any], first: int = 3) -> list[str]:
    """The first few failed pairs and unusable items with their reasons, indented under a table's header."""
    rows = [(f["pair"], f["reason"]) for f in result.get("failures", [])]
    rows += [(f["item"], f["reason"]) for f in result.get("item_failures", [])]
    if not rows:
        return []
    lines = [f"    {name}: {' '.join(str(why).split())[:160]}" for name, why in rows[:first]]
    if len(rows) > first:
        lines.append(f"    ... {len(rows) - first} more in the results file (\"failures\", \"item_failures\")")
    return lines


def figure_index(result: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    """(metric, backend name) → the figure's name in ``result``'s aggregates: the same measurement is matched
    across results whatever slot its backend filled (``pose_error`` of an older run by MediaPipe and
    ``pose_error@mediapipe-pose`` of a newer one)."""
    from fsbench.metrics.definitions import figure_metric

    return {(figure_metric(key).name, agg.get("backend")): key for key, agg in result["aggregates"].items()}


def comparability(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Why two results measured different things (empty when comparable): protocol, variant, data set, a backend
    both used with different weights, or no figure measured by the same backend in both."""
    problems = []
    pa, pb = a["protocol"], b["protocol"]
    if (pa["name"], pa["version"]) != (pb["name"], pb["version"]):
        problems.append(f"protocol {pa['name']} v{pa['version']} vs {pb['name']} v{pb['version']}")
    va = {k: v for k, v in pa.get("variant", {}).items() if k != "limit"}
    vb = {k: v for k, v in pb.get("variant", {}).items() if k != "limit"}
    if va != vb:
        keys = sorted(k for k in set(va) | set(vb) if va.get(k) != vb.get(k))
        problems.append(f"protocol variant differs in {', '.join(keys)}")
    weights_a = {r["name"]: r["weights_sha256"] for r in a["backends"].values()}
    weights_b = {r["name"]: r["weights_sha256"] for r in b["backends"].values()}
    for name in sorted(set(weights_a) & set(weights_b)):
        if weights_a[name] != weights_b[name]:
            problems.append(f"backend {name} ran with different weights")
    if not set(figure_index(a)) & set(figure_index(b)):
        problems.append("no figure measured by the same backend in both ("
                        + ", ".join(sorted(weights_a)) + " vs " + ", ".join(sorted(weights_b)) + ")")
    if a["dataset"].get("manifest_sha256") != b["dataset"].get("manifest_sha256"):
        problems.append("dataset manifests differ")
    return problems


def _value_rows(result: dict[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    """(unit id, values) of what ``key`` is measured on: each clip for a per-clip figure (named by its source and
    first target frame), else each pair. A schema-1 file holds its temporal figures under ``sequences`` and other
    per-clip values on the samples."""
    from fsbench.metrics.definitions import figure_metric

    clips = result.get("clips", result.get("sequences"))
    if figure_metric(key).aggregate == "per_clip" and clips is not None:
        return [(f"{c['source']}\n{c['first_target']}", c["values"]) for c in clips]
    return [(s["pair"], s["values"]) for s in result["samples"]]


def compare(a: dict[str, Any], b: dict[str, Any], seed: int = 0, resamples: int = 2000) -> dict[str, dict[str, Any]]:
    """Per metric: mean of A and B, B − A, and a 95 % bootstrap interval of the difference.

    Figures are matched by metric and backend (:func:`figure_index`) and named as in B. Paired over the pairs
    both results scored when they share pair ids (the usual case: same protocol), else unpaired. Set-level
    metrics (Fréchet distances) get the difference without an interval.
    """
    rng = np.random.default_rng(seed)
    index_a, index_b = figure_index(a), figure_index(b)
    out: dict[str, dict[str, Any]] = {}
    for measured in [m for m in index_b if m in index_a]:
        key_a, name = index_a[measured], index_b[measured]
        if a["aggregates"][key_a].get("absent") or b["aggregates"][name].get("absent"):
            continue
        rows_a = {unit: {name: values.get(key_a)} for unit, values in _value_rows(a, key_a)}
        rows_b = dict(_value_rows(b, name))
        ma, mb = a["aggregates"][key_a]["mean"], b["aggregates"][name]["mean"]
        row: dict[str, Any] = {"a": ma, "b": mb, "diff": None if ma is None or mb is None else mb - ma,
                               "ci95": None, "paired": False, "n": 0}
        common = [p for p in rows_a if p in rows_b and rows_a[p].get(name) is not None
                  and rows_b[p].get(name) is not None]
        if common:
            d = np.array([rows_b[p][name] - rows_a[p][name] for p in common])
            means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(1)
            row.update(ci95=[float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))], paired=True,
                       n=len(common), diff=float(d.mean()))
        else:
            xa = np.array([v[name] for v in rows_a.values() if v.get(name) is not None])
            xb = np.array([v[name] for v in rows_b.values() if v.get(name) is not None])
            if len(xa) and len(xb):
                diffs = (xb[rng.integers(0, len(xb), (resamples, len(xb)))].mean(1)
                         - xa[rng.integers(0, len(xa), (resamples, len(xa)))].mean(1))
                row.update(ci95=[float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))],
                           n=min(len(xa), len(xb)))
        out[name] = row
    return out
