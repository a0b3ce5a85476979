"""FaceShifter: the paper's architecture facts (Fig. 12), the AAD layer, paper-size parameter counts, the
training smoke test with resume, and the shipped checkpoint."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from safetensors import safe_open
from safetensors.torch import load_file

from fsbench.api import exported_metadata, load_weights, recorded_architecture
from methods.faceshifter.aei import AAD, AEINet, GENERATOR_PLAN
from methods.faceshifter.configs import Architecture, get_config
from methods.faceshifter.discriminator import MultiScaleDiscriminator
from methods.faceshifter.method import WEIGHTS, FaceShifter, FastFaceShifter
from methods.faceshifter.net import FaceShifterNet
from methods.faceshifter.occlusion import occlude_batch
from methods.faceshifter.train import initial_weights, train

PAPER_ATTRIBUTES = [(1024, 2), (2048, 4), (1024, 8), (512, 16), (256, 32), (128, 64), (64, 128), (64, 256)]


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_attribute_maps_and_generator_plan() -> None:
    """z_att^1 = 1024×2×2 … z_att^8 = 64×256×256, generator blocks as Fig. 12 (shapes on the meta device)."""
    with torch.device("meta"):
        net = AEINet(get_config("paper").arch)
        y, z_att, _ = net(torch.empty(1, 3, 256, 256), torch.empty(1, 128))
    assert [(z.shape[1], z.shape[2]) for z in z_att] == PAPER_ATTRIBUTES
    assert all(z.shape[2] == z.shape[3] for z in z_att)
    assert [(b.conv1.in_channels, b.conv2.out_channels) for b in net.generator.blocks] == list(GENERATOR_PLAN)
    assert tuple(y.shape) == (1, 3, 256, 256)


def test_reduced_width_levels_run() -> None:
    cfg = replace(get_config("tiny").arch, size=256)
    net = AEINet(cfg).eval()
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        y, z_att, z_out = net(x, torch.randn(2, cfg.id_dim), True)
    expected = [(cfg.channels(c), s) for c, s in PAPER_ATTRIBUTES]
    expected[1:] = [(2 * cfg.channels(c // 2), s) for c, s in PAPER_ATTRIBUTES[1:]]  # U-Net concatenations
    assert [(z.shape[1], z.shape[2]) for z in z_att] == expected
    assert [z.shape for z in z_out] == [z.shape for z in z_att]
    assert y.shape == x.shape and float(y.abs().max()) <= 1


def test_aad_mask_and_blend() -> None:
    torch.manual_seed(0)
    aad = AAD(8, 6, 16)
    h, z_att, z_id = torch.randn(2, 8, 5, 5) * 3 + 1, torch.randn(2, 6, 5, 5), torch.randn(2, 16)
    with torch.no_grad():
        m = aad.attention(h)
        assert m.shape == (2, 1, 5, 5) and float(m.min()) >= 0 and float(m.max()) <= 1
        mean, std = h.mean((2, 3), keepdim=True), h.var((2, 3), keepdim=True, unbiased=False).add(1e-5).sqrt()
        hn = (h - mean) / std
        g_att, b_att = aad.att(z_att).chunk(2, 1)
        g_id, b_id = aad.id(z_id)[..., None, None].chunk(2, 1)
        expected = (1 - m) * (g_att * hn + b_att) + m * (g_id * hn + b_id)
        assert torch.allclose(aad(h, z_att, z_id), expected, atol=1e-5)
        aad.mask.bias.fill_(60.0)  # M = 1: identity branch only
        assert torch.allclose(aad(h, z_att, z_id), g_id * hn + b_id, atol=1e-4)


def test_shared_swap_equals_two_aei_passes() -> None:
    """The inference path (encoder once, modulations shared by both identities) is AEI-Net run twice, exactly up to
    float rounding; tolerance 1e-5 on images in [-1, 1]."""
    torch.manual_seed(0)
    net = FaceShifterNet(get_config("tiny").arch).eval()
    x, z_s, z_t = torch.rand(2, 3, 128, 128) * 2 - 1, torch.randn(2, 128), torch.randn(2, 128)
    with torch.no_grad():
        plain = net.hear(net.aei(x, z_s)[0], x - net.aei(x, z_t)[0])
        assert torch.allclose(net(x, z_s, z_t), plain, atol=1e-5)


def test_paper_parameter_counts() -> None:
    """Paper: 669 MB (AEI-Net) and 64 MB (HEAR-Net) of weights. The public re-implementation (taotaonice/FaceShifter)
    has 184,343,381 (AEI-Net, 512-d ArcFace z_id) and 16,663,043 (HEAR-Net): ours adds the 10,054 biases of the AAD
    ResBlk convolutions, and its HEAR-Net ends in a ConvTranspose 4×4 (the fifth up-sampling) instead of
    bilinear + Conv 3×3."""
    counts = {}
    for name in ("paper", "paper-arcface"):
        with torch.device("meta"):
            net = FaceShifterNet(get_config(name).arch)
        counts[name] = (_count(net.aei), _count(net.hear))
    assert counts["paper-arcface"] == (184_343_381 + 10_054, 16_663_299)
    with torch.device("meta"):
        aads = [m for m in AEINet(get_config("paper").arch).modules() if isinstance(m, AAD)]
    # a 128-d z_id (SFace) instead of 512-d shrinks every identity FC (γ_id, β_id) and the initial ConvTranspose 2×2
    smaller = (512 - 128) * (sum(m.id.out_features for m in aads) + 1024 * 2 * 2)
    assert counts["paper"] == (counts["paper-arcface"][0] - smaller, 16_663_299)


def test_discriminator_scales() -> None:
    d = MultiScaleDiscriminator(get_config("tiny").arch)
    real, fake = d(torch.rand(2, 3, 128, 128), torch.rand(2, 3, 128, 128))
    logits = fake
    assert len(real) == len(fake) == 3 and [l.shape[-1] for l in logits] == sorted((l.shape[-1] for l in logits), reverse=True)


def test_occlusion_deterministic_and_bounded() -> None:
    x = torch.rand(3, 3, 128, 128)
    a = occlude_batch(x, np.random.default_rng(5), 1.0)
    b = occlude_batch(x, np.random.default_rng(5), 1.0)
    assert torch.equal(a, b) and float(a.min()) >= 0 and float(a.max()) <= 1
    changed = (a - x).abs().amax(1) > 1e-3
    assert all(0 < c.float().mean() < 0.6 for c in changed)  # every image occluded, none entirely
    assert torch.equal(occlude_batch(x, np.random.default_rng(5), 0.0), x)


def _steps(aei: int, hear: int) -> dict[str, int]:
    return {"loop.steps": aei, "hear_steps": hear}


def _log(out: Path, phase: str) -> dict[int, dict[str, float]]:
    rows = [json.loads(line) for line in (out / phase / "losses.jsonl").read_text().splitlines()]
    return {r.pop("step"): {k: v for k, v in r.items() if k not in ("seconds", "step_s")} for r in rows}


def test_training_smoke_and_resume(tmp_path: Path) -> None:
    """Forward, every loss, backward, optimiser step, checkpoint; a resumed run takes the same next step."""
    torch.set_num_threads(1)
    straight = train("tiny", tmp_path / "a", overrides=_steps(3, 2))
    train("tiny", tmp_path / "b", overrides=_steps(2, 0))  # stopped after two AEI-Net steps
    train("tiny", tmp_path / "b", overrides=_steps(3, 1))  # resumes AEI-Net at step 2, then one HEAR-Net step
    resumed = train("tiny", tmp_path / "b", overrides=_steps(3, 2))  # resumes HEAR-Net at step 1
    aei_a, aei_b = _log(tmp_path / "a", "aei"), _log(tmp_path / "b", "aei")
    hear_a, hear_b = _log(tmp_path / "a", "hear"), _log(tmp_path / "b", "hear")
    assert set(aei_a[1]) == {"g", "adv", "att", "id", "id_swap", "rec", "d"}
    assert set(hear_a[1]) == {"loss", "rec", "id", "id_swap", "chg"}
    assert all(np.isfinite(v) for row in (*aei_a.values(), *hear_a.values()) for v in row.values())
    assert aei_b[3] == aei_a[3] and hear_b[2] == hear_a[2]
    assert hear_b[1] == hear_a[1]
    weights_a, weights_b = load_file(str(straight)), load_file(str(resumed))  # metadata holds wall times
    assert weights_a.keys() == weights_b.keys() and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    torch.manual_seed(0)
    initial = FaceShifterNet(get_config("tiny").arch)
    trained = FaceShifter(weights=straight).net
    for name in ("aei", "hear"):  # the optimiser moved every network's weights
        before = torch.cat([p.flatten() for p in getattr(initial, name).parameters()])
        after = torch.cat([p.flatten() for p in getattr(trained, name).parameters()])
        assert not torch.allclose(before, after)


def test_a_fresh_run_starts_from_exported_weights_with_fresh_optimisers(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    first = train("tiny", tmp_path / "a", overrides=_steps(2, 1))
    start = train("tiny", tmp_path / "b", init_from=first, overrides=_steps(0, 0))
    before, after = load_file(str(first)), load_file(str(start))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    train("tiny", tmp_path / "c", init_from=first, overrides=_steps(1, 1))
    for phase, opt in (("aei", "g"), ("hear", "hear")):
        state = load_file(str(tmp_path / phase.join(("c/", "/checkpoint.safetensors"))))
        assert float(state[f"opt/{opt}/0/step"]) == 1  # Adam's first step: fresh optimisers
    counts = {"aei_steps": "3", "hear_steps": "2"}  # the chain's: the first run's 2 and 1, then 1 and 1
    assert counts.items() <= exported_metadata(tmp_path / "c" / "faceshifter-tiny.safetensors").items()
    train("tiny", tmp_path / "c", overrides=_steps(2, 1))  # resumed without --init-from: the checkpoint carries them
    counts = {"aei_steps": "4", "hear_steps": "2"}
    assert counts.items() <= exported_metadata(tmp_path / "c" / "faceshifter-tiny.safetensors").items()
    with pytest.raises(ValueError, match="width 0.03125 \\(config: 0.0625\\)"):
        train("tiny", tmp_path / "d", init_from=first, overrides={**_steps(1, 0), "arch.width": 1 / 16})


def test_the_shipped_weights_fit_the_recipe_that_continues_them() -> None:
    cfg = get_config("cpu-portraits")
    initial = initial_weights(cfg, WEIGHTS)
    net = FaceShifterNet(cfg.arch)
    for name in ("aei", "hear"):
        getattr(net, name).load_state_dict(initial[name].weights[name])  # strict


def test_training_with_the_users_arcface(tmp_path: Path, monkeypatch) -> None:
    """The paper's 512-d ArcFace z_id: an IR-SE50 file added by the user (random weights here) trains and swaps."""
    from fsbench import assets
    from fsbench.nets.irse import IRSE50

    monkeypatch.setattr(assets, "_reference_index", lambda: tmp_path / "reference.json")  # the user's cache alone
    torch.save(IRSE50().state_dict(), tmp_path / "model_ir_se50.pth")
    assets.add("arcface-ir-se50", tmp_path / "model_ir_se50.pth")
    torch.set_num_threads(1)
    weights = train("tiny", tmp_path / "run",
                    overrides={**_steps(1, 1), "arch.id_encoder": "arcface-ir-se50", "arch.id_dim": 512})
    method = FaceShifter(weights=weights)
    assert method.arch.id_encoder == "arcface-ir-se50" and method.net.aei.generator.blocks[0].aad1.id.in_features == 512
    faces = torch.rand(2, 3, 128, 128)
    assert method.embed_identity(faces).shape == (2, 512) and method.swap(faces, faces).shape == faces.shape


