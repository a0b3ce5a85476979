"""In-the-wild training: the degradations of training crops, where the methods put them, the same-person video
pairs, the recipes that use them, and the monitor's in-the-wild people kept out of training."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fsbench.cli import main
from fsbench.errors import UsageError
from fsbench.train import AugmentConfig, Degradation, FaceCrops, data
from fsbench.train.dist import Dist
from fsbench.train.augment import source_views

EVERY = AugmentConfig(p=1.0, geometry=1.0, colour=1.0, blur=1.0, low_res=1.0, noise=1.0, jpeg=1.0, occlusion=1.0)
ALONE = {name: AugmentConfig(p=1.0, **{k: float(k == name) for k in
                                       ("geometry", "colour", "blur", "low_res", "noise", "jpeg", "occlusion")})
         for name in ("geometry", "colour", "blur", "low_res", "noise", "jpeg")}


@pytest.fixture(scope="module")
def faces(face_crop) -> torch.Tensor:
    """Four real 128 px crops: the Obama crop, mirrored, darker, and shifted in colour."""
    return torch.stack([face_crop, face_crop.flip(-1), face_crop * 0.6, (face_crop * torch.tensor([1.0, 0.9, 0.7])
                                                                         [:, None, None]).clamp(0, 1)])


def test_a_degradation_is_a_function_of_the_rng_and_keeps_shape_dtype_and_range(faces) -> None:
    a = Degradation.draw(np.random.default_rng(7), len(faces), EVERY)
    b = Degradation.draw(np.random.default_rng(7), len(faces), EVERY)
    out = a(faces)
    assert torch.equal(out, b(faces)) and torch.equal(out, a(faces.clone()))  # one draw degrades alike
    assert out.shape == faces.shape and out.dtype == faces.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert all(float((o - f).abs().mean()) > 0.01 for o, f in zip(out, faces))
    other = Degradation.draw(np.random.default_rng(8), len(faces), EVERY)(faces)
    assert not torch.equal(out, other)
    off = Degradation.draw(np.random.default_rng(7), len(faces), AugmentConfig())
    assert torch.equal(off(faces), faces)  # p = 0: the crops as they are
    with torch.autocast("cpu", torch.bfloat16):  # a training step's autocast leaves the crops alone
        assert torch.equal(a(faces), out)


@pytest.mark.parametrize("name", sorted(ALONE))
def test_each_degradation_changes_every_crop_a_little(faces, name) -> None:
    out = Degradation.draw(np.random.default_rng(3), len(faces), ALONE[name])(faces)
    change = (out - faces).abs().mean((1, 2, 3))
    # visible, yet the face stays: a crop of mean change above 0.25 would be another picture
    assert bool((change > 1e-3).all()) and bool((change < 0.25).all()), change


def test_scene_occluders_cover_part_of_each_crop_and_leave_the_real_view_without(faces) -> None:
    occluders = replace(ALONE["colour"], colour=0.0, occlusion=1.0)  # occluders alone: the real view is the crop
    (seen, real), (seen_again, _) = (source_views(faces, np.random.default_rng(11), occluders) for _ in "ab")
    assert torch.equal(seen, seen_again) and torch.equal(real, faces)
    covered = ((seen - faces).abs().amax(1) > 1e-3).float().mean((1, 2))
    assert bool((covered > 0.01).all()) and bool((covered < 0.6).all()), covered
    seen, real = source_views(faces, np.random.default_rng(11), replace(occluders, colour=1.0))
    assert torch.equal(real, Degradation.draw(np.random.default_rng(11), len(faces), ALONE["colour"])(faces))
    assert not torch.equal(seen, real)


def test_augment_values_out_of_range_are_one_line_errors() -> None:
    from methods.faceshifter.configs import get_config

    with pytest.raises(UsageError, match=r"augment: p=1.5, jpeg_quality=0 out of range"):
        get_config("tiny", {"augment.p": 1.5, "augment.jpeg_quality": 0})
    with pytest.raises(UsageError, match="unknown config key 'augment.sharpen'"):
        get_config("tiny", {"augment.sharpen": 1})


def test_wild_recipes_are_the_shipped_recipes_with_augmentation() -> None:
    from methods.faceshifter.configs import get_config
    from methods.faceshifter.method import WEIGHTS
    from methods.faceshifter.train import initial_weights
    from methods.mobilefsgan.configs import load_config

    for portraits, wild in ((get_config("cpu-portraits"), get_config("cpu-wild")),
                            (load_config("cpu-portraits"), load_config("cpu-wild"))):
        assert portraits.augment.p == 0 < wild.augment.p
        assert replace(wild, augment=portraits.augment, **({"frames_ratio": 0.0} if hasattr(wild, "frames_ratio")
                                                           else {})) == portraits
    assert get_config("cpu-wild").frames_ratio > 0
    assert set(initial_weights(get_config("cpu-wild"), WEIGHTS)) == {"aei", "hear"}  # continues the shipped file


def _crops() -> FaceCrops:
    """Distinct random crops: identity 0 has four (a video's frames), identities 1 to 4 one each."""
    images = np.random.default_rng(0).integers(0, 256, (8, 128, 128, 3), dtype=np.uint8)
    return FaceCrops(images, np.array([0, 0, 0, 0, 1, 2, 3, 4]), ["franck", "a", "b", "c", "d"], "ffhq-256")


def _index(crops: FaceCrops, image: torch.Tensor) -> int:
    """Which crop ``image`` is, mirrored or not."""
    for k in range(len(crops)):
        if any(torch.equal(image, view) for view in (crops.tensor([k])[0], crops.tensor([k])[0].flip(-1))):
            return k
    raise AssertionError("not a training crop")


def test_frames_pairs_are_two_crops_of_one_person_with_x_t_the_truth() -> None:
    from methods.faceshifter.train import BalancedPairs

    crops = _crops()
    pairs = BalancedPairs(crops, frames_ratio=1.0)(np.random.default_rng(2), 16, 0.25)
    assert torch.equal(pairs.truth, torch.ones(16, dtype=torch.bool))  # X_s = X_t or two frames: all ground truth
    for k in np.flatnonzero(~pairs.same.numpy()):
        s, t = _index(crops, pairs.src[k]), _index(crops, pairs.tgt[k])
        assert s != t and crops.identities[s] == crops.identities[t] == 0
    with pytest.raises(UsageError, match="frames_ratio needs an identity with two training crops"):
        BalancedPairs(replace(crops, identities=np.arange(8)), frames_ratio=0.1)


def _runs(overrides: dict) -> tuple:
    from methods.faceshifter.configs import get_config
    from methods.faceshifter.discriminator import MultiScaleDiscriminator
    from methods.faceshifter.net import FaceShifterNet
    from methods.faceshifter.train import AEIRun, HEARRun

    cfg = get_config("tiny", overrides)
    net, d = FaceShifterNet(cfg.arch), Dist(0, 1, torch.device("cpu"))
    aei = AEIRun(cfg, _crops(), None, net.aei, MultiScaleDiscriminator(cfg.arch), d, None)
    return aei, HEARRun(cfg, _crops(), None, net.aei, net.hear, d, None)


def test_faceshifter_degrades_each_side_and_keeps_a_self_swap_one_image() -> None:
    from methods.faceshifter.train import HEAR_SAME_RATIO

    every = {f"augment.{k}": 1.0 for k in ("p", "geometry", "colour", "blur", "low_res", "noise", "jpeg", "occlusion")}
    aei, hear = _runs({**every, "frames_ratio": 0.5})
    b = aei._batch(np.random.default_rng(4), 12, 0.5)
    assert all(torch.equal(x, y) for x, y in zip(b, aei._batch(np.random.default_rng(4), 12, 0.5)))
    pairs = aei.pairs(np.random.default_rng(4), 12, 0.5)  # the batch's pairs before their degradations
    same, swaps = np.flatnonzero(pairs.same.numpy()), np.flatnonzero(~pairs.truth.numpy())
    assert same.size and swaps.size and torch.equal(b.truth, pairs.truth.float())
    # X_s = X_t: one degraded image, the discriminator's real photo too; the identity loss sees it undegraded
    assert all(torch.equal(b.src[k], b.tgt[k]) and torch.equal(b.real[k], b.tgt[k]) for k in same)
    assert torch.equal(b.id_src, pairs.src) and all(not torch.equal(b.tgt[k], pairs.tgt[k]) for k in range(12))
    assert all(not torch.equal(b.src[k], b.id_src[k]) for k in swaps)
    src, tgt, truth, id_src, clean = hear._occluded(np.random.default_rng(4), 12)
    same = np.flatnonzero(hear.pairs(np.random.default_rng(4), 12, HEAR_SAME_RATIO).same.numpy())
    assert same.size and all(torch.equal(src[k], tgt[k]) and truth[k] == 1 for k in same)
    plain = _runs({})[0]._batch(np.random.default_rng(4), 12, 0.5)  # no augmentation: one X_s for all
    assert torch.equal(plain.src, plain.id_src) and torch.equal(plain.src, plain.real)


def test_mobilefsgan_degrades_target_and_truth_alike(face) -> None:
    from methods.mobilefsgan import triplets
    from methods.mobilefsgan.configs import load_config
    from methods.mobilefsgan.train import make_batch

    crop, lm = face
    for kind in ("same", "attr_target"):
        sampler = triplets.Triplets(crop[None], np.array([0]), lm[None], {kind: 1.0})
        cfg = load_config("smoke", {"augment.p": 1.0, "augment.occlusion": 1.0, "loop.batch": 6})
        a, b = (make_batch(sampler, cfg, np.random.default_rng(6)) for _ in "ab")
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert torch.equal(a["target"], a["truth"]) and not torch.equal(a["identity"], a["source"])
        assert float(a["source"].min()) >= -1 and float(a["source"].max()) <= 1
        if kind == "same":  # the source is the target's image (unless mirrored apart), degraded as it
            plain = make_batch(sampler, replace(cfg, augment=AugmentConfig()), np.random.default_rng(6))
            one = [k for k in range(6) if torch.equal(plain["source"][k], plain["target"][k])]
            assert one and all(torch.equal(a["source"][k], a["target"][k]) for k in one)
            assert torch.equal(a["real"], a["source"]) and torch.equal(plain["identity"], a["identity"])


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    from fsbench import assets
    from fsbench.api import landmarks68
    from fsbench.faces.align import align_face
    from fsbench.faces.detect import detect_face
    from fsbench.faces.io import read_image

    image = read_image(assets.path("media/skimage/astronaut.png"))
    crop = align_face(image, detect_face(image).landmarks, "ffhq-256", 256)[0]
    return crop, landmarks68(crop, "ffhq-256")


def test_training_runs_with_every_degradation(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    sets = ["loop.steps=2", "hear_steps=1", "augment.p=1", "augment.occlusion=1", "augment.jpeg=1", "frames_ratio=0.5",
            "loop.precision=\"bf16\""]  # autocast, as a step runs under it
    assert main(["train", "faceshifter", "--config", "tiny", "--out", str(tmp_path),
                 *[a for s in sets for a in ("--set", s)]]) == 0
    rows = [json.loads(line) for line in (tmp_path / "aei" / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["g"]) for r in rows)
    assert (tmp_path / "faceshifter-tiny.safetensors").is_file()


def test_the_monitors_wild_people_never_reach_the_training_crops(monkeypatch) -> None:
    from fsbench.data import mini, portraits
    from fsbench.faces import io

    manifest = mini.load_manifest()
    stills = {s.identity for s in manifest.items(split="train") if s.kind == "still"}
    assert set(data.MONITOR_WILD) <= stills and "franck" not in data.MONITOR_WILD
    assert not set(data.MONITOR_WILD) & set(portraits.load_manifest().identities())
    with pytest.raises(data.HeldOutIdentityError, match=r"rihanna \(monitor/wild\)"):
        data.check_training_identities(["franck", "rihanna"], "a folder")
    blank = np.zeros((8, 8, 3), np.uint8)
    monkeypatch.setattr(io, "read_image", lambda path: blank)
    monkeypatch.setattr(io, "read_frames", lambda path, indices: [blank for _ in indices])
    loaded = {identity for identity, _, _ in data._mini_train_images(video_stride=1000)}
    assert loaded == set(manifest.identities("train")) - set(data.MONITOR_WILD)
