"""engine/apply.py with fake steps and a fake context (no Stack, no AWS): parallel applies (proved
with barriers, not timing), "(known after apply)" resolved, failures skipping only dependants,
deletions in reverse order."""

from __future__ import annotations

import io
import threading
from dataclasses import replace
from typing import Any

from rich.console import Console

from spotecs.engine.apply import Event
from spotecs.engine.contract import Node
from spotecs.engine.model import Action, Unknown
from spotecs.engine.plan import NOT_OWNED, plan
from spotecs.render import result_doc, result_text
from tests.helpers import Cloud, FakeContext, Thing, actions, run


def test_apply_creates_then_replan_is_noop() -> None:
    cloud = Cloud()
    steps: list[Node] = [Thing("a", cloud), Thing("b", cloud, uses=["a"]), Thing("c", cloud, uses=["b"])]
    _, result = run(steps)
    assert result.ok
    assert result.applied == ["a", "b", "c"]
    again = plan(steps, FakeContext())
    assert not again.has_changes
    assert all(c.action is Action.NOOP for c in again.changes)


def test_apply_resolves_known_after_apply_values() -> None:
    cloud = Cloud()
    a, b = Thing("a", cloud), Thing("b", cloud, uses=["a"])
    p, result = run([a, b])
    assert isinstance(p.get("b").desired["a_id"], Unknown)  # type: ignore[index]
    assert result.ok
    real_id = cloud.resources["a"]["id"]
    assert b.seen_desired == [{"size": 1, "a_id": real_id}]
    assert cloud.resources["b"]["a_id"] == real_id


def test_apply_update_passes_merged_outputs_downstream() -> None:
    cloud = Cloud()
    cloud.resources["a"] = {"size": 1, "id": "i-a", "revision": 1, "_owned": True}
    a = Thing("a", cloud, settings={"size": 2}, versioned=True)

    class UsesRevision(Thing):
        def desired(self, ctx: FakeContext) -> dict[str, Any] | None:
            return {"a_id": ctx.output("a", "id"), "a_revision": ctx.output("a", "revision")}

    b = UsesRevision("b", cloud, depends_on=["a"])
    cloud.resources["b"] = {"a_id": "i-a", "a_revision": 1, "id": "i-b", "_owned": True}
    p, result = run([a, b])
    assert actions(p) == {"a": Action.NEW_VERSION, "b": Action.UPDATE}
    assert result.ok
    # id kept from the current resource, revision from update()'s outputs
    assert b.seen_desired == [{"a_id": "i-a", "a_revision": 2}]


def test_apply_replace_deletes_then_creates_and_dependants_get_the_new_id() -> None:
    cloud = Cloud()
    cloud.resources["a"] = {"size": 1, "id": "i-old", "_owned": True}
    cloud.resources["b"] = {"size": 1, "a_id": "i-old", "id": "i-b", "_owned": True}
    a = Thing("a", cloud, settings={"size": 2}, replace_on=["size"])
    b = Thing("b", cloud, uses=["a"])
    _, result = run([a, b])
    assert result.ok
    assert cloud.ops("create", "delete", "update") == [("delete", "a"), ("create", "a"), ("update", "b")]
    assert cloud.resources["b"]["a_id"] == cloud.resources["a"]["id"] != "i-old"


def test_apply_runs_independent_steps_in_parallel() -> None:
    cloud = Cloud()
    barrier = threading.Barrier(2)

    def meet() -> None:
        barrier.wait(timeout=10)  # BrokenBarrierError unless both creates run at once

    steps: list[Node] = [
        Thing("x", cloud, hooks={"create": meet}),
        Thing("y", cloud, hooks={"create": meet}),
        Thing("z", cloud, uses=["x", "y"]),
    ]
    _, result = run(steps)
    assert result.failed == {}
    assert sorted(result.applied) == ["x", "y", "z"]
    assert result.applied[-1] == "z"


def test_apply_waits_for_upstreams() -> None:
    cloud = Cloud()
    steps: list[Node] = [Thing("c", cloud, uses=["b"]), Thing("b", cloud, uses=["a"]), Thing("a", cloud)]
    run(steps)
    assert cloud.ops("create") == [("create", "a"), ("create", "b"), ("create", "c")]


def test_apply_failure_skips_dependants_and_finishes_independent_branch() -> None:
    cloud = Cloud()

    def boom() -> None:
        raise RuntimeError("Failed to create thing demo-a: LimitExceeded")

    steps: list[Node] = [
        Thing("a", cloud, hooks={"create": boom}),
        Thing("b", cloud, uses=["a"]),
        Thing("c", cloud, uses=["b"]),
        Thing("other", cloud),
        Thing("other-child", cloud, uses=["other"]),
    ]
    events: list[Event] = []
    _, result = run(steps, events=events)
    assert not result.ok
    assert list(result.failed) == ["a"]
    assert "LimitExceeded" in str(result.failed["a"])
    assert sorted(result.skipped) == ["b", "c"]
    assert sorted(result.applied) == ["other", "other-child"]
    assert ("create", "b") not in cloud.log and ("create", "c") not in cloud.log
    states = {(e.key, e.state) for e in events}
    assert {("a", "failed"), ("b", "skipped"), ("c", "skipped"), ("other", "done")} <= states
    failed = next(e for e in events if e.state == "failed")
    assert failed.action is Action.CREATE and failed.name == "demo-a" and failed.kind == "thing"
    assert isinstance(failed.error, RuntimeError)