def test_training_with_the_identity_ensemble_and_the_monitor(tmp_path: Path) -> None:
    """The portraits-era losses: SFace + FaceNet on augmented swaps, dlib monitor records in both phases; z_id
    stays SFace's, so the card's recognisers are the union."""
    weights = train("tiny", tmp_path / "run", overrides={
        **_steps(1, 1), "identity_loss.recognisers": ["sface", "facenet"], "identity_loss.augment": True,
        "monitor.every": 1, "loop.precision": "bf16"})  # autocast: every loss kernel has to exist
    for phase in ("aei", "hear"):
        assert all(np.isfinite(v) for row in _log(tmp_path / "run", phase).values() for v in row.values())
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["identity_loss"]) == {"recognisers": ["sface", "facenet"], "augment": True}
    assert FaceShifter(weights=weights).card.notes["training_recognisers"] == ["sface", "facenet"]
    for phase in ("aei", "hear"):
        steps = [json.loads(r)["step"] for r in (tmp_path / "run" / phase / "monitor.jsonl").read_text().splitlines()]
        assert steps == [0, 1]
    with pytest.raises(ValueError, match="dlib"):
        train("tiny", tmp_path / "dlib", overrides={**_steps(1, 0), "identity_loss.recognisers": ["dlib"]})
    with pytest.raises(ValueError, match="precision"):
        train("tiny", tmp_path / "fp16", overrides={**_steps(1, 0), "loop.precision": "fp16"})


