"""User studies: design, storage, analysis against hand counts, and the Streamlit app through AppTest.

The results folder is fabricated (solid-colour PNGs, results JSON in the runner's shape), and source/target crops
come from a stub, so nothing here detects a face.
"""
from __future__ import annotations

import argparse
import csv
import io
import sqlite3
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from fsbench import results
from fsbench.study import analysis, design
from fsbench.study.cli import add_study_parser
from fsbench.study.design import Study, StudyError
from fsbench.study.storage import Storage

ROOT = Path(__file__).resolve().parent.parent
METHODS = ["alpha", "beta", "gamma"]
SWAP_SIZE = {"alpha": 32, "beta": 48, "gamma": 24}  # different sizes: the study shows them all at one size


def shade(method: str) -> int:
    return 60 * (METHODS.index(method) + 1)


def fake_results(root: Path, pairs: list[str], methods: list[str] = METHODS, protocol: str = "mini-video",
                 skip: dict[str, set[str]] | None = None) -> Path:
    """A results folder as `fsbench run` leaves it: one JSON per method, swaps cached as PNG."""
    skip = skip or {}
    for method in methods:
        card = {"name": method, "version": "1", "input_size": SWAP_SIZE[method], "template": "ffhq-256",
                "checkpoint_sha256": None}
        done = [p for p in pairs if p not in skip.get(method, set())]
        result = {"schema": 1, "protocol": {"name": protocol, "version": 1}, "method": card, "backends": {},
                  "dataset": {}, "aggregates": {}, "environment": {}, "seed": 0,
                  "samples": [{"pair": p, "source": f"{p}-src", "target": f"{p}-tgt", "values": {}} for p in done]}
        results.write(root / f"{method}__{protocol}-v1__seed0.json", result)
        cache = root / "cache" / f"{method}-v1-noweights" / f"{protocol}-v1"
        cache.mkdir(parents=True, exist_ok=True)
        for p in done:
            size = SWAP_SIZE[method]
            cv2.imwrite(str(cache / f"{p}.png"), np.full((size, size, 3), shade(method), np.uint8))
    return root


def stub_crops(samples: list[dict]) -> dict[str, np.ndarray]:
    out = {}
    for s in samples:
        out[s["source"]] = np.full((20, 20, 3), 10, np.uint8)
        out[s["target"]] = np.full((20, 20, 3), 250, np.uint8)
    return out


def make_study(tmp_path: Path, design_name: str = "pick", n_pairs: int = 3, per_rater: int = 3,
               methods: list[str] = METHODS) -> Study:
    pairs = [f"p{i}" for i in range(1, n_pairs + 1)]
    res = fake_results(tmp_path / "runs", pairs, methods)
    study = design.create(res, tmp_path / "study", "mini-video", methods, design_name, per_rater,
                          crops=stub_crops, image_size=16)
    Storage(study).close()  # as `fsbench study create` does
    return study


# ---------------------------------------------------------------- design


def test_units_are_the_pairs_every_method_swapped_and_images_hide_the_method(tmp_path: Path) -> None:
    res = fake_results(tmp_path / "runs", ["p1", "p2", "p3", "p4"], skip={"beta": {"p3"}})
    study = design.create(res, tmp_path / "study", "mini-video", METHODS, "pick", 2, crops=stub_crops,
                          image_size=16)
    assert sorted(study.units) == ["p1", "p2", "p4"]
    reloaded = Study.load(tmp_path / "study")
    assert reloaded.methods == METHODS and reloaded.per_rater == 2 and reloaded.design == "pick"
    for unit in reloaded.units.values():
        assert not any(m in path for m in METHODS for path in unit.images.values())
        for k, method in enumerate(METHODS):
            image = cv2.imread(str(reloaded.image(unit.id, f"result-{k}")))
            assert image.shape == (16, 16, 3)
            assert int(image[8, 8, 0]) == shade(method)
        assert int(cv2.imread(str(reloaded.image(unit.id, "source")))[0, 0, 0]) == 10
        assert int(cv2.imread(str(reloaded.image(unit.id, "target")))[0, 0, 0]) == 250
    assert not any(m in reloaded.id for m in METHODS)


