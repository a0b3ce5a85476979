"""FaceForensics++ in its official layout.

``ROOT/original_sequences/youtube/<c0|c23|c40>/videos/000.mp4 … 999.mp4`` are the real videos; the standard
swap pairs are the names of the manipulated videos ``ROOT/manipulated_sequences/<Method>/<c>/videos/<t>_<s>.mp4``
(target t, source s), or the FF++ code's ``splits/{train,val,test}.json`` (pairs of ids, each giving both
directions) when given.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from fsbench.data.check import DataRootError
from fsbench.errors import UsageError
from fsbench.data.check import require_present

COMPRESSIONS = ("c0", "c23", "c40")
_PAIR_NAME = re.compile(r"^(\d{3})_(\d{3})$")


class FFPPDataset:
    def __init__(self, root: str | Path | None, compression: str = "c23", splits: str | Path | None = None,
                 split: str = "test") -> None:
        if root is None:
            raise UsageError("the ffpp protocol reads your FaceForensics++ copy: pass --data-root DIR "
                             "(DIR/original_sequences/youtube/c23/videos/000.mp4 ...)")
        if compression not in COMPRESSIONS:
            raise UsageError(f"compression must be one of {', '.join(COMPRESSIONS)}, got '{compression}'")
        self.root = Path(root).expanduser().resolve()
        self.compression = compression
        self.videos_dir = self.root / "original_sequences" / "youtube" / compression / "videos"
        if not self.videos_dir.is_dir():
            raise DataRootError(f"{self.videos_dir}: not found; is {self.root} a FaceForensics++ root "
                                    f"with compression {compression}?")
        self.splits, self.split = (Path(splits) if splits else None), split
        self.pairs = self._pairs_from_splits() if self.splits else self._pairs_from_manipulated()
        if not self.pairs:
            raise UsageError(f"{self.root}: no swap pairs found (no manipulated_sequences/*/{compression}/videos/"
                             f"TTT_SSS.mp4 names, and no --protocol-option splits=...)")
        ids = sorted({v for pair in self.pairs for v in pair})
        require_present(self.root, (self.video(v) for v in ids), f"{compression} videos the swap pairs refer to",
                        f"a FaceForensics++ root with original_sequences/youtube/{compression}/videos/NNN.mp4")

    def _pairs_from_manipulated(self) -> list[tuple[str, str]]:
        names = set()
        for video in self.root.glob(f"manipulated_sequences/*/{self.compression}/videos/*.mp4"):
            match = _PAIR_NAME.match(video.stem)
            if match:
                names.add((match.group(1), match.group(2)))
        return sorted(names)

    def _pairs_from_splits(self) -> list[tuple[str, str]]:
        assert self.splits is not None
        path = self.splits / f"{self.split}.json" if self.splits.is_dir() else self.splits
        try:
            entries = json.loads(path.read_text())
            pairs = [(str(a), str(b)) for a, b in entries]
        except (OSError, json.JSONDecodeError, ValueError, TypeError) as err:
            raise UsageError(f"{path}: expected a JSON list of [id, id] pairs ({err})") from err
        return sorted({p for a, b in pairs for p in ((a, b), (b, a))})

    def video(self, video_id: str) -> Path:
        return self.videos_dir / f"{video_id}.mp4"

    def all_videos(self) -> list[str]:
        return sorted(p.stem for p in self.videos_dir.glob("*.mp4"))

    def describe(self) -> dict[str, Any]:
        listing = "\n".join(f"{t}_{s}" for t, s in self.pairs)
        return {"name": "ffpp", "root": str(self.root), "compression": self.compression,
                "pairs_source": str(self.splits / self.split if self.splits else "manipulated_sequences names"),
                "manifest_sha256": hashlib.sha256(listing.encode()).hexdigest()}