def test_the_export_holds_the_weight_averages_and_hear_net_trains_on_aei_nets(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    weights = load_file(str(train("tiny", tmp_path, overrides={**_steps(2, 2), "average.decay": 0.5})))
    for phase, name in (("aei", "aei"), ("hear", "hear")):
        state = load_file(str(tmp_path / phase / "checkpoint.safetensors"))
        averaged = {k.split("/", 2)[2]: v for k, v in state.items() if k.startswith(f"model/{name}_average/")}
        live = {k.split("/", 2)[2]: v for k, v in state.items() if k.startswith(f"model/{name}/")}
        assert averaged and all(torch.equal(weights[f"{name}.{k}"], v) for k, v in averaged.items())
        assert any(not torch.equal(v, averaged[k]) for k, v in live.items())


def test_training_under_torchrun(tmp_path: Path) -> None:
    """DDP over two gloo ranks (CPU): every parameter gets a gradient on every rank, so DDP's reducer is satisfied."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "fsbench.cli", "train",
           "faceshifter", "--config", "tiny", "--out", str(tmp_path), "--set", "loop.steps=2",
           "--set", "hear_steps=1"]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(_log(tmp_path, "aei")) == [1, 2] and sorted(_log(tmp_path, "hear")) == [1]
    assert (tmp_path / "faceshifter-tiny.safetensors").is_file()


def test_shipped_weights_load_and_match_card() -> None:
    assert WEIGHTS.is_file(), f"{WEIGHTS} missing"
    assert FaceShifter.card.checkpoint_sha256 == hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    method = FaceShifter()  # load_weights is strict
    assert FaceShifter.card.input_size == recorded_architecture(Architecture, WEIGHTS, "FaceShifter").size
    crops = torch.rand(2, 3, 256, 256)
    out = method.swap(crops, crops.flip(0))
    assert out.shape == crops.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    with pytest.raises(RuntimeError, match="size mismatch"):  # strict: same keys, other widths
        load_weights(WEIGHTS, FaceShifterNet(get_config("tiny").arch))


# Fast path against the plain fp32 network on [0, 1] outputs. fp32 (BN folded, channels-last): float rounding.
# bf16: at most 8 levels of 8 bits anywhere, half a level on average (measured on mini stills: 3.8 and 0.2 levels).
FAST_TOLERANCE = {"fp32": (1e-4, 1e-5), "bf16": (8 / 255, 0.5 / 255)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_prepacked_channels_last_path_equals_the_plain_one(dtype: torch.dtype) -> None:
    """The wide networks' inference path (prepacked convolutions, channels-last maps; forced here on a narrow one)
    against the narrow networks' path: the same function up to float rounding (fp32) or bf16's FAST_TOLERANCE."""
    if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no native bf16 on this CPU")
    torch.manual_seed(0)
    net = FaceShifterNet(get_config("tiny").arch).eval()
    plain, packed = (FastFaceShifter(net, dtype, prepacked=p) for p in (False, True))
    assert not plain.prepacked and packed.prepacked
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    z_s, z_t = (torch.nn.functional.normalize(torch.randn(2, net.arch.id_dim), dim=1) for _ in range(2))
    diff = ((packed(x, z_s, z_t) - plain(x, z_s, z_t)) / 2).abs()  # on [0, 1] images, as FAST_TOLERANCE
    assert packed(x, z_s, z_t).is_contiguous()
    most, mean = FAST_TOLERANCE["fp32" if dtype == torch.float32 else "bf16"]
    assert diff.max() <= most and diff.mean() <= mean


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fast_path_within_tolerance_of_the_fp32_network(precision: str) -> None:
    if precision == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no native bf16 on this CPU")
    from fsbench.faces.crops import CropStore, to_tensor
    from fsbench.protocols.stills import MiniStills

    items = MiniStills().build(None, 0).gallery[:4]
    store = CropStore("ffhq-256", 256)
    store.prepare(items, progress=False)
    crops = to_tensor([store.method_crop(i) for i in items if i.id in store.crops])
    method = FaceShifter(precision=precision)
    assert method.fast.dtype == {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    source, target = crops[:2], crops[2:4]
    identity = method.embed_identity(source)
    with torch.no_grad():
        fitted = method._fit(target)
        plain = (method.net(fitted * 2 - 1, identity, method.encoder.embed(fitted, "ffhq-256")) + 1) / 2
        plain = torch.nn.functional.interpolate(plain, size=target.shape[-2:], mode="bilinear", align_corners=False)
    diff = (method.swap_embedded(identity, target) - plain.clamp(0, 1)).abs()
    most, mean = FAST_TOLERANCE[precision]
    assert diff.max() <= most and diff.mean() <= mean


def test_the_pose_term_is_ramped_in_and_trains_with_a_prior_fitted_once(tmp_path: Path, quick_pose_fit) -> None:
    from fsbench.train import pose_prior
    from methods.faceshifter.train import ramped

    assert [ramped(4.0, s, 4) for s in range(6)] == [1.0, 2.0, 3.0, 4.0, 4.0, 4.0]
    assert ramped(4.0, 0, 0) == 4.0
    fits = quick_pose_fit
    train("tiny", tmp_path / "run", overrides={**_steps(2, 0), "w_pose": 1.0})
    train("tiny", tmp_path / "run", overrides={**_steps(3, 0), "w_pose": 1.0})  # resumed: the same prior
    assert len(fits) == 1 and (tmp_path / "run" / pose_prior.FILE).is_file()
    log = _log(tmp_path / "run", "aei")
    assert sorted(log) == [1, 2, 3] and all(np.isfinite(row["pose"]) and row["pose"] >= 0 for row in log.values())
    train("tiny", tmp_path / "hear-pose", overrides={**_steps(1, 2), "w_pose_hear": 1.0})
    log = _log(tmp_path / "hear-pose", "hear")
    assert sorted(log) == [1, 2] and all(np.isfinite(row["pose"]) and row["pose"] >= 0 for row in log.values())
    assert "pose" not in _log(tmp_path / "hear-pose", "aei")[1]  # w_pose 0: AEI-Net's loss has no pose term
