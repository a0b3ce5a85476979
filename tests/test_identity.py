"""Identity backends (SFace, dlib, ArcFace MobileFaceNet, CosFace sphere20, insightface ONNX), cosine and ID
retrieval."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fsbench import assets
from fsbench.faces.align import realign, similarity_transform
from fsbench.faces.templates import TEMPLATES
from fsbench.metrics.identity import (ArcFaceIRSE50, ArcFaceMBF, CosFaceSphere20, DlibResNet, InsightFaceONNX, SFace, cosine,
                                      identity_centers, insightface_normalisation, retrieval_topk)
from fsbench.nets.arcface_mbf import load_arcface_mbf
from fsbench.nets.irse import IRSE50, load_ir_se50
from fsbench.nets.sphere import Sphere20, load_sphere20

# Five points (template order: image-left eye, image-right eye, nose, image-left and image-right mouth corner),
# computed once with YuNet (cv2.FaceDetectorYN, face_detection_yunet_2023mar_int8bq, OpenCV 5.0) and fixed here
# so that the calibration values below depend only on the images and the recognisers.
FACES = {
    "astronaut": ("media/skimage/astronaut.png",
                  [[200.1, 101.8], [247.2, 102.6], [220.3, 124.7], [198.9, 143.2], [239.8, 143.9]]),
    "camera": ("media/skimage/camera.png",
               [[234.5, 147.3], [248.5, 146.8], [251.4, 163.7], [232.6, 177.4], [242.9, 177.3]]),
    "obama": ("media/face_recognition/obama.jpg",
              [[443.1, 208.2], [550.2, 210.5], [500.5, 271.4], [445.1, 317.4], [544.4, 319.5]]),
    "obama2": ("media/face_recognition/obama2.jpg",
               [[252.8, 361.5], [376.0, 382.5], [282.0, 445.8], [238.2, 502.4], [343.6, 520.0]]),
    "biden": ("media/face_recognition/biden.jpg",
              [[530.6, 324.4], [651.0, 345.8], [592.1, 411.4], [512.9, 450.7], [618.2, 470.9]]),
}
SFACE_FILE_CROPS = ("astronaut", "obama")


def _image(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(assets.path(FACES[name][0]))), cv2.COLOR_BGR2RGB)


def _crop(image: np.ndarray, points: np.ndarray, template: str, size: int) -> np.ndarray:
    matrix = similarity_transform(points, TEMPLATES[template].points_at(size))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)


def _crops(template: str, size: int) -> dict[str, torch.Tensor]:
    """Every face of FACES plus ``mirror`` (astronaut flipped left-right, its points flipped and re-ordered)."""
    out = {}
    for name, (_, points) in FACES.items():
        out[name] = _crop(_image(name), np.asarray(points), template, size)
    flipped = _image("astronaut")[:, ::-1].copy()
    points = np.asarray(FACES["astronaut"][1])
    points[:, 0] = flipped.shape[1] - 1 - points[:, 0]
    out["mirror"] = _crop(flipped, points[[1, 0, 2, 4, 3]], template, size)
    return {name: torch.from_numpy(c).permute(2, 0, 1).float() / 255 for name, c in out.items()}


def _batch(crops: dict[str, torch.Tensor], names=None) -> torch.Tensor:
    return torch.stack([crops[n] for n in names or crops])


@pytest.fixture(scope="module")
def arcface_crops() -> dict[str, torch.Tensor]:
    return _crops("arcface-112", 112)


@pytest.fixture(scope="module")
def ffhq_crops() -> dict[str, torch.Tensor]:
    return _crops("ffhq-256", 256)


@pytest.fixture(scope="module")
def sface() -> SFace:
    return SFace()


@pytest.fixture(scope="module")
def dlib_backend() -> DlibResNet:
    return DlibResNet()


# ---------------------------------------------------------------- SFace


def _onnxruntime_sface():
    """The reference: onnxruntime on the SFace file itself.

    The file still declares its original float weights as graph inputs although no node reads them (the quantiser
    left them behind), and onnxruntime insists on being fed every declared input; those dangling inputs are
    dropped, nothing else is changed.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(assets.path("sface")))
    used = {name for node in model.graph.node for name in node.input}
    kept = [i for i in model.graph.input if i.name in used]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the file triggers one warning per initializer listed as an input
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def test_sface_torch_matches_onnxruntime(sface: SFace, arcface_crops) -> None:
    session = _onnxruntime_sface()
    x = _batch(arcface_crops, SFACE_FILE_CROPS)
    with torch.no_grad():
        ours = sface.net(x).numpy()
    for crop, mine in zip(x, ours):
        pixels = (crop * 255).round().numpy()[None]  # the uint8 RGB pixels, as OpenCV's blob holds them
        ref = session.run(None, {"data": pixels})[0][0]
        cos = float(mine @ ref / np.linalg.norm(mine) / np.linalg.norm(ref))
        assert cos >= 0.99999  # measured: 1 − cos ≤ 1.2e-7, max |Δ| 4.4e-6 on norms 10–14
        np.testing.assert_allclose(mine, ref, atol=1e-4)


