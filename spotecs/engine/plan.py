"""Build a Plan: read every step in parallel, then compute desired state in dependency order
(upstream outputs feed dependants; what is not known yet is Unknown) and choose each action."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from graphlib import CycleError, TopologicalSorter
from typing import Any

from spotecs.engine.contract import Context, Node, Resource
from spotecs.engine.diff import choose_action
from spotecs.engine.model import Action, Change, Plan
from spotecs.errors import CheckError

NOT_OWNED = "exists without this stack's spotecs tags: used as it is, never changed or deleted"


def graph(steps: Sequence[Node]) -> dict[str, tuple[str, ...]]:
    keys = {s.key for s in steps}
    if len(keys) != len(steps):
        raise ValueError("duplicate step keys")
    for s in steps:
        missing = [d for d in s.depends_on if d not in keys]
        if missing:
            raise ValueError(f"step {s.key} depends on unknown step(s) {missing}")
    return {s.key: s.depends_on for s in steps}


def order(steps: Sequence[Node]) -> list[str]:
    try:
        return list(TopologicalSorter(graph(steps)).static_order())
    except CycleError as e:
        raise ValueError(f"dependency cycle: {e.args[1]}") from None


def read_all(steps: Sequence[Node], ctx: Context, max_workers: int | None = None) -> dict[str, dict[str, Any] | None]:
    """All reads at once: they find resources by deterministic name, so none waits for another.
    One worker per step unless told otherwise: a read spends its time waiting on AWS, and a read
    queued behind others would add their round trips to its own.

    A plan's first requests leave one after another (each costs the client a few milliseconds
    under one interpreter lock), and the plan ends when its longest chain does: the chains must
    not start last. So a step whose read is a chain of round trips longer than the others' may
    say which read starts it (optional `first_read(ctx)`, outside the Node protocol: the
    listeners' load balancer and the stack's tagging-API read, before the listeners and their
    rules): that read is asked before every other, through the run's read layer, and the step's
    own read finds it made or under way. Then come the reads of the steps that say they are
    chained (optional `chained = True`, outside the Node protocol too: a read that asks what
    names a resource, then reads it by that name), then the reads that end in one round trip;
    each group in the steps' order. Errors: the first of the steps' (in their order), then of the
    first reads (one the step's read would have met too)."""
    if not steps:
        return {}
    first_reads = [(s.key, read) for s in steps if callable(read := getattr(s, "first_read", None))]
    chained = sorted(steps, key=lambda s: not getattr(s, "chained", False))
    with ThreadPoolExecutor(
        max_workers=max_workers or len(steps) + len(first_reads), thread_name_prefix="read"
    ) as pool:
        started = [pool.submit(read, ctx.for_step(key)) for key, read in first_reads]
        asked = {s.key: pool.submit(s.read, ctx.for_step(s.key)) for s in chained}
    futures = {s.key: asked[s.key] for s in steps}
    for f in [*futures.values(), *started]:
        error = f.exception()
        if error is not None:
            raise error
    return {key: f.result() for key, f in futures.items()}


def _live_name(step: Resource[Any], ctx: Context, current: dict[str, Any] | None) -> str:
    """The name the resource has, when its read says (one chosen at creation, e.g. with a
    generated suffix); else the one it will have, when the step can tell from a run-wide fact
    (optional `planned_name`, outside the Resource protocol: the access-log bucket's account id);
    else the step's."""
    live = (current or {}).get("name")
    if isinstance(live, str):
        return live
    planned_name = getattr(step, "planned_name", None)
    return str(planned_name(ctx.for_step(step.key))) if planned_name else step.name


def _outputs_after(step: Resource[Any], action: Action, current: dict[str, Any] | None) -> dict[str, Any]:
    """What dependants may rely on at plan time: nothing of a resource yet to be (re)created,
    everything but the per-version values of one getting a new version."""
    if current is None or action in (Action.CREATE, Action.REPLACE):
        return {}
    if action is Action.NEW_VERSION:
        return {k: v for k, v in current.items() if k not in step.version_outputs}
    return dict(current)


def bound_replacement(step: Resource[Any], replaced: dict[str, str]) -> str:
    """Why `step` must be replaced because an upstream it binds to is: "load balancer replaced"
    (the first such upstream, in `depends_on` order), or "" if none is."""
    for up in step.depends_on:
        if up in replaced and (up in step.binds_to or up.split(":", 1)[0] in step.binds_to):
            return f"{replaced[up]} replaced"
    return ""


def to_read(steps: Sequence[Node], *, destroy: bool = False) -> list[Node]:
    """The steps a plan reads. A teardown reads only what it may delete: data sources (the
    network, the machine image) feed desired states and their checks, which a teardown has none
    of. A region that has lost its AMI alias must not keep a stack from being deleted."""
    return [s for s in steps if isinstance(s, Resource)] if destroy else list(steps)


def plan(
    steps: Sequence[Node],
    ctx: Context,
    *,
    destroy: bool = False,
    currents: dict[str, dict[str, Any] | None] | None = None,
) -> Plan:
    """One Change per resource; data sources only feed outputs (and their checks). Every
    check's problems are collected and raised together, before anything is written.
    `currents`: reads already made (`read_all`), by key; the other steps are read here."""
    by_key = {s.key: s for s in steps}
    keys = order(steps)
    known = dict(currents or {})
    currents = {**known, **read_all([s for s in to_read(steps, destroy=destroy) if s.key not in known], ctx)}
    changes: list[Change] = []
    problems: list[str] = []
    replaced: dict[str, str] = {}  # key -> kind of each step planned for replacement
    for key in keys:
        step, current = by_key[key], currents.get(key)
        if not isinstance(step, Resource):
            if destroy:
                continue
            problems.extend(step.check(ctx.for_step(key), current))
            ctx.set_output(key, dict(current or {}))
            continue
        owned = current is None or bool(current.get("_owned", True))
        name = _live_name(step, ctx, current)
        if destroy:
            if current is not None:
                action = Action.DELETE if owned else Action.NOOP
                changes.append(Change(key, step.kind, name, action, current=current, note="" if owned else NOT_OWNED))
            ctx.set_output(key, dict(current or {}))
            continue
        desired = step.desired(ctx.for_step(key))
        if not owned:
            change = Change(key, step.kind, name, Action.NOOP, current=current, desired=desired, note=NOT_OWNED)
        else:
            action, diffs = choose_action(desired, current, step.replace_on, step.versioned)
            # Optional, outside the Resource protocol: a fact to show beside the step that is not a
            # change (the launch template's "a newer AMI is available").
            note_of = getattr(step, "note", None)
            note = str(note_of(ctx.for_step(key), desired, current)) if note_of and desired is not None else ""
            reason = bound_replacement(step, replaced) if current is not None and desired is not None else ""
            if reason:
                action = Action.REPLACE
            elif desired is None and current is not None:  # an orphan: why it goes (optional, as `note`)
                reason = str(getattr(step, "gone_reason", ""))
            change = Change(key, step.kind, name, action, diffs, current, desired, note, reason=reason)
        if change.action is Action.REPLACE:
            replaced[key] = step.kind
        if desired is not None:
            problems.extend(step.check(ctx.for_step(key), desired, current))
            # Optional, like `note`: values the file sets that AWS owns (a desired count under
            # auto scaling), each saying who.
            notes_of = getattr(step, "notes", None)
            change.notes = list(notes_of(ctx.for_step(key), desired, current)) if notes_of else []
        ctx.set_output(key, _outputs_after(step, change.action, current))
        changes.append(change)
    if problems:
        raise CheckError(problems)
    return Plan(changes)
