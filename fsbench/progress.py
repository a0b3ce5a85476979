"""Progress bars that name the stage they belong to, and the run's one-line notes on long work.

A command that runs several protocols sets the stage (``with stage("portraits (1/3)")``); every bar made with
:func:`bar` inside it is prefixed with that label, so a user sees which protocol a bar belongs to.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from tqdm import tqdm

_stage: ContextVar[str] = ContextVar("stage", default="")


@contextmanager
def stage(label: str) -> Iterator[None]:
    """Bars made inside are prefixed with ``label``."""
    token = _stage.set(label)
    try:
        yield
    finally:
        _stage.reset(token)


def bar(desc: str, **kwargs: Any) -> tqdm:
    """A tqdm bar whose description is prefixed with the current stage's label."""
    label = _stage.get()
    return tqdm(desc=f"{label}: {desc}" if label else desc, **kwargs)


def resume_note(cached: int, total: int) -> str | None:
    """What a resumed run found, e.g. ``312 of 320 swaps from the cache``; None when nothing was cached."""
    if not cached:
        return None
    return f"{_stage.get() + ': ' if _stage.get() else ''}{cached} of {total} swaps from the cache" + (
        f", {total - cached} to swap" if cached < total else "")
