"""Fréchet distance, the MobileNetV2 and FID Inception networks, and their backends."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fsbench import assets
from fsbench.metrics import distribution
from fsbench.metrics.definitions import metric
from fsbench.metrics.distribution import (
    InceptionBackend, MobileNetV2Backend, feature_stats, frechet_distance, frechet_from_features, frechet_low_rank)
from fsbench.nets.imagenet import IMAGENET_MEAN, IMAGENET_STD
from fsbench.nets.inception import FIDInceptionV3, load_fid_inception
from fsbench.nets.mobilenet_v2 import load_mobilenet_v2

# ---------------------------------------------------------------- Fréchet distance


def test_frechet_distance_matches_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    feats = np.random.default_rng(1).normal(size=(200, 16))
    assert abs(frechet_from_features(feats, feats)) < 1e-8
    # shifting every feature by 0.5 moves only the mean: FD = 16 * 0.25
    assert frechet_from_features(feats, feats + 0.5) == pytest.approx(4.0, rel=1e-8)


def test_low_rank_form_agrees_with_the_square_root_form_on_a_well_conditioned_case():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 24))
    b = rng.normal(size=(250, 24)) @ rng.normal(size=(24, 24)) * 0.4 + 0.3
    covariance_form = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert frechet_low_rank(a, b) == pytest.approx(covariance_form, rel=1e-5)
    assert frechet_low_rank(torch.from_numpy(a), b) == pytest.approx(covariance_form, rel=1e-5)


def _frechet_by_symmetric_root(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance by another route that holds for singular covariances: ``Tr sqrt(S1·S2)`` is
    ``Tr sqrt(R·S2·R)`` with ``R = S1^½``, a symmetric positive semi-definite matrix whose root's trace is the sum
    of the roots of its eigenvalues (both roots from ``eigh``, round-off below zero clipped)."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(w.clip(min=0))) @ v.T
    cross = np.sqrt(np.linalg.eigvalsh(root @ s2 @ root).clip(min=0)).sum()
    diff = a.mean(axis=0) - b.mean(axis=0)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * cross)


@pytest.mark.parametrize("b_rows, expected", [
    # along the same axis: S1 = 2·3²·e1e1ᵀ, S2 = 2·1²·e1e1ᵀ, Tr sqrt(S1·S2) = 2·3·1; means 0.5 apart on e2
    ([[1.0, 0.5], [-1.0, 0.5]], 0.25 + 18 + 2 - 2 * 6),
    # along orthogonal axes: S1·S2 = 0; means 0.5 apart on e1
    ([[0.5, 1.0], [0.5, -1.0]], 0.25 + 18 + 2),
])
def test_low_rank_form_on_rank_one_covariances_has_the_closed_form(b_rows, expected):
    """Two samples in 8 dimensions: each covariance has rank one, and the distance is known by hand."""
    a, b = np.zeros((2, 8)), np.zeros((2, 8))
    a[:, 0] = [3.0, -3.0]
    b[:, :2] = b_rows
    assert frechet_from_features(a, b) == pytest.approx(expected, rel=1e-12)


def test_fewer_samples_than_dimensions_take_the_low_rank_form_without_warnings():
    """The covariances of 40 and 30 samples in 64 dimensions are singular: ``sqrtm`` of their product warned
    "Matrix is singular" and needed the diagonal offset; the low-rank form is exact and quiet."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 64)), rng.normal(size=(30, 64)) + 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = frechet_from_features(a, b)
    assert value == pytest.approx(_frechet_by_symmetric_root(a, b), rel=1e-6)  # roots of round-off: ~1e-8
    assert abs(frechet_from_features(a, a)) < 1e-8
    with pytest.raises(ValueError, match="mismatched features"):
        frechet_from_features(a, b[:, :32])


def test_feature_stats_are_mean_and_unbiased_covariance():
    feats = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu, sigma = feature_stats(feats)
    np.testing.assert_allclose(mu, [2.0, 4.0])
    np.testing.assert_allclose(sigma, [[4.0, 7.0], [7.0, 13.0]])


@pytest.mark.parametrize("bad", [np.zeros((1, 4)), np.zeros(4), np.array([[0.0, 1.0], [np.nan, 2.0]])])
def test_feature_stats_rejects_too_few_or_failed_samples(bad):
    with pytest.raises(ValueError):
        feature_stats(bad)


def test_frechet_distance_rejects_a_large_imaginary_root():
    # S1·S2 = diag(1, -1): its square root is diag(1, i), not a numerical artefact
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -1.0]))


def test_fd_labels_only_inception_as_fid():
    assert metric("fd").printed_label(InceptionBackend.info.label) == "FID"
    assert metric("fd").printed_label(MobileNetV2Backend.info.label) == "FD-MobileNetV2"
    assert metric("fd_id").printed_label("ID-SFace") == "FD-id (ID-SFace)"


# ---------------------------------------------------------------- MobileNetV2 (real file)


def _image(name: str) -> torch.Tensor:
    img = Image.open(assets.path(name)).convert("RGB")
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def mobilenet() -> MobileNetV2Backend:
    return MobileNetV2Backend()