def test_create_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    res = fake_results(tmp_path / "runs", ["p1", "p2"])
    with pytest.raises(StudyError, match="no results of delta"):
        design.create(res, tmp_path / "s1", "mini-video", ["alpha", "delta"], "pick", 1, crops=stub_crops)
    with pytest.raises(StudyError, match="between 1 and the 2 pairs"):
        design.create(res, tmp_path / "s2", "mini-video", ["alpha", "beta"], "pick", 3, crops=stub_crops)
    with pytest.raises(StudyError, match="unknown design"):
        design.create(res, tmp_path / "s3", "mini-video", ["alpha", "beta"], "rank", 1, crops=stub_crops)
    design.create(res, tmp_path / "s4", "mini-video", ["alpha", "beta"], "pick", 1, crops=stub_crops)
    with pytest.raises(StudyError, match="exists"):
        design.create(res, tmp_path / "s4", "mini-video", ["alpha", "beta"], "pick", 1, crops=stub_crops)


def test_create_refuses_a_missing_cached_swap(tmp_path: Path) -> None:
    res = fake_results(tmp_path / "runs", ["p1", "p2"])
    (res / "cache" / "gamma-v1-noweights" / "mini-video-v1" / "p2.png").unlink()
    with pytest.raises(StudyError, match="p2.png"):
        design.create(res, tmp_path / "s", "mini-video", METHODS, "pick", 1, crops=stub_crops)


def test_assignment_has_no_duplicates_and_follows_from_the_seed(tmp_path: Path) -> None:
    study = make_study(tmp_path, n_pairs=10, per_rater=6)
    plans = {code: study.assignment(code) for code in [f"rater{i}" for i in range(20)]}
    for plan in plans.values():
        units = [u for u, _ in plan.units]
        assert len(units) == 6 and len(set(units)) == 6 and set(units) <= set(study.units)
        assert all(sorted(order) == [0, 1, 2] for _, order in plan.units)
    assert study.assignment("Rater0 ") == plans["rater0"]  # same rater however typed
    assert len({tuple(u for u, _ in p.units) for p in plans.values()}) > 1  # raters differ
    assert design.assign(sorted(study.units), 3, 6, plans["rater3"].seed) == plans["rater3"]


# ---------------------------------------------------------------- storage


