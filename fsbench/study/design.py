"""Study design: which units a study holds, which of them each rater sees in which order, and the definition on disk.

A unit is one pair that every compared method swapped: the source, the target and one result per method. A study
folder holds everything the app needs, so it can be served without the results folder or the data set:

    STUDY/study.json                     the definition (this module)
    STUDY/images/<unit>/source.png       source and target crops, and the results, all resized to one size
    STUDY/images/<unit>/result-<k>.png   k = index into the definition's methods (no method names in file names)
    STUDY/study.db                       raters, assignments and answers (fsbench.study.storage)
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from fsbench.errors import UsageError
from fsbench import results

SCHEMA = 1
DEFINITION = "study.json"
DATABASE = "study.db"
SCORE_MIN, SCORE_MAX = 0, 5
# The questions of each design, in the order they are asked (FaceShifter's three studies; MobileFSGAN's scores).
QUESTIONS: dict[str, dict[str, str]] = {
    "pick": {
        "identity": "Which result looks most like the person in the SOURCE (identity)?",
        "attributes": "Which result best keeps the TARGET's pose, expression and lighting?",
        "realism": "Which result looks most realistic?",
    },
    "score": {
        "realism": f"Realism: how real does this face look? ({SCORE_MIN} = obviously fake, {SCORE_MAX} = real)",
        "identity": f"Identity: how much does it look like the SOURCE person? ({SCORE_MIN} = not at all, "
                    f"{SCORE_MAX} = same person)",
        "attributes": f"Attributes: how well does it keep the TARGET's pose, expression and lighting? "
                      f"({SCORE_MIN} = not at all, {SCORE_MAX} = exactly)",
    },
}

# the chosen units' samples -> {item id: aligned RGB uint8 crop} for their source and target faces
CropFn = Callable[[list[dict[str, Any]]], dict[str, np.ndarray]]


class StudyError(UsageError):
    """A study cannot be created or opened; the message says why and what to do."""


@dataclass(frozen=True)
class Unit:
    id: str
    source: str  # item ids, as in the results
    target: str
    images: dict[str, str]  # "source", "target", "result-<k>" -> path relative to the study folder


@dataclass(frozen=True)
class Assignment:
    """One rater's units in order, each with the order its results are shown in (indices into the methods)."""

    seed: int
    units: list[tuple[str, list[int]]]


class Study:
    """A study definition loaded from its folder."""

    def __init__(self, root: Path, definition: dict[str, Any]) -> None:
        self.root = root
        self.definition = definition
        self.units: dict[str, Unit] = {u["id"]: Unit(u["id"], u["source"], u["target"], u["images"])
                                       for u in definition["units"]}

    @classmethod
    def load(cls, root: str | Path) -> "Study":
        root = Path(root)
        path = root / DEFINITION
        try:
            definition = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else err
            raise StudyError(f"{path}: not a study definition ({why}); create one with `fsbench study create`") \
                from err
        if definition.get("schema", 0) > SCHEMA:
            raise StudyError(f"{path}: schema {definition['schema']} is newer than this fsbench reads ({SCHEMA})")
        return cls(root, definition)

    @property
    def id(self) -> str:
        return self.definition["id"]

    @property
    def design(self) -> str:
        return self.definition["design"]

    @property
    def methods(self) -> list[str]:
        return [m["name"] for m in self.definition["methods"]]

    @property
    def questions(self) -> dict[str, str]:
        return self.definition["questions"]

    @property
    def per_rater(self) -> int:
        return self.definition["per_rater"]

    @property
    def database(self) -> Path:
        return self.root / DATABASE

    def image(self, unit: str, key: str) -> Path:
        return self.root / self.units[unit].images[key]

    def assignment(self, code: str) -> Assignment:
        """The rater's units and result orders, reproducible from the study seed and the rater's code."""
        seed = rater_seed(self.definition["seed"], code)
        return assign(sorted(self.units), len(self.methods), self.per_rater, seed)


def normalise_code(code: str) -> str:
    """Raters type their name or code; 'Ann  Lee ' and 'ann lee' are the same rater."""
    return " ".join(code.split()).casefold()


