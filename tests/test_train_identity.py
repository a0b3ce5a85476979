"""Training machinery: held-out identities refused, the identity ensemble, the dlib monitor (validation and
in-the-wild pairs)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fsbench.data import portraits
from fsbench.train import data, monitor
from fsbench.train.data import FaceCrops, HeldOutIdentityError, check_training_identities
from fsbench.train.config import LoopConfig
from fsbench.train.dist import Dist
from fsbench.train.identity import IdentityEnsemble, augment
from fsbench.train.loop import Trainer


def _leaky_manifest(identity: str) -> portraits.Manifest:
    """The shipped manifest with the portrait of ``identity`` moved to the test split."""
    real = portraits.load_manifest()
    items = tuple(replace(it, split="test") if it.identity == identity else it for it in real.all_items)
    return replace(real, all_items=items)


def test_training_identities_pass_and_a_leaked_test_identity_is_refused(monkeypatch) -> None:
    manifest = portraits.load_manifest()
    train_ids = manifest.identities("train")
    check_training_identities(train_ids + ["franck"], "real")  # the shipped split is clean
    leaky = _leaky_manifest(train_ids[3])
    monkeypatch.setattr(portraits, "load_manifest", lambda path=None: leaky)
    with pytest.raises(HeldOutIdentityError, match=f"{train_ids[3]} \\(portraits/test\\)"):
        check_training_identities(train_ids + ["franck"], "real")


@pytest.mark.parametrize("loader,held_out", [(data.portraits_train_crops, "portraits/validation"),
                                             (data.mini_train_crops, "mini/test")])
def test_loaders_check_their_crops_cached_or_not(monkeypatch, loader, held_out) -> None:
    ident = (portraits.load_manifest().identities("validation")[0] if held_out.startswith("portraits")
             else "barack-obama")
    crops = FaceCrops(np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1]), ["franck", ident], "ffhq-256")
    monkeypatch.setattr(data, "_cached", lambda *args, **kwargs: crops)  # whatever the cache holds
    with pytest.raises(HeldOutIdentityError, match=f"{ident} \\({held_out}\\)"):
        loader("ffhq-256", 8)


def test_identity_draw_is_uniform_over_identities() -> None:
    labels = np.array([0] * 98 + [1, 2])  # one identity with 98 images, two with one
    picks = data.IdentityDraw(labels)(np.random.default_rng(0), 3000)
    share = np.bincount(labels[picks], minlength=3) / 3000
    assert np.allclose(share, 1 / 3, atol=0.04)  # per image it would be 0.98 / 0.01 / 0.01


def test_augment_keeps_shape_range_and_gradients() -> None:
    torch.manual_seed(0)
    x = torch.rand(4, 3, 64, 64, requires_grad=True)
    y = augment(x)
    assert y.shape == x.shape and float(y.detach().min()) >= 0 and float(y.detach().max()) <= 1
    y.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert not torch.allclose(y.detach(), x.detach(), atol=1e-3)  # it changes the view
    torch.manual_seed(1)
    a = augment(x.detach())
    torch.manual_seed(1)
    assert torch.equal(a, augment(x.detach()))  # a function of torch's seed (resumable runs)


@pytest.mark.parametrize("name", ["dlib", "arcface-mbf"])
def test_evaluation_recognisers_are_refused_for_training(name: str) -> None:
    with pytest.raises(ValueError, match=f"recogniser\\(s\\) {name} refused: dlib and arcface-mbf are the benchmark's"):
        IdentityEnsemble(("sface", name))


def test_ensemble_loss_has_gradients_and_is_low_for_the_source_itself(face_crop) -> None:
    torch.manual_seed(0)
    ens = IdentityEnsemble(("sface", "facenet"), augment=True)
    src = face_crop[None]
    targets = ens.embed(src, "ffhq-256")
    assert [t.shape for t in targets] == [(1, 128), (1, 128)]
    noise = torch.rand_like(src).requires_grad_()
    loss_noise = ens.loss(noise, targets, "ffhq-256")
    loss_noise.sum().backward()
    assert noise.grad is not None and float(noise.grad.abs().sum()) > 0
    loss_self = ens.loss(src, targets, "ffhq-256")
    # the augmented source stays close to itself in both spaces; noise does not (cosines, no tolerance needed
    # beyond the gap: measured 0.05 vs 0.9 on this crop)
    assert float(loss_self) < 0.3 < float(loss_noise.detach())


def test_monitor_scores_copy_target_at_the_floor_and_paste_source_at_one() -> None:
    mon = monitor.Monitor("ffhq-256", 64, n=6, batch=4)
    copy = mon.score(lambda source, target: target)
    assert copy["top1"] == 0.0 and copy["id_cos"] == pytest.approx(copy["copy_target_id_cos"], abs=1e-4)
    paste = mon.score(lambda source, target: source)
    # the source at 64 px against its 256 px portrait: measured 0.981
    assert paste["top1"] == 1.0 and paste["id_cos"] > 0.97 and paste["pairs"] == 6
    # pose: copy-target sits at its floor; the sources, other people in other poses, do not
    assert copy["pose_err"] == pytest.approx(copy["copy_target_pose_err"], abs=1e-3)
    assert paste["pose_err"] > copy["pose_err"] + 1
    assert abs(copy["pose_from_source"]) < 0.1 and paste["pose_from_source"] > 0.9
    # appearance: the targets themselves and the sources (the same real crops, reordered) are at FD 0; noise is not
    assert copy["fd"] == pytest.approx(0, abs=1e-3) and paste["fd"] == pytest.approx(0, abs=1e-3)
    assert mon.score(lambda source, target: torch.rand_like(target))["fd"] > 10
    # the in-the-wild set: each of its eight people a target of the seven others, scored alike
    assert copy["wild_pairs"] == paste["wild_pairs"] == 8 * 7
    assert copy["wild_top1"] == 0.0 and copy["wild_id_cos"] == pytest.approx(copy["wild_copy_target_id_cos"], abs=1e-4)
    assert paste["wild_top1"] == 1.0 and paste["wild_id_cos"] > copy["wild_id_cos"] + 0.05
    assert copy["wild_pose_err"] == pytest.approx(copy["wild_copy_target_pose_err"], abs=1e-3)
    assert paste["wild_pose_from_source"] > 0.9 and copy["wild_fd"] == pytest.approx(0, abs=1e-3)


class _Counter(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


def test_one_seed_rule_gives_each_seed_step_and_rank_its_own_draws() -> None:
    from fsbench.train import sample_rng, step_rng

    def draw(rng) -> tuple[int, ...]:
        return tuple(rng.integers(1 << 30, size=4).tolist())

    assert draw(step_rng(0, 5, 1)) == draw(step_rng(0, 5, 1))  # a resumed run draws what it drew before
    draws = {draw(step_rng(0, 5, 0)), draw(step_rng(0, 5, 1)), draw(step_rng(0, 6, 0)), draw(step_rng(1, 5, 0)),
             draw(sample_rng(0))}
    assert len(draws) == 5


class _Monitor:
    """Scores the run's swap function as a :class:`fsbench.train.monitor.Monitor` does, with made-up records."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, swap) -> dict:
        self.calls += 1
        return {"top1": 0.5, "id_cos": 0.1 * self.calls, "copy_target_id_cos": 0.05, "pairs": 2}


