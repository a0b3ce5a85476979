"""Runs a method on a protocol: prepares aligned crops, swaps with an on-disk cache, has them scored
(:mod:`fsbench.scoring`), writes results.

Swapped crops are cached as PNG under ``OUT/cache/<method>/<protocol>-v<version>/`` keyed by pair, written
atomically, so a killed run resumes where it stopped and recomputes nothing finished. A failure of one item
(unreadable file, no face, a method error) is recorded with its reason and the run goes on.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from fsbench import registry, results
from fsbench.api import Method
from fsbench.faces.crops import EVAL_SIZE, EVAL_TEMPLATE, CropStore, to_tensor, to_uint8
from fsbench.metrics.base import Backend
from fsbench.metrics.definitions import METRICS
from fsbench.metrics.speed import swap_precision
from fsbench.protocols.base import Pair, ProtocolData
from fsbench.metrics.definitions import figure_key, slot_family
from fsbench.scoring import chosen_backends, same_person_cosine, score


@dataclass
class RunConfig:
    method: str
    protocol: str
    out: Path = Path("runs")
    weights: Path | None = None  # a weights file of the method instead of its shipped one
    data_root: Path | None = None
    limit: int | None = None
    device: str = "cpu"
    seed: int = 0
    batch_size: int = 8
    backends: dict[str, str] = field(default_factory=dict)  # family -> primary backend, over DEFAULT_BACKENDS
    protocol_options: dict[str, str] = field(default_factory=dict)
    progress: bool = True


@dataclass(frozen=True)
class Ranks:
    """This process's place under torchrun (RANK / WORLD_SIZE); one process otherwise."""

    rank: int = 0
    world: int = 1

    @staticmethod
    def from_env(device: str) -> "Ranks":
        import os

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return Ranks()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return Ranks(dist.get_rank(), world)

    def gather_to_first(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` on rank 0 (a list there, [] elsewhere); a barrier for all."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world if self.rank == 0 else []
        dist.gather_object(obj, out if self.rank == 0 else None, dst=0)
        return out

    def close(self) -> None:
        """Leave the process group cleanly (a rank exiting with it open aborts under gloo). The barrier first: a rank
        whose last send has returned may otherwise tear down its gloo pairs while the peer still reads from them,
        which aborted a rank about once in a few CI runs under load."""
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()


def method_key(card: dict[str, Any]) -> str:
    """Swap-cache folder of a method card (as ``MethodCard.to_dict()`` or a results file's ``method``)."""
    weights = (card.get("checkpoint_sha256") or "noweights")[:12]
    return f"{card['name']}-v{card['version']}-{weights}"


def swap_cache_folder(out: Path, card: dict[str, Any], protocol: str, version: int) -> Path:
    """Where a run writing to ``out`` caches the swaps of the method with ``card`` on a protocol version."""
    return out / "cache" / method_key(card) / f"{protocol}-v{version}"


class SwapCache:
    """Swapped crops as PNG, one per pair, made in one precision.

    The folder records the precision its swaps were made in (``precision.txt``; a folder from before fsbench
    recorded it adopts the current one, as swap caches live on the machine that made them), and a run in another
    precision is refused rather than scored from a mix of the two.
    """

    def __init__(self, folder: Path, precision: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / "precision.txt"
        recorded = marker.read_text().strip() if marker.is_file() else None
        if recorded is None:
            marker.write_text(precision + "\n")
        elif recorded != precision:
            raise ValueError(f"{folder}: its cached swaps were made in {recorded}, this run's method runs in "
                             f"{precision}; delete the folder or use another --out")

    def path(self, pair: Pair) -> Path:
        return self.folder / f"{pair.id}.png"

    def has(self, pair: Pair) -> bool:
        return self.path(pair).is_file()

    def put(self, pair: Pair, crop: np.ndarray) -> None:
        target = self.path(pair)
        tmp = target.with_name(f".{target.name}.tmp.png")
        if not cv2.imwrite(str(tmp), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {tmp}")
        tmp.replace(target)

    def get(self, pair: Pair) -> np.ndarray:
        image = cv2.imread(str(self.path(pair)), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"{self.path(pair)}: cached swap is unreadable; delete it to recompute")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _store(cache: SwapCache, batch: list[Pair], out: torch.Tensor, tgt: torch.Tensor,
           failures: dict[str, str]) -> None:
    if out.shape != tgt.shape:
        for p in batch:
            failures[p.id] = f"swap returned shape {tuple(out.shape)}, expected {tuple(tgt.shape)}"
        return
    for p, crop in zip(batch, to_uint8(out)):
        cache.put(p, crop)


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


def swap_pairs(method: Method, pairs: list[Pair], crops: CropStore, cache: SwapCache, cfg: RunConfig,
               failures: dict[str, str]) -> dict[str, float]:
    """Swap every pair not yet cached, in batches; returns timing totals."""
    todo = [p for p in pairs if not cache.has(p) and p.id not in failures]
    seconds = 0.0
    bar = tqdm(total=len(todo), desc=f"swap {method.card.name}", disable=not (cfg.progress and todo), unit="pair")
    for start in range(0, len(todo), cfg.batch_size):
        batch = todo[start:start + cfg.batch_size]
        torch.manual_seed(cfg.seed + start)
        src = to_tensor(crops.method_crop(p.source) for p in batch).to(method.device)
        tgt = to_tensor(crops.method_crop(p.target) for p in batch).to(method.device)
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                out = method.swap(src, tgt)
        except Exception:  # noqa: BLE001 — retry one pair at a time so one bad pair fails alone
            out = None
        seconds += time.perf_counter() - t0
        if out is None:
            for i, p in enumerate(batch):
                try:
                    with torch.no_grad():
                        single = method.swap(src[i:i + 1], tgt[i:i + 1])
                    _store(cache, [p], single, tgt[i:i + 1], failures)
                except Exception as err:  # noqa: BLE001 — a method's failure is its result, recorded per pair
                    failures[p.id] = f"swap failed: {type(err).__name__}: {err}"
        else:
            _store(cache, batch, out, tgt, failures)
        bar.update(len(batch))
    bar.close()
    return {"swap_seconds": seconds, "swapped_now": len(todo)}


def _device_for(cfg: RunConfig, ranks: Ranks) -> str:
    if cfg.device == "cuda" and ranks.world > 1:
        import os

        return f"cuda:{os.environ.get('LOCAL_RANK', ranks.rank)}"
    return cfg.device


def run(cfg: RunConfig) -> tuple[Path | None, dict[str, Any] | None]:
    """Run ``cfg.method`` on ``cfg.protocol``; returns the results path and the results (None on ranks > 0).

    Under torchrun the pairs are split across ranks (rank r swaps pairs r, r+N, ...) into the shared swap cache;
    rank 0 then scores every pair from the cache and writes the one results file, so the figures are the same
    as a single process's.
    """
    started = time.perf_counter()
    ranks = Ranks.from_env(cfg.device)
    device = _device_for(cfg, ranks)
    try:
        protocol = registry.protocols.get(cfg.protocol)(**cfg.protocol_options)
    except TypeError as err:
        raise ValueError(f"protocol '{cfg.protocol}' does not take options {cfg.protocol_options}: {err}") from err
    data: ProtocolData = protocol.build(cfg.data_root, cfg.seed)
    pairs = data.pairs[:cfg.limit] if cfg.limit else data.pairs
    method: Method = registry.create_method(cfg.method, device, cfg.weights)
    card = method.card
    chosen = chosen_backends({METRICS[m].family for m in protocol.metrics}, cfg.backends)
    trained_with = card.notes.get("training_recognisers", [])
    overlap = sorted({n for s, n in chosen.items() if slot_family(s) == "identity"} & set(trained_with))
    if ranks.rank == 0 and overlap:
        print(f"warning: identity backend '{', '.join(overlap)}' is one {card.name} trained with "
              f"({', '.join(trained_with)}): its identity figures flatter it", file=sys.stderr)
    backends: dict[str, Backend] = {}
    if ranks.rank == 0:  # fail fast on a missing reference file, before any swapping
        backends = {s: registry.metrics.get(name)(device=device) for s, name in chosen.items()}
        for slot_name, backend in backends.items():
            if backend.info.family != slot_family(slot_name):
                raise ValueError(f"backend '{backend.info.name}' measures {backend.info.family}, "
                                 f"not {slot_family(slot_name)}")

    crops = CropStore(card.template, card.input_size)
    mine = pairs[ranks.rank::ranks.world]
    crops.prepare({i.id: i for p in mine for i in (p.source, p.target)}.values(), cfg.progress)
    failures: dict[str, str] = {}
    for p in mine:
        bad = [f"{role} {item.id}: {crops.failures[item.id]}" for role, item in (("source", p.source),
               ("target", p.target)) if item.id in crops.failures]
        if bad:
            failures[p.id] = "; ".join(bad)
    precision = probe_precision(method, mine, crops)
    cache = SwapCache(swap_cache_folder(cfg.out, card.to_dict(), protocol.name, protocol.version), precision)
    timing = swap_pairs(method, mine, crops, cache, cfg, failures)
    gathered = ranks.gather_to_first((failures, timing))
    ranks.close()
    if ranks.rank != 0:
        return None, None
    failures = {k: v for fails, _ in gathered for k, v in fails.items()}
    timing = {k: sum(t[k] for _, t in gathered) for k in timing}

    needed = {i.id: i for p in pairs for i in (p.source, p.target)}
    needed.update({g.id: g for g in data.gallery})
    needed.update({i.id: i for pair in data.same_person for i in pair})
    crops.prepare(needed.values(), cfg.progress)
    scored, swaps = [], []
    for p in pairs:
        if p.id in failures:
            continue
        try:
            swaps.append(cache.get(p))
            scored.append(p)
        except OSError as err:
            failures[p.id] = str(err)
    per_sample, set_level = score(protocol.metrics, backends, scored, swaps, crops, data.gallery, card.template,
                                 cfg.progress)

    backend_records = {f: {"name": b.info.name, "kind": b.info.kind, "label": b.info.label,
                           "description": b.info.description, "weights_sha256": b.weight_sha256()}
                       for f, b in backends.items()}
    gallery_identities = len({g.identity for g in data.gallery if g.id in crops.crops})
    aggregates = results.aggregates(protocol.metrics, per_sample, set_level, len(scored), backend_records,
                                    gallery_identities, cfg.seed)
    reference = {}
    for slot_name, backend in backends.items():
        if data.same_person and slot_family(slot_name) == "identity":
            reference[figure_key("same_person_id_cosine", slot_name)] = results.summarise(
                same_person_cosine(backend, data.same_person, crops), cfg.seed)
    samples = [{"pair": p.id, "source": p.source.id, "target": p.target.id, "values": row}
               for p, row in zip(scored, per_sample)]
    result = {
        "schema": results.SCHEMA_VERSION,
        "created": results.now(),
        "protocol": {"name": protocol.name, "version": protocol.version, "description": protocol.description,
                     "variant": {**data.variant, **cfg.protocol_options, "limit": cfg.limit,
                                 "swap_storage": "PNG uint8", "eval_template": f"{EVAL_TEMPLATE}@{EVAL_SIZE}"}},
        "method": card.to_dict(),
        "precision": precision,
        "backends": backend_records,
        "dataset": data.dataset,
        "counts": {"pairs": len(pairs), "pairs_scored": len(scored), "failures": len(failures),
                   "gallery": len([g for g in data.gallery if g.id in crops.crops])},
        "aggregates": aggregates,
        "reference": reference,
        "samples": samples,
        "failures": [{"pair": pid, "reason": why} for pid, why in sorted({**data.failures, **failures}.items())],
        "item_failures": [{"item": iid, "reason": why} for iid, why in sorted(crops.failures.items())],
        "timings": {**timing, "wall_seconds": time.perf_counter() - started, "ranks": ranks.world},
        "environment": results.environment(device),
        "git_commit": results.git_commit(),
        "seed": cfg.seed,
    }
    path = results.write(cfg.out / f"{card.name}__{protocol.name}-v{protocol.version}__seed{cfg.seed}.json", result)
    return path, result
