"""Training bundles and the lent-GPU script: a bundle trains with an empty asset cache, fetching nothing and importing
none of the packages a lent GPU lacks, and the script brings back exported weights that load; a damaged or foreign
bundle is refused."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from fsbench import assets
from fsbench.errors import UsageError
from fsbench.train.bundle import LOSSLESS, RUN, _decode, _encode, recogniser_assets, use
from fsbench.train.data import FaceCrops, crops_cache_file
from fsbench.train.pose_prior import FILE as POSE_PRIOR
from methods.faceshifter.configs import get_config
from methods.faceshifter.method import FaceShifter

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "fsbench" / "train" / "gpu_train.sh"
NOT_ON_THE_GPU = ("mediapipe", "dlib", "streamlit", "insightface")  # installed here, absent from the lent GPU's image
TINY = {"loop.steps": 2, "hear_steps": 1}


def _blocking_packages(folder: Path) -> Path:
    """Packages named as the ones a lent GPU lacks whose import fails, to put first on PYTHONPATH."""
    for name in NOT_ON_THE_GPU:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} is not on the lent GPU')\n")
    return folder


def _run_script(bundle: Path, tmp_path: Path, home: Path) -> Path:
    env = {**os.environ, "FSBENCH_HOME": str(home), "DEVICE": "cpu", "PYTHON": sys.executable,
           "RUN_DIR": str(tmp_path / "run"), "PART_MIB": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(_blocking_packages(tmp_path / "blocked")), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(["bash", str(SCRIPT), str(bundle), str(tmp_path / "out"), "5"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tmp_path / "out"


def test_the_gpu_script_trains_a_bundle_alone_and_brings_back_weights_that_load(tmp_path, monkeypatch,
                                                                                 quick_pose_fit) -> None:
    bundle = FaceShifter.bundle("tiny", tmp_path / "bundle", overrides={**TINY, "w_pose": 1.0}, quality=90)
    assert len(quick_pose_fit) == 1 and (bundle / RUN / POSE_PRIOR).is_file()
    home = tmp_path / "home"
    out = _run_script(bundle, tmp_path, home)
    parts = sorted(out.glob("faceshifter-tiny.safetensors.part*"))
    assert len(parts) > 1  # PART_MIB=1: the export is split
    weights = tmp_path / "faceshifter-tiny.safetensors"
    weights.write_bytes(b"".join(p.read_bytes() for p in parts))
    assert (out / "faceshifter-tiny.safetensors.sha256").read_text().split()[0] == assets.sha256_file(weights)
    assert weights.read_bytes() == (tmp_path / "run" / weights.name).read_bytes()
    with tarfile.open(out / "run.tar.gz") as tar:
        names = tar.getnames()
    assert {"./aei/losses.jsonl", "./hear/losses.jsonl"} <= set(names) and any(n.endswith(".png") for n in names)
    aei_log = [json.loads(line) for line in (tmp_path / "run" / "aei" / "losses.jsonl").read_text().splitlines()]
    assert [row["step"] for row in aei_log] == [1, 2] and all(np.isfinite(row["pose"]) for row in aei_log)
    # the pose term trained through the bundle's prior: a fit there would have needed MediaPipe
    assert (tmp_path / "run" / POSE_PRIOR).read_bytes() == (bundle / RUN / POSE_PRIOR).read_bytes()
    # nothing was fetched: the cache holds the bundle's files and its crops, nothing else
    manifest = json.loads((bundle / "bundle.json").read_text())
    monkeypatch.setenv("FSBENCH_HOME", str(home))
    expected = {f for f in manifest["files"] if f.startswith("assets/")}
    expected.add(crops_cache_file(manifest["crops"]["key"]).relative_to(home).as_posix())
    cached = {p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file() and p.suffix != ".verified"}
    assert cached == expected
    method = FaceShifter(weights=weights)
    faces = torch.rand(2, 3, 128, 128)
    assert method.swap(faces, faces).isfinite().all()


def test_a_damaged_or_foreign_bundle_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(assets.OFFLINE_VARIABLE, "0")  # use() forbids fetching for the process: restored after
    bundle = FaceShifter.bundle("tiny", tmp_path / "bundle", overrides=TINY, quality=90)
    with pytest.raises(UsageError, match="trains 'faceshifter', not 'mobilefsgan'"):
        use(bundle, tmp_path / "run", "mobilefsgan")
    crops = bundle / "crops.npz"
    crops.write_bytes(crops.read_bytes()[:-100])
    with pytest.raises(UsageError, match="crops.npz: missing or not the file the bundle recorded"):
        use(bundle, tmp_path / "run")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(UsageError, match="holds something other than a bundle"):
        FaceShifter.bundle("tiny", tmp_path / "notes")
    with pytest.raises(UsageError, match="image folder"):
        FaceShifter.bundle("tiny", tmp_path / "b2", overrides={"data": str(tmp_path / "notes")})
    with pytest.raises(assets.AssetError, match="todo.txt: sha256 .* is not the pinned"):
        assets.install("sface", tmp_path / "notes" / "todo.txt")


def test_offline_fetches_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path))
    monkeypatch.setenv(assets.OFFLINE_VARIABLE, "1")
    with pytest.raises(assets.AssetError, match="FSBENCH_OFFLINE forbids fetching"):
        assets.path("yunet")
    with pytest.raises(assets.AssetError, match="FSBENCH_OFFLINE forbids fetching"):
        assets.path("portraits/nba")  # a folder of files
    assert not (tmp_path / "packages").exists()


def test_lossless_crops_come_back_exact() -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    arrays, error = _encode(FaceCrops(images, np.array([0, 0, 1]), ["a", "b"], "ffhq-256"), LOSSLESS)
    assert error == 0 and np.array_equal(_decode(arrays), images)
    assert _encode(FaceCrops(images, np.array([0, 0, 1]), ["a", "b"], "ffhq-256"), 50)[1] > 0


def test_the_gpu_recipe_trains_with_embedded_training_recognisers_only() -> None:
    cfg = get_config("gpu")
    assert recogniser_assets(cfg.recognisers) == ("sface",) and cfg.monitor.every == 0
