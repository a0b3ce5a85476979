"""Per-face native work spread over threads: YuNet detection, MediaPipe's landmarker, dlib's shape predictor.

Each of these runs one face at a time in C++ on one core and releases the GIL, and torch's intra-op pool does not
cover them, so on their own they leave the other cores idle. :func:`map_faces` runs them on as many threads as torch
is given (``--threads``; torch's default is the number of physical cores), and :func:`per_thread` gives each thread
its own instance of a native object that is not safe to share (a YuNet detector keeps its input size; a landmarker
is one graph).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}  # (pid, workers): a pool is not usable after a fork
_instances: dict[tuple[str, int, int], object] = {}  # (kind, pid, thread)


def worker_count() -> int:
    """Threads for per-face native work: torch's thread count, which ``--threads`` sets."""
    return max(1, torch.get_num_threads())


def map_faces(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``fn`` over ``items`` on :func:`worker_count` threads, results in order (lazily; an exception in ``fn``
    comes out where its result would). One thread: plain ``map`` in the calling thread."""
    workers = worker_count()
    if workers == 1:
        return map(fn, items)
    key = (os.getpid(), workers)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(workers, thread_name_prefix="fsbench-face")
    return pool.map(fn, items)


def per_thread(kind: str, factory: Callable[[], T]) -> T:
    """This thread's instance of ``kind``, made by ``factory`` on first use in this thread and process."""
    key = (kind, os.getpid(), threading.get_ident())
    instance = _instances.get(key)
    if instance is None:
        instance = _instances[key] = factory()
    return instance  # type: ignore[return-value]
