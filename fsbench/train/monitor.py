"""A training monitor that shows identity moving: swaps of fixed validation pairs and of in-the-wild pairs scored
with dlib.

The training losses say how well a generator satisfies its own recognisers; this says whether identity moves in
the eyes of one it never trained with. Validation pairs: the portraits *validation* split (identities disjoint from
training and test), target i gets the source ``derangement(n, PAIR_SEED)[i]``, swapped at the method's training
size. Scored with dlib's ResNet (the benchmark's evaluation recogniser) on ffhq-256 crops as fsbench's runner
scores real faces: ``top1`` (the swap's nearest validation portrait is the source's), ``id_cos`` (mean cosine of
swap and source portrait) and ``copy_target_id_cos`` (the same cosine for the unchanged target crop at the
method's size: the floor). dlib cosines of different people are high (about 0.85 here): read ``id_cos``
against the floor, not against 0. ``pose_err`` is MediaPipe's pose error (the benchmark's second pose column, degrees, swap against
the target's evaluation crop, mean over the pairs where both faces are read), with ``copy_target_pose_err``, the
same for the unchanged target crop, as its floor: identity must not move at the price of pose.
``pose_from_source`` says where a pose error comes from: the least-squares slope of the swap's pose offset from
the target on the source's offset from the target, over all three angles (0: the target's pose kept, 1: the
source's taken, as pasting the source does). ``fd`` is FD-MobileNetV2 between the swaps and the targets (the
real validation crops at the method's size: 0 for copy-target): the swaps' appearance, on 64 faces against their
own targets, so on another scale than a protocol's FD (hundreds of swaps against a gallery); it compares the steps
of one curve.

Portraits flatter a swapper: they are frontal, evenly lit and sharp. A second set shows how it does on ordinary
photographs: one still each of eight mini *training* identities (:data:`fsbench.train.data.MONITOR_WILD`: Bieber,
Clooney, Rihanna, Murray on a TV still, Schwarzenegger in sunglasses, a bearded man with a hand on his forehead,
two people of group photos), each a target of the seven others (56 pairs). No protocol scores them, and the
training loaders leave them out (``HeldOutIdentityError`` names them ``monitor/wild``). Its keys are the same with
the prefix ``wild_`` (``wild_top1`` among the eight, ``wild_id_cos`` against ``wild_copy_target_id_cos``,
``wild_pose_err``, ``wild_fd`` against their own targets, ``wild_pairs``); :data:`CURVES` draws them in a second
row.

    fsbench monitor plot RUN_DIR --out methods/M/monitor.png   # curves of a run's monitor.jsonl
    fsbench monitor score --method M [--weights FILE]          # one record for a weights file
    fsbench monitor trend RUN_DIR/monitor.jsonl --target COS   # the curve's slope, extrapolated
    fsbench monitor trend RUN_DIR/monitor.jsonl --key fd --target FD
    fsbench monitor trend RUN_DIR/monitor.jsonl --key wild_id_cos --target COS
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from fsbench.errors import UsageError
from fsbench.faces.crops import EVAL_TEMPLATE, to_tensor
from fsbench.metrics.distribution import frechet_from_features
from fsbench.metrics.pose import read_faces
from fsbench.protocols.base import Item
from fsbench.train.data import MONITOR_WILD, crops_cache_file, save_npz

PAIRS = 64
PAIR_SEED = 0
WILD = "wild_"  # the prefix of the in-the-wild set's record keys
RECORD_FILE = "monitor.jsonl"
SwapFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (source, target) crops in [0, 1] -> swap
Crops = tuple[list[str], np.ndarray, np.ndarray]  # identities, method crops, evaluation crops (uint8 RGB)


def _aligned(key: str, items: list[Item], template: str, size: int, what: str) -> Crops:
    """(identities, method crops ``n×size×size×3``, evaluation crops ``n×256×256×3``) of ``items``, detected and
    aligned as fsbench's runner does, once (cached under ``key``)."""
    from fsbench.faces.crops import CropStore

    cached = crops_cache_file(key)
    if cached.is_file():
        data = np.load(cached)
        return list(data["identities"]), data["method"], data["eval"]
    store = CropStore(template, size)  # the runner's detection and alignment, in both templates
    store.prepare(items, progress=False)
    if store.failures:  # every face was detected when the set was chosen; a failure is a broken cache or file
        raise ValueError(f"monitor {what} faces not usable: {next(iter(store.failures.items()))}")
    method = np.stack([store.method_crop(f) for f in items])
    evaluation = np.stack([store.eval_crop(f) for f in items])
    identities = [it.identity for it in items]
    save_npz(cached, identities=np.array(identities), method=method, eval=evaluation)
    return identities, method, evaluation


