"""The public ONNX face swappers as fsbench methods: one onnxruntime runner for every declaration.

Each method runs the user's files (``fsbench assets add``): the swap graph, the identity recogniser and, where the
declaration names one, an embedding converter. The source embedding is computed once per source crop; the swap
graph runs the whole batch at once where its batch dimension is free, and one crop at a time where the file fixes
it. fsbench aligns the crops with the card's template and pastes the result back.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsbench.api import (Method, MethodCard, OnnxGraph, asset_sha256, load_asset, open_graph, realign,
                         require_assets)
from methods.onnx_swappers.declarations import PUBLISHED_SHA256, SWAPPERS, Swapper

_WARNED: set[tuple[str, str]] = set()  # (method, file) already warned of an unpublished hash
_IDENTITY_CACHE = 4096  # source embeddings kept between swap calls (a protocol reuses each source many times)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def files_digest(shas: dict[str, str]) -> str:
    """One sha256 over the files' own sha256s, in declaration order: what tells two sets of files apart."""
    return hashlib.sha256("".join(f"{name} {sha}\n" for name, sha in shas.items()).encode()).hexdigest()


def class_card(spec: Swapper) -> MethodCard:
    """The card a swapper is listed with before its files are loaded: it names the files it needs."""
    return MethodCard(name=spec.name, version=spec.version, input_size=spec.size, template=spec.template,
                      licence=spec.licence, paper=spec.paper,
                      notes={"user_files": spec.files, "upstream": f"FaceFusion model '{spec.upstream}'",
                             "training_recognisers": ["insightface"]})


def loaded_card(spec: Swapper, paths: dict[str, Path], parameters: int) -> MethodCard:
    """The card of a swapper running the user's files: named ``NAME@DIGEST12`` after the files' digest, each file
    with its sha256 and where that hash is published (``None``: a file fsbench knows no published hash of)."""
    shas = {name: asset_sha256(name) for name in spec.files}
    digest = files_digest(shas)
    files = {name: {"file": paths[name].name, "sha256": sha, "published": PUBLISHED_SHA256.get(name, {}).get(sha)}
             for name, sha in shas.items()}
    card = class_card(spec)
    notes = {**card.notes, "user_files": files, "weights": "supplied by the user (fsbench assets add)",
             "unpublished_hashes": [files[n]["file"] for n in spec.files if files[n]["published"] is None]}
    return replace(card, name=f"{spec.name}@{digest[:12]}", checkpoint=" + ".join(f["file"] for f in files.values()),
                   checkpoint_sha256=digest, parameters=parameters, notes=notes)


def _initialiser_values(model: Any) -> tuple[int, np.ndarray]:
    """The number of values in a parsed graph's initialisers and its last initialiser (inswapper's emap)."""
    from onnx import numpy_helper

    initialisers = model.graph.initializer
    count = sum(int(np.prod(i.dims)) for i in initialisers)
    return count, numpy_helper.to_array(initialisers[-1]).astype(np.float32)


class OnnxSwapper(Method):
    """A public ONNX swapper declared by ``spec``; subclasses only set it (and their listing card)."""

    spec: Swapper

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        spec = self.spec
        paths = require_assets(spec.files, f"method '{spec.name}'")
        graph = load_asset(spec.swap_file)  # the checked, parsed graph: counted here, run from its bytes
        self.swapper = OnnxGraph(open_graph(graph.SerializeToString(), self.device.type == "cuda"))
        parameters, last = _initialiser_values(graph)
        # the recogniser with its input side and normalisation
        self.recogniser = load_asset(spec.recogniser, cuda=self.device.type == "cuda")
        self.converter = (OnnxGraph(open_graph(paths[spec.converter], self.device.type == "cuda"))
                          if spec.converter else None)
        self.emap = last if spec.embedding == "emap" else None
        self.card = loaded_card(spec, paths, parameters)
        for name in self.card.notes["unpublished_hashes"]:
            if (self.card.name, name) not in _WARNED:  # once per process: a refresh loads a method several times
                _WARNED.add((self.card.name, name))
                print(f"warning: {name} is not a file whose sha256 is published; {self.card.name}'s results say so",
                      file=sys.stderr)
        self.mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.std).view(1, 3, 1, 1)
        self._identities: dict[bytes, torch.Tensor] = {}

    def embed_identity(self, source: torch.Tensor) -> torch.Tensor:
        """``B×512`` source embeddings as the swap graph takes them (see :class:`Swapper`)."""
        spec = self.spec
        rec = self.recogniser  # its size and its normalisation on the 0..255 scale, by insightface's rule
        crops = realign(source.detach().float().cpu(), spec.template, spec.recogniser_template, rec.size)
        raw = rec.graph({rec.input_name: ((crops - rec.mean / 255) / (rec.std / 255)).numpy()})
        if spec.embedding == "emap":
            latent = _unit(_unit(raw) @ self.emap)
        else:
            assert self.converter is not None
            latent = self.converter({self.converter.input_names[0]: raw})
            latent = _unit(latent) if spec.embedding == "converted-normalised" else latent
        return torch.from_numpy(np.ascontiguousarray(latent, np.float32))

    def swap_embedded(self, identity: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = target.detach().float().cpu()
        x = x.flip(1) if self.spec.channels == "BGR" else x
        out = torch.from_numpy(self.swapper({"target": ((x - self.mean) / self.std).numpy(),
                                             "source": identity.detach().float().cpu().numpy()}))
        out = out * self.std + self.mean if self.spec.output == "normalised" else out
        out = out.flip(1) if self.spec.channels == "BGR" else out
        return out.clamp(0, 1).to(target.device, target.dtype)

    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Embeds each distinct source crop once (kept for later calls), then swaps the batch."""
        keys = [hashlib.sha1(s.detach().cpu().numpy().tobytes()).digest() for s in source]
        new = list(dict.fromkeys(k for k in keys if k not in self._identities))
        if new:
            if len(self._identities) + len(new) > _IDENTITY_CACHE:
                self._identities.clear()
            rows = [keys.index(k) for k in new]
            for key, embedding in zip(new, self.embed_identity(source[rows])):
                self._identities[key] = embedding
        return self.swap_embedded(torch.stack([self._identities[k] for k in keys]), target)


def _method(class_name: str, name: str) -> type[OnnxSwapper]:
    spec = SWAPPERS[name]
    doc = f"{spec.upstream} (FaceFusion's name) run from your files: {', '.join(spec.files)}."
    return type(class_name, (OnnxSwapper,), {"spec": spec, "card": class_card(spec), "__doc__": doc,
                                            "__module__": __name__})


Inswapper = _method("Inswapper", "inswapper")
SimSwap256 = _method("SimSwap256", "simswap-256")
Ghost1 = _method("Ghost1", "ghost-1-256")
Ghost2 = _method("Ghost2", "ghost-2-256")
Ghost3 = _method("Ghost3", "ghost-3-256")
