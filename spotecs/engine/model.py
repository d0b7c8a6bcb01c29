"""Plan data: actions, field diffs, changes. Built before any write; rendered, then applied."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Unknown:
    """A value not known until an upstream step is applied ("(known after apply)" in a plan)."""

    __slots__ = ("source",)

    def __init__(self, source: str = "") -> None:
        self.source = source

    def __repr__(self) -> str:
        return "(known after apply)"

    def __eq__(self, other: object) -> bool:  # never equal: an unknown value is a change
        return False

    def __hash__(self) -> int:
        return id(self)


class Whole(dict[str, Any]):
    """A dict the diff compares as a whole, so that a key the file dropped is a change too (a
    resource's tags). Other nested dicts are compared by the file's keys only: AWS's answers
    carry facts the file does not set."""


class Outputs:
    """Steps' outputs shared between the apply's threads: `output` / `set_output` of the
    engine's Context protocol. The holder provides `outputs` and `_lock`."""

    outputs: dict[str, dict[str, Any]]
    _lock: threading.Lock

    def output(self, key: str, name: str) -> Any:
        """An upstream step's output; Unknown while that step is yet to be created."""
        with self._lock:
            values = self.outputs.get(key)
        if values is None or name not in values:
            return Unknown(f"{key}.{name}")
        return values[name]

    def set_output(self, key: str, values: dict[str, Any]) -> None:
        with self._lock:
            self.outputs[key] = values


def has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_unknown(v) for v in value)
    return False


class Action(Enum):
    """The closed set of operations, each with its plan symbol, verb and past tense."""

    NOOP = ("no-op", " ", "unchanged")
    CREATE = ("create", "+", "created")
    UPDATE = ("update", "~", "updated")
    NEW_VERSION = ("new version", "~", "new version of")
    REPLACE = ("replace", "-/+", "replaced")
    DELETE = ("delete", "-", "deleted")

    def __init__(self, verb: str, symbol: str, past: str) -> None:
        self.verb = verb
        self.symbol = symbol
        self.past = past


@dataclass(frozen=True)
class FieldDiff:
    path: str
    old: Any
    new: Any
    forces_replace: bool = False


@dataclass
class Change:
    key: str
    kind: str  # "security group"
    name: str  # the AWS name, e.g. "demo-instances"
    action: Action
    diffs: list[FieldDiff] = field(default_factory=list)
    current: dict[str, Any] | None = None
    desired: dict[str, Any] | None = None
    note: str = ""  # e.g. "not owned by this stack: left alone"
    # Set when the change is a consequence of an upstream's replacement, e.g. "load balancer
    # replaced": the resource goes with the old upstream (or stays bound to it), so it is
    # replaced too, whatever its own diff says.
    reason: str = ""
    # Values the file sets that AWS owns once the resource exists (e.g. a desired count under
    # auto scaling), and what the change does beyond the resource itself (the running instances
    # a group's tags edit re-tags): shown beside the change, never applied on their own.
    notes: list[str] = field(default_factory=list)

    @property
    def is_change(self) -> bool:
        return self.action is not Action.NOOP

    def changed_fields(self) -> set[str]:
        """The top-level fields of `desired` that differ (`health_check` for `health_check.path`)."""
        return {d.path.split(".")[0] for d in self.diffs}


@dataclass
class Plan:
    changes: list[Change]
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = {"add": 0, "change": 0, "replace": 0, "destroy": 0}
        for ch in self.changes:
            match ch.action:
                case Action.CREATE:
                    c["add"] += 1
                case Action.UPDATE | Action.NEW_VERSION:
                    c["change"] += 1
                case Action.REPLACE:
                    c["replace"] += 1
                case Action.DELETE:
                    c["destroy"] += 1
        return c

    @property
    def has_changes(self) -> bool:
        return any(ch.is_change for ch in self.changes)

    def summary(self) -> str:
        c = self.counts()
        return (
            f"Plan: {c['add']} to add, {c['change']} to change, {c['replace']} to replace, {c['destroy']} to destroy."
        )

    def get(self, key: str) -> Change:
        return next(ch for ch in self.changes if ch.key == key)