def test_sface_same_person_closer_and_calibration(sface: SFace, arcface_crops) -> None:
    f = dict(zip(arcface_crops, sface.features(_batch(arcface_crops), "arcface-112")))
    cos = {pair: float(f[pair[0]] @ f[pair[1]]) for pair in
           [("obama", "obama2"), ("obama", "biden"), ("astronaut", "mirror"), ("astronaut", "camera")]}
    assert cos[("obama", "obama2")] > cos[("obama", "biden")] + 0.3
    assert cos[("astronaut", "mirror")] > cos[("astronaut", "camera")] + 0.5
    # calibration, measured on these crops (ASSETS.md, other crops: mirror 0.94, cameraman 0.17)
    expected = {("obama", "obama2"): 0.7306, ("obama", "biden"): 0.1262,
                ("astronaut", "mirror"): 0.9606, ("astronaut", "camera"): 0.1962}
    for pair, value in expected.items():
        assert cos[pair] == pytest.approx(value, abs=0.015), pair


def test_sface_features_normalised_and_batch_independent(sface: SFace, ffhq_crops) -> None:
    x = _batch(ffhq_crops)  # another template: re-aligned to ArcFace-112 inside
    whole = sface.features(x, "ffhq-256")
    assert whole.shape == (len(x), 128) and whole.dtype == torch.float32
    torch.testing.assert_close(whole.norm(dim=1), torch.ones(len(x)))
    singles = torch.cat([sface.features(x[i:i + 1], "ffhq-256") for i in range(len(x))])
    pairs = torch.cat([sface.features(x[i:i + 2], "ffhq-256") for i in range(0, len(x), 2)])
    torch.testing.assert_close(singles, whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(pairs, whole, atol=1e-5, rtol=0)


def test_sface_gradients_reach_the_input_not_the_weights(sface: SFace, ffhq_crops) -> None:
    x = _batch(ffhq_crops, ["obama", "biden"]).requires_grad_(True)
    target = sface.features(_batch(ffhq_crops, ["obama2", "obama2"]), "ffhq-256")
    sface.net.train()  # a parent module switching to training must not unfreeze BatchNorm
    assert not sface.net.training
    loss = (1 - (sface.embed(x, "ffhq-256") * target).sum(dim=1)).mean()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in sface.net.parameters())


def test_sface_rejects_bad_crops(sface: SFace) -> None:
    with pytest.raises(ValueError, match="B×3×S×S"):
        sface.features(torch.zeros(2, 112, 112, 3, dtype=torch.uint8), "arcface-112")


# ---------------------------------------------------------------- ArcFace MobileFaceNet (w600k_mbf)


@pytest.fixture(scope="module")
def arcface_mbf() -> ArcFaceMBF:
    return ArcFaceMBF()


