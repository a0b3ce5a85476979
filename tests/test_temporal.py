"""Temporal consistency on video protocols: consecutive target frames form clips, scored by the generic loop; an
unchanged target reads 0 excess, per-frame noise raises every figure, a clip is cut to its longest run of scored
frames, and protocols without video refuse the option."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fsbench import registry, results
from fsbench.cli import main
from fsbench.faces.crops import CropStore
from fsbench.metrics import temporal
from fsbench.protocols.video import MiniVideo
from fsbench.scoring import score, scored_clips

TEMPORAL = ("id_jitter", "pose_jitter", "flicker")


@pytest.fixture(scope="module")
def clip():
    """The first clip of mini-video with 16 consecutive target frames: its pairs and their crops."""
    data = MiniVideo(frames="consecutive:16").build(None, 0)
    ids = set(data.clips[0])
    pairs = [p for p in data.pairs if p.id in ids]
    crops = CropStore("ffhq-256", 256)
    crops.prepare({i.id: i for p in pairs for i in (p.source, p.target)}.values(), progress=False)
    assert not crops.failures
    return pairs, crops, data.clips[0]


@pytest.fixture(scope="module")
def backends():
    return {"identity": registry.metrics.get("dlib")(), "pose": registry.metrics.get("hopenet-shufflenet")()}


def _scores(clip, backends, swaps):
    pairs, crops, ids = clip
    per_sample, per_clip, set_level = score(TEMPORAL, backends, pairs, swaps, crops, [], [ids], "ffhq-256")
    assert per_sample == [{} for _ in pairs] and set_level == {}
    assert len(per_clip) == 1 and per_clip[0]["frames"] == len(pairs)
    assert (per_clip[0]["first_target"], per_clip[0]["last_target"]) == (pairs[0].target.id, pairs[-1].target.id)
    return per_clip[0]["values"]


def test_the_option_gives_frames_to_the_protocol():
    assert "frames" in MiniVideo(frames="consecutive:16").inputs
    assert "frames" not in MiniVideo().inputs and "frames" not in MiniVideo.inputs
    assert set(TEMPORAL) <= set(MiniVideo(frames="consecutive:16").reported_metrics())


def test_the_option_takes_consecutive_frames_and_keeps_the_default_unchanged():
    default, consecutive = MiniVideo().build(None, 0), MiniVideo(frames="consecutive:16").build(None, 0)
    assert default.clips == [] and "target_frames" not in default.variant
    assert MiniVideo().metrics == MiniVideo.metrics and MiniVideo().variant_tag == ""
    assert [g.id for g in consecutive.gallery] == [g.id for g in default.gallery]  # same gallery and source frames
    assert {p.source.id for p in consecutive.pairs} == {p.source.id for p in default.pairs}
    by_id = {p.id: p for p in consecutive.pairs}
    assert len(consecutive.clips) * 16 == len(consecutive.pairs)
    for ids in consecutive.clips:
        frames = [by_id[pid].target.frame for pid in ids]
        assert frames == list(range(frames[0], frames[0] + 16))
        assert len({by_id[pid].source.id for pid in ids}) == 1
    assert "16 consecutive" in consecutive.variant["target_frames"]


def test_a_clip_is_its_longest_run_of_scored_frames(clip):
    pairs, _, ids = clip
    scored = pairs[:3] + pairs[4:9] + pairs[10:]  # frames 3 and 9 failed: runs of 3, 5 and 6 frames
    assert scored_clips([ids], scored[::-1]) == [[len(scored) - 1 - k for k in range(8, 14)]]
    assert scored_clips([ids, ("not-scored",)], pairs[:1]) == [[0]]


def test_an_unchanged_target_reads_zero_excess(clip, backends):
    pairs, crops, _ = clip
    values = _scores(clip, backends, [crops.method_crop(p.target) for p in pairs])
    assert set(values) == set(TEMPORAL)
    for name in TEMPORAL:
        assert values[name] == pytest.approx(0.0, abs=1e-6), name


def test_per_frame_noise_raises_every_figure(clip, backends):
    pairs, crops, _ = clip
    targets = [crops.method_crop(p.target).astype(np.float32) for p in pairs]
    figures = []
    for level in (3.0, 10.0, 30.0):  # standard deviation of Gaussian noise, 8-bit levels, drawn anew per frame
        rng = np.random.default_rng(0)
        noisy = [np.clip(t + rng.normal(0, level, t.shape), 0, 255).round().astype(np.uint8) for t in targets]
        figures.append(_scores(clip, backends, noisy))
    for name in TEMPORAL:
        series = [f[name] for f in figures]
        assert 0 < series[0] < series[1] < series[2], (name, series)


def test_feature_noise_raises_the_jitters():
    rng = np.random.default_rng(1)
    steps = np.cumsum(rng.normal(0, 1, (16, 3)), axis=0)  # a head that moves
    embeddings = rng.normal(0, 1, (16, 128)) * 0.1 + rng.normal(0, 1, 128)
    for fn, target in ((temporal.pose_jitter, steps), (temporal.identity_jitter, embeddings)):
        assert fn(target, target) == 0.0
        series = [fn(target + rng.normal(0, level, target.shape), target) for level in (0.05, 0.2, 0.8)]
        assert 0 < series[0] < series[1] < series[2], (fn.__name__, series)


def test_a_sequence_needs_two_frames_and_matching_shapes():
    with pytest.raises(ValueError, match="at least 2 frames"):
        temporal.pose_jitter(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="face mask"):
        temporal.flicker(np.zeros((2, 4, 4, 3)), np.zeros((2, 4, 4, 3)), np.zeros((4, 4)))


def test_copy_target_run_reports_the_temporal_figures(tmp_path, capsys):
    code = main(["run", "--method", "copy-target", "--protocol", "mini-video", "--protocol-option",
                 "frames=consecutive:16", "--limit", "16", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "copy-target__mini-video-v1-consecutive16__seed0.json").read_text())
    assert result["protocol"]["variant"]["frames"] == "consecutive:16" and result["schema"] == results.SCHEMA_VERSION
    assert [c["frames"] for c in result["clips"]] == [16]
    for key in ("id_jitter", "id_jitter@arcface-mbf", "pose_jitter", "pose_jitter@mediapipe-pose", "flicker"):
        agg = result["aggregates"][key]
        assert agg["per"] == "clip" and agg["n"] == 1 and agg["mean"] == pytest.approx(0.0, abs=1e-6), key
        assert key in out and not any(key in s["values"] for s in result["samples"])
    assert "n=1 clips" in out
    paired = results.compare(result, result)["pose_jitter"]  # compared clip by clip
    assert paired["paired"] and paired["n"] == 1 and paired["diff"] == 0.0
    schema1 = {**{k: v for k, v in result.items() if k != "clips"}, "schema": 1, "sequences": result["clips"]}
    paired = results.compare(schema1, result)["flicker"]  # a schema-1 file's temporal figures are its sequences
    assert paired["paired"] and paired["n"] == 1 and paired["diff"] == 0.0


@pytest.mark.parametrize("protocol, option, message", [
    ("mini-stills", "frames=consecutive:16", "frames is an option of ffpp, mini-video"),
    ("mini-video", "frames=consecutive:1", "consecutive:N with N >= 2"),
    ("mini-video", "frames=often", "expected a number of evenly spaced target frames"),
])
def test_the_option_is_refused_in_one_line(protocol, option, message, tmp_path, capsys):
    code = main(["run", "--method", "copy-target", "--protocol", protocol, "--protocol-option", option,
                 "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
