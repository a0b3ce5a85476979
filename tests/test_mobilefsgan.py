"""MobileFSGAN: architecture against the public network, FSTriplets-style edits, losses, training resume, fast
inference paths and ONNX export, shipped weights. Real faces: the astronaut and Obama of the embedded media."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fsbench import assets, registry
from fsbench.api import exported_metadata, landmarks68
from fsbench.train import FaceCrops
from fsbench.faces.align import align_face
from fsbench.faces.detect import detect_face
from fsbench.faces.io import read_image
from methods.mobilefsgan import losses, triplets
from methods.mobilefsgan.configs import MASK_TEXTURES, Config, load_config
from methods.mobilefsgan.discriminator import MultiScaleGradientDiscriminator
from methods.mobilefsgan.export import OnnxGenerator, export_onnx, fold
from methods.mobilefsgan.generator import EncoderDecoder
from methods.mobilefsgan.method import WEIGHTS_DIR, MobileFSGAN, load_generator

PUBLIC_PARAMETERS = 2_517_781  # HoiM/MobileFSGAN EncoderDecoder(64, 512), counted on the public code
EDITS = {"shape_warp": triplets.shape_warp, "texture_edit": triplets.texture_edit, "age_edit": triplets.age_edit,
         "identity_edit": triplets.identity_edit, "mask_occluder": triplets.mask_occluder,
         "glasses": triplets.glasses, "attribute_edit": triplets.attribute_edit}


def _crop(name: str) -> np.ndarray:
    image = read_image(assets.path(name))
    return align_face(image, detect_face(image, source=name).landmarks, "ffhq-256", 256)[0]


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    crop = _crop("media/skimage/astronaut.png")
    return crop, landmarks68(crop, "ffhq-256")


@pytest.fixture(scope="module")
def crops(face) -> tuple[FaceCrops, np.ndarray]:
    """Three crops, two identities: the astronaut and her mirror image (one person), Obama."""
    crop, lm = face
    obama = _crop("media/face_recognition/obama.jpg")
    images = np.stack([crop, np.ascontiguousarray(crop[:, ::-1]), obama])
    marks = np.stack([landmarks68(im, "ffhq-256") for im in images])
    return FaceCrops(images, np.array([0, 0, 1]), ["eileen-collins", "barack-obama"], "ffhq-256"), marks


def test_paper_generator_matches_public_parameter_count():
    count = sum(p.numel() for p in EncoderDecoder(64, 512).parameters())
    assert abs(count - PUBLIC_PARAMETERS) / PUBLIC_PARAMETERS <= 0.03
    assert count == PUBLIC_PARAMETERS  # same modules as the public code, not only close


def test_heads_at_three_scales_and_one_discriminator_each():
    net = EncoderDecoder(8, 16).eval()
    with torch.no_grad():
        heads = net(torch.zeros(1, 3, 256, 256), torch.zeros(1, 16))
    assert [tuple(h.shape) for h in heads] == [(1, 3, 256, 256), (1, 3, 128, 128), (1, 3, 64, 64)]
    assert all(h.abs().max() <= 1 for h in heads)  # tanh heads
    logits = MultiScaleGradientDiscriminator(4, 2)(*heads)
    assert len(logits) == 3 and all(x.shape[1] == 1 for x in logits)
    assert len(net.attributes(torch.zeros(1, 3, 256, 256))) == 12


@pytest.mark.parametrize("name", sorted(EDITS))
def test_edit_is_deterministic_and_changes_the_face(face, name):
    crop, lm = face
    a = EDITS[name](crop, lm, np.random.default_rng(7))
    b = EDITS[name](crop, lm, np.random.default_rng(7))
    c = EDITS[name](crop, lm, np.random.default_rng(8))
    assert a.dtype == np.uint8 and a.shape == crop.shape
    assert np.array_equal(a, b)
    hull = triplets.face_hull_mask(crop.shape[:2], lm) > 0.5
    changed = np.abs(a.astype(int) - crop.astype(int)).max(-1) > 8
    assert changed[hull].mean() > 0.02  # the face changed
    assert not np.array_equal(a, c)  # and the seed matters


def test_mask_occluder_with_a_fabric_photo(face):
    crop, lm = face
    fabric = read_image(assets.path("media/insightface/mask_blue.jpg"))
    a = triplets.mask_occluder(crop, lm, np.random.default_rng(2), [fabric])
    assert np.array_equal(a, triplets.mask_occluder(crop, lm, np.random.default_rng(2), [fabric]))
    mouth = lm[48:68].mean(0).astype(int)
    before, after = (x[mouth[1] - 3:mouth[1] + 4, mouth[0] - 3:mouth[0] + 4].reshape(-1, 3).mean(0) for x in (crop, a))
    assert before[0] > before[2] + 20 and after[2] > after[0] + 20  # the red mouth is under the blue fabric
    assert not np.array_equal(a, triplets.mask_occluder(crop, lm, np.random.default_rng(2)))


def test_identity_edit_keeps_the_background(face):
    crop, lm = face
    edited = triplets.identity_edit(crop, lm, np.random.default_rng(3))
    diff = np.abs(edited.astype(int) - crop.astype(int)).max(-1)
    assert np.median(diff[:20]) <= 2  # the top rows (background) stay put


def test_triplets_of_every_kind_are_deterministic(crops):
    faces, marks = crops
    for kind in triplets.KINDS:
        sampler = triplets.Triplets(faces.images, faces.identities, marks, {kind: 1.0})
        a = sampler.sample(np.random.default_rng(5))
        b = sampler.sample(np.random.default_rng(5))
        assert a[0] == b[0] == kind
        assert all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a[1:], b[1:]))
        source, target, truth = a[1:]
        if kind == "pair":
            assert truth is None
        elif kind == "same":
            assert np.array_equal(source, target) and np.array_equal(target, truth)
        elif kind == "frames":
            assert not np.array_equal(target, truth) and not np.array_equal(source, truth)
        else:  # identity edits keep the source's identity as truth; attribute edits keep the target's attributes
            assert not np.array_equal(source, target)
            assert np.array_equal(truth, source if kind in ("id_target", "id_source") else target)


def test_triplets_reject_bad_mixes(crops):
    faces, marks = crops
    with pytest.raises(ValueError, match="unknown triplet kinds"):
        triplets.Triplets(faces.images, faces.identities, marks, {"swapped": 1.0})
    lonely = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="two crops"):
        triplets.Triplets(faces.images, lonely, marks, {"frames": 1.0})


def test_losses_are_finite_and_differentiable():
    torch.manual_seed(0)
    out = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    target = torch.rand(2, 3, 64, 64) * 2 - 1
    perceptual = losses.perceptual_loss("mobilenet_v2")
    a, b = (torch.nn.functional.normalize(torch.randn(2, 8), dim=1) for _ in range(2))
    cos = torch.nn.functional.cosine_similarity(a.requires_grad_(), b, dim=1)
    total = (losses.identity_loss(cos) + losses.pixel_loss(out, target, torch.tensor([True, False]))
             + perceptual(out, target))
    total.backward()
    assert torch.isfinite(total) and out.grad.abs().sum() > 0
    assert losses.identity_loss(torch.ones(2, 2)).item() == 0.0  # within the margin: no loss
    assert losses.pixel_loss(out, target, torch.tensor([False, False])).item() == 0.0
    assert perceptual(target, target).item() == 0.0


def test_default_mask_textures_are_assets():
    assert load_config("paper").mask_textures == MASK_TEXTURES
    assert all(read_image(assets.path(name)).ndim == 3 for name in MASK_TEXTURES)


def test_mobilefacenet_from_the_users_file(tmp_path, monkeypatch):
    """The paper-scale identity network: the user's MobileFaceNet file, added as an asset, loads strictly and gives
    512-d unit embeddings with gradients; a file of another layout is a clear error naming it."""
    from methods.mobilefsgan.identity import IdentityNet
    from fsbench.nets.mobilefacenet import MobileFaceNet

    monkeypatch.setattr(assets, "_reference_index", lambda: tmp_path / "reference.json")  # the user's cache alone
    with pytest.raises(assets.AssetError, match="fsbench assets add mobilefacenet"):
        IdentityNet("mobilefacenet")
    state = MobileFaceNet().state_dict()
    torch.save({k: v for k, v in state.items() if k != "linear.weight"}, tmp_path / "other.pth")
    with pytest.raises(assets.AssetError, match=r"other\.pth: not RGB_model_mobilefacenet\.pth .*linear\.weight"):
        assets.add("mobilefacenet", tmp_path / "other.pth")
    torch.save(state, tmp_path / "RGB_model_mobilefacenet.pth")
    assets.add("mobilefacenet", tmp_path / "RGB_model_mobilefacenet.pth")
    x = torch.rand(2, 3, 128, 128, requires_grad=True)
    emb = IdentityNet("mobilefacenet").embed(x)
    assert emb.shape == (2, 512)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    emb.sum().backward()
    assert x.grad.abs().sum() > 0


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown config key 'stepz'"):
        load_config("smoke", {"stepz": 3})
    with pytest.raises(ValueError, match="unknown config key 'loop.stepz'"):
        load_config("smoke", {"loop.stepz": 3})
    with pytest.raises(ValueError, match="unknown config key 'lop.steps'.*loop.steps"):
        load_config("smoke", {"lop.steps": 3})
    assert load_config("smoke", {"loop.steps": 3, "arch.width": 4}).loop.steps == 3


def test_a_json_recipe_nests_its_parts(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"size": 64, "arch": {"width": 4}, "loop": {"steps": 3},
                                "identity_loss": {"recognisers": ["sface", "facenet"]}}))
    cfg = load_config(str(path), {"loop.batch": 2})
    assert (cfg.size, cfg.arch.width, cfg.loop.steps, cfg.loop.batch) == (64, 4, 3, 2)
    assert cfg.identity_loss.recognisers == ("sface", "facenet") and cfg.arch.disc_width == 16  # defaults kept
    path.write_text(json.dumps({"loop": 3}))
    with pytest.raises(ValueError, match="'loop' of Config takes an object of LoopConfig fields"):
        load_config(str(path))
    with pytest.raises(ValueError, match="unknown config"):
        load_config("nope")


def _smoke(steps: int) -> Config:
    return load_config("smoke", {"loop.steps": steps})


def _losses(out: Path) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, (out / "losses.jsonl").read_text().splitlines())}


def test_training_resumes_to_the_same_losses(crops, tmp_path):
    from methods.mobilefsgan.train import run

    faces, marks = crops
    straight = run(_smoke(4), tmp_path / "a", "cpu", faces, marks)
    run(_smoke(2), tmp_path / "b", "cpu", faces, marks)
    resumed = run(_smoke(4), tmp_path / "b", "cpu", faces, marks)
    a, b = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    for step in (3, 4):
        assert b[step]["g"] == pytest.approx(a[step]["g"], rel=1e-5)
        assert b[step]["d"] == pytest.approx(a[step]["d"], rel=1e-5)
    net_a, _ = load_generator(straight)
    net_b, _ = load_generator(resumed)
    for (k, x), y in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.allclose(x.float(), y.float(), atol=1e-6), k


def test_a_fresh_run_starts_from_exported_weights_with_fresh_optimisers(crops, tmp_path):
    from safetensors.torch import load_file

    from methods.mobilefsgan.train import initial_weights, run

    faces, marks = crops
    first = run(_smoke(2), tmp_path / "a", "cpu", faces, marks)
    cfg = _smoke(0)
    start = run(cfg, tmp_path / "b", "cpu", faces, marks, initial=initial_weights(cfg, first))
    before, after = load_file(str(first)), load_file(str(start))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    cfg = _smoke(1)
    run(cfg, tmp_path / "c", "cpu", faces, marks, initial=initial_weights(cfg, first))
    assert float(load_file(str(tmp_path / "c" / "checkpoint.safetensors"))["opt/G/0/step"]) == 1
    assert exported_metadata(tmp_path / "c" / "mobilefsgan.safetensors")["step"] == "3"  # the chain's steps: 2, then 1
    with pytest.raises(ValueError, match="width 8 \\(config: 16\\)"):
        initial_weights(load_config("smoke", {"arch.width": 16}), first)


def test_training_with_the_identity_ensemble_and_the_monitor(crops, tmp_path):
    from methods.mobilefsgan.train import run

    faces, marks = crops
    cfg = load_config("smoke", {"loop.steps": 2, "identity_loss.recognisers": ["sface", "facenet"],
                                "identity_loss.augment": True, "per_identity": True, "monitor.every": 2,
                                "loop.precision": "bf16"})  # bf16 autocast steps: every loss kernel has to exist
    weights = run(cfg, tmp_path, "cpu", faces, marks)
    losses = [json.loads(line) for line in (tmp_path / "losses.jsonl").read_text().splitlines()]
    assert all(np.isfinite(v) for row in losses for k, v in row.items() if k != "step")
    assert json.loads(exported_metadata(weights)["identity_loss"]) == {"recognisers": ["sface", "facenet"],
                                                                   "augment": True}
    records = [json.loads(line) for line in (tmp_path / "monitor.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 2] and records[0]["backend"] == "dlib"
    assert all(0 <= r["top1"] <= 1 and r["pairs"] == 64 for r in records)
    with pytest.raises(ValueError, match="dlib"):
        run(load_config("smoke", {"loop.steps": 1, "identity_loss.recognisers": ["dlib"]}), tmp_path / "dlib", "cpu",
            faces, marks)


def test_the_export_holds_the_generators_weight_average(crops, tmp_path):
    from safetensors.torch import load_file

    from methods.mobilefsgan.train import run

    faces, marks = crops
    cfg = load_config("smoke", {"loop.steps": 2, "average.decay": 0.5})
    exported = load_file(str(run(cfg, tmp_path, "cpu", faces, marks)))
    state = load_file(str(tmp_path / "checkpoint.safetensors"))
    averaged = {k[len("model/G_average/"):]: v for k, v in state.items() if k.startswith("model/G_average/")}
    assert averaged.keys() == exported.keys() and all(torch.equal(exported[k], v) for k, v in averaged.items())
    assert any(not torch.equal(state[f"model/G/{k}"], v) for k, v in averaged.items())


def test_per_identity_triplets_are_balanced(crops):
    faces, marks = crops
    images = np.concatenate([faces.images[:1]] * 8 + [faces.images[2:]])  # identity 0: 8 crops, identity 1: one
    labels = np.array([0] * 8 + [1])
    sampler = triplets.Triplets(images, labels, np.concatenate([marks[:1]] * 8 + [marks[2:]]), {"same": 1.0},
                                per_identity=True)
    rng = np.random.default_rng(0)
    obama = sum(np.array_equal(sampler.sample(rng)[1], faces.images[2]) for _ in range(400))
    assert 150 <= obama <= 250  # half the identities, not 1/9 of the images


@pytest.fixture(scope="module")
def trained_small() -> EncoderDecoder:
    """A small generator with non-trivial BatchNorm statistics and affine parameters."""
    torch.manual_seed(0)
    net = EncoderDecoder(8, 16).train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 16))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return net.eval()


def test_folded_generator_matches_eager(trained_small):
    x, e = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 16)
    with torch.no_grad():
        ref = trained_small(x, e)
        net = fold(trained_small).to(memory_format=torch.channels_last)
        fast = net(x.contiguous(memory_format=torch.channels_last), e)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fold(trained_small).modules())
    for r, f in zip(ref, fast):
        assert (r - f).abs().max() < 1e-5


def test_onnx_export_matches_pytorch(trained_small, tmp_path):
    path = export_onnx(trained_small, tmp_path / "g.onnx", 64)
    x, e = torch.rand(3, 3, 64, 64) * 2 - 1, torch.randn(3, 16)  # batch 3: the batch axis is dynamic
    with torch.no_grad():
        ref = trained_small(x, e)[0]
    assert (OnnxGenerator(path)(x, e) - ref).abs().max() < 1e-5


# bf16 tolerance on [0, 1] outputs: at most 4 levels of 8 bits anywhere, half a level on average
MAX_BF16, MEAN_BF16 = 4 / 255, 0.5 / 255


SHIPPED = WEIGHTS_DIR / MobileFSGAN.card.checkpoint
needs_weights = pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped MobileFSGAN weights")


@needs_weights
def test_shipped_weights_load_strict_and_match_the_card():
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == MobileFSGAN.card.checkpoint_sha256
    net, cfg = load_generator(SHIPPED)
    assert cfg["size"] == MobileFSGAN.card.input_size  # the recipe's training crop side
    assert sum(p.numel() for p in net.parameters()) == MobileFSGAN.card.parameters
    card = (Path(__file__).parents[1] / "methods" / "mobilefsgan" / "MODEL_CARD.md").read_text()
    assert MobileFSGAN.card.checkpoint_sha256 in card


@needs_weights
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_method_fast_path_within_tolerance(precision):
    if precision == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no native bf16 on this CPU")
    method = MobileFSGAN(precision=precision)
    size = method.card.input_size
    source = _tensor(_crop("media/face_recognition/obama.jpg"), size)
    target = _tensor(_crop("media/skimage/astronaut.png"), size)
    identity = method.embed_identity(source)
    with torch.no_grad():
        ref = ((method.generator(target * 2 - 1, identity)[0] + 1) / 2).clamp(0, 1)
    diff = (method.swap_embedded(identity, target) - ref).abs()
    tolerance = {"fp32": (1e-5, 1e-6), "bf16": (MAX_BF16, MEAN_BF16)}[precision]
    assert diff.max() <= tolerance[0] and diff.mean() <= tolerance[1]


def _tensor(crop: np.ndarray, size: int) -> torch.Tensor:
    import cv2

    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255


@needs_weights
def test_export_command_writes_onnx_that_matches(tmp_path):
    from fsbench.export import export

    path = export("mobilefsgan", "onnx", tmp_path / "m.onnx")
    method = MobileFSGAN(precision="fp32")
    size = method.card.input_size
    target = _tensor(_crop("media/skimage/astronaut.png"), size)
    identity = method.embed_identity(_tensor(_crop("media/face_recognition/obama.jpg"), size))
    onnx_out = ((OnnxGenerator(path)(target * 2 - 1, identity) + 1) / 2).clamp(0, 1)
    assert (onnx_out - method.swap_embedded(identity, target)).abs().max() < 1e-4


def test_export_refuses_methods_without_an_exporter(tmp_path):
    from fsbench.export import export

    with pytest.raises(ValueError, match="cannot be exported"):
        export("copy-target", "onnx", tmp_path / "x.onnx")
    assert "mobilefsgan" in registry.methods.names()


@needs_weights
def test_the_shipped_weights_fit_the_recipe_that_continues_them():
    from methods.mobilefsgan.train import initial_weights

    cfg = load_config("cpu-portraits")
    EncoderDecoder(cfg.arch.width, 128).load_state_dict(initial_weights(cfg, SHIPPED).weights["G"])  # strict
