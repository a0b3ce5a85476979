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


def test_table_lists_the_first_failures_with_their_reasons():
    result = _result()
    result["failures"] = [{"pair": f"p{i}", "reason": f"no face detected in t{i}.jpg"} for i in range(4)]
    result["item_failures"] = [{"item": "t9.jpg", "reason": "cannot read image t9.jpg: file is empty"}]
    lines = results.format_table(result).splitlines()
    assert lines[1:5] == ["    p0: no face detected in t0.jpg", "    p1: no face detected in t1.jpg",
                          "    p2: no face detected in t2.jpg",
                          '    ... 2 more in the results file ("failures", "item_failures")']
    assert "more in the results file" not in results.format_table(_result())


def test_compare_says_a_set_level_row_has_no_interval(tmp_path, capsys):
    import json

    from fsbench.cli import main

    backends = {f: {**b, "weights_sha256": None} for f, b in BACKENDS.items()}
    result = {**_result(), "schema": results.SCHEMA_VERSION, "dataset": {"manifest_sha256": "x"}, "environment": {},
              "backends": backends,
              "samples": [{"pair": "a", "values": {"id_cosine": 0.5}}, {"pair": "b", "values": {"id_cosine": 0.7}}]}
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(result))
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert rows["fd"].endswith("set-level figure, no interval") and "n=0" not in rows["fd"]
    assert rows["id_cosine"].endswith("paired n=2")


def test_a_withheld_top_k_says_why_in_plain_words():
    from fsbench.metrics.definitions import small_gallery_reason

    three = small_gallery_reason("id_top5_identity", 3)
    assert "the source is always among the top 5" in three and "at least 100%" not in three
    assert "a random guess puts the source among the top 5 in 56% of pairs" in small_gallery_reason("id_top5_frame", 9)


def test_progress_bars_and_the_resume_note_name_the_stage(capsys):
    from fsbench import progress

    with progress.stage("portraits (1/3)"):
        with progress.bar("swap m", total=2, disable=False) as bar:
            bar.update(2)
        assert progress.resume_note(312, 320) == "portraits (1/3): 312 of 320 swaps from the cache, 8 to swap"
    assert "portraits (1/3): swap m" in capsys.readouterr().err
    assert progress.resume_note(0, 320) is None and progress.resume_note(5, 5) == "5 of 5 swaps from the cache"


def test_list_datasets_describes_each(capsys):
    from fsbench import registry
    from fsbench.cli import main

    assert main(["list", "datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(registry.datasets.names())
    assert all(len(line.split(maxsplit=1)) == 2 and "plugin" not in line for line in lines)
