"""Aligned face crops for training: the portraits training split with the mini training identities, the mini
training identities alone, or a folder of images.

Crops are detected and aligned once and cached (``$FSBENCH_HOME/crops/<key>.npz``). Methods draw their batches
with :func:`fsbench.train.loop.step_rng`, so a resumed run sees exactly the batches an uninterrupted one would.

Training on an identity the benchmark evaluates on would inflate every identity figure, so the embedded sources
are checked against the held-out identities of both manifests and of the training monitor
(:func:`check_training_identities`) every time they are loaded, cached or not. The monitor's in-the-wild people
(:data:`MONITOR_WILD`) are mini *training* identities: the mini loaders leave them out.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from fsbench import assets
from fsbench.errors import UsageError

# mini training identities with ordinary photographs (celebrity stills, group photos, occlusion, a TV still) that
# the training monitor swaps among themselves (fsbench.train.monitor): disjoint from every protocol, kept out of
# every training source
MONITOR_WILD = ("justin-bieber", "george-clooney", "rihanna", "bill-murray", "arnold-schwarzenegger",
                "pyfeat-bearded-man", "pyfeat-group-p1", "insightface-t1-p3")


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


class IdentityDraw:
    """Draws images per identity, not per image: an identity uniformly at random, then one of its images. The
    mini training set is 611 frames of one man beside 25 stills of 24 other people; drawn per image, almost
    every pair would be that man twice."""

    def __init__(self, identities: np.ndarray) -> None:
        self.groups = [np.flatnonzero(identities == i) for i in np.unique(identities)]

    def __call__(self, rng: np.random.Generator, n: int) -> np.ndarray:
        groups = rng.integers(0, len(self.groups), n)
        return np.array([self.groups[g][rng.integers(0, len(self.groups[g]))] for g in groups], dtype=np.int64)


class HeldOutIdentityError(ValueError):
    """A training source contains an identity of a validation or test split."""


def held_out_identities() -> dict[str, str]:
    """identity -> "portraits/<split>", "mini/test" or "monitor/wild" for every identity the benchmark or the monitor
    scores."""
    from fsbench.data import mini, portraits

    out = {ident: "mini/test" for ident in mini.load_manifest().identities("test")}
    out.update({ident: "monitor/wild" for ident in MONITOR_WILD})
    manifest = portraits.load_manifest()
    for split in ("validation", "test"):
        out.update({ident: f"portraits/{split}" for ident in manifest.identities(split)})
    return out


def check_training_identities(names: list[str], source: str) -> None:
    """Raise :class:`HeldOutIdentityError` naming the identities of ``names`` that are held out."""
    held = held_out_identities()
    leaked = sorted(n for n in names if n in held)
    if leaked:
        listed = ", ".join(f"{n} ({held[n]})" for n in leaked[:5])
        raise HeldOutIdentityError(f"training crops '{source}' contain {len(leaked)} held-out identit"
                                   f"{'y' if len(leaked) == 1 else 'ies'}: {listed}; training on them would "
                                   "inflate the benchmark's identity figures")


def crops_key(data: str | None, template: str, size: int, video_stride: int = 8) -> str | None:
    """The cache key of :func:`training_crops`'s embedded sources (``None``: the mini training identities,
    ``"portraits"``); ``None`` for an image folder, which is aligned afresh on every load."""
    from fsbench.data import portraits

    if data is None:
        return f"mini-train-v2:{_mini_key()}:{template}:{size}:{video_stride}"
    if data == "portraits":
        return f"portraits-train:{portraits.load_manifest().sha256}:{_mini_key()}:{template}:{size}:{video_stride}"
    return None


def crops_cache_file(key: str) -> Path:
    return assets.home() / "crops" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


Labelled = tuple[str, np.ndarray, int]  # identity, RGB image, rank of the face (0: the largest)


def _align_all(images: list[Labelled], template: str, size: int) -> tuple[list[np.ndarray], list[str]]:
    from fsbench.faces.align import align_face
    from fsbench.faces.detect import detect_face
    from fsbench.faces.errors import FaceError

    crops, labels = [], []
    for identity, image, face_index in images:
        try:
            face = detect_face(image, index=face_index)
        except (FaceError, IndexError):
            continue
        crops.append(align_face(image, face.landmarks, template, size)[0])
        labels.append(identity)
    return crops, labels


def _pack(crops: list[np.ndarray], labels: list[str], template: str) -> FaceCrops:
    names = sorted(set(labels))
    index = {n: i for i, n in enumerate(names)}
    return FaceCrops(np.stack(crops), np.array([index[n] for n in labels]), names, template)


def _cached(key: str, template: str, build: Callable[[], list[Labelled]], size: int) -> FaceCrops:
    cached = crops_cache_file(key)
    if cached.is_file():
        data = np.load(cached)
        return FaceCrops(data["images"], data["identities"], list(data["names"]), template)
    crops, labels = _align_all(build(), template, size)
    out = _pack(crops, labels, template)
    save_npz(cached, images=out.images, identities=out.identities, names=np.array(out.names))
    return out


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write a cache file atomically under a unique temporary name, so processes building the same cache at once
    (torchrun ranks, two runs) never leave a torn file: the last complete one wins."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _mini_train_images(video_stride: int) -> list[Labelled]:
    from fsbench.data import mini
    from fsbench.faces import io

    images: list[Labelled] = []
    for item in mini.load_manifest().items(split="train"):
        if item.identity in MONITOR_WILD:
            continue
        if item.kind == "still":
            images.append((item.identity, io.read_image(assets.path(item.asset)), item.face_index))
        else:
            indices = [i for clip in item.clips for i in range(clip.start, clip.end, video_stride)]
            images.extend((item.identity, frame, 0) for frame in io.read_frames(assets.path(item.asset), indices))
    return images


def _mini_key() -> str:
    """What the mini training crops depend on: the manifest and the identities the monitor keeps out."""
    from fsbench.data import mini

    return f"{mini.load_manifest().sha256}:wild={','.join(MONITOR_WILD)}"


def mini_train_crops(template: str = "ffhq-256", size: int = 256, video_stride: int = 8) -> FaceCrops:
    """Every training still and every ``video_stride``-th frame of the training clips of the mini set, but the
    monitor's in-the-wild people (:data:`MONITOR_WILD`)."""
    out = _cached(crops_key(None, template, size, video_stride), template, lambda: _mini_train_images(video_stride),
                  size)
    check_training_identities(out.names, "mini training split")
    return out


