"""Aligned face crops for training, from the mini training identities or a folder of images.

Crops are detected and aligned once and cached (``$FSBENCH_HOME/crops/<key>.npz``). Batches are drawn as a
function of (seed, step), so a resumed run sees exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fsbench import assets


@dataclass
class FaceCrops:
    images: np.ndarray  # N×S×S×3 uint8, aligned with ``template``
    identities: np.ndarray  # N int labels
    names: list[str]  # identity names, indexed by label
    template: str

    def __len__(self) -> int:
        return len(self.images)

    def tensor(self, index: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.images[index]).permute(0, 3, 1, 2).float().div_(255.0)

    def rng(self, seed: int, step: int) -> np.random.Generator:
        return np.random.default_rng([seed, step])

    def swap_batch(self, seed: int, step: int, batch: int, same_ratio: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(source, target, same) for one step: with probability ``same_ratio`` the source is the target image
        itself (the papers' X_s = X_t samples), otherwise a random other image."""
        rng = self.rng(seed, step)
        target = rng.integers(0, len(self), batch)
        source = rng.integers(0, len(self), batch)
        same = rng.random(batch) < same_ratio
        source = np.where(same, target, source)
        return self.tensor(source), self.tensor(target), torch.from_numpy(same)


def _cache_file(key: str) -> Path:
    return assets.home() / "crops" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _align_all(images: list[tuple[str, np.ndarray]], template: str, size: int) -> tuple[list[np.ndarray], list[str]]:
    from fsbench.faces.align import align_face
    from fsbench.faces.detect import detect_face
    from fsbench.faces.errors import FaceError

    crops, labels = [], []
    for identity, image in images:
        try:
            face = detect_face(image)
        except FaceError:
            continue
        crops.append(align_face(image, face.landmarks, template, size)[0])
        labels.append(identity)
    return crops, labels


def _pack(crops: list[np.ndarray], labels: list[str], template: str) -> FaceCrops:
    names = sorted(set(labels))
    index = {n: i for i, n in enumerate(names)}
    return FaceCrops(np.stack(crops), np.array([index[n] for n in labels]), names, template)


def mini_train_crops(template: str = "ffhq-256", size: int = 256, video_stride: int = 8) -> FaceCrops:
    """Every training still and every ``video_stride``-th frame of the training clips of the mini set."""
    from fsbench.data import mini
    from fsbench.faces import io

    manifest = mini.load_manifest()
    key = f"mini-train:{manifest.sha256}:{template}:{size}:{video_stride}"
    cached = _cache_file(key)
    if cached.is_file():
        data = np.load(cached)
        return FaceCrops(data["images"], data["identities"], list(data["names"]), template)
    images: list[tuple[str, np.ndarray]] = []
    for item in manifest.items(split="train"):
        if item.kind == "still":
            images.append((item.identity, io.read_image(assets.path(item.asset))))
        else:
            indices = [i for clip in item.clips for i in range(clip.start, clip.end, video_stride)]
            images.extend((item.identity, frame) for frame in io.read_frames(assets.path(item.asset), indices))
    crops, labels = _align_all(images, template, size)
    out = _pack(crops, labels, template)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f".{cached.stem}.tmp.npz")
    np.savez(tmp, images=out.images, identities=out.identities, names=np.array(out.names))
    tmp.replace(cached)
    return out


def folder_crops(root: Path, template: str = "ffhq-256", size: int = 256) -> FaceCrops:
    """Images under ``root`` (CelebA-HQ, FFHQ, VGGFace2 as users have them); identity = first-level subfolder,
    or one identity per image when the folder is flat. Unreadable images and images without a face are skipped."""
    from fsbench.data.folder import IMAGE_SUFFIXES
    from fsbench.faces import io
    from fsbench.faces.errors import FaceError

    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = []
    for path in files:
        rel = path.relative_to(root)
        try:
            images.append((rel.parts[0] if len(rel.parts) > 1 else rel.stem, io.read_image(path)))
        except FaceError:
            continue
    crops, labels = _align_all(images, template, size)
    if not crops:
        raise ValueError(f"{root}: no face found in any image")
    return _pack(crops, labels, template)
