"""Leaderboards from results files: rendering, --check, foreign and incomparable files."""
from __future__ import annotations

import json
import shutil

from fsbench import leaderboard


def _result(method: str, cosine: float, identity_backend: str = "dlib", version: int = 1) -> dict:
    agg = {"n": 10, "missing": 0, "mean": cosine, "var": 0.01, "ci95": [cosine - 0.02, cosine + 0.02]}
    return {
        "schema": 1, "created": "2026-11-21T00:00:00+00:00",
        "protocol": {"name": "mini-stills", "version": version, "description": "test protocol",
                     "variant": {"pairs": "all", "limit": None}},
        "method": {"name": method, "version": "1", "checkpoint_sha256": None},
        "backends": {"identity": {"name": identity_backend, "kind": "embedded", "label": f"ID-{identity_backend}",
                                  "weights_sha256": {"w": "abc"}}},
        "dataset": {"name": "mini", "manifest_sha256": "f" * 64},
        "counts": {"pairs": 10, "pairs_scored": 10, "failures": 0},
        "aggregates": {"id_cosine": agg},
        "samples": [], "environment": {},
    }


def _write(root, name, result):
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / name).write_text(json.dumps(result))


def test_build_renders_rows_and_check_detects_staleness(tmp_path):
    _write(tmp_path, "a.json", _result("copy-target", 0.80))
    _write(tmp_path, "b.json", _result("paste-source", 0.99))
    assert leaderboard.build(tmp_path) == []
    md = (tmp_path / "mini-stills.md").read_text()
    assert "| copy-target v1 |" in md and "0.990 [0.970, 1.010]" in md and "id_cosine ↑ (ID-dlib)" in md
    assert "[json](results/b.json)" in md
    assert (tmp_path / "mini-stills_metrics.png").is_file()
    assert leaderboard.build(tmp_path, check=True) == []
    _write(tmp_path, "c.json", _result("classic", 0.9))
    stale = leaderboard.build(tmp_path, check=True)
    assert stale and "mini-stills.md" in stale[0]


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
    assert any("other-backend.json" in p and "identity backend" in p for p in problems)
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
    (tmp_path / "results" / "bench").mkdir()
    committed = leaderboard.ROOT / "results" / "bench" / "faceshifter.json"  # measured with the shipped weights
    assert json.loads(committed.read_text())["card"]["checkpoint_sha256"] == current
    shutil.copy(committed, tmp_path / "results" / "bench")
    leaderboard.refresh(tmp_path, tmp_path / "runs", methods=["faceshifter"], progress=False)
    assert ran == ["faceshifter"]  # the outdated results file is measured again; the current bench is kept
