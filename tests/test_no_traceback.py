"""No user input to any `fsbench` command ends in a traceback: wrong paths, files, numbers and names are one line
on stderr naming the problem, with a non-zero exit code. Every case fails before a protocol runs.

A new command adds its wrong inputs to CASES.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from fsbench import assets
from fsbench.cli import main
from methods.faceshifter.method import WEIGHTS as FACESHIFTER_WEIGHTS

NO_GPU = not torch.cuda.is_available()
MOBILEFSGAN_WEIGHTS = Path(__file__).parents[1] / "methods" / "mobilefsgan" / "weights" / "mobilefsgan-cpu.safetensors"


def _invoke(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)  # usage errors too come back as a return code, not SystemExit
    return code, capsys.readouterr().err


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Wrong inputs on disk, and a reference-file index of the test's own (the embedded cache stays shared)."""
    monkeypatch.setattr(assets, "_reference_index", lambda: tmp_path / "reference.json")
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    lfw = tmp_path / "not-lfw"
    lfw.mkdir()
    (lfw / "pairs.txt").write_text("1 1\nA 1 2\nA 1 B 1\n")
    (lfw / "A").mkdir()
    (lfw / "A" / "A_0001.jpg").write_bytes(b"")
    faces = tmp_path / "not-faces"
    for name in ("cache", "logs", "tmp"):
        (faces / name).mkdir(parents=True)
    (faces / "cache" / "x.png").write_bytes(b"")
    ffpp = tmp_path / "not-ffpp"
    (ffpp / "original_sequences/youtube/c23/videos").mkdir(parents=True)
    (ffpp / "manipulated_sequences/Deepfakes/c23/videos").mkdir(parents=True)
    for pair in ("000_001", "001_000", "002_003"):
        (ffpp / "manipulated_sequences/Deepfakes/c23/videos" / f"{pair}.mp4").write_bytes(b"")
    (ffpp / "original_sequences/youtube/c23/videos/000.mp4").write_bytes(b"")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"not": "a result"}))
    return {"text": str(text), "photo": str(photo), "mobilefsgan_weights": str(MOBILEFSGAN_WEIGHTS),
            "lfw": str(lfw), "faces": str(faces), "ffpp": str(ffpp), "json": str(results),
            "missing": str(tmp_path / "missing"), "out": str(tmp_path / "out"), "faceshifter": str(FACESHIFTER_WEIGHTS)}


