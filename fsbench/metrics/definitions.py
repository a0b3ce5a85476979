"""Every metric fsbench reports, each one declaration (as pyiqa keeps its defaults in one table).

A metric is computed from backend features (fsbench/metrics/base.py). Its declaration says everything the
harness needs: its family (which backends' features it reads), its variant (exactly what is computed, so a
result is compared only with results that measured the same thing), its direction, the inputs it reads, how it
aggregates, its unit, the label it is printed under and its compute. ``fsbench.scoring.score`` runs every declared
metric of a protocol in one loop; nothing else knows a metric by name.

Inputs (:data:`INPUTS`): the backend features of the ``swap``s, of the pairs' ``source`` and ``target`` faces
(evaluation crops), of ``target_seen``, each target as the method saw it (its crop in the method's template, measured
like the swap, so that a swap that is its target reads exactly as the target), and of the protocol's ``gallery`` of
real faces (with the identities of sources and gallery faces); ``frames``: the clips, each the rows of one source
swapped into consecutive frames of one target video, in frame order (a protocol's clips of consecutive frames, each
cut to its longest run of scored frames, so that no value spans a missing frame); ``pixels``: the uint8 crops of the
swaps and of the targets as seen, with the template's face mask. A metric reads only what it declares, and the
features of an input are computed only when a metric of the run declares it.

Aggregation (:data:`AGGREGATES`): ``per_sample`` metrics give one value per pair (None where unmeasurable) and are
reported with mean, variance and a 95 % bootstrap interval over the pairs that have a value; ``per_clip`` metrics
(they read ``frames``) give one value per clip, in the order of ``inputs.clips``, recorded once per clip and reported
likewise over the clips; ``set`` metrics give one value for the whole set (the Fréchet distances), reported without
an interval. A frame-sequence metric may also be ``per_sample``: the value of a pair measured against its clip's
previous frame, None on a clip's first frame.

Other packages declare metrics through the entry-point group ``fsbench.metric_definitions`` (an entry named after
the metric, pointing at its :class:`MetricDef`) and backends through ``fsbench.metrics``; docs/architecture.md says
how a protocol chooses them.

A family may be measured by more than one backend in a run (identity by dlib and by ArcFace, say). Each backend
fills a *slot*: the family's name for its primary backend, ``FAMILY@BACKEND`` for each further one. A figure is
named after its metric and slot: ``pose_error`` for the primary pose backend, ``pose_error@mediapipe-pose`` for the
further one; results record which backend each figure came from, so figures are matched across results by
(metric, backend), whatever slot they filled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal, Sequence, Union

from fsbench import registry
from fsbench.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

# the inputs a backend embeds, then those it does not (see the module doc)
EMBEDDED_INPUTS = ("swap", "source", "target", "target_seen", "gallery")
INPUTS = (*EMBEDDED_INPUTS, "frames", "pixels")
# the family of metrics that read the crops themselves (flicker): no backend measures it, and its metrics read
# pixels and frames, no embedded input
PIXELS = "pixels"
Input = Literal["swap", "source", "target", "target_seen", "gallery", "frames", "pixels"]
Value = Union[float, None]
# how a metric aggregates, and how `fsbench list metrics` says it
AGGREGATES = {"per_sample": "per sample", "per_clip": "per clip", "set": "set-level"}


@dataclass(frozen=True)
class Pixels:
    """The crops themselves, in the method's template: per scored pair the uint8 ``H×W×3`` RGB swap and target as
    the method saw it, and the template's soft face ``mask`` (``H×W`` float32 in [0, 1])."""

    swap: Sequence[np.ndarray]
    target_seen: Sequence[np.ndarray]
    mask: np.ndarray


@dataclass(frozen=True)
class MetricInputs:
    """What a metric's compute receives for one backend slot: ``N×dim`` float32 features of the ``N`` scored
    pairs' swaps, sources, targets and targets as seen (rows in pair order), ``G×dim`` of the gallery faces whose
    crops exist, the clips and the pixels; an input no metric of the run declares is None. A row is NaN where the
    backend could not measure that crop."""

    swap: np.ndarray | None
    source: np.ndarray | None
    target: np.ndarray | None
    target_seen: np.ndarray | None
    gallery: np.ndarray | None
    source_identities: list[str]  # per pair
    gallery_identities: list[str]  # per gallery row
    clips: list[list[int]] | None  # per clip its pairs' rows in frame order ("frames")
    pixels: Pixels | None  # ("pixels")


# compute(inputs, metric) -> one value per pair (per_sample), per clip (per_clip) or one value (set); None or NaN:
# unmeasured
Compute = Callable[[MetricInputs, "MetricDef"], Union[Sequence[Value], Value]]


