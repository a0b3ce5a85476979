"""The root of the errors that what a user gives fsbench can cause.

The command line reports an :class:`FsbenchError` as one line naming the file, name or option and what is wrong
(exit 2); any other exception is a bug in fsbench and is reported as an internal error (exit 1). Plugins raise
:class:`UsageError` (re-exported by :mod:`fsbench.api`) for a bad input they are given.
"""
from __future__ import annotations


class FsbenchError(Exception):
    """A problem with the user's input: a file, a name, an option, a data set, a results file."""


class UsageError(FsbenchError, ValueError):
    """A value the user gave (an option, a file's content, a combination of flags) that fsbench cannot use."""