def validation_crops(template: str, size: int, n: int = PAIRS) -> Crops:
    """The first ``n`` validation portraits in manifest order (:func:`_aligned`)."""
    from fsbench.data import portraits

    manifest = portraits.load_manifest()
    chosen = manifest.items(split="validation")[:n]
    if len(chosen) < 2:
        raise ValueError(f"{manifest.path}: the monitor needs at least 2 validation portraits, found {len(chosen)}")
    items = [Item(id=p.id, identity=p.identity, path=str(p.path())) for p in chosen]
    return _aligned(f"monitor:{manifest.sha256}:{template}:{size}:{n}", items, template, size, "validation")


def wild_crops(template: str, size: int) -> Crops:
    """The first still of each in-the-wild person (:data:`fsbench.train.data.MONITOR_WILD`) in the mini manifest
    (:func:`_aligned`)."""
    from fsbench.data import mini

    manifest = mini.load_manifest()
    first = {}
    for s in manifest.items(split="train"):
        if s.kind == "still" and s.identity in MONITOR_WILD:
            first.setdefault(s.identity, Item(id=s.id, identity=s.identity, asset=s.asset, face_index=s.face_index))
    missing = sorted(set(MONITOR_WILD) - set(first))
    if missing:
        raise ValueError(f"{manifest.path}: no training still of the monitor's in-the-wild people {', '.join(missing)}")
    key = f"monitor-wild:{manifest.sha256}:{','.join(MONITOR_WILD)}:{template}:{size}"
    return _aligned(key, [first[i] for i in MONITOR_WILD], template, size, "in-the-wild")


class PairSet:
    """Swaps of fixed pairs of real faces, one face per identity: target ``pairs[k, 0]`` gets source ``pairs[k, 1]``
    (indices into the faces). Holds the faces' dlib gallery (their evaluation crops), the copy-target floors and
    the targets' appearance features."""

    def __init__(self, crops: Crops, pairs: np.ndarray, template: str, backend: Any, appearance: Any) -> None:
        _, method, evaluation = crops
        faces = to_tensor(method)
        self.template, self.target_index, self.source_index = template, pairs[:, 0], pairs[:, 1]
        self.targets, self.sources = faces[self.target_index], faces[self.source_index]
        self.gallery = backend.features(to_tensor(evaluation), EVAL_TEMPLATE)
        # the floor: copy-target's swaps, the targets themselves at the method's size
        floor = backend.features(faces, template)[self.target_index]
        self.floor = float(F.cosine_similarity(floor, self.gallery[self.source_index]).mean())
        pose = read_faces(to_tensor(evaluation), EVAL_TEMPLATE)[0]
        self.target_pose, self.source_pose = pose[self.target_index], pose[self.source_index]
        self.pose_floor = _pose_error(read_faces(faces, template)[0][self.target_index], self.target_pose)
        self.target_appearance = appearance.features(self.targets, template)

    def record(self, swaps: torch.Tensor, backend: Any, appearance: Any) -> dict[str, float | int]:
        """The scores of ``swaps`` (the pairs' swaps, in order): dlib, MediaPipe pose, FD-MobileNetV2."""
        if swaps.shape != self.targets.shape:
            raise ValueError(f"the swap function returned {tuple(swaps.shape)}, expected {tuple(self.targets.shape)}")
        feats = backend.features(swaps, self.template)
        pose = read_faces(swaps, self.template)[0]
        source = torch.from_numpy(self.source_index)
        nearest = (feats @ self.gallery.T).argmax(1)
        return {"top1": round(float((nearest == source).float().mean()), 4),
                "id_cos": round(float(F.cosine_similarity(feats, self.gallery[source]).mean()), 4),
                "copy_target_id_cos": round(self.floor, 4),
                "pose_err": round(_pose_error(pose, self.target_pose), 3),
                "copy_target_pose_err": round(self.pose_floor, 3),
                "pose_from_source": round(_pose_slope(pose, self.target_pose, self.source_pose), 3),
                "fd": round(frechet_from_features(appearance.features(swaps, self.template),
                                                  self.target_appearance), 3),
                "pairs": len(source)}


