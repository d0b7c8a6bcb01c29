"""Apply a Plan: walk the DAG with independent steps in parallel, feed each step's outputs to
its dependants, and on a failure skip the failed step's dependants (independent branches go
on, as in Terraform). Deletions run afterwards, in the reverse order.

Cancellation: once `stop` is set (the first Ctrl-C), no new step starts; the steps running
finish, or stop at their next AWS call or wait (the caller gates those on the same event) and
are reported as stopped. A KeyboardInterrupt raised inside a step counts as that first Ctrl-C.
A KeyboardInterrupt in this thread (the second Ctrl-C) leaves at once, without waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

from spotecs.engine.contract import Context, Node, Resource
from spotecs.engine.diff import choose_action
from spotecs.engine.model import Action, Change, Plan
from spotecs.engine.plan import graph
from spotecs.errors import Interrupted


@dataclass(frozen=True)
class Event:
    key: str
    state: str  # "start" | "done" | "failed" | "skipped"
    action: Action
    name: str = ""
    kind: str = ""
    elapsed: float = 0.0
    error: BaseException | None = None


# How often the walk looks at `stop` while steps run.
STOP_CHECK_SECONDS = 0.2


@dataclass
class Result:
    applied: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # not started: an upstream failed, or stopped
    stopped: list[str] = field(default_factory=list)  # started, then stopped by the interruption
    names: dict[str, str] = field(default_factory=dict)  # by key: a name chosen at creation, not the plan's
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.stopped and not self.interrupted


def _run(step: Resource[Any], change: Change, ctx: Context) -> dict[str, Any]:
    sctx = ctx.for_step(step.key)
    if change.action is Action.DELETE:
        assert change.current is not None
        step.delete(sctx, change.current)
        return {}
    # Values that were "(known after apply)" are known now: decide again with them.
    desired = step.desired(sctx)
    action, diffs = choose_action(desired, change.current, step.replace_on, step.versioned)
    if change.reason:  # replaced with an upstream it is bound to, whatever its own diff
        action = Action.REPLACE
    current = change.current or {}
    if desired is None:  # wanted gone, and already gone
        return {}
    match action:
        case Action.CREATE:
            return step.create(sctx, desired)
        case Action.REPLACE:
            return step.replace(sctx, desired, current)
        case Action.UPDATE | Action.NEW_VERSION:
            live = Change(change.key, change.kind, change.name, action, diffs, current, desired)
            return {**current, **step.update(sctx, desired, current, live)}
        case _:
            return dict(current)


def apply(
    plan: Plan,
    steps: Sequence[Node],
    ctx: Context,
    on_event: Callable[[Event], None] = lambda e: None,
    max_workers: int = 8,
    stop: threading.Event | None = None,
) -> Result:
    stop = stop or threading.Event()
    by_key = {s.key: s for s in steps if isinstance(s, Resource)}
    changes = {c.key: c for c in plan.changes}
    result = Result()
    forward = graph(steps)
    _walk(
        forward,
        {k for k, c in changes.items() if c.is_change and c.action is not Action.DELETE},
        by_key,
        changes,
        ctx,
        on_event,
        result,
        max_workers,
        stop,
    )
    deletes = {k for k, c in changes.items() if c.action is Action.DELETE}
    if deletes and stop.is_set():
        result.interrupted = True
        result.skipped.extend(k for k in forward if k in deletes)
    elif deletes:
        reverse: dict[str, list[str]] = {k: [] for k in forward}
        for key, ups in forward.items():
            for up in ups:
                reverse[up].append(key)
        _walk(
            {k: tuple(v) for k, v in reverse.items()},
            deletes,
            by_key,
            changes,
            ctx,
            on_event,
            result,
            max_workers,
            stop,
        )
    return result


def _walk(
    dag: dict[str, tuple[str, ...]],
    todo: set[str],
    steps: dict[str, Resource[Any]],
    changes: dict[str, Change],
    ctx: Context,
    on_event: Callable[[Event], None],
    result: Result,
    max_workers: int,
    stop: threading.Event,
) -> None:
    sorter = TopologicalSorter(dag)
    sorter.prepare()
    blocked: set[str] = set(result.failed) | set(result.skipped)
    running: dict[Future[dict[str, Any]], tuple[str, float]] = {}
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="apply")
    try:
        while sorter.is_active():
            for key in sorter.get_ready():
                change = changes.get(key)
                if key not in todo or change is None:
                    sorter.done(key)
                    continue
                if stop.is_set():  # interrupted: nothing new starts
                    result.skipped.append(key)
                    sorter.done(key)
                    continue
                if any(up in blocked for up in dag[key]):
                    blocked.add(key)
                    result.skipped.append(key)
                    on_event(Event(key, "skipped", change.action, change.name, change.kind))
                    sorter.done(key)
                    continue
                on_event(Event(key, "start", change.action, change.name, change.kind))
                running[pool.submit(_run, steps[key], change, ctx)] = (key, time.monotonic())
            if not running:
                continue
            finished, _ = wait(list(running), timeout=STOP_CHECK_SECONDS, return_when=FIRST_COMPLETED)
            if stop.is_set():
                result.interrupted = True
            for fut in finished:
                key, started = running.pop(fut)
                _finished(key, fut, changes[key], time.monotonic() - started, ctx, on_event, result, blocked, stop)
                sorter.done(key)
    finally:
        # A second Ctrl-C leaves at once; the workers end at their next gated call or wait.
        pool.shutdown(wait=not stop.is_set(), cancel_futures=True)


def _finished(
    key: str,
    fut: Future[dict[str, Any]],
    change: Change,
    elapsed: float,
    ctx: Context,
    on_event: Callable[[Event], None],
    result: Result,
    blocked: set[str],
    stop: threading.Event,
) -> None:
    error = fut.exception()
    if error is None:
        outputs = fut.result()
        ctx.set_output(key, outputs)
        result.applied.append(key)
        # A name chosen at creation (e.g. with a generated suffix) is known now.
        fresh = outputs.get("name")
        name = fresh if isinstance(fresh, str) else change.name
        if name != change.name:
            result.names[key] = name
        on_event(Event(key, "done", change.action, name, change.kind, elapsed))
        return
    blocked.add(key)
    if isinstance(error, KeyboardInterrupt | Interrupted):
        stop.set()  # Ctrl-C seen by a worker is the first Ctrl-C
        result.interrupted = True
        result.stopped.append(key)
        on_event(Event(key, "stopped", change.action, change.name, change.kind, elapsed, error))
        return
    result.failed[key] = error
    on_event(Event(key, "failed", change.action, change.name, change.kind, elapsed, error))