def test_apply_events_start_before_done() -> None:
    cloud = Cloud()
    events: list[Event] = []
    run([Thing("a", cloud), Thing("b", cloud, uses=["a"])], events=events)
    assert [(e.key, e.state) for e in events] == [("a", "start"), ("a", "done"), ("b", "start"), ("b", "done")]
    assert all(e.action is Action.CREATE for e in events)


class Named(Thing):
    """A resource whose real name is chosen when it is created (like a capacity provider)."""

    def create(self, ctx: FakeContext, desired: dict[str, Any]) -> dict[str, Any]:
        return {**super().create(ctx, desired), "name": "demo-a-1a2b3c4d"}


def test_apply_done_event_names_what_was_created() -> None:
    events: list[Event] = []
    p, result = run([Named("a", Cloud()), Thing("b", Cloud())], events=events)
    done = {e.key: e.name for e in events if e.state == "done"}
    assert done == {"a": "demo-a-1a2b3c4d", "b": "demo-b"}
    # The result keeps it too: its summary and JSON name what exists, not the plan's placeholder.
    assert result.names == {"a": "demo-a-1a2b3c4d"} and p.get("a").name != "demo-a-1a2b3c4d"
    console, out = Console(file=io.StringIO(), width=200), io.StringIO()
    console.file = out
    result_text(console, p, replace(result, skipped=["x"]))  # not ok: lists what was applied
    assert "  applied created thing demo-a-1a2b3c4d" in out.getvalue().splitlines()
    assert result_doc(p, result)["created"][0] == {"key": "a", "kind": "thing", "name": "demo-a-1a2b3c4d"}


def test_apply_does_not_touch_noop_steps() -> None:
    cloud = Cloud()
    cloud.resources["a"] = {"size": 1, "id": "i-a", "_owned": True}
    steps: list[Node] = [Thing("a", cloud), Thing("b", cloud, uses=["a"])]
    _, result = run(steps)
    assert result.applied == ["b"]
    assert cloud.ops("create", "update", "delete") == [("create", "b")]


def test_destroy_plans_delete_for_what_exists_and_deletes_in_reverse_order() -> None:
    cloud = Cloud()
    steps: list[Node] = [
        Thing("vpc-ish", cloud),
        Thing("sg", cloud, uses=["vpc-ish"]),
        Thing("lb", cloud, uses=["sg"]),
        Thing("absent", cloud),
    ]
    run(steps[:3])
    cloud.log.clear()
    p, result = run(steps, destroy=True)
    assert actions(p) == {"vpc-ish": Action.DELETE, "sg": Action.DELETE, "lb": Action.DELETE}
    assert p.summary() == "Plan: 0 to add, 0 to change, 0 to replace, 3 to destroy."
    assert result.ok
    assert cloud.ops("delete") == [("delete", "lb"), ("delete", "sg"), ("delete", "vpc-ish")]
    assert cloud.resources == {}
    again = plan(steps, FakeContext(), destroy=True)
    assert again.changes == [] and not again.has_changes


def test_destroy_failure_keeps_upstreams() -> None:
    cloud = Cloud()

    def boom() -> None:
        raise RuntimeError("DependencyViolation")

    steps: list[Node] = [Thing("a", cloud), Thing("b", cloud, uses=["a"], hooks={"delete": boom}), Thing("x", cloud)]
    run([Thing("a", cloud), Thing("b", cloud, uses=["a"]), Thing("x", cloud)])
    _, result = run(steps, destroy=True)
    assert list(result.failed) == ["b"]
    assert result.skipped == ["a"]
    assert "a" in cloud.resources and "x" not in cloud.resources


def test_destroy_runs_independent_deletes_in_parallel() -> None:
    cloud = Cloud()
    barrier = threading.Barrier(2)

    def meet() -> None:
        barrier.wait(timeout=10)

    run([Thing("a", cloud), Thing("b", cloud)])
    _, result = run(
        [Thing("a", cloud, hooks={"delete": meet}), Thing("b", cloud, hooks={"delete": meet})], destroy=True
    )
    assert result.ok and sorted(result.applied) == ["a", "b"]


class Unwanted(Thing):
    """A resource the configuration no longer names (an orphan): wanted gone."""

    def desired(self, ctx: FakeContext) -> dict[str, Any] | None:
        return None


def test_up_plan_deletes_unwanted_steps_after_the_forward_walk_in_reverse_order() -> None:
    cloud = Cloud()
    run([Thing("a", cloud), Thing("old-a", cloud), Thing("old-b", cloud, uses=["old-a"]), Thing("theirs", cloud)])
    cloud.resources["theirs"]["_owned"] = False
    cloud.log.clear()
    steps: list[Node] = [
        Thing("a", cloud, settings={"size": 2}),
        Thing("new", cloud, uses=["a"]),
        Unwanted("old-a", cloud),
        Unwanted("old-b", cloud, uses=["old-a"]),
        Unwanted("theirs", cloud),
        Unwanted("never-made", cloud),
    ]
    p, result = run(steps)
    assert actions(p) == {
        "a": Action.UPDATE,
        "new": Action.CREATE,
        "old-a": Action.DELETE,
        "old-b": Action.DELETE,
        "theirs": Action.NOOP,
        "never-made": Action.NOOP,
    }
    assert p.get("theirs").note == NOT_OWNED
    assert p.summary() == "Plan: 1 to add, 1 to change, 0 to replace, 2 to destroy."
    assert result.ok
    assert cloud.ops("create", "update", "delete") == [
        ("update", "a"),
        ("create", "new"),
        ("delete", "old-b"),
        ("delete", "old-a"),
    ]
    assert "theirs" in cloud.resources and "old-a" not in cloud.resources
