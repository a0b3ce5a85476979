"""What a protocol is: versioned pairs, a gallery and a reference set of real faces, and the metrics to report."""
from __future__ import annotations

import hashlib
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fsbench.errors import UsageError


@dataclass(frozen=True)
class Item:
    """One real face: a still, or one frame of a video, with its identity label."""

    id: str  # stable, unique within the protocol
    identity: str
    asset: str | None = None  # an embedded asset name (fsbench.assets), or
    path: str | None = None  # a file of the user's data set
    frame: int | None = None  # frame index for videos
    face_index: int = 0  # which detected face, largest first

    def file(self) -> Path:
        if self.asset is not None:
            from fsbench import assets

            return assets.path(self.asset)
        assert self.path is not None
        return Path(self.path)

    def load(self) -> np.ndarray:
        """The RGB uint8 image (or video frame); raises fsbench.faces.errors.FaceError subclasses."""
        from fsbench.faces import io

        if self.frame is None:
            return io.read_image(self.file())
        return io.read_frames(self.file(), [self.frame])[0]


@dataclass(frozen=True)
class Pair:
    source: Item
    target: Item

    @property
    def id(self) -> str:
        """Filename-safe and stable for the same two items."""
        digest = hashlib.sha1(f"{self.source.id}\n{self.target.id}".encode()).hexdigest()[:16]
        return f"{self.target.identity}_{self.source.identity}_{digest}".replace("/", "-").replace(" ", "-")


@dataclass
class ProtocolData:
    pairs: list[Pair]
    gallery: list[Item]  # real faces searched by ID retrieval; also the FD reference set
    dataset: dict[str, Any]  # name, manifest sha256, root, ... (recorded in results)
    variant: dict[str, Any] = field(default_factory=dict)  # choices that change figures (recorded)
    failures: dict[str, str] = field(default_factory=dict)  # videos or pairs that could not be enumerated
    same_person: list[tuple[Item, Item]] = field(default_factory=list)  # real pairs scored as a ceiling (LFW)
    # the ids of the pairs of each clip (one source onto consecutive frames of one target video), in frame order:
    # what metrics that read frames see (fsbench.scoring.scored_clips)
    clips: list[tuple[str, ...]] = field(default_factory=list)


class Protocol(ABC):
    name: str
    version: int
    description: str
    metrics: tuple[str, ...]  # the built-in metrics it reports (fsbench/metrics/definitions.py)
    # what its pairs give a metric to read (fsbench.metrics.definitions.INPUTS); a protocol whose target frames
    # come in clips of consecutive frames adds "frames"
    inputs: frozenset[str] = frozenset({"swap", "source", "target", "target_seen", "gallery", "pixels"})
    needs_data_root: bool = False
    variant_tag: str = ""  # set by options that change what is measured; it names the results file apart

    def reported_metrics(self) -> tuple[str, ...]:
        """Its own metrics, then every metric another package declares whose inputs it gives."""
        from fsbench.metrics.definitions import reported

        return reported(self.metrics, self.inputs)

    @abstractmethod
    def build(self, data_root: Path | None, seed: int) -> ProtocolData:
        """Resolve pairs and gallery; deterministic given ``data_root`` contents and ``seed``."""


def _options_of(cls: type[Protocol]) -> list[str]:
    if cls.__init__ is object.__init__:
        return []
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _taken_by(option: str) -> str:
    """``; frames is an option of ffpp, mini-video``: the protocols that take ``option``, if any."""
    from fsbench import registry

    takers = [n for n in registry.protocols.names() if option in _options_of(registry.protocols.get(n))]
    return f"; {option} is an option of {', '.join(takers)}" if takers else ""


def create(name: str, options: dict[str, str], data_root: Path | None) -> Protocol:
    """The protocol ``name`` with ``options``; an option it does not take, or a data root given to a protocol of
    embedded data (which would ignore it), is a ValueError naming what it does take."""
    from fsbench import registry

    cls = registry.protocols.get(name)
    if data_root is not None and not cls.needs_data_root:
        readers = [n for n in registry.protocols.names() if registry.protocols.get(n).needs_data_root]
        raise UsageError(f"--data-root {data_root}: protocol '{name}' runs on embedded data and would ignore it; "
                         f"a data root is for {', '.join(readers)}")
    accepted = _options_of(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = f"it takes {', '.join(accepted)}" if accepted else "it takes none"
        raise UsageError(f"protocol '{name}' does not take options {', '.join(unknown)}: {takes}"
                         + "".join(_taken_by(option) for option in unknown))
    return cls(**options)
