"""Fakes and helpers the test modules share, one name and one signature each.

Engine fakes (no Stack, no AWS): `Cloud`, `Thing`, `Data`, `FakeContext`, `run`, `actions`."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection
from typing import Any

from spotecs.engine.apply import Event, Result, apply
from spotecs.engine.contract import Node
from spotecs.engine.model import Change, Plan, Unknown, has_unknown
from spotecs.engine.plan import plan

# ----------------------------------------------------------------------------- engine fakes


class FakeContext:
    """What the engine needs of a context, and nothing of spotecs: outputs in and out."""

    def __init__(self) -> None:
        self.outputs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def for_step(self, key: str) -> FakeContext:
        return self

    def output(self, key: str, name: str) -> Any:
        with self._lock:
            values = self.outputs.get(key)
        if values is None or name not in values:
            return Unknown(f"{key}.{name}")
        return values[name]

    def set_output(self, key: str, values: dict[str, Any]) -> None:
        with self._lock:
            self.outputs[key] = values


class Cloud:
    """An in-memory provider: resources by step key, and a log of every operation."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    def record(self, op: str, key: str) -> None:
        with self.lock:
            self.log.append((op, key))

    def ops(self, *kinds: str) -> list[tuple[str, str]]:
        return [e for e in self.log if e[0] in kinds]

    def new_id(self, key: str) -> str:
        return f"id-{key}-{next(self._ids)}"


class Thing:
    """A fake resource. `settings` are its desired fields; `uses` are upstream keys whose `id`
    output goes into desired as `<upstream>_id`; hooks let a test block or fail an operation."""

    kind = "thing"

    def __init__(
        self,
        key: str,
        cloud: Cloud,
        *,
        depends_on: Collection[str] = (),
        settings: dict[str, Any] | None = None,
        uses: Collection[str] = (),
        replace_on: Collection[str] = (),
        versioned: bool = False,
        hooks: dict[str, Callable[[], None]] | None = None,
        problems: list[str] | None = None,
    ) -> None:
        self.key = key
        self.name = f"demo-{key}"
        self.depends_on = (*depends_on, *(u for u in uses if u not in depends_on))
        self.cloud = cloud
        self.settings = dict(settings or {"size": 1})
        self.uses = tuple(uses)
        self.replace_on = frozenset(replace_on)
        self.versioned = versioned
        self.version_outputs = frozenset({"revision"})
        self.hooks = hooks or {}
        self.problems = problems or []
        self.seen_desired: list[dict[str, Any]] = []

    def _hook(self, op: str) -> None:
        if op in self.hooks:
            self.hooks[op]()

    def desired(self, ctx: FakeContext) -> dict[str, Any] | None:
        return {**self.settings, **{f"{u}_id": ctx.output(u, "id") for u in self.uses}}

    def read(self, ctx: FakeContext) -> dict[str, Any] | None:
        self.cloud.record("read", self.key)
        self._hook("read")
        with self.cloud.lock:
            r = self.cloud.resources.get(self.key)
            return None if r is None else dict(r)

    def create(self, ctx: FakeContext, desired: dict[str, Any]) -> dict[str, Any]:
        assert not has_unknown(desired), f"{self.key} created with unresolved values: {desired}"
        self.seen_desired.append(desired)
        self.cloud.record("create", self.key)
        self._hook("create")
        rid = self.cloud.new_id(self.key)
        with self.cloud.lock:
            self.cloud.resources[self.key] = {**desired, "id": rid, "revision": 1, "_owned": True}
        return {"id": rid, "revision": 1}

    def update(
        self, ctx: FakeContext, desired: dict[str, Any], current: dict[str, Any], change: Change
    ) -> dict[str, Any]:
        assert not has_unknown(desired), f"{self.key} updated with unresolved values: {desired}"
        self.seen_desired.append(desired)
        self.cloud.record("update", self.key)
        self._hook("update")
        with self.cloud.lock:
            r = self.cloud.resources[self.key]
            r.update(desired)
            if self.versioned:
                r["revision"] += 1
                return {"revision": r["revision"]}
            return {}

    def delete(self, ctx: FakeContext, current: dict[str, Any]) -> None:
        self.cloud.record("delete", self.key)
        self._hook("delete")
        with self.cloud.lock:
            self.cloud.resources.pop(self.key, None)

    def replace(self, ctx: FakeContext, desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        self.delete(ctx, current)
        return self.create(ctx, desired)

    def check(self, ctx: FakeContext, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        return list(self.problems)


class Data:
    """A fake data source: `facts` are what its read returns; `problems` what its check says."""

    kind = "data"

    def __init__(self, key: str, facts: dict[str, Any], *, problems: list[str] | None = None) -> None:
        self.key = key
        self.name = key
        self.depends_on: tuple[str, ...] = ()
        self.facts = facts
        self.problems = problems or []
        self.reads = 0

    def read(self, ctx: FakeContext) -> dict[str, Any] | None:
        self.reads += 1
        return dict(self.facts)

    def check(self, ctx: FakeContext, current: dict[str, Any] | None) -> list[str]:
        return list(self.problems)


def run(steps: list[Node], *, destroy: bool = False, events: list[Event] | None = None) -> tuple[Plan, Result]:
    """Plan then apply on a fresh fake context."""
    c = FakeContext()
    p = plan(steps, c, destroy=destroy)
    return p, apply(p, steps, c, on_event=(events.append if events is not None else lambda e: None))


def actions(p: Plan) -> dict[str, Any]:
    return {c.key: c.action for c in p.changes}
