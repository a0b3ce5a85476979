"""Refuse a data root that is not the data set it is given as, before any pair is scored."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from fsbench.errors import UsageError


class DataRootError(UsageError):
    """A --data-root in which most files the protocol refers to are missing; the message gives the count and one."""


def require_present(root: Path, files: Iterable[Path], what: str, expected: str, max_missing: float = 0.5) -> None:
    """Raise :class:`DataRootError` when more than ``max_missing`` of ``files`` do not exist.

    A few missing files are recorded per item by the runner (a partial download still runs); most of them missing
    means the root is wrong, and a run would only write failures.
    """
    files = list(files)
    missing = [p for p in files if not p.is_file()]
    if files and len(missing) > max_missing * len(files):
        raise DataRootError(f"{root}: {len(missing)} of the {len(files)} {what} are missing (e.g. {missing[0]}); "
                            f"is it {expected}?")