def test_loop_writes_monitor_records_at_start_and_every_n(tmp_path: Path, step_run) -> None:
    net = _Counter()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    run = step_run({"net": net}, {"opt": opt}, lambda i: {"loss": float(i)})
    scorer = _Monitor()

    def trainer(steps: int) -> Trainer:
        return Trainer(run, LoopConfig(steps, checkpoint_every=1), Dist(0, 1, torch.device("cpu")), tmp_path,
                       monitor_every=2)

    trainer(3).train(scorer)
    trainer(4).train(scorer)  # resumes at 3: a record where this call starts, then step 4
    steps = [r["step"] for r in monitor.read_records(tmp_path / monitor.RECORD_FILE)]
    assert steps == [0, 2, 3, 4]
    out = monitor.plot(tmp_path, tmp_path / "curve.png")
    assert out.stat().st_size > 1000
    with open(tmp_path / monitor.RECORD_FILE, "a") as f:
        f.write("not json\n")
    with pytest.raises(ValueError, match="monitor.jsonl:5"):
        monitor.read_records(tmp_path / monitor.RECORD_FILE)
    assert json.loads((tmp_path / monitor.RECORD_FILE).read_text().splitlines()[0])["top1"] == 0.5


def test_plot_draws_pose_error_where_the_records_have_it(tmp_path: Path) -> None:
    import matplotlib.image

    old, new = tmp_path / "old", tmp_path / "new"
    for run, extra in ((old, {}), (new, {"pose_err": 3.0, "copy_target_pose_err": 1.0, "fd": 40.0})):
        for step in (0, 250):
            monitor.append_record(run / monitor.RECORD_FILE, step,
                                  {"top1": 0.1, "id_cos": 0.85, "copy_target_id_cos": 0.84, "pairs": 4, **extra})
    widths = [matplotlib.image.imread(monitor.plot(run, tmp_path / f"{run.name}.png")).shape[1] for run in (old, new)]
    assert widths[1] > widths[0]  # the pose and FD panels
    wild = tmp_path / "wild"
    for step in (0, 250):
        monitor.append_record(wild / monitor.RECORD_FILE, step, {"top1": 0.1, "id_cos": 0.85, "copy_target_id_cos": 0.84,
                                                                 "pairs": 4, "wild_top1": 0.2, "wild_id_cos": 0.8,
                                                                 "wild_copy_target_id_cos": 0.79, "wild_pairs": 56})
    heights = [matplotlib.image.imread(monitor.plot(run, tmp_path / f"{run.name}.png")).shape[0] for run in (old, wild)]
    assert heights[1] > heights[0]  # a second row: the in-the-wild pairs