def portraits_train_crops(template: str = "ffhq-256", size: int = 256, video_stride: int = 8) -> FaceCrops:
    """The portraits training split (one portrait per identity, low-resolution ones included) plus the mini
    training identities but :data:`MONITOR_WILD` (the same-person pairs of the mini videos): hundreds of
    identities."""
    from fsbench.data import portraits
    from fsbench.faces import io

    manifest = portraits.load_manifest()

    def build() -> list[Labelled]:
        items = [(p.identity, io.read_image(p.path()), 0) for p in manifest.items(split="train")]
        return items + _mini_train_images(video_stride)

    out = _cached(crops_key("portraits", template, size, video_stride), template, build, size)
    check_training_identities(out.names, "portraits training split + mini training split")
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
            images.append((rel.parts[0] if len(rel.parts) > 1 else rel.stem, io.read_image(path), 0))
        except FaceError:
            continue
    crops, labels = _align_all(images, template, size)
    if not crops:
        raise UsageError(f"{root}: no face found in any image")
    return _pack(crops, labels, template)


def training_crops(data: str | None, template: str = "ffhq-256", size: int = 256) -> FaceCrops:
    """A training configuration's ``data``: ``"portraits"`` (:func:`portraits_train_crops`), ``None`` (the mini
    training identities) or an image folder (:func:`folder_crops`)."""
    if data == "portraits":
        return portraits_train_crops(template, size)
    if data is None:
        return mini_train_crops(template, size)
    return folder_crops(Path(data), template, size)
