"""Sample crops of the leaderboard runs, and the comparison sheets drawn from them.

``fsbench leaderboard refresh`` stores, per protocol, a few pairs chosen by a seeded rule that ignores the method
(so every method shows the same pairs): the source and target crops exactly as scored (the evaluation crops,
ffhq-256) and each method's swapped crop read from its run's swap cache, re-aligned to ffhq-256, all as SIDE px
JPEG files (quality 90: about 5 KB a crop against 26 KB as PNG, so that a refresh adds hundreds of KB, not MB):

    results/samples/<protocol>-v<version>/pairs.json              the chosen pairs, in row order
    results/samples/<protocol>-v<version>/real/<pair>_source.jpg  and <pair>_target.jpg
    results/samples/<protocol>-v<version>/<method key>/<pair>.jpg   method key: name-vVERSION-<checkpoint sha256[:12]>

Where the swap cache is gone (a fresh clone whose results are current) the chosen pairs are swapped again through
the runner's own path (``CropStore``, :mod:`fsbench.swapcache`) into the same cache: the same crops as the
run's (the shipped networks' swaps of one pair alone and within a batch differ by at most 1e-4 of a grey level,
so the rounded PNG in the cache is the one the run scored). ``fsbench leaderboard
build`` draws ``<protocol>_samples.jpg``: one row per pair, columns source, target, then each leaderboard row's swap.
The sheet carries the sha256 of all it drew in its JPEG comment, so ``build --check`` tells a stale sheet from a
current one without comparing image bytes (which depend on the encoder's version).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fsbench import registry
from fsbench.faces.align import template_to_template
from fsbench.protocols.base import Pair
from fsbench.faces.crops import EVAL_SIZE, EVAL_TEMPLATE, CropStore
from fsbench.swapcache import SwapCache, method_key, probe_precision, swap_cache_folder, swap_pairs

ROWS = 6  # pairs per sheet
SIDE = 128  # px of a stored sample crop and of a sheet cell
HEADER = 16  # px of the sheet's label row
QUALITY = 90  # JPEG quality of the sample crops and the sheets
COMMENT = "fsbench-sheet-sha256 "  # the sheet's JPEG comment: this prefix, then the digest of what it shows
GREY = 128  # a cell without a sample


def protocol_folder(results: Path, protocol: str, version: int) -> Path:
    return results / "samples" / f"{protocol}-v{version}"


def choose(pairs: list[Pair], usable: Callable[[Pair], bool], rows: int = ROWS, seed: int = 0) -> list[Pair]:
    """``rows`` pairs ranked by sha256 of ``seed`` and the pair id, skipping pairs whose source or target identity
    is already shown (while others remain) and pairs ``usable(pair)`` refuses (a face not found)."""
    ranked = sorted(pairs, key=lambda p: hashlib.sha256(f"{seed}:{p.id}".encode()).hexdigest())
    chosen: list[Pair] = []
    for distinct in (True, False):
        for pair in ranked:
            if len(chosen) == rows:
                return chosen
            seen = {i for p in chosen for i in (p.source.identity, p.target.identity)}
            if pair in chosen or (distinct and {pair.source.identity, pair.target.identity} & seen):
                continue
            if usable(pair):
                chosen.append(pair)
    return chosen


def to_sample(crop: np.ndarray, template: str) -> np.ndarray:
    """An aligned crop (any template, any size) as a SIDE px ffhq-256 crop, like the scored real crops."""
    if template != EVAL_TEMPLATE or crop.shape[0] != EVAL_SIZE:
        matrix = template_to_template(template, crop.shape[0], EVAL_TEMPLATE, EVAL_SIZE)
        crop = cv2.warpAffine(crop, matrix, (EVAL_SIZE, EVAL_SIZE), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=QUALITY)


def store(method: str, protocol: str, runs: Path, results: Path, seed: int = 0) -> None:
    """Write the sample crops of ``method`` on ``protocol`` (see the module docstring) from the swap cache of the
    run that wrote to ``runs``; the pairs are chosen on the first call for the protocol and kept in pairs.json."""
    proto = registry.protocols.get(protocol)()
    data = proto.build(None, seed)
    instance = registry.methods.get(method)(device="cpu")
    card = instance.card
    crops = CropStore(card.template, card.input_size)
    folder = protocol_folder(results, proto.name, proto.version)
    manifest = folder / "pairs.json"
    by_id = {p.id: p for p in data.pairs}

    def usable(pair: Pair) -> bool:
        crops.prepare([pair.source, pair.target], progress=False)
        return pair.source.id in crops.crops and pair.target.id in crops.crops

    if manifest.is_file():
        pairs = [by_id[row["pair"]] for row in json.loads(manifest.read_text()) if row["pair"] in by_id]
        pairs = [p for p in pairs if usable(p)]
    else:
        pairs = choose(data.pairs, usable, seed=seed)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps([{"pair": p.id, "source": p.source.id, "target": p.target.id}
                                        for p in pairs], indent=1) + "\n")
    cache = SwapCache(swap_cache_folder(runs, card.to_dict(), proto.name, proto.version),
                      probe_precision(instance, pairs, crops))
    failures: dict[str, str] = {}
    swap_pairs(instance, pairs, crops, cache, failures, seed=seed, progress=False)
    key = method_key(card.to_dict())
    drop_other_versions(folder, card.name, key)
    for pair in pairs:
        for role, item in (("source", pair.source), ("target", pair.target)):
            write_jpeg(folder / "real" / f"{pair.id}_{role}.jpg", to_sample(crops.eval_crop(item), EVAL_TEMPLATE))
        if pair.id not in failures:
            write_jpeg(folder / key / f"{pair.id}.jpg", to_sample(cache.get(pair), card.template))


def drop_other_versions(folder: Path, name: str, key: str) -> None:
    """Delete the sample folders in ``folder`` of another version or checkpoint of method ``name`` than ``key``."""
    for old in folder.glob(f"{name}-v*"):
        if old.name != key and re.fullmatch(rf"{re.escape(name)}-v[^-]+-[0-9a-z]+", old.name):
            shutil.rmtree(old)


def has_samples(method_card: dict[str, Any], protocol: str, version: int, results: Path) -> bool:
    return (protocol_folder(results, protocol, version) / method_key(method_card)).is_dir()


@dataclass
class Sheet:
    """What a protocol's comparison sheet shows: column labels and, per row, the files of its cells."""

    labels: list[str]
    cells: list[list[Path | None]]  # rows × columns; None: no sample (a grey cell)
    captions: list[str]  # one per row: target and source item ids
    side: int = SIDE  # px of a cell

    @classmethod
    def of(cls, protocol: str, version: int, cards: list[dict[str, Any]], results: Path) -> Sheet | None:
        """The sheet of a leaderboard's rows (method cards in table order), or None without stored pairs."""
        return cls.in_folder(protocol_folder(results, protocol, version), cards)

    @classmethod
    def in_folder(cls, folder: Path, cards: list[dict[str, Any]], side: int = SIDE) -> Sheet | None:
        """The sheet of the sample files in ``folder`` laid out as described in the module docstring (pairs.json,
        real/, one folder per method key), with the methods of ``cards`` as columns; None without pairs.json."""
        manifest = folder / "pairs.json"
        if not manifest.is_file():
            return None
        rows = json.loads(manifest.read_text())
        cells = []
        for row in rows:
            files = [folder / "real" / f"{row['pair']}_{role}.jpg" for role in ("source", "target")]
            files += [folder / method_key(card) / f"{row['pair']}.jpg" for card in cards]
            cells.append([f if f.is_file() else None for f in files])
        return cls(["source", "target", *[c["name"] for c in cards]], cells,
                   [f"target {row['target']} ← source {row['source']}" for row in rows], side)

    def digest(self) -> str:
        """sha256 of the labels, the layout and every cell file's bytes."""
        files = [[hashlib.sha256(f.read_bytes()).hexdigest() if f else None for f in row] for row in self.cells]
        return hashlib.sha256(json.dumps([self.labels, self.side, HEADER, files]).encode()).hexdigest()

    def draw(self, path: Path) -> None:
        """Write the sheet as a JPEG whose comment records its digest (no timestamps)."""
        side = self.side
        width, height = side * len(self.labels), HEADER + side * len(self.cells)
        sheet = Image.new("RGB", (width, height), (255, 255, 255))
        pen = ImageDraw.Draw(sheet)
        font = ImageFont.load_default()
        for col, label in enumerate(self.labels):
            pen.text((col * side + side / 2, HEADER / 2), label, fill=(0, 0, 0), font=font, anchor="mm")
        for r, row in enumerate(self.cells):
            for c, file in enumerate(row):
                cell = Image.open(file).convert("RGB") if file else Image.new("RGB", (side, side), (GREY,) * 3)
                sheet.paste(cell, (c * side, HEADER + r * side))
        sheet.save(path, quality=QUALITY, comment=COMMENT + self.digest())


def recorded_digest(path: Path) -> str | None:
    """The digest a drawn sheet carries, or None if the file is missing or is not such a sheet."""
    try:
        with Image.open(path) as im:
            comment = im.info.get("comment", b"").decode("ascii", "replace")
    except OSError:
        return None
    return comment[len(COMMENT):] if comment.startswith(COMMENT) else None
