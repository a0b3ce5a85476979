"""LFW: the user's image folder (original or deep-funneled layout ``Name/Name_0001.jpg``) and view-2 pairs.

``pairs.txt`` is read from the user's folder when present; otherwise it is rebuilt from the embedded
xbob.db.lfw SQLite (asset ``lfw-pairs-db``), which holds the same 10 folds × (300 same + 300 different) pairs.
"""
from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsbench.data.check import DataRootError
from fsbench.errors import UsageError
from fsbench.data.check import require_present


@dataclass(frozen=True)
class LFWPair:
    fold: int
    same: bool
    first: str  # "Name/Name_0001" (no suffix)
    second: str


class PairsFileError(UsageError):
    """pairs.txt is malformed; the message names the file and line."""


def parse_pairs(path: Path) -> list[LFWPair]:
    """Parse view-2 ``pairs.txt``: a header "folds n", then per fold n same-person and n different-person lines."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines or len(lines[0]) != 2 or not all(x.isdigit() for x in lines[0]):
        raise PairsFileError(f"{path}:1: expected a header 'FOLDS PAIRS_PER_HALF' (e.g. '10 300')")
    folds, per_half = map(int, lines[0])
    if len(lines) - 1 != folds * 2 * per_half:
        raise PairsFileError(f"{path}: header says {folds} folds x 2 x {per_half} pairs, file has {len(lines) - 1}")
    out = []
    for i, parts in enumerate(lines[1:]):
        fold, same = i // (2 * per_half), (i % (2 * per_half)) < per_half
        try:
            if same and len(parts) == 3:
                name, a, b = parts[0], int(parts[1]), int(parts[2])
                out.append(LFWPair(fold, True, f"{name}/{name}_{a:04d}", f"{name}/{name}_{b:04d}"))
            elif not same and len(parts) == 4:
                out.append(LFWPair(fold, False, f"{parts[0]}/{parts[0]}_{int(parts[1]):04d}",
                                   f"{parts[2]}/{parts[2]}_{int(parts[3]):04d}"))
            else:
                raise ValueError(f"expected {'3' if same else '4'} fields")
        except ValueError as err:
            raise PairsFileError(f"{path}:{i + 2}: {err}: {' '.join(parts)}") from err
    return out


def pairs_from_db(db: Path) -> list[LFWPair]:
    """View-2 pairs from the xbob.db.lfw database, in pairs.txt order (per fold: same, then different, by id)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT p.protocol, p.is_match, a.path, b.path FROM pair p JOIN file a ON a.id = p.enrol_file_id "
            "JOIN file b ON b.id = p.probe_file_id WHERE p.protocol LIKE 'fold%' "
            "ORDER BY CAST(SUBSTR(p.protocol, 5) AS INTEGER), p.is_match DESC, p.id").fetchall()
    finally:
        con.close()
    return [LFWPair(int(proto[4:]) - 1, bool(match), a, b) for proto, match, a, b in rows]


class LFWDataset:
    def __init__(self, root: str | Path | None, pairs_file: str | Path | None = None) -> None:
        if root is None:
            raise UsageError("the lfw protocol reads your LFW copy: pass --data-root DIR (DIR/Name/Name_0001.jpg)")
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DataRootError(f"{self.root}: not a directory (expected LFW's Name/Name_0001.jpg layout)")
        candidates = [Path(pairs_file)] if pairs_file else [self.root / "pairs.txt", self.root.parent / "pairs.txt"]
        found = next((p for p in candidates if p.is_file()), None)
        if pairs_file and found is None:
            raise DataRootError(f"{pairs_file}: pairs file not found")
        if found is not None:
            self.pairs, self.pairs_source = parse_pairs(found), str(found)
        else:
            from fsbench import assets

            self.pairs, self.pairs_source = pairs_from_db(assets.path("lfw-pairs-db")), "xbob.db.lfw==1.2.0 db.sql3"
        keys = sorted({key for pair in self.pairs for key in (pair.first, pair.second)})
        require_present(self.root, (self.image(k) for k in keys), "images the view-2 pairs refer to",
                        "an LFW folder (Name/Name_0001.jpg)")

    def image(self, key: str) -> Path:
        """Path of ``Name/Name_0001``; .jpg as LFW ships, else any suffix present."""
        path = self.root / f"{key}.jpg"
        if path.is_file():
            return path
        others = sorted(self.root.glob(f"{key}.*"))
        return others[0] if others else path

    def describe(self) -> dict[str, Any]:
        listing = "\n".join(f"{p.fold}\t{int(p.same)}\t{p.first}\t{p.second}" for p in self.pairs)
        return {"name": "lfw", "root": str(self.root), "pairs_source": self.pairs_source,
                "manifest_sha256": hashlib.sha256(listing.encode()).hexdigest()}