# (argv with {placeholders} from the fixture, a fragment the one line must contain)
CASES = [
    # run
    ("run --method no-such-method", "no-such-method"),
    ("run --method classic --device nonsense", "'nonsense' is not a torch device"),
    ("run --method classic --device cuda:99", "cuda:99"),
    ("run --method classic --limit -1", "--limit: must be 1 or more, got -1"),
    ("run --method classic --limit 0", "--limit: must be 1 or more"),
    ("run --method classic --limit ten", "--limit: expected an integer"),
    ("run --method classic --batch-size 0", "--batch-size: must be 1 or more"),
    ("run --method classic --seed -3", "--seed: must be 0 or more"),
    ("run --method classic --protocol no-such-protocol", "no-such-protocol"),
    ("run --method classic --protocol lfw", "--data-root"),
    ("run --method classic --protocol lfw --data-root {missing}", "not a directory"),
    ("run --method classic --protocol lfw --data-root {lfw}", "2 of the 3 images the view-2 pairs refer to"),
    ("run --method classic --protocol folder --data-root {faces}", "2 of its 3 subfolders hold no images"),
    ("run --method classic --protocol ffpp --data-root {ffpp}", "3 of the 4 c23 videos the swap pairs refer to"),
    ("run --method classic --protocol ffpp --data-root {ffpp} --protocol-option compression=c99", "c99"),
    ("run --method classic --protocol mini-stills --protocol-option frames=3", "does not take options"),
    ("run --method classic --backend identity", "--backend expects KEY=VALUE"),
    # silently wrong before: a misspelt family measured with the default, a data root ignored
    ("run --method classic --backend identiy=sface", "unknown metric family 'identiy' (did you mean identity?)"),
    ("run --method classic --backend colour=foo", "unknown metric family 'colour'"),
    ("run --method classic --backend identity=hopenet", "backend 'hopenet' measures pose, not identity"),
    ("run --method classic --backend identity=no-such-backend", "unknown metric backend 'no-such-backend'"),
    ("run --method classic --protocol mini-stills --data-root {faces}", "runs on embedded data and would ignore it"),
    ("run --method classic --protocol mini-video --protocol-option frame=3", "does not take options frame: it takes "
                                                                            "frames"),
    ("run --method classic --protocol mini-stills --out {text}/runs", "runs: cannot create the folder"),
    ("run --method faceshifter --weights {mobilefsgan_weights}", "not FaceShifter weights"),
    ("run --method classic --weights {text}", "method 'classic' takes no weights file"),
    ("run --method faceshifter --weights {missing}", "missing: no such weights file"),
    ("run --method faceshifter --weights {text}", "passwd: not a readable safetensors file"),
    ("run --method mobilefsgan --weights {text}", "passwd: not a readable safetensors file"),
    ("run --method inswapper", "`fsbench assets add inswapper /path/to/inswapper_128.onnx`, "
     "`fsbench assets add arcface-w600k-r50 /path/to/w600k_r50.onnx`"),
    ("run --method inswapper --weights {text}", "method 'inswapper' takes no weights file"),
    # bench
    ("bench", "needs --method"),
    ("bench --method no-such-method", "no-such-method"),
    ("bench --method classic --runs 0", "--runs: must be 1 or more"),
    ("bench --method classic --warmup -1", "--warmup: must be 0 or more"),
    ("bench --metrics --backend pose=dlib", "measures identity, not pose"),
    ("bench --metrics --backend hopenet-shufflenet", "--backend"),
    ("bench --method classic --threads -2", "--threads: must be 1 or more"),
    ("bench --method classic --batch-sizes 1 0", "--batch-sizes: must be 1 or more"),
    ("bench --method classic --device mps", "'mps' is not available" if not torch.backends.mps.is_available()
     else "mps"),
    # train
    ("train classic --config cpu --out {out} --time-limit -5", "--time-limit: must be a finite number above 0"),
    ("train no-such-method --config cpu --out {out}", "no-such-method"),
    ("train faceshifter --config cpu --out {out} --set steps", "--set expects KEY=VALUE"),
    ("train faceshifter --config cpu --out {out} --set data=portraits", "--set data=portraits: the value is not JSON"),
    ("train faceshifter --config cpu --out {out} --set loop.stepz=3", "unknown config key 'loop.stepz'"),
    ("train faceshifter --config cpu --out {out} --init-from {missing}", "missing: no such weights file"),
    ("train mobilefsgan --config cpu --out {out} --init-from {text}", "passwd: not a readable safetensors file"),
    ("train faceshifter --config tiny --out {out} --init-from {faceshifter}",
     "do not fit the configuration: width 0.125 (config: 0.03125)"),
    ("train --bundle {missing} --out {out}", "missing: not a training bundle"),
    ("train faceshifter --bundle {faces} --config tiny --out {out}", "--bundle DIR holds the recipe: drop --config"),
    ("train --config tiny --out {out}", "train needs METHOD and --config NAME"),
    # bundle
    ("bundle classic --config cpu --out {out}", "method 'classic' has no training bundle"),
    ("bundle faceshifter --config tiny --out {out} --quality 101", "--quality must lie in 1..100"),
    ("bundle faceshifter --config tiny --out {faces}", "holds something other than a bundle"),
    # assets
    ("assets add hopenet {text}", "not hopenet_robust_alpha1.pkl"),
    ("assets add cosface-sphere20 {text}", "not net_sphere20_data_vggface2_acc_9955.pth"),
    ("assets add insightface-recognition {text}", "not glint360k_cosface_r50.onnx"),
    ("assets add deep3dfacerecon-lm3d {text}", "not similarity_Lm3D_all.mat"),
    ("assets add inswapper {text}", "passwd: not inswapper_128.onnx"),
    ("assets add simswap-256 {text}", "passwd: not simswap_256.onnx"),
    ("assets add crossface-ghost {text}", "passwd: not crossface_ghost.onnx"),
    ("assets add hopenet {missing}", "no such file"),
    ("assets add hopenet {photo}", "torch.load with weights_only=True refused it"),
    ("assets add no-such-asset {text}", "unknown asset 'no-such-asset'"),
    ("assets add yunet {text}", "is embedded"),
    ("assets fetch hopenet", "reference files are supplied by you"),
    ("assets verify no-such-asset", "unknown asset"),
    # compare
    ("compare {missing} {missing}", "missing"),
    ("compare {text} {text}", "passwd"),
    # study
    ("study create --protocol mini-stills --methods a,b --per-rater 0", "--per-rater: must be 1 or more"),
    ("study report {missing}", "missing"),
    ("study report {missing} --resamples 0", "--resamples: must be 1 or more"),
    # leaderboard
    ("leaderboard build --no-such-flag", "unrecognized arguments: --no-such-flag"),
    ("leaderboard no-such-action", "invalid choice: 'no-such-action'"),
    # swap (tests/test_swap.py walks its file-level cases)
    ("swap --method classic --source {missing} --target {text} --out {out}.png", "missing"),
    ("swap --method classic --source {text} --target {text} --out {out}.png --device nonsense", "not a torch device"),
    ("swap --method classic --source {text} --target {text} --out {out}.png --face -1", "--face: must be 0 or more"),
    # pose-report
    ("pose-report --backends dlib", "'dlib' measures identity, not pose"),
    ("pose-report --backends no-such-backend", "no-such-backend"),
    ("pose-report --backends mediapipe-pose --sets no-such-protocol", "no-such-protocol"),
    ("pose-report --threads 0", "--threads: must be 1 or more"),
    # separation, monitor, data
    ("separation --backends no-such-backend", "no-such-backend"),
    ("separation --threads 0", "--threads: must be 1 or more"),
    ("monitor plot {faces} --out {out}.png", "no monitor.jsonl"),
    ("monitor trend {text} --target 0.9", "not a monitor record"),
    ("monitor score --method no-such-method", "no-such-method"),
    ("data build-portraits --out", "expected one argument"),
    # list, export
    ("list no-such-thing", "invalid choice: 'no-such-thing'"),
    ("export --method classic --device nonsense", "'nonsense' is not a torch device"),
]


