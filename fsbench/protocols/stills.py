"""Still-image swap protocols over labelled faces: the embedded portraits (the headline) and mini sets, or a user folder."""
from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from fsbench.protocols.base import Item, Pair, Protocol, ProtocolData

STILLS_METRICS = ("id_cosine", "id_top1_frame", "id_top5_frame", "id_top1_identity", "id_top5_identity",
                  "pose_error", "expression_error", "fd_id", "fd")


def cross_identity_pairs(items: list[Item], max_pairs: int, seed: int) -> list[Pair]:
    """Every item as target with the first item of every other identity as source; a seeded sample if too many."""
    by_identity: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_identity[item.identity].append(item)
    primary = {ident: group[0] for ident, group in sorted(by_identity.items())}
    pairs = [Pair(source, target) for target in items for ident, source in primary.items()
             if ident != target.identity]
    if len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
        pairs.sort(key=lambda p: (p.target.id, p.source.id))
    return pairs


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point (Sattolo's algorithm: one cycle through all ``n``), ``n`` ≥ 2."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {n}")
    order = list(range(n))
    rng = random.Random(seed)
    for i in range(n - 1, 0, -1):
        j = rng.randrange(i)
        order[i], order[j] = order[j], order[i]
    return order


class Portraits(Protocol):
    """The headline embedded protocol: one portrait per test identity, hundreds of identities.

    Each test identity is a target once and a source once (a derangement fixed by ``PAIR_SEED``, so every run of
    v1 scores the same pairs whatever ``--seed`` says); the retrieval gallery and the FD reference set are every
    test portrait.
    """

    name = "portraits"
    version = 1
    description = ("embedded portraits of hundreds of people (fsbench/data/portraits.json, test split): every test "
                   "identity is a target, its source another test identity by a fixed seeded derangement; "
                   "gallery = every test portrait")
    metrics = STILLS_METRICS
    PAIR_SEED = 0

    def build(self, data_root: Path | None, seed: int) -> ProtocolData:
        from fsbench.data import portraits

        manifest = portraits.load_manifest()
        items = [Item(id=p.id, identity=p.identity, path=str(p.path())) for p in manifest.items(split="test")]
        order = derangement(len(items), self.PAIR_SEED)
        pairs = [Pair(items[order[i]], target) for i, target in enumerate(items)]
        return ProtocolData(pairs, items, manifest.describe(split="test"),
                            {"pairs": f"each test identity as target, source by derangement (seed {self.PAIR_SEED})",
                             "gallery": "all test portraits"})


class MiniStills(Protocol):
    name = "mini-stills"
    version = 1
    description = ("embedded real faces: every test still as target, each other test identity's first still as "
                   "source; gallery = every test still and video-free distractors")
    metrics = STILLS_METRICS
    max_pairs = 1000

    def build(self, data_root: Path | None, seed: int) -> ProtocolData:
        from fsbench.data import mini

        manifest = mini.load_manifest()
        items = [Item(id=s.id, identity=s.identity, asset=s.asset, face_index=s.face_index)
                 for s in manifest.items(split="test", kind="still")]
        pairs = cross_identity_pairs(items, self.max_pairs, seed)
        dataset = {"name": "mini", "manifest_version": manifest.version, "manifest_sha256": mini.manifest_sha256(),
                   "split": "test"}
        return ProtocolData(pairs, items, dataset, {"pairs": "all targets x first still of other identities",
                                                    "gallery": "all test stills"})


class FolderStills(Protocol):
    """The user's own faces laid out as ``ROOT/<identity>/<image>`` (LFW's layout)."""

    name = "folder"
    version = 1
    description = "a folder of <identity>/<image> faces: same pairing and gallery as mini-stills"
    metrics = STILLS_METRICS
    needs_data_root = True
    max_pairs = 1000

    def build(self, data_root: Path | None, seed: int) -> ProtocolData:
        from fsbench.data.folder import FolderDataset

        dataset = FolderDataset(data_root)
        items = [Item(id=str(p.relative_to(dataset.root)), identity=ident, path=str(p))
                 for ident, p in dataset.images()]
        pairs = cross_identity_pairs(items, self.max_pairs, seed)
        return ProtocolData(pairs, items, dataset.describe(), {"pairs": "all targets x first image of other "
                                                               "identities", "gallery": "all images"})
