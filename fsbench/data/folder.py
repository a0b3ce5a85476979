"""A user folder of faces in LFW's layout: ``ROOT/<identity>/<image file>``."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

from fsbench.errors import UsageError
from fsbench.data.check import DataRootError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


class FolderDataset:
    def __init__(self, root: str | Path | None) -> None:
        if root is None:
            raise UsageError("this protocol reads your own data: pass --data-root DIR (DIR/<identity>/<image>)")
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DataRootError(f"{self.root}: not a directory (expected <identity>/<image> inside)")
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        with_images = {ident for ident, _ in self.images()}
        if not with_images:
            raise DataRootError(f"{self.root}: no images found in <identity>/ subfolders "
                                f"(suffixes {', '.join(sorted(IMAGE_SUFFIXES))})")
        empty = [p for p in folders if p.name not in with_images]
        if len(empty) > len(folders) / 2:
            raise DataRootError(f"{self.root}: {len(empty)} of its {len(folders)} subfolders hold no images "
                                f"(e.g. {empty[0]}); is it a folder of <identity>/<image> faces?")
        if len(with_images) < 2:
            raise DataRootError(f"{self.root}: images of only one identity ({next(iter(with_images))}); "
                                f"swap pairs need at least two <identity>/ subfolders")

    def images(self) -> Iterator[tuple[str, Path]]:
        """(identity, path) for every image, sorted, so pair selection is deterministic."""
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    yield folder.name, path

    def describe(self) -> dict[str, Any]:
        """Name, root and a manifest sha256 over relative paths and sizes (not contents: folders can be large)."""
        listing = "\n".join(f"{p.relative_to(self.root)}\t{p.stat().st_size}" for _, p in self.images())
        return {"name": "folder", "root": str(self.root),
                "manifest_sha256": hashlib.sha256(listing.encode()).hexdigest()}
