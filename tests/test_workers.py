"""Per-face native work on threads (fsbench.workers): order, per-thread instances, and results equal to one thread."""
from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from fsbench.faces.crops import CropStore, to_tensor
from fsbench.metrics.pose import clear_readings, read_faces
from fsbench.protocols.stills import MiniStills
from fsbench.workers import map_faces, per_thread


@pytest.fixture
def threads():
    """Sets torch's (and so the workers') thread count for the test, then puts it back."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_map_faces_keeps_order_and_raises_where_the_item_failed(threads) -> None:
    threads(3)
    assert list(map_faces(lambda i: i * i, range(50))) == [i * i for i in range(50)]

    def fail_on_7(i: int) -> int:
        if i == 7:
            raise ValueError("seven")
        return i

    results = map_faces(fail_on_7, range(10))
    assert [next(results) for _ in range(7)] == list(range(7))
    with pytest.raises(ValueError, match="seven"):
        next(results)


def test_one_thread_runs_in_the_calling_thread(threads) -> None:
    threads(1)
    assert set(map_faces(lambda _: threading.get_ident(), range(5))) == {threading.get_ident()}


def test_per_thread_gives_each_thread_its_own_instance(threads) -> None:
    threads(2)
    made = []

    def make() -> object:
        made.append(object())
        return made[-1]

    barrier = threading.Barrier(2)  # both workers busy at once: two threads, so two instances

    def get(_: int) -> int:
        barrier.wait(timeout=10)
        return id(per_thread("test-kind", make))

    ids = list(map_faces(get, range(2)))
    assert len(set(ids)) == 2 and len(made) == 2
    assert per_thread("test-kind", make) is per_thread("test-kind", make)


@pytest.fixture(scope="module")
def stills():
    return MiniStills().build(None, 0).gallery[:12]


def test_crops_and_mediapipe_readings_do_not_depend_on_the_thread_count(threads, stills) -> None:
    results = []
    for n in (1, 2):
        threads(n)
        store = CropStore("arcface-112", 112)
        store.prepare(stills, progress=False)
        clear_readings()
        pose, blend = read_faces(to_tensor([store.eval_crop(i) for i in stills]), "ffhq-256")
        results.append((store.crops, pose, blend))
    (crops1, pose1, blend1), (crops2, pose2, blend2) = results
    assert crops1.keys() == crops2.keys() and len(crops1) == len(stills)
    for key in crops1:
        assert all(np.array_equal(a, b) for a, b in zip(crops1[key], crops2[key]))
    assert torch.equal(pose1.nan_to_num(), pose2.nan_to_num()) and torch.equal(blend1.nan_to_num(),
                                                                                blend2.nan_to_num())


def test_detectors_made_on_several_threads_log_nothing() -> None:
    """OpenCV's log level is process-wide: threads that each make a YuNet detector must not restore it under one
    another (its set-up warning then reached the terminal)."""
    code = ("import torch\ntorch.set_num_threads(4)\nfrom fsbench.faces.crops import CropStore\n"
            "from fsbench.protocols.video import MiniVideo\n"
            "CropStore('arcface-112', 112).prepare(MiniVideo().build(None, 0).gallery[:16], progress=False)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
