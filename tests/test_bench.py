"""`fsbench bench`: the report's contents for a shipped method and for a training configuration with random
weights (`--config`). Durations are measured, never asserted."""
from __future__ import annotations

import json

import torch

from fsbench.cli import main
from methods.faceshifter.configs import get_config
from methods.faceshifter.net import parameter_count
from methods.mobilefsgan.configs import load_config


def _bench(tmp_path, *args: str) -> dict:
    out, threads = tmp_path / "bench.json", torch.get_num_threads()
    try:
        assert main(["bench", *args, "--batch-sizes", "1", "2", "--runs", "2", "--warmup", "0", "--threads", "1",
                     "--json", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)  # --threads is process-wide
    return json.loads(out.read_text())


def test_bench_report_of_a_method_without_networks(tmp_path) -> None:
    report = _bench(tmp_path, "--method", "paste-source")
    assert report["method"] == "paste-source" and report["parameters"] == 0 and report["modules"] == {}
    assert set(report["batches"]) == {"1", "2"}
    assert report["batches"]["2"]["median_ms_per_image"] == report["batches"]["2"]["median_ms_per_batch"] / 2
    assert all(b["runs"] == 2 and b["warmup"] == 0 for b in report["batches"].values())
    assert report["gflops_per_image"] == 0 and report["achieved_gflops_per_s"] is None
    assert report["torch_threads"] == 1 and report["matmul_gflops_per_s"] > 0
    assert report["matmul_bf16_gflops_per_s"] > 0 and report["precision"] == "none"


def test_bench_config_runs_random_weights_at_the_configuration_size(tmp_path, capsys) -> None:
    native = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    report = _bench(tmp_path, "--method", "faceshifter", "--config", "tiny")
    assert report["precision"] == native  # FaceShifter's inference copy runs in bf16 where native, as MobileFSGAN
    printed = capsys.readouterr().out
    assert f"GFLOP/s in {native} (device matmul: fp32 {report['matmul_gflops_per_s']:.1f}, bf16 " in printed
    arch = get_config("tiny").arch
    assert report["method"] == "faceshifter[tiny, random weights]"
    assert report["input_size"] == arch.size and report["parameters"] == parameter_count(arch)
    assert report["gflops_per_image"] > 0

    report = _bench(tmp_path, "--method", "mobilefsgan", "--config", "smoke")
    assert report["method"] == "mobilefsgan[smoke, random weights]"
    assert report["input_size"] == load_config("smoke").size and report["gflops_per_image"] > 0
    # MobileFSGAN runs its folded generator in bf16 where oneDNN has native bf16 kernels: the report says so
    assert report["precision"] == native
    assert f"GFLOP/s in {report['precision']} (device matmul" in capsys.readouterr().out


def test_bench_config_of_a_method_without_configurations_is_a_clear_error(capsys) -> None:
    assert main(["bench", "--method", "copy-target", "--config", "paper"]) == 2
    assert "'copy-target' has no training configurations" in capsys.readouterr().err


def test_bench_metrics_reports_every_stage_with_its_flop_bound(tmp_path) -> None:
    from fsbench.bench import bench_metrics, format_metrics_report
    from fsbench.scoring import DEFAULT_BACKENDS, chosen_backends

    report = bench_metrics(faces=3, rounds=3)
    assert report["faces"] == 3 and report["rounds"] == 3
    stack = chosen_backends(list(DEFAULT_BACKENDS))  # the primary and further backends of every family
    assert list(report["stages"]) == ["detect+align", *(f"{s.split('@')[0]}:{n}" for s, n in stack.items())]
    assert {"identity:arcface-mbf", "pose:whenet", "pose:mediapipe-pose"} <= set(report["stages"])
    for name, stage in report["stages"].items():  # every stage that runs a network, torch's or not, has its bound
        if name == "expression:mediapipe-blendshapes":  # reads the pose stage's landmarker call
            assert stage["gflops_per_face"] == 0 and "percent_of_bound" not in stage
        else:
            assert stage["gflops_per_face"] > 0, name
            assert stage["percent_of_bound"] == 100 * stage["faces_per_s"] / stage["bound_faces_per_s"]
        assert len(stage["round_seconds"]) == 3 and stage["seconds"] == sorted(stage["round_seconds"])[1], name
    assert report["stages"]["detect+align"]["network"] == "YuNet"
    assert 0 < report["stack_faces_per_s"] < min(e["faces_per_s"] for e in report["stages"].values())
    text = format_metrics_report(report)
    assert "% of it)" in text and "whole stack" in text and "load average" in text


def test_bench_metrics_takes_another_primary_backend() -> None:
    """--backend pose=hopenet-shufflenet benches the ShuffleNetV2 in WHENet's place, with its graph's FLOPs."""
    from fsbench.bench import bench_metrics

    stages = bench_metrics(faces=2, backends={"pose": "hopenet-shufflenet"})["stages"]
    assert "pose:hopenet-shufflenet" in stages and "pose:whenet" not in stages
    assert stages["pose:hopenet-shufflenet"]["network"] == "onnxruntime"
    shufflenet = stages["pose:hopenet-shufflenet"]["gflops_per_face"]
    assert 0.1 < shufflenet < stages["identity:arcface-mbf"]["gflops_per_face"]
