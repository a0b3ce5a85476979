"""How well each identity backend separates same-person from different-person pairs of real faces.

``fsbench separation [--backends sface,dlib,facenet] [--threads N]`` runs on the mini data
set (both splits): every still, and 3 evenly spaced frames of every video clip. Same-person pairs are the pairs of
one identity from different recordings (a real second look, not a near-duplicate); different-person pairs are
all pairs of two identities. Faces are detected and aligned as the protocols score them (the evaluation
template), each backend embeds them in batches of its ``batch_size``, and the pair score is the cosine.
Printed per backend: verification ROC AUC, TAR at FAR 1 %, EER, the decidability index d' (distance of the two
cosine distributions' means in units of their pooled standard deviation: it still ranks backends when the small
set saturates AUC), and the embedding throughput (faces/s).
"""
from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import torch


DEFAULT_BACKENDS = ("sface", "dlib", "facenet")
FAR = 0.01
FRAMES_PER_CLIP = 3


def mini_faces() -> tuple[list, list[str]]:
    """Protocol items of every mini still and of ``FRAMES_PER_CLIP`` frames of each video clip, and their recordings."""
    from fsbench.data import mini
    from fsbench.faces.io import evenly_spaced
    from fsbench.protocols.base import Item

    items, recordings = [], []
    for it in mini.load_manifest().items():
        if it.kind == "still":
            items.append(Item(id=it.id, identity=it.identity, asset=it.asset, face_index=it.face_index))
            recordings.append(it.recording)
        for clip in it.clips:
            for offset in evenly_spaced(len(clip), FRAMES_PER_CLIP):
                frame = clip.start + offset
                items.append(Item(id=f"{it.id}#{frame}", identity=it.identity, asset=it.asset, frame=frame))
                recordings.append(it.recording)
    return items, recordings


def verification(same: np.ndarray, different: np.ndarray, far: float = FAR) -> dict[str, float]:
    """ROC AUC, TAR at the threshold whose FAR on ``different`` is at most ``far``, the equal error rate and d'."""
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.r_[np.ones(len(same)), np.zeros(len(different))]
    scores = np.r_[same, different]
    fpr, tpr, _ = roc_curve(labels, scores)
    eer_at = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return {"auc": float(roc_auc_score(labels, scores)), "tar_at_far": float(tpr[fpr <= far].max()),
            "eer": float((fpr[eer_at] + 1 - tpr[eer_at]) / 2),
            "d_prime": float((same.mean() - different.mean()) / np.sqrt((same.var() + different.var()) / 2))}


def separation(backends: tuple[str, ...] = DEFAULT_BACKENDS) -> dict[str, Any]:
    """Pairs of the mini data set scored by each backend (see the module doc)."""
    from fsbench import registry
    from fsbench.faces.crops import EVAL_SIZE, EVAL_TEMPLATE, CropStore
    from fsbench.scoring import backend_features

    items, recordings = mini_faces()
    store = CropStore(EVAL_TEMPLATE, EVAL_SIZE)
    store.prepare(items, progress=False)
    found = [i for i, item in enumerate(items) if item.id in store.crops]
    crops = [store.eval_crop(items[i]) for i in found]
    same, different = [], []
    for a, b in itertools.combinations(range(len(found)), 2):
        ia, ib = items[found[a]], items[found[b]]
        if ia.identity != ib.identity:
            different.append((a, b))
        elif recordings[found[a]] != recordings[found[b]]:
            same.append((a, b))
    report: dict[str, Any] = {"faces": len(found), "not_found": len(items) - len(found),
                              "identities": len({items[i].identity for i in found}), "same_pairs": len(same),
                              "different_pairs": len(different), "torch_threads": torch.get_num_threads(),
                              "backends": {}}
    for name in backends:
        backend = registry.metrics.get(name)(device="cpu")
        backend_features(backend, crops[:1], EVAL_TEMPLATE)  # warm-up
        t0 = time.perf_counter()
        feats = backend_features(backend, crops, EVAL_TEMPLATE)
        seconds = time.perf_counter() - t0
        feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)

        def cosines(pairs: list[tuple[int, int]]) -> np.ndarray:
            return np.array([feats[a] @ feats[b] for a, b in pairs])

        report["backends"][name] = {**verification(cosines(same), cosines(different)),
                                    "label": backend.info.label, "batch_size": backend.batch_size,
                                    "faces_per_s": len(crops) / seconds}
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"mini data set: {report['faces']} faces of {report['identities']} identities "
             f"({report['not_found']} without a detected face), {report['same_pairs']} same-person cross-recording "
             f"pairs, {report['different_pairs']} different-person pairs; {report['torch_threads']} torch threads",
             f"  {'backend':<10} {'AUC':>7} {'TAR@FAR1%':>10} {'EER':>7} {'d_prime':>8} {'faces/s':>9}"]
    for name, r in report["backends"].items():
        lines.append(f"  {name:<10} {r['auc']:7.4f} {r['tar_at_far']:10.3f} {r['eer']:7.3f} {r['d_prime']:8.2f} "
                     f"{r['faces_per_s']:9.1f}  (batch {r['batch_size']})")
    return "\n".join(lines)
