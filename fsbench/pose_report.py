"""What the head-pose backends measure: a mirror test of each, and their agreement with each other on real faces.

``fsbench pose-report`` takes the real faces of embedded protocols (by default the ``mini-video`` gallery, 10
frames of every clip of talking, turning heads, and the ``portraits`` test gallery), detected and aligned as the
protocols score them (the evaluation template), and every registered pose backend whose files are present.

* Mirror test: each backend reads every crop and its horizontal mirror. A mirrored head has the opposite yaw and
  roll and the same pitch, so ``yaw + yaw'``, ``pitch − pitch'`` and ``roll + roll'`` should be 0: printed as
  their mean absolute value in degrees.
* Agreement: for each pair of backends and each angle, over the faces both could read, Pearson's correlation and
  the mean absolute difference in degrees. The spread (standard deviation) of each angle says how much real pose
  variation a set holds: a correlation over a set whose heads barely move says little.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from fsbench.errors import UsageError

ANGLES = ("yaw", "pitch", "roll")
DEFAULT_SETS = ("mini-video", "portraits")
_MIRROR_SIGNS = np.array([-1.0, 1.0, -1.0])  # yaw and roll flip under a mirror, pitch stays


def available_pose_backends() -> list[str]:
    """Every registered pose backend whose asset files are present (embedded: fetched; reference: added)."""
    from fsbench import assets, registry

    names = []
    for name in registry.metrics.names():
        info = registry.metrics.get(name).info
        if info.family == "pose" and all(assets.status(assets.get(a)) in ("present", "added") for a in info.assets):
            names.append(name)
    return names


def real_crops(protocol: str) -> list[np.ndarray]:
    """Evaluation crops of a protocol's gallery faces (its real faces), in gallery order; faces not found are left
    out."""
    from fsbench import registry
    from fsbench.faces.crops import EVAL_SIZE, EVAL_TEMPLATE, CropStore

    gallery = registry.protocols.get(protocol)().build(None, 0).gallery
    store = CropStore(EVAL_TEMPLATE, EVAL_SIZE)
    store.prepare(gallery, progress=False)
    return [store.eval_crop(item) for item in gallery if item.id in store.crops]


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Per angle, Pearson's r and the mean absolute difference of two ``N×3`` angle arrays over the rows both
    measured (NaN rows are left out), and that row count."""
    both = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    a, b = a[both], b[both]
    out: dict[str, Any] = {"n": int(both.sum())}
    for i, angle in enumerate(ANGLES):
        enough = len(a) > 2 and a[:, i].std() > 0 and b[:, i].std() > 0
        out[angle] = {"r": float(np.corrcoef(a[:, i], b[:, i])[0, 1]) if enough else None,
                      "mad": float(np.abs(a[:, i] - b[:, i]).mean()) if len(a) else None}
    return out


def mirror_residual(angles: np.ndarray, mirrored: np.ndarray) -> dict[str, float | None]:
    """Mean absolute ``yaw + yaw'``, ``pitch − pitch'``, ``roll + roll'`` (degrees) over rows read both ways."""
    both = np.isfinite(angles).all(1) & np.isfinite(mirrored).all(1)
    residual = np.abs(angles[both] - _MIRROR_SIGNS * mirrored[both])
    return {angle: float(residual[:, i].mean()) if both.any() else None for i, angle in enumerate(ANGLES)}


def pose_report(backends: list[str] | None = None, sets: tuple[str, ...] = DEFAULT_SETS) -> dict[str, Any]:
    """The mirror test and the pairwise agreement of ``backends`` (default: every available pose backend) on the
    real faces of each protocol in ``sets`` (see the module doc)."""
    from fsbench import registry
    from fsbench.faces.crops import EVAL_TEMPLATE
    from fsbench.scoring import backend_features

    names = backends or available_pose_backends()
    for name in names:
        family = registry.metrics.get(name).info.family
        if family != "pose":
            raise UsageError(f"'{name}' measures {family}, not pose: the report compares pose backends")
    nets = {name: registry.metrics.get(name)(device="cpu") for name in names}
    report: dict[str, Any] = {"backends": {n: nets[n].info.label for n in names}, "sets": {}}
    for protocol in sets:
        crops = real_crops(protocol)
        mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in crops]
        angles = {n: backend_features(net, crops, EVAL_TEMPLATE) for n, net in nets.items()}
        flipped = {n: backend_features(net, mirrored, EVAL_TEMPLATE) for n, net in nets.items()}
        report["sets"][protocol] = {
            "faces": len(crops),
            "spread": {n: {angle: float(np.nanstd(v[:, i])) for i, angle in enumerate(ANGLES)}
                       for n, v in angles.items()},
            "read": {n: int(np.isfinite(v).all(1).sum()) for n, v in angles.items()},
            "mirror": {n: mirror_residual(angles[n], flipped[n]) for n in names},
            "agreement": {f"{a} vs {b}": agreement(angles[a], angles[b]) for a, b in itertools.combinations(names, 2)},
        }
    return report


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def format_pose_report(report: dict[str, Any]) -> str:
    lines = ["pose backends: " + ", ".join(f"{n} ({label})" for n, label in report["backends"].items())]
    for protocol, s in report["sets"].items():
        lines += ["", f"{protocol}: {s['faces']} real faces (evaluation crops)",
                  f"  {'backend':<20} {'read':>5}  spread (std, °) yaw/pitch/roll   mirror residual (°) yaw/pitch/roll"]
        for n in report["backends"]:
            spread, mirror = s["spread"][n], s["mirror"][n]
            lines.append(f"  {n:<20} {s['read'][n]:>5}  " + " / ".join(_fmt(spread[a], "5.1f") for a in ANGLES)
                         + "            " + " / ".join(_fmt(mirror[a], "5.2f") for a in ANGLES))
        if s["agreement"]:
            lines.append(f"  {'agreement':<42} {'n':>5}  r yaw/pitch/roll        MAD (°) yaw/pitch/roll")
        for pair, agr in s["agreement"].items():
            lines.append(f"  {pair:<42} {agr['n']:>5}  " + " / ".join(_fmt(agr[a]['r'], "5.2f") for a in ANGLES)
                         + "   " + " / ".join(_fmt(agr[a]['mad'], "5.1f") for a in ANGLES))
    return "\n".join(lines)