@dataclass(frozen=True)
class MetricDef:
    name: str
    family: str  # the backend family whose features it reads ("identity", "pose", ... or a plugin's own); "pixels":
    # the crops themselves, no backend (flicker)
    variant: str  # what exactly is computed; part of the comparability key
    higher_is_better: bool
    inputs: tuple[Input, ...]  # what it reads, a subset of INPUTS
    compute: Compute | str  # the function, or "module:attr" imported on first use
    description: str
    aggregate: Literal["per_sample", "per_clip", "set"] = "per_sample"
    unit: str = ""  # printed after the figure; empty for unitless scores
    label: str = "{backend}"  # what the figure is printed under; {backend} is the measuring backend's label
    top_k: int | None = None  # retrieval metrics: how many nearest gallery entries count as a hit
    default_backend: str | None = None  # for a family fsbench has no default backend for: the one a run uses

    @property
    def per_sample(self) -> bool:
        """Whether it has values per pair or per clip, summarised with an interval (not one set-level value)."""
        return self.aggregate != "set"

    def printed_label(self, backend_label: str) -> str:
        return self.label.replace("{backend}", backend_label)

    def run(self, inputs: MetricInputs) -> Sequence[Value] | Value:
        """The compute's values for one backend slot (see :data:`Compute`)."""
        return registry.resolve(self.compute)(inputs, self)


# A top-k retrieval figure is printed only when its gallery holds at least this many identities per k: with fewer,
# chance alone puts the source among the k nearest half the time or more (3 identities: top-5 cannot miss).
MIN_GALLERY_IDENTITIES_PER_K = 2


def small_gallery_reason(metric_name: str, gallery_identities: int) -> str | None:
    """Why a retrieval figure is withheld for a gallery of this many identities, or None when it is meaningful."""
    k = metric(metric_name).top_k
    if k is None or gallery_identities >= MIN_GALLERY_IDENTITIES_PER_K * k:
        return None
    n, need = gallery_identities, MIN_GALLERY_IDENTITIES_PER_K * k
    if k >= n:
        chance = (f"with {n} people to choose from the source is always among the top {k}, so every swap, even an "
                  f"unchanged target, would score 100%")
    else:
        chance = f"a random guess puts the source among the top {k} in {k / n:.0%} of pairs"
    return f"gallery of {n} identities: {chance} (top-{k} needs at least {need} identities)"


_C = "fsbench.metrics.computes:"
_T = "fsbench.metrics.temporal:"


def _retrieval(k: int, gallery: Literal["frame", "identity"]) -> MetricDef:
    per_frame = gallery == "frame"
    variant = f"top-{k}, per-frame gallery" if per_frame else f"top-{k}, per-identity gallery (mean embedding)"
    what = ("nearest gallery face (cosine) to the swapped face belongs to the source identity; gallery: every real "
            "face of the protocol (ReliableSwap style)" if per_frame else
            "nearest identity centre (renormalised mean embedding) is the source identity (FaceDancer style)")
    if k > 1:
        what = (f"the source identity is among the {k} nearest gallery faces, per-frame gallery" if per_frame else
                f"the source identity is among the {k} nearest identity centres")
    return MetricDef(f"id_top{k}_{gallery}", "identity", variant, True, ("swap", "gallery"),
                     _C + ("top_k_frame" if per_frame else "top_k_identity"), what, unit="fraction of pairs",
                     top_k=k)


METRICS: dict[str, MetricDef] = {m.name: m for m in [
    MetricDef("id_cosine", "identity", "cosine(swap, source)", True, ("swap", "source"), _C + "cosine_to_source",
              "cosine similarity of the swapped face's and the source face's identity embeddings; "
              "reported with mean and variance (MobileFSGAN Table 2 style)", unit="cosine"),
    _retrieval(1, "frame"), _retrieval(5, "frame"), _retrieval(1, "identity"), _retrieval(5, "identity"),
    MetricDef("pose_error", "pose", "L2 of (yaw, pitch, roll) in degrees, swap vs target", False, ("swap", "target"),
              _C + "distance_to_target",
              "per image the L2 distance of the head-pose angle vectors of swap and target, then the mean",
              unit="degrees"),
    MetricDef("expression_error", "expression", "L2 of expression vectors, swap vs target", False,
              ("swap", "target"), _C + "distance_to_target",
              "per image the L2 distance of the expression vectors of swap and target, then the mean",
              unit="L2 of the backend's vector"),
    MetricDef("fd_id", "identity", "Fréchet distance of identity embeddings, swaps vs the protocol's real faces",
              False, ("swap", "gallery"), _C + "frechet_to_gallery",
              "FD-id: Fréchet distance between identity-embedding statistics of the swapped faces and the real faces "
              "(is the swapped set's identity distribution that of real people?)", "set", label="FD-id ({backend})"),
    MetricDef("fd", "distribution", "Fréchet distance, swaps vs the protocol's real faces", False,
              ("swap", "gallery"), _C + "frechet_to_gallery",
              "Fréchet distance between feature statistics of the swapped faces and the reference set of real "
              "faces; printed under the backend's label (FID only for the Inception backend)", "set"),
    MetricDef("id_jitter", "identity", "mean 1 − cos of consecutive swaps' embeddings minus the target's", False,
              ("swap", "target_seen", "frames"), _T + "clip_identity_jitter",
              "identity jitter: how much more the swap's identity embedding changes from frame to frame than the "
              "target's; 0 for an unchanged target", "per_clip", unit="cosine distance"),
    MetricDef("pose_jitter", "pose", "mean L2 of (swap's − target's) frame-to-frame change of (yaw, pitch, roll)",
              False, ("swap", "target_seen", "frames"), _T + "clip_pose_jitter",
              "pose jitter: head motion of the swap beyond the target's own, per pair of consecutive frames; 0 for "
              "an unchanged target", "per_clip", unit="degrees"),
    MetricDef("flicker", PIXELS, "mean |frame difference| in the face mask, swap minus target", False,
              ("pixels", "frames"), _T + "clip_flicker",
              "flicker: frame-difference energy of the swapped crops inside the face mask beyond the target's; 0 "
              "for an unchanged target", "per_clip", unit="8-bit levels", label="pixels"),
]}
for _spec in METRICS.values():
    registry.metric_definitions.register(_spec.name, _spec)


