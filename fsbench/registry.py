"""One generic registry for methods, metrics, protocols and datasets.

Targets are registered lazily as ``"module:attr"`` strings (or objects) so listing names imports nothing heavy.
Third-party packages add entries through entry-point groups (``fsbench.methods``, ``fsbench.metrics`` for metric
backends, ``fsbench.metric_definitions`` for metrics, ...);
built-in methods are registered the same way, so the harness never imports ``methods.*`` by name.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from fsbench.errors import FsbenchError, UsageError

T = TypeVar("T")


class UnknownNameError(FsbenchError, KeyError):
    """An unknown name; the message lists close matches."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the message as written
        return str(self.args[0])


def resolve(target: Any) -> Any:
    """The object a lazy ``"module:attr"`` target names (``attr`` may be dotted), importing its module; any other
    target is returned as it is."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


@dataclass
class _Entry:
    name: str
    target: Any  # an object, or a "module:attr" string resolved on first use
    aliases: tuple[str, ...] = ()
    origin: str = "builtin"


@dataclass
class Registry(Generic[T]):
    kind: str
    group: str | None = None  # entry-point group scanned on first lookup
    builtins: str | None = None  # module whose import registers the built-in entries (lazily, by name)
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)
    _scanned: bool = False

    def register(self, name: str, target: Any = None, *, aliases: tuple[str, ...] = (), origin: str = "builtin"):
        """Register ``target`` under ``name``; without a target, returns a decorator."""
        if target is None:
            def decorator(obj: T) -> T:
                self.register(name, obj, aliases=aliases, origin=origin)
                return obj
            return decorator
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} '{name}' is registered twice ({self._entries[self._canonical(name)].origin}"
                             f" and {origin})")
        self._entries[name] = _Entry(name, target, tuple(aliases), origin)
        for alias in aliases:
            self._aliases[alias] = name
        return target

    def _scan_entry_points(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        if self.builtins:
            importlib.import_module(self.builtins)
        for ep in entry_points(group=self.group) if self.group else ():
            if ep.name not in self._entries:
                origin = f"entry point {ep.value} ({ep.dist.name if ep.dist else 'unknown distribution'})"
                self._entries[ep.name] = _Entry(ep.name, ep.value, (), origin)

    def _canonical(self, name: str) -> str:
        return self._aliases.get(name, name)

    def names(self) -> list[str]:
        self._scan_entry_points()
        return sorted(self._entries)

    def origin(self, name: str) -> str:
        """Where an entry comes from: ``builtin``, or the entry point and the distribution that declares it."""
        self._scan_entry_points()
        return self._entries[self._canonical(name)].origin

    def aliases(self, name: str) -> tuple[str, ...]:
        return self._entries[self._canonical(name)].aliases

    def __contains__(self, name: str) -> bool:
        self._scan_entry_points()
        return self._canonical(name) in self._entries

    def get(self, name: str) -> T:
        """The registered object, importing a lazy target on first use."""
        self._scan_entry_points()
        canonical = self._canonical(name)
        entry = self._entries.get(canonical)
        if entry is None:
            choices = list(self._entries) + list(self._aliases)
            close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} '{name}'.{hint} Known: {', '.join(sorted(self._entries))}")
        entry.target = resolve(entry.target)
        return entry.target


methods: Registry = Registry("method", group="fsbench.methods")
metrics: Registry = Registry("metric backend", group="fsbench.metrics", builtins="fsbench.metrics")
metric_definitions: Registry = Registry("metric", group="fsbench.metric_definitions",
                                        builtins="fsbench.metrics.definitions")
protocols: Registry = Registry("protocol", group="fsbench.protocols", builtins="fsbench.protocols")
datasets: Registry = Registry("dataset", group="fsbench.datasets", builtins="fsbench.data")


def create_method(name: str, device: str = "cpu", weights: Path | None = None) -> Any:
    """An instance of method ``name`` on ``device``: with its shipped weights, or with the ``weights`` file given.

    A method takes a weights file through a ``weights`` keyword of its constructor. This is the one place that
    turns a weights file into a card: an instance loaded from a file other than the shipped one gets the card
    ``Method.card_for(file)`` gives, naming that file and its sha256, and the name ``NAME@SHA12`` (its results,
    swap cache and table rows never mix with the shipped weights').
    """
    cls = methods.get(name)
    if weights is None:
        return cls(device=device)
    if "weights" not in inspect.signature(cls.__init__).parameters:
        raise UsageError(f"method '{name}' takes no weights file")
    path = Path(weights)
    if not path.is_file():
        raise UsageError(f"{path}: no such weights file")
    method = cls(device=device, weights=path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha != cls.card.checkpoint_sha256:
        method.card = replace(cls.card_for(path), name=f"{cls.card.name}@{sha[:12]}",
                              checkpoint=str(path.resolve()), checkpoint_sha256=sha)
    return method