def test_trend_fits_the_curve_and_extrapolates_to_the_target(tmp_path: Path) -> None:
    rec = tmp_path / monitor.RECORD_FILE
    for step in (100, 200, 300, 400):  # id_cos = 0.80 + 0.01 per 100 steps, exactly
        monitor.append_record(rec, step, {"top1": 0.0, "id_cos": 0.80 + step / 10_000, "copy_target_id_cos": 0.8})
    (tmp_path / "losses.jsonl").write_text("".join(json.dumps({"step": s, "step_s": 2.0}) + "\n"
                                                   for s in (10, 150, 250, 350, 450)))
    out = monitor.trend(rec, target=0.90)
    assert out["slope_per_1k"] == pytest.approx(0.1) and out["slope_stderr_per_1k"] == pytest.approx(0, abs=1e-9)
    assert out["steps_to_target"] == 600  # 0.84 at step 400, 0.90 at step 1000
    assert out["seconds_per_step"] == 2.0 and out["hours_to_target"] == pytest.approx(600 * 2 / 3600)
    assert monitor.trend(rec, target=0.90, since=200)["records"] == 3
    assert monitor.trend(rec, target=0.83)["steps_to_target"] == 0  # passed already
    with pytest.raises(ValueError, match="at least 3"):
        monitor.trend(rec, target=0.90, since=300)
    monitor.append_record(rec, 500, {"top1": 0.0, "id_cos": 0.0, "copy_target_id_cos": 0.8})  # falling: no crossing
    assert monitor.trend(rec, target=0.90, since=300)["steps_to_target"] is None


def test_trend_of_a_lower_is_better_curve(tmp_path: Path) -> None:
    rec = tmp_path / monitor.RECORD_FILE
    for step, fd in ((100, 50.0), (200, 48.0), (300, 46.0)):  # −2 per 100 steps
        monitor.append_record(rec, step, {"top1": 0.0, "id_cos": 0.8, "copy_target_id_cos": 0.8, "fd": fd})
    monitor.append_record(rec, 50, {"top1": 0.0, "id_cos": 0.8, "copy_target_id_cos": 0.8})  # before fd existed
    out = monitor.trend(rec, target=40.0, key="fd")
    assert out["records"] == 3 and out["slope_per_1k"] == pytest.approx(-20)
    assert out["steps_to_target"] == 300 and out["last"] == 46.0
    assert monitor.trend(rec, target=47.0, key="fd")["steps_to_target"] == 0  # passed already
    assert monitor.trend(rec, target=40.0, key="id_cos")["steps_to_target"] is None  # flat: never
    with pytest.raises(ValueError, match="no monitor curve 'loss'"):
        monitor.trend(rec, target=1.0, key="loss")
    for step, fd in ((100, 90.0), (200, 80.0), (300, 70.0)):  # the in-the-wild set's curves trend alike
        monitor.append_record(rec, step, {"top1": 0.0, "id_cos": 0.8, "copy_target_id_cos": 0.8, "fd": 46.0,
                                          "wild_fd": fd})
    assert monitor.trend(rec, target=60.0, key="wild_fd")["steps_to_target"] == 100


@pytest.mark.parametrize("native", [True, False])
def test_bf16_training_warns_where_the_cpu_would_emulate_it(tmp_path: Path, monkeypatch, capsys, native,
                                                            step_run) -> None:
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    net = _Counter()
    run = step_run({"net": net}, {"opt": torch.optim.SGD(net.parameters(), lr=0.1)}, lambda i: {"loss": 0.0})
    Trainer(run, LoopConfig(1, precision="bf16"), Dist(0, 1, torch.device("cpu")), tmp_path).train()
    assert ("emulated" in capsys.readouterr().out) is not native


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_takes_bf16_only_where_the_cpu_has_it(tmp_path: Path, monkeypatch, capsys, native,
                                                             step_run) -> None:
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    net = _Counter()
    seen: list[bool] = []
    run = step_run({"net": net}, {"opt": torch.optim.SGD(net.parameters(), lr=0.1)},
                   lambda i: seen.append(torch.is_autocast_enabled("cpu")) or {"loss": 0.0})
    Trainer(run, LoopConfig(1, precision="auto"), Dist(0, 1, torch.device("cpu")), tmp_path).train()
    assert seen == [native]
    out = capsys.readouterr().out
    assert f"precision auto: {'bf16' if native else 'fp32'} steps" in out and "emulated" not in out