@pytest.mark.parametrize("argv, expected", CASES, ids=[c[0].split(" {")[0] for c in CASES])
def test_wrong_input_is_one_line(argv, expected, files, capsys):
    code, err = _invoke(argv.format(**files).split(), capsys)
    assert code not in (0, None), err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err, err
    assert not any(leak in err for leak in ("[Errno", "__init__()", "takes no arguments", "PyTorch 2.6")), err


def test_the_walk_covers_every_command():
    from fsbench.cli import build_parser

    commands = {argv.split()[0] for argv, _ in CASES}
    registered = set(next(a for a in build_parser()._actions if a.dest == "command").choices)
    assert registered - commands == set()
    assert len(CASES) >= 25


def test_a_wrong_file_that_reaches_a_run_is_one_line(files, monkeypatch):
    """A file registered before `assets add` checked files (or edited into the index) fails as one AssetError when
    its backend loads, not in torch's unpickler."""
    from fsbench.metrics.pose import HopenetPose

    original = assets.ASSETS["hopenet"]
    monkeypatch.setitem(assets.ASSETS, "hopenet", dataclasses.replace(original, loader=None))
    assets.add("hopenet", files["text"])
    assets.ASSETS["hopenet"] = original
    with pytest.raises(assets.AssetError, match=r"passwd: not hopenet_robust_alpha1\.pkl \(head pose"):
        HopenetPose()


def test_a_bug_is_one_line_that_says_so(monkeypatch, capsys):
    """An unexpected exception is reported as an internal error in one line; FSBENCH_DEBUG=1 shows the traceback."""
    import fsbench.cli as cli

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "_cmd_list", broken)
    code, err = _invoke(["list", "methods"], capsys)
    assert code == 1 and "internal error: ZeroDivisionError" in err and "FSBENCH_DEBUG=1" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("FSBENCH_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["list", "methods"])


def test_a_package_metric_giving_the_wrong_number_of_values_is_one_line(declare, files, capsys):
    """A compute of an installed package's metric that gives another number of values than pairs fails the run in
    one line naming the metric and where it is declared."""
    from fsbench.metrics.definitions import MetricDef

    declare(MetricDef("miscount", "identity", "v", True, ("swap",), lambda inputs, metric: [], "gives nothing"))
    code, err = _invoke(["run", "--method", "copy-target", "--protocol", "mini-stills", "--limit", "1", "--quiet",
                         "--out", files["out"]], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "metric 'miscount' (test): its compute returned 0 value(s) for 1 pair(s)" in err, err


def test_an_asset_cache_that_is_a_file_names_the_variable(files, monkeypatch, capsys):
    monkeypatch.setenv("FSBENCH_HOME", files["text"])
    code, err = _invoke(["run", "--method", "copy-target", "--protocol", "mini-stills", "--limit", "1", "--out",
                         files["out"]], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"FSBENCH_HOME={files['text']} is a file, not a folder" in err and "[Errno" not in err


def test_a_truncated_video_is_one_line_without_ffmpeg_or_opencv_logs(tmp_path, capfd):
    """FFmpeg's "moov atom not found" and OpenCV's "[ WARN:0@...]" are written by C code straight to the process's
    stderr: captured at the file descriptor, only fsbench's own line is there."""
    whole = assets.path("media/pyfeat/single_face.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole[:len(whole) // 4])
    source = str(assets.path("media/face_recognition/obama.jpg"))
    code = main(["swap", "--quiet", "--method", "copy-target", "--source", source, "--target", str(truncated),
                 "--out", str(tmp_path / "out.mp4")])
    out, err = capfd.readouterr()
    assert code == 2 and err.count("\n") == 1 and "truncated.mp4" in err, err
    assert not any(log in out + err for log in ("moov", "WARN", "FFMPEG")), out + err