class Monitor:
    """The fixed validation pairs and in-the-wild pairs of one template and size (:class:`PairSet`)."""

    def __init__(self, template: str, size: int, n: int = PAIRS, batch: int = 16,
                 device: str | torch.device = "cpu") -> None:
        from fsbench import registry
        from fsbench.protocols.stills import derangement

        self.batch, self.device = batch, torch.device(device)
        self.backend = registry.metrics.get("dlib")(device=self.device)
        self.appearance = registry.metrics.get("mobilenet-v2")(device=self.device)
        validation = validation_crops(template, size, n)
        count = len(validation[0])
        wild = wild_crops(template, size)
        every = [(t, s) for t in range(len(wild[0])) for s in range(len(wild[0])) if s != t]
        self.sets = {"": PairSet(validation, np.stack([np.arange(count), derangement(count, PAIR_SEED)], 1),
                                 template, self.backend, self.appearance),
                     WILD: PairSet(wild, np.array(every), template, self.backend, self.appearance)}

    def _swaps(self, swap: SwapFn, pairs: PairSet) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([swap(pairs.sources[i:i + self.batch].to(self.device),
                                   pairs.targets[i:i + self.batch].to(self.device)).float().cpu().clamp(0, 1)
                              for i in range(0, len(pairs.targets), self.batch)])

    def score(self, swap: SwapFn) -> dict[str, float | int | str]:
        """Swap every pair of both sets with ``swap`` (no gradients) and score the swaps (:meth:`PairSet.record`;
        the in-the-wild set's keys prefixed ``wild_``)."""
        started = time.perf_counter()
        out: dict[str, float | int | str] = {}
        for prefix, pairs in self.sets.items():
            record = pairs.record(self._swaps(swap, pairs), self.backend, self.appearance)
            out.update({prefix + key: value for key, value in record.items()})
        return {**out, "backend": "dlib", "monitor_s": round(time.perf_counter() - started, 2)}


def _pose_error(pose: torch.Tensor, target_pose: torch.Tensor) -> float:
    """Mean L2 distance of (yaw, pitch, roll) in degrees over the rows where MediaPipe read both faces."""
    dist = (pose - target_pose).norm(dim=1)
    return float(dist[dist.isfinite()].mean())


def _pose_slope(pose: torch.Tensor, target_pose: torch.Tensor, source_pose: torch.Tensor) -> float:
    """The least-squares slope of ``pose − target_pose`` on ``source_pose − target_pose`` (all angles pooled) over
    the rows where MediaPipe read all three faces."""
    moved, offered = pose - target_pose, source_pose - target_pose
    rows = moved.isfinite().all(1) & offered.isfinite().all(1)
    return float((moved[rows] * offered[rows]).sum() / (offered[rows] ** 2).sum())


def append_record(path: Path, step: int, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps({"step": step, **record}) + "\n")


def read_records(path: Path) -> list[dict]:
    """The records of a ``monitor.jsonl`` (the last one per step where a resumed run repeated a step)."""
    by_step: dict[int, dict] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rec = json.loads(line)
            by_step[int(rec["step"])] = rec
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise UsageError(f"{path}:{n}: not a monitor record ({err})") from err
    return [by_step[s] for s in sorted(by_step)]


class Curve(NamedTuple):
    """One curve of a record: a panel of :func:`plot` (drawn where a record has ``key``: records of older runs lack
    pose_err, fd and the in-the-wild set) and a ``--key`` of :func:`trend`."""

    key: str
    floor: str | None  # the copy-target floor's key, drawn dashed
    ylabel: str
    title: str  # {n}: the set's pairs
    lower_is_better: bool
    prefix: str  # the set's key prefix (SETS)


SETS = {"": "validation", WILD: "in-the-wild"}  # key prefix -> the pair set's name in titles
_PANELS = (("top1", None, "top-1 retrieval", "ID-dlib top-1, {n} {what} pairs", False),
           ("id_cos", "copy_target_id_cos", "cosine", "ID-dlib cosine to the source ({what})", False),
           ("pose_err", "copy_target_pose_err", "degrees", "pose error (MediaPipe), swap vs target ({what})", True),
           ("fd", None, "FD-MobileNetV2", "FD-MobileNetV2, swaps vs targets ({what} crops)", True))
CURVES = {prefix + key: Curve(prefix + key, floor and prefix + floor, ylabel, title.replace("{what}", what), lower,
                              prefix)
          for prefix, what in SETS.items() for key, floor, ylabel, title, lower in _PANELS}


