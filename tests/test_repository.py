"""The repository stays lean: git keeps every version of a tracked file forever."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 20_000_000


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_is_over_20_mb() -> None:
    large = [f"{p.relative_to(ROOT)} ({p.stat().st_size / 1e6:.1f} MB)"
             for p in tracked_files() if p.is_file() and p.stat().st_size > MAX_BYTES]
    assert not large, f"tracked files over 20 MB: {large}"


def test_no_training_state_is_tracked() -> None:
    state = [str(p.relative_to(ROOT)) for p in tracked_files() if "/weights/train-" in p.as_posix()]
    assert not state, f"training state belongs in a run folder outside git: {state}"