def rater_seed(study_seed: int, code: str) -> int:
    digest = hashlib.sha256(f"{study_seed}\n{normalise_code(code)}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def assign(units: list[str], n_methods: int, per_rater: int, seed: int) -> Assignment:
    """``per_rater`` distinct units drawn at random (as FaceShifter drew 20 of 1K pairs per rater), each with its
    results in a random order; everything follows from ``seed``."""
    rng = random.Random(seed)
    chosen = rng.sample(units, min(per_rater, len(units)))
    return Assignment(seed, [(unit, rng.sample(range(n_methods), n_methods)) for unit in chosen])


@dataclass(frozen=True)
class Run:
    """One method's results file on the study's protocol."""

    path: Path
    result: dict[str, Any]

    @property
    def name(self) -> str:
        return self.result["method"]["name"]

    def swap_image(self, results_dir: Path, pair: str) -> Path:
        """Where the runner cached this method's swap of ``pair`` (see fsbench.swapcache.SwapCache)."""
        from fsbench.swapcache import swap_cache_folder

        proto = self.result["protocol"]
        return swap_cache_folder(results_dir, self.result["method"], proto["name"], proto["version"]) / f"{pair}.png"


def find_runs(results_dir: Path, protocol: str, methods: list[str], run_seed: int | None = None) -> list[Run]:
    """The results file of each method on ``protocol`` in ``results_dir``; an error if one is missing or ambiguous."""
    found: dict[str, list[Run]] = {m: [] for m in methods}
    others: set[str] = set()
    for path in sorted(results_dir.glob("*.json")):
        try:
            result = results.load(path)
        except results.ResultsError:
            continue
        if result["protocol"]["name"] != protocol or (run_seed is not None and result.get("seed") != run_seed):
            continue
        run = Run(path, result)
        if run.name in found:
            found[run.name].append(run)
        else:
            others.add(run.name)
    missing = [m for m, runs in found.items() if not runs]
    if missing:
        have = f" (results there for: {', '.join(sorted(others))})" if others else ""
        raise StudyError(f"no results of {', '.join(missing)} on protocol '{protocol}' in {results_dir}{have}; "
                         f"run `fsbench run --method NAME --protocol {protocol} --out {results_dir}` first")
    ambiguous = {m: runs for m, runs in found.items() if len(runs) > 1}
    if ambiguous:
        lines = "; ".join(f"{m}: {', '.join(r.path.name for r in runs)}" for m, runs in ambiguous.items())
        raise StudyError(f"several results per method ({lines}); choose one with --run-seed")
    runs = [found[m][0] for m in methods]
    versions = {r.result["protocol"]["version"] for r in runs}
    if len(versions) > 1:
        raise StudyError(f"the results are from different versions of '{protocol}' ({sorted(versions)}); "
                         "a study compares methods on the same pairs, so re-run them on one version")
    return runs


def common_samples(runs: list[Run]) -> list[dict[str, Any]]:
    """Samples (pair, source, target) that every run scored, sorted by pair id."""
    per_run = [{s["pair"]: s for s in r.result["samples"]} for r in runs]
    shared = set(per_run[0]).intersection(*per_run[1:])
    return [per_run[0][pair] for pair in sorted(shared)]


def protocol_crops(protocol: str, version: int, data_root: Path | None, seed: int,
                   options: dict[str, str]) -> CropFn:
    """Source and target crops re-created as the runner scored them: the protocol's items, detected and aligned
    in the evaluation template (so the real faces are framed like the swaps)."""
    def crops(samples: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        from fsbench import registry
        from fsbench.faces.crops import EVAL_SIZE, EVAL_TEMPLATE, CropStore

        proto = registry.protocols.get(protocol)(**options)
        if proto.version != version:
            raise StudyError(f"the results are from {protocol} v{version}, this fsbench has v{proto.version}")
        pairs = {p.id: p for p in proto.build(data_root, seed).pairs}
        unknown = [s["pair"] for s in samples if s["pair"] not in pairs]
        if unknown:
            raise StudyError(f"{len(unknown)} pairs of the results (e.g. {unknown[0]}) are not pairs of {protocol} "
                             "here: pass the --data-root and --protocol-option values the run used")
        items = {i.id: i for s in samples for i in (pairs[s["pair"]].source, pairs[s["pair"]].target)}
        store = CropStore(EVAL_TEMPLATE, EVAL_SIZE)
        store.prepare(items.values(), progress=False)
        if store.failures:
            item, why = next(iter(store.failures.items()))
            raise StudyError(f"could not re-create the crop of {item}: {why}")
        return {iid: store.eval_crop(item) for iid, item in items.items()}

    return crops


def _digest(methods: list[str], samples: list[dict[str, Any]], seed: int) -> str:
    text = json.dumps([methods, [s["pair"] for s in samples], seed])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _write_png(path: Path, rgb: np.ndarray, size: int) -> None:
    """Every image of a study at one size, so a result's resolution does not give its method away."""
    if rgb.shape[:2] != (size, size):
        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if rgb.shape[0] > size
                         else cv2.INTER_LINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise StudyError(f"{path}: the cached swap is missing or unreadable; re-run the method to recreate it")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def create(results_dir: Path, out: Path, protocol: str, methods: list[str], design: str, per_rater: int,
           crops: CropFn | None = None, seed: int = 0, run_seed: int | None = None, image_size: int = 256,
           data_root: Path | None = None, protocol_options: dict[str, str] | None = None) -> Study:
    """Write a study folder comparing ``methods`` on the pairs all of them swapped in ``results_dir``.

    ``crops`` gives the source and target crops (default: re-created from the protocol, see protocol_crops).
    The answers database is created by :class:`fsbench.study.storage.Storage` (``fsbench study create`` opens it
    once, so it exists before the first raters arrive at once).
    """
    if design not in QUESTIONS:
        raise StudyError(f"unknown design '{design}' (known: {', '.join(QUESTIONS)})")
    if len(set(methods)) != len(methods) or len(methods) < 2:
        raise StudyError(f"a study compares at least two different methods, got {methods}")
    if (out / DEFINITION).exists():
        raise StudyError(f"{out / DEFINITION} exists; choose another --out or delete the old study")
    runs = find_runs(results_dir, protocol, methods, run_seed)
    samples = common_samples(runs)
    if per_rater < 1 or per_rater > len(samples):
        raise StudyError(f"--per-rater must be between 1 and the {len(samples)} pairs all of "
                         f"{', '.join(methods)} swapped, got {per_rater}")
    version = runs[0].result["protocol"]["version"]
    if crops is None:
        crops = protocol_crops(protocol, version, data_root, runs[0].result.get("seed", 0), protocol_options or {})
    real = crops(samples)
    units = []
    for sample in samples:
        pair = sample["pair"]
        images = {"source": f"images/{pair}/source.png", "target": f"images/{pair}/target.png"}
        _write_png(out / images["source"], real[sample["source"]], image_size)
        _write_png(out / images["target"], real[sample["target"]], image_size)
        for k, run in enumerate(runs):
            images[f"result-{k}"] = f"images/{pair}/result-{k}.png"
            _write_png(out / images[f"result-{k}"], _read_rgb(run.swap_image(results_dir, pair)), image_size)
        units.append({"id": pair, "source": sample["source"], "target": sample["target"], "images": images})
    definition = {
        "schema": SCHEMA,
        "id": f"{protocol}-{design}-{_digest(methods, samples, seed)}",  # shown to raters: no method names
        "created": results.now(),
        "design": design,
        "questions": QUESTIONS[design],
        "score_range": [SCORE_MIN, SCORE_MAX] if design == "score" else None,
        "per_rater": per_rater,
        "seed": seed,
        "protocol": {"name": protocol, "version": version},
        "methods": [{"name": r.name, "version": r.result["method"].get("version"),
                     "checkpoint_sha256": r.result["method"].get("checkpoint_sha256"),
                     "results": r.path.name, "results_sha256": hashlib.sha256(r.path.read_bytes()).hexdigest(),
                     "run_seed": r.result.get("seed")} for r in runs],
        "image_size": image_size,
        "units": units,
    }
    results.write(out / DEFINITION, definition)
    study = Study(out, definition)
    return study