def _panel(ax: Any, curve: Curve, runs: dict[Path, list[dict]], run_dir: Path) -> None:
    """One curve of every run (phase) on ``ax``, its floor dashed."""
    key, floor = curve.key, curve.floor
    n = next((r[f"{curve.prefix}pairs"] for recs in runs.values() for r in recs if f"{curve.prefix}pairs" in r), "?")
    for i, (path, recs) in enumerate(runs.items()):
        label = str(path.parent.relative_to(run_dir)) if path.parent != run_dir else run_dir.name
        have = [r for r in recs if key in r]
        if not have:
            continue
        steps = [r["step"] for r in have]
        ax.plot(steps, [r[key] for r in have], marker=".", color=f"C{i}", label=f"{label}: swap" if floor else label)
        if floor:
            ax.plot(steps, [r[floor] for r in have], ls="--", color=f"C{i}", label=f"{label}: copy-target (floor)")
    ax.set(xlabel="step", ylabel=curve.ylabel, title=curve.title.format(n=n))
    if key.endswith("top1"):
        ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot(run_dir: Path, out: Path) -> Path:
    """The monitor's curves against steps (:data:`CURVES`; floors dashed), a row of panels per pair set, one line
    per phase (``monitor.jsonl`` in ``run_dir`` or its subfolders, e.g. FaceShifter's ``aei`` and ``hear``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = sorted(run_dir.rglob(RECORD_FILE))
    if not files:
        raise UsageError(f"{run_dir}: no {RECORD_FILE} (train with monitor.every > 0)")
    runs = {path: read_records(path) for path in files}
    panels = [c for c in CURVES.values() if any(c.key in r for recs in runs.values() for r in recs)]
    rows = [row for row in ([c for c in panels if c.prefix == prefix] for prefix in SETS) if row]
    cols = max(len(row) for row in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(5 * cols, 3.8 * len(rows)), squeeze=False)
    for row, row_axes in zip(rows, axes):
        for ax in row_axes[len(row):]:
            ax.axis("off")
        for ax, curve in zip(row_axes, row):
            _panel(ax, curve, runs, run_dir)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def trend(path: Path, target: float, since: int = 0, key: str = "id_cos") -> dict[str, float | int | str | None]:
    """A least-squares line through ``key`` (one of :data:`CURVES`) against steps (records at ``since`` and later)
    and where it would reach ``target`` (from below, or from above for a curve whose ``lower_is_better``):
    ``slope_per_1k`` (± its standard error), ``steps_to_target`` past the last record (0 when the line is already
    there, None when it moves away from the target or not at all) and, from the run's ``losses.jsonl`` beside it,
    ``hours_to_target`` at the median seconds per step of the same span. A straight line is the optimistic reading
    of a curve that flattens."""
    if key not in CURVES:
        raise UsageError(f"no monitor curve '{key}' (known: {', '.join(CURVES)})")
    recs = [r for r in read_records(path) if r["step"] >= since and key in r]
    if len(recs) < 3:
        raise UsageError(f"{path}: {len(recs)} record(s) with {key} at step {since} or later; a trend needs at "
                         "least 3")
    steps = np.array([r["step"] for r in recs], dtype=float)
    values = np.array([r[key] for r in recs], dtype=float)
    slope, intercept = np.polyfit(steps, values, 1)
    resid = values - (slope * steps + intercept)
    stderr = float(np.sqrt(resid @ resid / (len(steps) - 2) / ((steps - steps.mean()) ** 2).sum()))
    last = int(steps[-1])
    sign = -1 if CURVES[key].lower_is_better else 1  # in sign × value, higher is better
    gap = sign * (target - (slope * last + intercept))
    if gap <= 0:
        to_target: int | None = 0  # the line is already there
    else:
        to_target = int(np.ceil(gap / (sign * slope))) if sign * slope > 0 else None
    losses = path.parent / "losses.jsonl"
    step_s = None
    if losses.is_file():
        rows = [json.loads(line) for line in losses.read_text().splitlines() if line.strip()]
        span = [r["step_s"] for r in rows if "step_s" in r and steps[0] <= r["step"] <= last]
        step_s = float(np.median(span)) if span else None
    return {"key": key, "records": len(recs), "first_step": int(steps[0]), "last_step": last,
            "first": float(values[0]), "last": float(values[-1]),
            "slope_per_1k": float(slope * 1000), "slope_stderr_per_1k": stderr * 1000, "target": target,
            "steps_to_target": to_target, "seconds_per_step": step_s,
            "hours_to_target": to_target * step_s / 3600 if to_target is not None and step_s else None}


def score_method(method_name: str, weights: Path | None, device: str = "cpu") -> dict:
    """The monitor's record for a method's weights (the shipped ones by default), at the card's input size."""
    from fsbench import registry

    method = registry.create_method(method_name, device, weights)
    monitor = Monitor(method.card.template, method.card.input_size, device=device)
    return monitor.score(method.swap)
