"""Runs a method on a protocol: prepares aligned crops, swaps into the swap cache (:mod:`fsbench.swapcache`), has
the swaps scored (:mod:`fsbench.scoring`) and writes the results record (:mod:`fsbench.results`).

A failure of one item (unreadable file, no face, a method error) is recorded with its reason and the run goes on;
a killed run resumes from the swap cache.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsbench import registry, results
from fsbench.api import Method, MethodCard
from fsbench.errors import UsageError
from fsbench.faces.crops import EVAL_SIZE, EVAL_TEMPLATE, CropStore
from fsbench.metrics.base import Backend
from fsbench.metrics.definitions import figure_key, metric, slot_family
from fsbench.protocols.base import Pair, Protocol, ProtocolData, create as create_protocol
from fsbench.scoring import choose_backends, same_person_cosine, score
from fsbench.swapcache import SwapCache, probe_precision, swap_cache_folder, swap_pairs


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


def _device_for(cfg: RunConfig, ranks: Ranks) -> str:
    if cfg.device == "cuda" and ranks.world > 1:
        import os

        return f"cuda:{os.environ.get('LOCAL_RANK', ranks.rank)}"
    return cfg.device


def _protocol(cfg: RunConfig) -> tuple[Protocol, ProtocolData, list[Pair]]:
    """The protocol with the run's options, its data, and the pairs this run scores (``--limit``)."""
    protocol = create_protocol(cfg.protocol, cfg.protocol_options, cfg.data_root)
    data = protocol.build(cfg.data_root, cfg.seed)
    return protocol, data, data.pairs[:cfg.limit] if cfg.limit else data.pairs


def _backends(cfg: RunConfig, protocol: Protocol, card: MethodCard, device: str, first: bool) -> dict[str, Backend]:
    """Slot → metric backend for the protocol's families (``--backend`` over the defaults, see
    :func:`fsbench.scoring.choose_backends`), on the first rank only: a missing or wrong reference file fails here,
    before any swapping. Warns when an identity backend is one the method trained with."""
    chosen = choose_backends(cfg.backends, {metric(m).family for m in protocol.reported_metrics()})
    if not first:
        return {}
    trained_with = card.notes.get("training_recognisers", [])
    overlap = sorted({n for s, n in chosen.items() if slot_family(s) == "identity"} & set(trained_with))
    if overlap:
        print(f"warning: identity backend '{', '.join(overlap)}' is one {card.name} trained with "
              f"({', '.join(trained_with)}): its identity figures flatter it", file=sys.stderr)
    return {s: registry.metrics.get(name)(device=device) for s, name in chosen.items()}


def _crop_failures(crops: CropStore, pairs: list[Pair], progress: bool) -> dict[str, str]:
    """Prepares the crops of ``pairs``; the pairs whose source or target has no crop, with the reason."""
    crops.prepare({i.id: i for p in pairs for i in (p.source, p.target)}.values(), progress)
    failures = {}
    for p in pairs:
        bad = [f"{role} {item.id}: {crops.failures[item.id]}" for role, item in (("source", p.source),
               ("target", p.target)) if item.id in crops.failures]
        if bad:
            failures[p.id] = "; ".join(bad)
    return failures


def _measure(protocol: Protocol, data: ProtocolData, pairs: list[Pair], backends: dict[str, Backend],
             crops: CropStore, cache: SwapCache, failures: dict[str, str], cfg: RunConfig,
             template: str) -> results.Measured:
    """Scores every cached swap of ``pairs`` that did not fail (an unreadable cached swap becomes a failure)."""
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
        except UsageError as err:  # an unreadable cached swap fails its pair alone
            failures[p.id] = str(err)
    per_sample, per_clip, set_level = score(protocol.reported_metrics(), backends, scored, swaps, crops,
                                            data.gallery, data.clips, template, cfg.progress)
    reference = {}
    for slot_name, backend in backends.items():
        if data.same_person and slot_family(slot_name) == "identity":
            reference[figure_key("same_person_id_cosine", slot_name)] = results.summarise(
                same_person_cosine(backend, data.same_person, crops), cfg.seed)
    return results.Measured(scored, per_sample, set_level, reference, per_clip)


def run(cfg: RunConfig) -> tuple[Path | None, dict[str, Any] | None]:
    """Run ``cfg.method`` on ``cfg.protocol``; returns the results path and the results (None on ranks > 0).

    Under torchrun the pairs are split across ranks (rank r swaps pairs r, r+N, ...) into the shared swap cache;
    rank 0 then scores every pair from the cache and writes the one results file, so the figures are the same
    as a single process's.
    """
    started = time.perf_counter()
    ranks = Ranks.from_env(cfg.device)
    device = _device_for(cfg, ranks)
    protocol, data, pairs = _protocol(cfg)
    method: Method = registry.create_method(cfg.method, device, cfg.weights)
    card = method.card
    backends = _backends(cfg, protocol, card, device, first=ranks.rank == 0)
    crops = CropStore(card.template, card.input_size)
    mine = pairs[ranks.rank::ranks.world]
    failures = _crop_failures(crops, mine, cfg.progress)
    precision = probe_precision(method, mine, crops)
    cache = SwapCache(swap_cache_folder(cfg.out, card.to_dict(), protocol.name, protocol.version), precision)
    timing = swap_pairs(method, mine, crops, cache, failures, batch_size=cfg.batch_size, seed=cfg.seed,
                        progress=cfg.progress)
    gathered = ranks.gather_to_first((failures, timing))
    ranks.close()
    if ranks.rank != 0:
        return None, None
    failures = {k: v for fails, _ in gathered for k, v in fails.items()}
    timing = {k: sum(t[k] for _, t in gathered) for k in timing}
    measured = _measure(protocol, data, pairs, backends, crops, cache, failures, cfg, card.template)
    variant = {**cfg.protocol_options, "limit": cfg.limit, "swap_storage": "PNG uint8",
               "eval_template": f"{EVAL_TEMPLATE}@{EVAL_SIZE}"}
    timings = {**timing, "wall_seconds": time.perf_counter() - started, "ranks": ranks.world}
    result = results.record(protocol=protocol, data=data, n_pairs=len(pairs), card=card.to_dict(),
                            precision=precision, backends=backends, measured=measured, gallery_ids=set(crops.crops),
                            failures=failures, item_failures=crops.failures, variant=variant, timings=timings,
                            device=device, seed=cfg.seed)
    path = results.write(cfg.out / results.file_name(card.name, protocol.name, protocol.version, cfg.seed,
                                                    protocol.variant_tag), result)
    return path, result
