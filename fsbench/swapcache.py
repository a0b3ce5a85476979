"""Swapped crops on disk: where a method's swaps of a protocol live, how they are made, and in what precision.

Swaps are cached as PNG under ``OUT/cache/<method key>/<protocol>-v<version>/``, one file per pair, written
atomically, so a killed run resumes where it stopped and recomputes nothing finished. The runner, the leaderboard's
sample sheets and study sets all read and fill the same cache through this module.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from fsbench.errors import UsageError
from fsbench import progress as stages
from fsbench.api import Method
from fsbench.faces.crops import CropStore, to_tensor, to_uint8
from fsbench.precision import ComputeDtypes
from fsbench.protocols.base import Pair


def method_key(card: dict[str, Any]) -> str:
    """Swap-cache folder of a method card (as ``MethodCard.to_dict()`` or a results file's ``method``)."""
    weights = (card.get("checkpoint_sha256") or "noweights")[:12]
    return f"{card['name']}-v{card['version']}-{weights}"


def swap_cache_folder(out: Path, card: dict[str, Any], protocol: str, version: int) -> Path:
    """Where a run writing to ``out`` caches the swaps of the method with ``card`` on a protocol version."""
    return out / "cache" / method_key(card) / f"{protocol}-v{version}"


class SwapCache:
    """Swapped crops as PNG, one per pair, made in one precision.

    The folder records the precision its swaps were made in (``precision.txt``; a folder without one adopts the
    current precision, as swap caches live on the machine that made them), and a run in another precision is
    refused rather than scored from a mix of the two.
    """

    def __init__(self, folder: Path, precision: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / "precision.txt"
        recorded = marker.read_text().strip() if marker.is_file() else None
        if recorded is None:
            marker.write_text(precision + "\n")
        elif recorded != precision:
            raise UsageError(f"{folder}: its cached swaps were made in {recorded}, this run's method runs in "
                             f"{precision}; delete the folder or use another --out")

    def path(self, pair: Pair) -> Path:
        return self.folder / f"{pair.id}.png"

    def has(self, pair: Pair) -> bool:
        return self.path(pair).is_file()

    def put(self, pair: Pair, crop: np.ndarray) -> None:
        target = self.path(pair)
        tmp = target.with_name(f".{target.name}.tmp.png")
        if not cv2.imwrite(str(tmp), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)):
            raise UsageError(f"{tmp}: could not write the cached swap (disk full or not writable?)")
        tmp.replace(target)

    def get(self, pair: Pair) -> np.ndarray:
        image = cv2.imread(str(self.path(pair)), cv2.IMREAD_COLOR)
        if image is None:
            raise UsageError(f"{self.path(pair)}: cached swap is unreadable; delete it to recompute")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def swap_precision(method: Method, source: torch.Tensor, target: torch.Tensor) -> str:
    """The precision one ``swap`` of ``source`` onto ``target`` runs its convolutions and matmuls in."""
    dtypes = ComputeDtypes()
    with dtypes, torch.no_grad():
        method.swap(source, target)
    return dtypes.precision


def probe_precision(method: Method, pairs: list[Pair], crops: CropStore) -> str:
    """The precision ``method`` runs in on this machine, read from a swap of the first pair whose crops exist
    (``unknown`` when there is none or that swap fails: the pair's failure is recorded when it is swapped)."""
    for p in pairs:
        if p.source.id in crops.crops and p.target.id in crops.crops:
            source, target = (to_tensor([crops.method_crop(i)]).to(method.device) for i in (p.source, p.target))
            try:
                return swap_precision(method, source, target)
            except Exception:  # noqa: BLE001 — a method's failure on a pair is recorded by swap_pairs
                return "unknown"
    return "unknown"


def _store(cache: SwapCache, batch: list[Pair], out: torch.Tensor, tgt: torch.Tensor,
           failures: dict[str, str]) -> None:
    if out.shape != tgt.shape:
        for p in batch:
            failures[p.id] = f"swap returned shape {tuple(out.shape)}, expected {tuple(tgt.shape)}"
        return
    for p, crop in zip(batch, to_uint8(out)):
        cache.put(p, crop)


def _swap_one_by_one(method: Method, batch: list[Pair], src: torch.Tensor, tgt: torch.Tensor, cache: SwapCache,
                     failures: dict[str, str]) -> None:
    """After a batch failed: each pair alone, so one bad pair fails alone."""
    for i, p in enumerate(batch):
        try:
            with torch.no_grad():
                single = method.swap(src[i:i + 1], tgt[i:i + 1])
            _store(cache, [p], single, tgt[i:i + 1], failures)
        except Exception as err:  # noqa: BLE001 — a method's failure is its result, recorded per pair
            failures[p.id] = f"swap failed: {type(err).__name__}: {err}"


def swap_pairs(method: Method, pairs: list[Pair], crops: CropStore, cache: SwapCache, failures: dict[str, str],
               *, batch_size: int = 8, seed: int = 0, progress: bool = True) -> dict[str, float]:
    """Swap every pair not yet cached and not failed, in batches (the torch seed of each batch derives from
    ``seed`` and its position); returns timing totals."""
    candidates = [p for p in pairs if p.id not in failures]
    todo = [p for p in candidates if not cache.has(p)]
    note = stages.resume_note(len(candidates) - len(todo), len(candidates))
    if note:
        print(note, file=sys.stderr)
    seconds = 0.0
    bar = stages.bar(f"swap {method.card.name}", total=len(todo), disable=not (progress and todo), unit="pair")
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        torch.manual_seed(seed + start)
        src = to_tensor(crops.method_crop(p.source) for p in batch).to(method.device)
        tgt = to_tensor(crops.method_crop(p.target) for p in batch).to(method.device)
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                out = method.swap(src, tgt)
        except Exception:  # noqa: BLE001 — retried one pair at a time so one bad pair fails alone
            out = None
        seconds += time.perf_counter() - t0
        if out is None:
            _swap_one_by_one(method, batch, src, tgt, cache, failures)
        else:
            _store(cache, batch, out, tgt, failures)
        bar.update(len(batch))
    bar.close()
    return {"swap_seconds": seconds, "swapped_now": len(todo), "from_cache": len(candidates) - len(todo)}
