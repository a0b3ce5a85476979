"""One declaration per public ONNX face swapper: its files, alignment, normalisation and source embedding.

The facts come from the public code that runs these files (insightface's ``model_zoo/inswapper.py``, FaceFusion's
face swapper and face recogniser modules); ``MODEL_CARD.md`` beside this file cites the source of each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# sha256 of files as their publishers release them: file asset -> {sha256: where the hash is published}
PUBLISHED_SHA256: dict[str, dict[str, str]] = {
    "inswapper": {"e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af":
                  "insightface's inswapper_128.onnx release"},
    "arcface-w600k-r50": {"4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43":
                          "w600k_r50.onnx of insightface's buffalo_l pack"},
}

Embedding = Literal["emap", "converted-normalised", "converted"]


@dataclass(frozen=True)
class Swapper:
    """A public swapper as fsbench runs it.

    The source identity is the recogniser's raw embedding of the source crop, re-aligned to ``arcface-112`` at the
    recogniser's input side, RGB, normalised as the recogniser asset's loader reads the file by insightface's rule
    (``(x − 127.5) / 127.5`` on 0..255 pixels for ``w600k_r50.onnx``); then, by ``embedding``: ``emap`` —
    L2-normalised, multiplied by the swap graph's last initialiser and L2-normalised again;
    ``converted-normalised`` — passed through the ``converter`` graph and L2-normalised; ``converted`` — passed
    through the converter as it is.
    The target crop is fed as ``(x − mean) / std`` per channel in ``channels`` order; the output is in [0, 1]
    (``output="unit"``) or normalised like the input (``output="normalised"``, undone before clipping).
    """

    name: str  # the fsbench method name
    upstream: str  # the model's name in FaceFusion's model list
    swap_file: str  # asset name of the swap graph
    template: str  # alignment template of the target crop (fsbench.faces.templates)
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    output: Literal["unit", "normalised"]
    embedding: Embedding
    licence: str
    paper: str
    converter: str | None = None  # asset name of the embedding converter
    recogniser: str = "arcface-w600k-r50"
    channels: Literal["RGB", "BGR"] = "RGB"
    version: str = "1"
    recogniser_template: str = "arcface-112"

    @property
    def files(self) -> list[str]:
        """The asset names of every file the swapper needs, the swap graph first."""
        return [self.swap_file, self.recogniser] + ([self.converter] if self.converter else [])


_SIMSWAP_PAPER = "SimSwap: An Efficient Framework For High Fidelity Face Swapping (Chen et al., ACM MM 2020)"
_GHOST_PAPER = "GHOST: A New Face Swap Approach for Image and Video Domains (Groshev et al., IEEE Access 2022)"

_GHOSTS = [Swapper(f"ghost-{n}-256", f"ghost_{n}_256", f"ghost-{n}-256", "arcface-112-v1", 256,
                   (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "normalised", "converted", "Apache-2.0 (GHOST)", _GHOST_PAPER,
                   converter="crossface-ghost") for n in (1, 2, 3)]

SWAPPERS: dict[str, Swapper] = {s.name: s for s in [
    Swapper("inswapper", "inswapper_128", "inswapper", "arcface-128", 128, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0),
            "unit", "emap", "non-commercial research only (insightface)", "insightface inswapper_128 (no paper)"),
    Swapper("simswap-256", "simswap_256", "simswap-256", "arcface-112-v1", 256, (0.485, 0.456, 0.406),
            (0.229, 0.224, 0.225), "unit", "converted-normalised", "non-commercial (SimSwap)", _SIMSWAP_PAPER,
            converter="crossface-simswap"),
    *_GHOSTS,
]}