def test_mobilenet_loads_the_torchvision_file_strictly():
    net = load_mobilenet_v2(assets.path("mobilenet-v2-imagenet"))
    state = torch.load(assets.path("mobilenet-v2-imagenet"), weights_only=True)
    assert list(net.state_dict()) == list(state)  # same keys, same order as torchvision's
    assert sum(p.numel() for p in net.parameters()) == 3_504_872  # torchvision's published count


def test_mobilenet_classifies_the_cameraman_as_a_tripod():
    x = F.interpolate(_image("media/skimage/camera.png")[None], size=(224, 224), mode="bilinear", antialias=True)
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = load_mobilenet_v2(assets.path("mobilenet-v2-imagenet"))(x)
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    prob = logits.softmax(1)[0]
    assert prob.argmax().item() == 872  # ImageNet class 872: tripod (measured p = 0.997)
    assert prob[872] > 0.9


def test_mobilenet_features_are_deterministic_and_independent_of_batch_size(mobilenet):
    crops = _crop_set(_image("media/skimage/astronaut.png"))[:4]
    together = mobilenet.features(crops, "ffhq-256")
    assert together.shape == (4, 1280) and together.dtype == torch.float32
    alone = torch.cat([mobilenet.features(crops[i:i + 1], "ffhq-256") for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    assert torch.equal(mobilenet.features(crops, "ffhq-256"), together)


def test_onnxruntime_features_equal_the_plain_network(mobilenet):
    """The backend runs MobileNetV2 BN-folded in onnxruntime; its features are the torchvision network's."""
    crops = _crop_set(_image("media/skimage/astronaut.png"))[:4]
    plain = load_mobilenet_v2(assets.path("mobilenet-v2-imagenet"))
    x = F.interpolate(crops, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        reference = plain.pooled(x)
    torch.testing.assert_close(mobilenet.features(crops, "ffhq-256"), reference, rtol=1e-4, atol=1e-4)


def test_backends_reject_crops_that_are_not_rgb_batches(mobilenet):
    with pytest.raises(ValueError):
        mobilenet.features(torch.rand(2, 1, 64, 64), "ffhq-256")
    with pytest.raises(ValueError):
        mobilenet.features(torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8), "ffhq-256")


def _crop_set(img: torch.Tensor) -> torch.Tensor:
    """12 crops of a 512×512 picture: six 320×320 windows, each also mirrored."""
    crops = []
    for dy, dx in ((0, 0), (0, 96), (96, 0), (96, 96), (48, 48), (192, 192)):
        window = img[:, dy:dy + 320, dx:dx + 320]
        crops += [window, window.flip(-1)]
    return torch.stack(crops)


def test_fd_mobilenet_calibration_astronaut_vs_cameraman(mobilenet):
    astronaut = mobilenet.features(_crop_set(_image("media/skimage/astronaut.png")), "ffhq-256")
    camera = mobilenet.features(_crop_set(_image("media/skimage/camera.png")), "ffhq-256")
    # measured 512.1846 (torch 2.13 CPU, scipy 1.17; a symmetric eigendecomposition gives the same to 1e-4)
    assert frechet_from_features(astronaut, camera) == pytest.approx(512.18, rel=2e-3)


# ---------------------------------------------------------------- FID Inception (synthetic weights)


def _official_inception_shapes() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of pt_inception-2015-12-05-6726825d.pth, written out independently of fsbench's network.

    They follow torchvision's Inception3 constructor (pytorch/vision, torchvision/models/inception.py) with the
    settings of mseitzer/pytorch-fid, src/pytorch_fid/inception.py (fid_inception_v3: 1008 classes, no AuxLogits).
    """
    convs: dict[str, tuple[int, int, int, int]] = {}

    def conv(name: str, cin: int, cout: int, kh: int, kw: int | None = None) -> None:
        convs[name] = (cout, cin, kh, kw or kh)

    for name, cin, cout, k in (("Conv2d_1a_3x3", 3, 32, 3), ("Conv2d_2a_3x3", 32, 32, 3),
                               ("Conv2d_2b_3x3", 32, 64, 3), ("Conv2d_3b_1x1", 64, 80, 1),
                               ("Conv2d_4a_3x3", 80, 192, 3)):
        conv(name, cin, cout, k)
    for m, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        conv(f"{m}.branch1x1", cin, 64, 1)
        conv(f"{m}.branch5x5_1", cin, 48, 1)
        conv(f"{m}.branch5x5_2", 48, 64, 5)
        conv(f"{m}.branch3x3dbl_1", cin, 64, 1)
        conv(f"{m}.branch3x3dbl_2", 64, 96, 3)
        conv(f"{m}.branch3x3dbl_3", 96, 96, 3)
        conv(f"{m}.branch_pool", cin, pool, 1)
    conv("Mixed_6a.branch3x3", 288, 384, 3)
    conv("Mixed_6a.branch3x3dbl_1", 288, 64, 1)
    conv("Mixed_6a.branch3x3dbl_2", 64, 96, 3)
    conv("Mixed_6a.branch3x3dbl_3", 96, 96, 3)
    for m, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        conv(f"{m}.branch1x1", 768, 192, 1)
        conv(f"{m}.branch7x7_1", 768, c7, 1)
        conv(f"{m}.branch7x7_2", c7, c7, 1, 7)
        conv(f"{m}.branch7x7_3", c7, 192, 7, 1)
        conv(f"{m}.branch7x7dbl_1", 768, c7, 1)
        conv(f"{m}.branch7x7dbl_2", c7, c7, 7, 1)
        conv(f"{m}.branch7x7dbl_3", c7, c7, 1, 7)
        conv(f"{m}.branch7x7dbl_4", c7, c7, 7, 1)
        conv(f"{m}.branch7x7dbl_5", c7, 192, 1, 7)
        conv(f"{m}.branch_pool", 768, 192, 1)
    conv("Mixed_7a.branch3x3_1", 768, 192, 1)
    conv("Mixed_7a.branch3x3_2", 192, 320, 3)
    conv("Mixed_7a.branch7x7x3_1", 768, 192, 1)
    conv("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7)
    conv("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1)
    conv("Mixed_7a.branch7x7x3_4", 192, 192, 3)
    for m, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        conv(f"{m}.branch1x1", cin, 320, 1)
        conv(f"{m}.branch3x3_1", cin, 384, 1)
        conv(f"{m}.branch3x3_2a", 384, 384, 1, 3)
        conv(f"{m}.branch3x3_2b", 384, 384, 3, 1)
        conv(f"{m}.branch3x3dbl_1", cin, 448, 1)
        conv(f"{m}.branch3x3dbl_2", 448, 384, 3)
        conv(f"{m}.branch3x3dbl_3a", 384, 384, 1, 3)
        conv(f"{m}.branch3x3dbl_3b", 384, 384, 3, 1)
        conv(f"{m}.branch_pool", cin, 192, 1)
    shapes: dict[str, tuple[int, ...]] = {}
    for name, shape in convs.items():
        shapes[f"{name}.conv.weight"] = shape
        for stat in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{stat}"] = (shape[0],)
    shapes["fc.weight"] = (1008, 2048)
    shapes["fc.bias"] = (1008,)
    return shapes


def _synthetic_inception_state(with_batch_counts: bool) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in _official_inception_shapes().items():
        if key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        elif key.endswith(".conv.weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=gen) * (2 / fan_in) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.1
        if with_batch_counts and key.endswith("running_var"):
            state[key.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
    return state


def test_official_inception_key_list_has_the_published_size():
    shapes = _official_inception_shapes()
    n_params = sum(int(np.prod(s)) for k, s in shapes.items() if not k.endswith(("running_mean", "running_var")))
    # torchvision's published inception_v3 count 27,161,264 minus its AuxLogits (3,326,696) plus 8 more classes
    assert n_params == 27_161_264 - 3_326_696 + 8 * 2049


@pytest.mark.parametrize("with_batch_counts", [False, True])
def test_fid_inception_loads_the_official_layout_strictly(with_batch_counts):
    # whether the file carries num_batches_tracked or not, a strict load must accept it as pytorch-fid's does
    state = _synthetic_inception_state(with_batch_counts)
    FIDInceptionV3().load_state_dict(state, strict=True)


def test_fid_inception_outputs_2048_features_independent_of_batch_size(tmp_path):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(_synthetic_inception_state(True), path)
    net = load_fid_inception(path)
    crops = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        together = net(crops)
        alone = torch.cat([net(crops[:1]), net(crops[1:])])
    assert together.shape == (2, 2048) and torch.isfinite(together).all()
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_fid_inception_pools_like_the_tensorflow_graph():
    """The FID blocks average without the zero padding, and Mixed_7c max-pools its last branch."""
    net = FIDInceptionV3().eval()
    x = torch.rand(1, 2048, 5, 5) + 1  # positive, so zero padding would lower the border averages
    avg = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    maxed = F.max_pool2d(x, 3, stride=1, padding=1)
    with torch.no_grad():
        for block, cin, expected in ((net.Mixed_5b, 192, avg), (net.Mixed_6b, 768, avg), (net.Mixed_7b, 1280, avg),
                                     (net.Mixed_7c, 2048, maxed)):
            pool_channels = block.branch_pool.conv.out_channels
            got = block(x[:, :cin])[:, -pool_channels:]
            torch.testing.assert_close(got, block.branch_pool(expected[:, :cin]))


def test_fid_backend_without_the_file_names_it_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path))
    with pytest.raises(assets.AssetError) as err:
        InceptionBackend()
    assert "pt_inception-2015-12-05-6726825d.pth" in str(err.value)
    assert "fsbench assets add inception-fid" in str(err.value)


def test_fid_backend_features(tmp_path, monkeypatch):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(_synthetic_inception_state(False), path)
    monkeypatch.setattr(distribution.assets, "path", lambda name: path)
    backend = InceptionBackend()
    assert backend.info.label == "FID" and backend.info.kind == "reference"
    feats = backend.features(torch.rand(3, 3, 64, 64), "arcface-112")
    assert feats.shape == (3, 2048) and feats.dtype == torch.float32