def metric(name: str) -> MetricDef:
    """The declaration of metric ``name``, built in or from a package's ``fsbench.metric_definitions`` entry point;
    an unknown name or a malformed declaration is one error naming it."""
    spec = registry.metric_definitions.get(name)
    origin = registry.metric_definitions.origin(name)
    if not isinstance(spec, MetricDef):
        raise UsageError(f"metric '{name}' ({origin}) is a {type(spec).__name__}, not a "
                         f"fsbench.metrics.definitions.MetricDef")
    problems = _problems(spec, name)
    if problems:
        raise UsageError(f"metric '{name}' ({origin}): {'; '.join(problems)}")
    return spec


def _problems(spec: MetricDef, name: str) -> list[str]:
    """What is wrong with a declaration registered under ``name``."""
    problems = []
    if spec.name != name:
        problems.append(f"its name is '{spec.name}'")
    if not set(spec.inputs) <= set(INPUTS):
        unknown = ", ".join(sorted(set(spec.inputs) - set(INPUTS)))
        problems.append(f"unknown inputs {unknown} (known: {', '.join(INPUTS)})")
    if spec.aggregate not in AGGREGATES:
        problems.append(f"aggregate '{spec.aggregate}' is none of {', '.join(AGGREGATES)}")
    if spec.aggregate == "per_clip" and "frames" not in spec.inputs:
        problems.append("a per_clip metric reads frames")
    embedded = sorted(set(spec.inputs) & set(EMBEDDED_INPUTS))
    if spec.family == PIXELS and embedded:
        problems.append(f"a metric of the {PIXELS} family has no backend to embed {', '.join(embedded)}")
    return problems


def declared(name: str) -> bool:
    """Whether a metric of this name is declared here (built in, or by an installed package)."""
    return name in registry.metric_definitions


def plugin_metrics() -> list[MetricDef]:
    """The metrics other packages declare, by name."""
    return [metric(n) for n in registry.metric_definitions.names() if n not in METRICS]


def reported(own: Sequence[str], provided: Sequence[str] | frozenset[str]) -> tuple[str, ...]:
    """What a protocol reports: its own metrics ``own``, then every metric another package declares whose inputs
    are all among the inputs the protocol ``provided``."""
    extra = [m.name for m in plugin_metrics() if set(m.inputs) <= set(provided) and m.name not in own]
    return tuple(own) + tuple(extra)

# the temporal metrics a video protocol reports when its target frames are consecutive
TEMPORAL_METRICS = ("id_jitter", "pose_jitter", "flicker")


def slot(family: str, backend: str | None = None) -> str:
    """The slot of a backend: ``family`` for the primary one (``backend`` None), ``family@backend`` otherwise."""
    return family if backend is None else f"{family}@{backend}"


def slot_family(name: str) -> str:
    return name.split("@", 1)[0]


def figure_key(metric_name: str, slot_name: str) -> str:
    """The name of ``metric_name`` measured by the backend in ``slot_name`` (see the module doc)."""
    _, _, backend = slot_name.partition("@")
    return f"{metric_name}@{backend}" if backend else metric_name


def figure_metric(key: str) -> MetricDef:
    """The metric a figure name measures (``pose_error@mediapipe-pose`` → ``pose_error``)."""
    return metric(key.split("@", 1)[0])


def figure_slot(key: str) -> str:
    """The slot whose backend measured a figure (``pose_error@mediapipe-pose`` → ``pose@mediapipe-pose``)."""
    _, _, backend = key.partition("@")
    return slot(figure_metric(key).family, backend or None)


def figure_label(backends: dict[str, dict], key: str) -> str:
    """The label a figure is printed under (``backends``: slot → backend record): its declaration's label with the
    measuring backend's, or the declaration's own for a metric of pixels, which no backend measures."""
    spec = figure_metric(key)
    if spec.family == PIXELS:
        return spec.label
    return spec.printed_label(backends[figure_slot(key)]["label"])


def figures(metric_names: Sequence[str], slots: Sequence[str]) -> list[str]:
    """Every figure a run reports: each metric once per slot of its family, the primary slot's first; a metric of
    pixels, which no backend measures, once under its own name."""
    ordered = sorted(slots, key=lambda s: "@" in s)
    return [figure_key(m, s) for m in metric_names for s in (ordered if metric(m).family != PIXELS else [PIXELS])
            if metric(m).family == slot_family(s)]
