"""Every metric fsbench reports, defined once (as pyiqa keeps its defaults in one table).

A metric is computed from backend features (fsbench/metrics/base.py); its variant says exactly how, so a result
can be compared only with results that measured the same thing.

A family may be measured by more than one backend in a run (identity by dlib and by ArcFace, say). Each backend
fills a *slot*: the family's name for its primary backend, ``FAMILY@BACKEND`` for each further one. A figure is
named after its metric and slot: ``pose_error`` for the primary pose backend, ``pose_error@mediapipe-pose`` for the
further one; results record which backend each figure came from, so figures are matched across results by
(metric, backend), whatever slot they filled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MetricDef:
    name: str
    family: Literal["identity", "pose", "expression", "distribution", "pixels"]  # pixels: no backend
    variant: str  # what exactly is computed; part of the comparability key
    higher_is_better: bool
    per_sample: bool  # False: one value for the whole set (Fréchet distances)
    description: str
    top_k: int | None = None  # retrieval metrics: how many nearest gallery entries count as a hit
    unit: str = ""  # printed after the figure; empty for unitless scores
    per_sequence: bool = False  # one value per frame sequence (temporal metrics), summarised over sequences


# A top-k retrieval figure is printed only when its gallery holds at least this many identities per k: with fewer,
# chance alone puts the source among the k nearest half the time or more (3 identities: top-5 cannot miss).
MIN_GALLERY_IDENTITIES_PER_K = 2


def small_gallery_reason(metric: str, gallery_identities: int) -> str | None:
    """Why a retrieval figure is withheld for a gallery of this many identities, or None when it is meaningful."""
    k = METRICS[metric].top_k
    if k is None or gallery_identities >= MIN_GALLERY_IDENTITIES_PER_K * k:
        return None
    n, need = gallery_identities, MIN_GALLERY_IDENTITIES_PER_K * k
    if k >= n:
        chance = (f"with {n} people to choose from the source is always among the top {k}, so every swap, even an "
                  f"unchanged target, would score 100%")
    else:
        chance = f"a random guess puts the source among the top {k} in {k / n:.0%} of pairs"
    return f"gallery of {n} identities: {chance} (top-{k} needs at least {need} identities)"


METRICS: dict[str, MetricDef] = {m.name: m for m in [
    MetricDef("id_cosine", "identity", "cosine(swap, source)", True, True,
              "cosine similarity of the swapped face's and the source face's identity embeddings; "
              "reported with mean and variance (MobileFSGAN Table 2 style)", unit="cosine"),
    MetricDef("id_top1_frame", "identity", "top-1, per-frame gallery", True, True,
              "nearest gallery face (cosine) to the swapped face belongs to the source identity; gallery: every "
              "real face of the protocol (ReliableSwap style)", 1,
              unit="fraction of pairs"),
    MetricDef("id_top5_frame", "identity", "top-5, per-frame gallery", True, True,
              "the source identity is among the 5 nearest gallery faces, per-frame gallery", 5,
              unit="fraction of pairs"),
    MetricDef("id_top1_identity", "identity", "top-1, per-identity gallery (mean embedding)", True, True,
              "nearest identity centre (renormalised mean embedding) is the source identity (FaceDancer style)", 1,
              unit="fraction of pairs"),
    MetricDef("id_top5_identity", "identity", "top-5, per-identity gallery (mean embedding)", True, True,
              "the source identity is among the 5 nearest identity centres", 5, unit="fraction of pairs"),
    MetricDef("pose_error", "pose", "L2 of (yaw, pitch, roll) in degrees, swap vs target", False, True,
              "per image the L2 distance of the head-pose angle vectors of swap and target, then the mean",
              unit="degrees"),
    MetricDef("expression_error", "expression", "L2 of expression vectors, swap vs target", False, True,
              "per image the L2 distance of the expression vectors of swap and target, then the mean",
              unit="L2 of the backend's vector"),
    MetricDef("fd_id", "identity", "Fréchet distance of identity embeddings, swaps vs the protocol's real faces",
              False, False, "FD-id: Fréchet distance between identity-embedding statistics of the swapped faces and "
              "the real faces (is the swapped set's identity distribution that of real people?)"),
    MetricDef("fd", "distribution", "Fréchet distance, swaps vs the protocol's real faces", False, False,
              "Fréchet distance between feature statistics of the swapped faces and the reference set of real "
              "faces; printed under the backend's label (FID only for the Inception backend)"),
    MetricDef("id_jitter", "identity", "mean 1 − cos of consecutive swaps' embeddings minus the target's", False,
              True, "identity jitter: how much more the swap's identity embedding changes from frame to frame than "
              "the target's (fsbench/metrics/temporal.py); 0 for an unchanged target", unit="cosine distance",
              per_sequence=True),
    MetricDef("pose_jitter", "pose", "mean L2 of (swap's − target's) frame-to-frame change of (yaw, pitch, roll)",
              False, True, "pose jitter: head motion of the swap beyond the target's own, per pair of consecutive "
              "frames; 0 for an unchanged target", unit="degrees", per_sequence=True),
    MetricDef("flicker", "pixels", "mean |frame difference| in the face mask, swap minus target", False, True,
              "flicker: frame-difference energy of the swapped crops inside the face mask beyond the target's; 0 "
              "for an unchanged target", unit="8-bit levels", per_sequence=True),
]}

# the temporal metrics a video protocol reports when its target frames are consecutive
TEMPORAL_METRICS = ("id_jitter", "pose_jitter", "flicker")


def slot(family: str, backend: str | None = None) -> str:
    """The slot of a backend: ``family`` for the primary one (``backend`` None), ``family@backend`` otherwise."""
    return family if backend is None else f"{family}@{backend}"


def slot_family(name: str) -> str:
    return name.split("@", 1)[0]


def figure_key(metric: str, slot_name: str) -> str:
    """The name of ``metric`` measured by the backend in ``slot_name`` (see the module doc)."""
    _, _, backend = slot_name.partition("@")
    return f"{metric}@{backend}" if backend else metric


def figure_metric(key: str) -> MetricDef:
    """The metric a figure name measures (``pose_error@mediapipe-pose`` → ``pose_error``)."""
    return METRICS[key.split("@", 1)[0]]


def figure_slot(key: str) -> str:
    """The slot whose backend measured a figure (``pose_error@mediapipe-pose`` → ``pose@mediapipe-pose``)."""
    _, _, backend = key.partition("@")
    return slot(figure_metric(key).family, backend or None)


def figure_label(backends: dict[str, dict], key: str) -> str:
    """The label a figure is printed under: its backend's (``backends``: slot → backend record), or ``pixels`` for a
    metric that no backend measures."""
    return "pixels" if figure_metric(key).family == "pixels" else backends[figure_slot(key)]["label"]


def figures(metric_names: tuple[str, ...] | list[str], slots: list[str]) -> list[str]:
    """Every figure a run reports: each metric once per slot of its family, the primary slot's first; a metric of
    pixels, which no backend measures, once under its own name."""
    ordered = sorted(slots, key=lambda s: "@" in s)
    return [figure_key(m, s) for m in metric_names for s in (ordered if METRICS[m].family != "pixels" else ["pixels"])
            if METRICS[m].family == slot_family(s)]
