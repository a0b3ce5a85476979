"""LFW protocol (MobileFSGAN Table 2): the 3000 different-person view-2 pairs, the identity of the second image
put onto the first, cosine similarity between the swap and the second image; mean and variance reported, with the
3000 same-person pairs' cosine (real vs real) alongside as the ceiling."""
from __future__ import annotations

from pathlib import Path

from fsbench.protocols.base import Item, Pair, Protocol, ProtocolData


class LFW(Protocol):
    name = "lfw"
    version = 1
    description = "LFW view 2: 3000 different-person pairs, second onto first, cosine(swap, second)"
    metrics = ("id_cosine",)
    needs_data_root = True

    def __init__(self, pairs_file: str | None = None) -> None:
        self.pairs_file = pairs_file

    def build(self, data_root: Path | None, seed: int) -> ProtocolData:
        from fsbench.data.lfw import LFWDataset

        data = LFWDataset(data_root, self.pairs_file)

        def item(key: str) -> Item:
            return Item(id=key, identity=key.split("/")[0], path=str(data.image(key)))

        pairs = [Pair(source=item(p.second), target=item(p.first)) for p in data.pairs if not p.same]
        same = [(item(p.first), item(p.second)) for p in data.pairs if p.same]
        gallery = list({i.id: i for p in pairs for i in (p.source, p.target)}.values())
        return ProtocolData(pairs, gallery, data.describe(),
                            {"pairs": "view 2 different-person pairs; source = second image, target = first",
                             "ceiling": "cosine of the view 2 same-person pairs (real vs real)"},
                            same_person=same)
