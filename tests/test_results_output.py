"""What a results file and its table say: the backend and unit of each figure, set-level figures marked as such,
the versions of the packages that produce the figures; and no empty progress bars."""
from __future__ import annotations

import platform

from fsbench import results
from fsbench.metrics.definitions import METRICS
from fsbench.faces.crops import CropStore

BACKENDS = {"identity": {"name": "dlib", "label": "ID-dlib"}, "pose": {"name": "mediapipe-pose", "label": "pose-MP"},
            "distribution": {"name": "mobilenet-v2", "label": "FD-MobileNetV2"}}


def _result() -> dict:
    per_sample = [{"id_cosine": 0.5, "pose_error": 2.0}, {"id_cosine": 0.7, "pose_error": None}]
    aggregates = results.aggregates(["id_cosine", "pose_error", "fd", "fd_id", "id_top5_frame"], per_sample,
                                    {"fd": 12.5, "fd_id": 0.4}, 2, BACKENDS, gallery_identities=3, seed=0)
    return {"method": {"name": "m"}, "protocol": {"name": "p", "version": 1}, "backends": BACKENDS,
            "counts": {"pairs": 2, "pairs_scored": 2, "failures": 0}, "aggregates": aggregates}


def test_aggregates_name_backend_and_unit_and_mark_set_level_figures():
    agg = _result()["aggregates"]
    assert agg["id_cosine"]["backend"] == "dlib" and agg["id_cosine"]["label"] == "ID-dlib"
    assert agg["fd_id"]["backend"] == "dlib" and agg["fd"]["backend"] == "mobilenet-v2"
    assert agg["pose_error"]["unit"] == "degrees" and agg["pose_error"]["n"] == 1 and agg["pose_error"]["missing"] == 1
    assert agg["id_cosine"]["ci95"] is not None and "set_level" not in agg["id_cosine"]
    assert agg["fd"]["set_level"] is True and agg["fd"]["ci95"] is None and agg["fd"]["mean"] == 12.5
    assert agg["id_top5_frame"]["mean"] is None and "gallery of 3 identities" in agg["id_top5_frame"]["absent"]


def test_table_gives_units_and_says_why_fd_has_no_interval():
    lines = {line.split()[0]: line for line in results.format_table(_result()).splitlines()[1:]}
    assert "2.0000 degrees" in lines["pose_error"] and "95% CI" not in lines["pose_error"].split("degrees")[0]
    assert "0.6000 cosine  95% CI" in lines["id_cosine"]
    for name in ("fd", "fd_id"):
        assert "set-level figure" in lines[name] and "no interval" in lines[name] and "CI" not in lines[name]
    assert "[FD-MobileNetV2]" in lines["fd"] and "[FD-id (ID-dlib)]" in lines["fd_id"]


def test_every_metric_states_a_unit_or_is_a_frechet_distance():
    assert all(spec.unit or not spec.per_sample for spec in METRICS.values())


def test_environment_records_the_packages_behind_the_figures():
    env = results.environment("cpu")
    for key in ("torch", "numpy", "fsbench", "mediapipe", "dlib", "onnxruntime", "opencv"):
        assert env[key], key
    assert "opencv-contrib-python" in env["opencv"]


def test_no_progress_bar_when_there_is_nothing_to_do(capsys):
    CropStore("arcface-112", 112).prepare([], progress=True)
    assert capsys.readouterr().err == ""


def test_cpu_name_names_the_widest_vector_unit(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert results.cpu_name(info) == "AMD EPYC (AVX-512 with bf16)"
    info.write_text("model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2\n")
    assert results.cpu_name(info) == "AMD EPYC 7B13 (AVX2)"
    assert results.cpu_name(tmp_path / "absent") == (platform.processor() or platform.machine())  # no cpuinfo