def test_answers_are_stored_when_given_and_a_rater_resumes(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    with Storage(study) as db:
        assert db.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        ann = db.join("Ann")
        first = db.current(ann)
        db.answer(ann, first.unit, "identity", "beta")
        with pytest.raises(StudyError, match="unanswered"):
            db.finish(ann, first.unit)
    with Storage(study) as other:  # another connection (another rater's app) sees it at once
        again = other.join("ann")
        assert again == ann
        assert other.answers(again, first.unit) == {("identity", "beta"): 1.0}
        other.answer(again, first.unit, "identity", "gamma")  # a changed mind replaces the pick
        other.answer(again, first.unit, "attributes", "alpha")
        other.answer(again, first.unit, "realism", "alpha")
        assert other.answers(again, first.unit)[("identity", "gamma")] == 1.0
        assert len(other.answers(again, first.unit)) == 3
        other.finish(again, first.unit)
        assert other.progress(again) == (1, 3)
        assert other.current(again).unit == other.slots(again)[1].unit
        row = other.db.execute("SELECT position FROM answers WHERE question = 'identity'").fetchone()
        assert row[0] == first.order.index(METHODS.index("gamma"))


def test_storage_rejects_bad_answers(tmp_path: Path) -> None:
    study = make_study(tmp_path, "score", n_pairs=4, per_rater=2)
    with Storage(study) as db:
        ann = db.join("ann")
        unit = db.current(ann).unit
        for value in (6, -1, 2.5):
            with pytest.raises(StudyError, match="integer from 0 to 5"):
                db.answer(ann, unit, "realism", "alpha", value)
        with pytest.raises(StudyError, match="unknown question"):
            db.answer(ann, unit, "beauty", "alpha", 3)
        other_unit = next(u for u in study.units if u not in {s.unit for s in db.slots(ann)})
        with pytest.raises(StudyError, match="not assigned"):
            db.answer(ann, other_unit, "realism", "alpha", 3)
        with pytest.raises(StudyError, match="name or code"):
            db.join("   ")


def test_several_raters_write_at_once(tmp_path: Path) -> None:
    study = make_study(tmp_path, "score", n_pairs=6, per_rater=6)
    errors: list[BaseException] = []

    def rate(code: str) -> None:
        try:
            with Storage(study) as db:
                rater = db.join(code)
                for slot in db.slots(rater):
                    for question in study.questions:
                        for method in study.methods:
                            db.answer(rater, slot.unit, question, method, 3)
                    db.finish(rater, slot.unit)
        except BaseException as err:  # reported below; a thread's exception is otherwise lost
            errors.append(err)

    threads = [threading.Thread(target=rate, args=(f"rater{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    with sqlite3.connect(study.database) as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 4 * 6 * 3 * 3
        assert db.execute("SELECT COUNT(*) FROM assignments WHERE done IS NOT NULL").fetchone()[0] == 4 * 6


# ---------------------------------------------------------------- analysis

# pick: every rater rates all three units; (rater, unit) -> identity, attributes, realism (None = not answered)
PICKS = {
    ("ann", "p1"): ("alpha", "beta", "gamma"),
    ("ann", "p2"): ("alpha", "beta", "gamma"),
    ("ann", "p3"): ("beta", "beta", "alpha"),
    ("bob", "p1"): ("alpha", "beta", "gamma"),
    ("bob", "p2"): ("gamma", "beta", "alpha"),
    ("bob", "p3"): ("beta", "beta", None),
}


def test_pick_report_matches_a_hand_count(tmp_path: Path) -> None:
    study = make_study(tmp_path, "pick")
    with Storage(study) as db:
        for (code, unit), picks in PICKS.items():
            rater = db.join(code)
            for question, method in zip(["identity", "attributes", "realism"], picks):
                if method:
                    db.answer(rater, unit, question, method)
        rows = db.all_answers()
    rep = analysis.report(study, rows, resamples=500)
    q = rep["questions"]
    # identity: alpha 3 of 6, beta 2 of 6, gamma 1 of 6
    assert [q["identity"]["methods"][m]["value"] for m in METHODS] == pytest.approx([50.0, 100 / 3, 100 / 6])
    assert [q["identity"]["methods"][m]["n"] for m in METHODS] == [3, 2, 1]
    # attributes: beta every time, so no interval width and no agreement beyond "no variation"
    assert [q["attributes"]["methods"][m]["value"] for m in METHODS] == [0.0, 100.0, 0.0]
    assert q["attributes"]["methods"]["beta"]["ci95"] == [100.0, 100.0]
    assert q["attributes"]["agreement"]["krippendorff_alpha"] is None
    # realism: bob left p3 unanswered: gamma 3 of 5, alpha 2 of 5
    assert q["realism"]["answers"] == 5
    assert [q["realism"]["methods"][m]["value"] for m in METHODS] == pytest.approx([40.0, 0.0, 60.0])
    # identity agreement by hand: units [a,a] [a,g] [b,b]; D_o sum = 2, all six values a3 b2 g1 -> 36-14 = 22;
    # alpha = 1 - (6-1) * 2 / 22
    assert q["identity"]["agreement"]["krippendorff_alpha"] == pytest.approx(1 - 10 / 22)
    assert q["identity"]["agreement"]["units_rated_by_several"] == 3
    for m in METHODS:
        low, high = q["identity"]["methods"][m]["ci95"]
        assert low <= q["identity"]["methods"][m]["value"] <= high
    assert rep["raters"] == 2 and rep["answers"] == 17

    answers = list(csv.DictReader(io.StringIO(analysis.answers_csv(study, rows))))
    assert len(answers) == 17 and {a["rater"] for a in answers} == {"ann", "bob"}
    assert answers[0]["source"] == f"{answers[0]['unit']}-src"
    summary = list(csv.DictReader(io.StringIO(analysis.summary_csv(rep))))
    assert len(summary) == 9
    row = next(r for r in summary if r["question"] == "identity" and r["method"] == "alpha")
    assert float(row["value"]) == pytest.approx(50.0)
    assert "alpha" in analysis.format_report(rep)


def test_score_report_matches_a_hand_count(tmp_path: Path) -> None:
    study = make_study(tmp_path, "score", n_pairs=2, per_rater=2, methods=["alpha", "beta"])
    realism = {("ann", "p1"): (4, 2), ("ann", "p2"): (5, 1), ("bob", "p1"): (3, 2), ("bob", "p2"): (4, 0)}
    with Storage(study) as db:
        for (code, unit), (a, b) in realism.items():
            rater = db.join(code)
            db.answer(rater, unit, "realism", "alpha", a)
            db.answer(rater, unit, "realism", "beta", b)
        rows = db.all_answers()
    rep = analysis.report(study, rows, resamples=500)
    stats = rep["questions"]["realism"]
    assert stats["methods"]["alpha"]["value"] == pytest.approx((4 + 5 + 3 + 4) / 4)
    assert stats["methods"]["beta"]["value"] == pytest.approx((2 + 1 + 2 + 0) / 4)
    assert stats["methods"]["alpha"]["n"] == 4
    # items [4,3] [2,2] [5,4] [1,0]: within-item sum 2+0+2+2 = 6; all values n=8, sum 21, squares 75:
    # D = 2*8*75 - 2*21^2 = 318; alpha = 1 - 7*6/318
    assert stats["agreement"]["krippendorff_alpha"] == pytest.approx(1 - 42 / 318)
    assert rep["questions"]["identity"] is None


def test_krippendorff_alpha_reproduces_krippendorffs_worked_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units, missing values;
    # published alpha: nominal 0.743, interval 0.849
    observers = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
                 [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
                 [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
                 [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]
    units = [[v for v in column if v is not None] for column in zip(*observers)]
    assert analysis.krippendorff_alpha(units, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert analysis.krippendorff_alpha(units, "interval") == pytest.approx(0.849, abs=5e-4)
    assert analysis.krippendorff_alpha([[1], [2]], "nominal") is None


def test_two_way_bootstrap_is_wider_than_resampling_answers_when_raters_cluster() -> None:
    # 10 raters, 20 units each; half the raters always choose method 0, half always method 1
    raters = np.repeat(np.arange(10), 20)
    units = np.arange(200)
    chosen = (raters % 2).astype(int)
    values = np.eye(2)[chosen]
    draws = analysis.pigeonhole_bootstrap(raters, units, values, np.ones_like(values), 1000, seed=0)
    width = np.quantile(draws[:, 0], 0.975) - np.quantile(draws[:, 0], 0.025)
    rng = np.random.default_rng(0)
    naive = values[rng.integers(0, 200, (1000, 200)), 0].mean(1)
    naive_width = np.quantile(naive, 0.975) - np.quantile(naive, 0.025)
    assert width > 2 * naive_width
    again = analysis.pigeonhole_bootstrap(raters, units, values, np.ones_like(values), 1000, seed=0)
    assert np.array_equal(draws, again)


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fsbench")
    add_study_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_report_writes_the_csv_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    study = make_study(tmp_path, "pick")
    with Storage(study) as db:
        for code in ("ann", "bob"):
            rater = db.join(code)
            db.answer(rater, "p1", "realism", "beta")
    answers, summary = tmp_path / "answers.csv", tmp_path / "summary.csv"
    assert run_cli(["study", "report", str(study.root), "--answers-csv", str(answers), "--summary-csv",
                    str(summary), "--resamples", "200"]) == 0
    printed = capsys.readouterr().out
    assert "2 raters" in printed and "realism: 2 answers" in printed and "identity: no answers yet" in printed
    assert len(answers.read_text().splitlines()) == 1 + 2
    with summary.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], float(r["value"])) for r in rows] == [("alpha", 0.0), ("beta", 100.0), ("gamma", 0.0)]


def test_cli_create_names_what_is_missing(tmp_path: Path) -> None:
    fake_results(tmp_path / "runs", ["p1"], ["alpha"])
    with pytest.raises(StudyError, match="no results of beta"):
        run_cli(["study", "create", "--protocol", "mini-video", "--methods", "alpha,beta", "--results",
                 str(tmp_path / "runs"), "--out", str(tmp_path / "study")])


# ---------------------------------------------------------------- the app (Streamlit AppTest)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch):
    from streamlit.testing.v1 import AppTest

    def start(study: Study, token: str | None = None) -> AppTest:
        monkeypatch.setenv("FSBENCH_STUDY", str(study.root))
        if token is None:
            monkeypatch.delenv("FSBENCH_STUDY_TOKEN", raising=False)
        else:
            monkeypatch.setenv("FSBENCH_STUDY_TOKEN", token)
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()

    return start


def sign_in(at, code: str):
    at.text_input[0].input(code)
    next(b for b in at.button if b.label == "Start").click()
    return at.run()


def shown_text(at) -> str:
    """Everything a rater can read on the page."""
    parts = [e.value for kind in ("markdown", "caption", "title", "success", "text") for e in getattr(at, kind)]
    parts += [r.label for r in at.radio] + [str(o) for r in at.radio for o in r.options]
    parts += [b.label for b in at.button] + [p.proto.text for p in at.get("progress")]
    parts += [f"{img.caption} {img.url}" for element in at.image for img in element.proto.imgs]
    return "\n".join(parts)


def next_button(at):
    return next(b for b in at.button if b.label == "Next")


def test_app_pick_flow_stores_answers_and_resumes(tmp_path: Path, app) -> None:
    study = make_study(tmp_path, "pick")
    at = sign_in(app(study), "Ann")
    assert not at.exception
    assert "0 of 3 done" in shown_text(at)
    assert len(at.image) == 2 + len(METHODS)  # source, target, one result per method
    assert next_button(at).disabled
    questions = at.main.radio
    assert len(questions) == 3 and all(r.value is None for r in questions)
    questions[0].set_value(1)
    at.run()
    with Storage(study) as db:
        ann = db.join("ann")
        first = db.current(ann)
        assert db.answers(ann, first.unit) == {("identity", METHODS[first.order[1]]): 1.0}  # stored at once
    at.main.radio[1].set_value(0)
    at.main.radio[2].set_value(2)
    at.run()
    next_button(at).click()
    at.run()
    assert "1 of 3 done" in shown_text(at)
    at.main.radio[0].set_value(2)  # half-way through the second unit ...
    at.run()
    text = shown_text(at)
    assert not any(m in text for m in METHODS), "a method name is shown to the rater"

    back = sign_in(app(study), "ann")  # ... the rater leaves and comes back in a new session
    assert "1 of 3 done" in shown_text(back)
    assert [r.value for r in back.main.radio] == [2, None, None]

    bob = sign_in(app(study), "Bob")  # a second rater sees nothing of Ann's
    assert "0 of 3 done" in shown_text(bob)
    assert all(r.value is None for r in bob.main.radio)


def test_app_score_flow(tmp_path: Path, app) -> None:
    study = make_study(tmp_path, "score", n_pairs=2, per_rater=1, methods=["alpha", "beta"])
    at = sign_in(app(study), "carol")
    radios = at.main.radio
    assert len(radios) == 2 * 3 and [o for o in radios[0].options] == ["0", "1", "2", "3", "4", "5"]
    for i, radio in enumerate(radios):
        radio.set_value(i % 6)
    at.run()
    next_button(at).click()
    at.run()
    assert any("All done" in s.value for s in at.success)
    with Storage(study) as db:
        rows = db.all_answers()
    assert sorted(r["value"] for r in rows) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(r["unit_done"] for r in rows)
    assert not any(m in shown_text(at) for m in ["alpha", "beta"])


def test_organiser_page_needs_the_token(tmp_path: Path, app) -> None:
    study = make_study(tmp_path, "pick")
    with Storage(study) as db:
        rater = db.join("ann")
        db.answer(rater, db.current(rater).unit, "identity", "gamma")

    off = app(study)
    off.sidebar.radio[0].set_value("Organiser")
    off.run()
    assert any("FSBENCH_STUDY_TOKEN" in i.value for i in off.info) and "gamma" not in shown_text(off)

    at = app(study, token="s3cret")
    at.sidebar.radio[0].set_value("Organiser")
    at.run()
    at.text_input[0].input("guess")
    at.run()
    assert at.error and "gamma" not in shown_text(at)
    at.text_input[0].input("s3cret")
    at.run()
    assert not at.exception
    report = shown_text(at)
    assert "gamma" in report and "100.0" in report
    assert len(at.get("download_button")) == 2