def test_arcface_mbf_torch_matches_onnxruntime(arcface_mbf: ArcFaceMBF, arcface_crops) -> None:
    """The torch port against onnxruntime on the file itself, on the real faces (a batch in one call each)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(assets.path("arcface-mbf")), providers=["CPUExecutionProvider"])
    x = _batch(arcface_crops)
    with torch.no_grad():
        ours = arcface_mbf.net(x).numpy()
    ref = session.run(None, {session.get_inputs()[0].name: ((x * 255 - 127.5) / 127.5).numpy()})[0]
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999, cos  # measured: 1 − cos ≤ 1e-7
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_arcface_mbf_same_person_closer_and_calibration(arcface_mbf: ArcFaceMBF, ffhq_crops) -> None:
    """Measured on ffhq-256 crops, re-aligned inside the backend to its own arcface-112 template."""
    f = dict(zip(ffhq_crops, arcface_mbf.features(_batch(ffhq_crops), "ffhq-256")))
    assert torch.allclose(torch.stack(list(f.values())).norm(dim=1), torch.ones(len(f)))
    cos = {pair: float(f[pair[0]] @ f[pair[1]]) for pair in
           [("obama", "obama2"), ("obama", "biden"), ("astronaut", "mirror"), ("astronaut", "camera")]}
    assert cos[("obama", "obama2")] > cos[("obama", "biden")] + 0.4
    assert cos[("astronaut", "mirror")] > cos[("astronaut", "camera")] + 0.6
    # calibration on arcface-112 crops cut from the frame: 0.713, −0.043, 0.952, 0.039
    expected = {("obama", "obama2"): 0.713, ("obama", "biden"): -0.043,
                ("astronaut", "mirror"): 0.952, ("astronaut", "camera"): 0.039}
    for pair, value in expected.items():
        assert cos[pair] == pytest.approx(value, abs=0.05), pair


def test_arcface_mbf_batch_independent_and_differentiable(arcface_mbf: ArcFaceMBF, arcface_crops) -> None:
    x = _batch(arcface_crops)
    together = arcface_mbf.features(x, "arcface-112")
    alone = torch.cat([arcface_mbf.features(x[i:i + 1], "arcface-112") for i in range(len(x))])
    assert torch.allclose(together, alone, atol=1e-5)
    crop = x[:1].clone().requires_grad_(True)
    arcface_mbf.embed(crop, "arcface-112").sum().backward()
    assert crop.grad is not None and crop.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in arcface_mbf.net.parameters())


def test_arcface_mbf_refuses_another_graph() -> None:
    with pytest.raises(ValueError, match="not those of InsightFace's MobileFaceNet"):
        load_arcface_mbf(assets.path("yunet"))


# ---------------------------------------------------------------- dlib


def test_dlib_face_box_is_dlibs_detector_box(ffhq_crops) -> None:
    """FACE_BOX is what dlib's own HOG detector finds on an upright ffhq-256 crop."""
    import dlib

    crop = (ffhq_crops["obama"].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    found = dlib.get_frontal_face_detector()(crop, 0)
    assert len(found) == 1
    box = found[0]
    left, top, right, bottom = DlibResNet.FACE_BOX
    inter = max(0, min(right, box.right()) - max(left, box.left())) * max(0, min(bottom, box.bottom())
                                                                          - max(top, box.top()))
    union = (right - left) * (bottom - top) + box.width() * box.height() - inter
    assert inter / union > 0.9


def test_dlib_same_person_closer_and_calibration(dlib_backend: DlibResNet, ffhq_crops) -> None:
    x = _batch(ffhq_crops)
    d = dict(zip(ffhq_crops, dlib_backend.descriptors(x, "ffhq-256")))
    f = dict(zip(ffhq_crops, dlib_backend.features(x, "ffhq-256")))
    l2 = {pair: float((d[pair[0]] - d[pair[1]]).norm()) for pair in
          [("obama", "obama2"), ("obama", "biden"), ("astronaut", "mirror"), ("astronaut", "camera")]}
    assert l2[("obama", "obama2")] < 0.6 < l2[("obama", "biden")]  # dlib's own same-person threshold
    assert l2[("astronaut", "mirror")] < 0.6 < l2[("astronaut", "camera")]
    assert float(f["obama"] @ f["obama2"]) > float(f["obama"] @ f["biden"])
    torch.testing.assert_close(torch.stack(list(f.values())).norm(dim=1), torch.ones(len(f)))
    # calibration, measured on these crops (ASSETS.md, other crops: mirror 0.20, cameraman 0.84)
    expected = {("obama", "obama2"): 0.3537, ("obama", "biden"): 0.8343,
                ("astronaut", "mirror"): 0.1966, ("astronaut", "camera"): 0.8812}
    for pair, value in expected.items():
        assert l2[pair] == pytest.approx(value, abs=0.015), pair


def test_dlib_batch_independent(dlib_backend: DlibResNet, arcface_crops) -> None:
    x = _batch(arcface_crops, ["obama", "biden", "astronaut"])
    whole = dlib_backend.features(x, "arcface-112")
    assert whole.shape == (3, 128) and whole.dtype == torch.float32
    singles = torch.cat([dlib_backend.features(x[i:i + 1], "arcface-112") for i in range(len(x))])
    torch.testing.assert_close(singles, whole, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- reference backends


def _official_sphere20_keys() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of ``net_sphere20_data_vggface2_acc_9955.pth``, written out from class ``sphere`` (type 20)
    of MuggleWang/CosFace_pytorch ``net.py``: per stage a biased 3×3 stride-2 conv (index 0), a PReLU (1), then
    residual blocks (2, 3, ...) of two bias-free 3×3 convs with PReLUs; ``fc`` 512·7·6 → 512."""
    keys: dict[str, tuple[int, ...]] = {}
    for stage, (cin, cout, blocks) in enumerate([(3, 64, 1), (64, 128, 2), (128, 256, 4), (256, 512, 1)], 1):
        keys[f"layer{stage}.0.weight"] = (cout, cin, 3, 3)
        keys[f"layer{stage}.0.bias"] = (cout,)
        keys[f"layer{stage}.1.weight"] = (cout,)
        for b in range(2, 2 + blocks):
            for i in (1, 2):
                keys[f"layer{stage}.{b}.conv{i}.weight"] = (cout, cout, 3, 3)
                keys[f"layer{stage}.{b}.prelu{i}.weight"] = (cout,)
    keys["fc.weight"] = (512, 512 * 7 * 6)
    keys["fc.bias"] = (512,)
    return keys


@pytest.fixture
def fsbench_home(tmp_path, monkeypatch):
    """An empty cache: no reference file has been added."""
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path / "home"))
    return tmp_path


def test_sphere20_loads_official_layout_strictly(fsbench_home, arcface_crops) -> None:
    keys = _official_sphere20_keys()
    assert len(keys) == 46
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=g) * 0.02 for k, shape in keys.items()}
    path = fsbench_home / "net_sphere20_data_vggface2_acc_9955.pth"
    torch.save(state, path)
    net = load_sphere20(path)  # strict=True inside
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == keys
    assert net(torch.zeros(2, 3, 112, 96)).shape == (2, 512)
    with pytest.raises(RuntimeError, match="fc.bias"):
        Sphere20().load_state_dict({k: v for k, v in state.items() if k != "fc.bias"}, strict=True)

    assets.add("cosface-sphere20", path)
    backend = CosFaceSphere20()
    x = _batch(arcface_crops, ["obama", "biden", "astronaut"])
    feats = backend.features(x, "arcface-112")
    assert feats.shape == (3, 512) and feats.dtype == torch.float32
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(3))
    # official preprocessing: SphereFace's 96×112 crop = ArcFace-112 columns 8..103, (x − 0.5) / 0.5
    torch.testing.assert_close(feats, F.normalize(net((x[..., 8:104] - 0.5) / 0.5), dim=1))
    torch.testing.assert_close(torch.cat([backend.features(x[i:i + 1], "arcface-112") for i in range(3)]), feats,
                               atol=1e-5, rtol=0)


def test_ir_se50_loads_the_public_layout_and_is_differentiable(fsbench_home, ffhq_crops) -> None:
    """IR-SE50 in InsightFace_Pytorch's layout: 397 state-dict entries, 43,797,696 parameters (both counted on the
    public ``Backbone(50, 0.6, "ir_se")``, whose outputs matched this network's exactly with shared weights)."""
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(v.shape, generator=g) * 0.05 if v.is_floating_point() else v)
             for k, v in IRSE50().state_dict().items()}
    state.update({k: v.abs() + 0.5 for k, v in state.items() if k.endswith("running_var")})
    assert len(state) == 397 and sum(p.numel() for p in IRSE50().parameters()) == 43_797_696
    assert state["output_layer.3.weight"].shape == (512, 512 * 7 * 7) and "body.23.res_layer.5.fc2.weight" in state
    path = fsbench_home / "model_ir_se50.pth"
    torch.save(state, path)
    net = load_ir_se50(path)  # strict=True inside

    broken = fsbench_home / "broken.pth"
    torch.save({k: v for k, v in state.items() if k != "input_layer.0.weight"}, broken)
    with pytest.raises(ValueError, match=r"broken\.pth: not an InsightFace_Pytorch IR-SE50.*input_layer\.0\.weight"):
        load_ir_se50(broken)

    assets.add("arcface-ir-se50", path)
    backend = ArcFaceIRSE50()
    x = _batch(ffhq_crops, ["obama", "biden"]).requires_grad_(True)
    emb = backend.embed(x, "ffhq-256")
    assert emb.shape == (2, 512)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    emb[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # the public preprocessing: ArcFace-112 crop, (x − 0.5) / 0.5
    aligned = realign(x.detach(), "ffhq-256", "arcface-112", 112)
    torch.testing.assert_close(backend.features(x.detach(), "ffhq-256"),
                               F.normalize(net((aligned - 0.5) / 0.5), dim=1))


def test_insightface_missing_file_names_the_fix(fsbench_home) -> None:
    with pytest.raises(assets.AssetError) as err:
        InsightFaceONNX()
    assert "glint360k_cosface_r50.onnx" in str(err.value) and "fsbench assets add" in str(err.value)


def _channel_mean_onnx(path) -> None:
    """A stand-in recognition model: 512-d output whose first three entries are the input's channel means."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.zeros((3, 512), np.float32)
    weight[[0, 1, 2], [0, 1, 2]] = 1
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["683"])],
        "channel_means",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 512])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_insightface_runs_user_model_with_insightface_preprocessing(fsbench_home) -> None:
    path = fsbench_home / "glint360k_cosface_r50.onnx"
    _channel_mean_onnx(path)
    assets.add("insightface-recognition", path)
    backend = InsightFaceONNX()
    assert (backend.model.mean, backend.model.std) == (127.5, 127.5)
    rgb = torch.tensor([0.9, 0.5, 0.1])
    crops = rgb.view(1, 3, 1, 1).expand(3, 3, 112, 112).contiguous()
    feats = backend.features(crops, "arcface-112")
    expected = F.normalize(((rgb * 255 - 127.5) / 127.5).view(1, 3), dim=1)  # RGB order, insightface scaling
    assert feats.shape == (3, 512)
    torch.testing.assert_close(feats[:, :3], expected.expand(3, 3), atol=1e-6, rtol=0)
    assert feats[:, 3:].abs().max() == 0


def test_insightface_normalisation_rule() -> None:
    assert insightface_normalisation(["Conv_0", "PRelu_1"]) == (127.5, 127.5)
    assert insightface_normalisation(["_minusscalar0", "_mulscalar0", "conv0"]) == (0.0, 1.0)
    assert insightface_normalisation(["Sub_0", "Conv_1"]) == (127.5, 127.5)  # both are needed


# ---------------------------------------------------------------- cosine and retrieval


def test_cosine_rowwise_and_nan() -> None:
    a = torch.tensor([[3.0, 0.0], [1.0, 1.0], [float("nan"), 0.0]])
    b = torch.tensor([[1.0, 0.0], [-2.0, -2.0], [1.0, 0.0]])
    out = cosine(a, b)
    torch.testing.assert_close(out[:2], torch.tensor([1.0, -1.0]))
    assert torch.isnan(out[2])
    with pytest.raises(ValueError):
        cosine(a, b[:2])


def _retrieval_case():
    nan = float("nan")
    gallery = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0], [nan, nan]])
    gallery_labels = ["a", "b", "b", "c", "z"]
    queries = torch.tensor([[3.0, 0.0], [1.0, 0.0], [0.6, 0.8], [nan, 0.0], [0.0, 5.0]])
    query_labels = ["a", "b", "c", "a", "z"]
    return queries, gallery, query_labels, gallery_labels


def test_retrieval_topk_hand_built() -> None:
    queries, gallery, query_labels, gallery_labels = _retrieval_case()
    hits = retrieval_topk(queries, gallery, query_labels, gallery_labels, ks=(1, 2, 3, 5))
    # q0 [3,0]: g0 and g2 tie at cosine 1; g0 comes first and is "a" -> top-1.
    # q1 [1,0] "b": the same tie, so g0 ("a") ranks first and g2 ("b") second: not top-1, top-2.
    # q2 [0.6,0.8] "c": g1 .8, g0 .6, g2 .6, g3 −.6 -> its only "c" is 4th.
    # q3 has a NaN feature: never correct. q4 "z": the only "z" gallery row is NaN: never retrieved.
    assert hits[1].tolist() == [True, False, False, False, False]
    assert hits[2].tolist() == [True, True, False, False, False]
    assert hits[3].tolist() == [True, True, False, False, False]
    assert hits[5].tolist() == [True, True, True, False, False]
    assert all(h.dtype == torch.bool for h in hits.values())
    chunked = retrieval_topk(queries, gallery, query_labels, gallery_labels, ks=(1, 2, 3, 5), chunk=2)
    assert all(torch.equal(chunked[k], hits[k]) for k in hits)
    codes = {"a": 0, "b": 1, "c": 2, "z": 3}
    as_tensor = retrieval_topk(queries, gallery, torch.tensor([codes[x] for x in query_labels]),
                               torch.tensor([codes[x] for x in gallery_labels]), ks=(1, 2, 3, 5))
    assert all(torch.equal(as_tensor[k], hits[k]) for k in hits)


def test_retrieval_topk_edge_cases() -> None:
    queries, gallery, query_labels, gallery_labels = _retrieval_case()
    empty = retrieval_topk(queries, gallery[:0], query_labels, [], ks=(1, 5))
    assert not empty[1].any() and not empty[5].any() and empty[1].shape == (5,)
    assert retrieval_topk(queries[:0], gallery, [], gallery_labels)[1].shape == (0,)
    with pytest.raises(ValueError, match="labels"):
        retrieval_topk(queries, gallery, query_labels[:2], gallery_labels)
    with pytest.raises(ValueError, match="k must be"):
        retrieval_topk(queries, gallery, query_labels, gallery_labels, ks=(0,))


def test_identity_centers() -> None:
    _, gallery, _, gallery_labels = _retrieval_case()
    centers, labels = identity_centers(gallery, gallery_labels)
    assert labels == ["a", "b", "c"]  # sorted; "z" has no valid row
    s = 2 ** -0.5
    torch.testing.assert_close(centers, torch.tensor([[1.0, 0.0], [s, s], [-1.0, 0.0]]))
    centers_t, labels_t = identity_centers(gallery[:4], torch.tensor([5, 2, 2, 7]))
    assert labels_t.tolist() == [2, 5, 7]
    torch.testing.assert_close(centers_t, torch.tensor([[s, s], [1.0, 0.0], [-1.0, 0.0]]))
    hits = retrieval_topk(torch.tensor([[0.1, 1.0]]), centers, ["b"], labels, ks=(1,))
    assert hits[1].tolist() == [True]
