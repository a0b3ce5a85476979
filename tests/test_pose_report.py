"""The pose validation report: its arithmetic (agreement, mirror residual) and one run on real faces."""
from __future__ import annotations

import numpy as np
import pytest

from fsbench.cli import main
from fsbench.pose_report import agreement, available_pose_backends, mirror_residual


def test_agreement_per_angle_over_rows_both_measured() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 10, (200, 3))
    b = a + np.array([2.0, -3.0, 0.0]) + rng.normal(0, 1, (200, 3))
    b[:5] = np.nan  # a backend that could not read five faces
    got = agreement(a, b)
    assert got["n"] == 195
    for angle, offset in zip(("yaw", "pitch", "roll"), (2.0, 3.0, 0.8)):
        assert got[angle]["r"] > 0.99 and abs(got[angle]["mad"] - offset) < 0.5, (angle, got[angle])
    flat = agreement(a, np.zeros_like(a))  # a constant reading has no correlation
    assert flat["yaw"]["r"] is None and flat["yaw"]["mad"] == pytest.approx(np.abs(a[:, 0]).mean())


def test_mirror_residual_is_zero_for_a_mirror_symmetric_reader() -> None:
    angles = np.array([[30.0, -5.0, 10.0], [-12.0, 8.0, -3.0], [np.nan, np.nan, np.nan]])
    mirrored = angles * np.array([-1.0, 1.0, -1.0])
    assert mirror_residual(angles, mirrored) == {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    unflipped = mirror_residual(angles, angles)  # a reader blind to mirroring: twice |yaw| and |roll|
    assert unflipped["yaw"] == pytest.approx(42.0) and unflipped["pitch"] == 0.0


def test_pose_report_command_on_real_faces(capsys, tmp_path) -> None:
    assert {"hopenet-shufflenet", "mediapipe-pose"} <= set(available_pose_backends())
    code = main(["pose-report", "--backends", "hopenet-shufflenet", "mediapipe-pose", "--sets", "mini-stills",
                 "--json", str(tmp_path / "report.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "hopenet-shufflenet vs mediapipe-pose" in out
    import json

    report = json.loads((tmp_path / "report.json").read_text())["sets"]["mini-stills"]
    assert report["faces"] >= 16 and report["read"]["hopenet-shufflenet"] == report["faces"]
    for name in ("hopenet-shufflenet", "mediapipe-pose"):
        assert report["mirror"][name]["pitch"] < 3.0, report["mirror"]
    pair = report["agreement"]["hopenet-shufflenet vs mediapipe-pose"]
    assert pair["yaw"]["r"] > 0.5, pair  # two estimators of the same heads agree in the sign of yaw
