"""The generic engine, with small in-memory steps (no AWS): the diff and action choice
(table-driven), dependency order, parallel reads and applies (proved with barriers, not timing),
outputs flowing to dependants, "(known after apply)" resolved at apply, failures skipping only
dependants, check() problems collected, not-owned resources left alone, destroy in reverse."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Collection
from typing import Any

import pytest

from spotecs.engine.apply import Event, apply
from spotecs.engine.diff import choose_action, diff
from spotecs.engine.model import Action, Change, FieldDiff, Plan, Unknown, has_unknown
from spotecs.engine.plan import NOT_OWNED, graph, order, plan
from spotecs.errors import CheckError
from spotecs.steps.base import Context, Step, Timeouts
from tests.conftest import make_stack

# ----------------------------------------------------------------------------- fakes


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


class Thing(Step):
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
        data_only: bool = False,
    ) -> None:
        super().__init__(key, f"demo-{key}", (*depends_on, *(u for u in uses if u not in depends_on)))
        self.cloud = cloud
        self.settings = dict(settings or {"size": 1})
        self.uses = tuple(uses)
        self.replace_on = frozenset(replace_on)  # type: ignore[misc]
        self.versioned = versioned  # type: ignore[misc]
        self.version_outputs = frozenset({"revision"})  # type: ignore[misc]
        self.data_only = data_only  # type: ignore[misc]
        self.hooks = hooks or {}
        self.problems = problems or []
        self.seen_desired: list[dict[str, Any]] = []

    def _hook(self, op: str) -> None:
        if op in self.hooks:
            self.hooks[op]()

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {**self.settings, **{f"{u}_id": ctx.output(u, "id") for u in self.uses}}

    def read(self, ctx: Context) -> dict[str, Any] | None:
        self.cloud.record("read", self.key)
        self._hook("read")
        with self.cloud.lock:
            r = self.cloud.resources.get(self.key)
            return None if r is None else dict(r)

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        assert not has_unknown(desired), f"{self.key} created with unresolved values: {desired}"
        self.seen_desired.append(desired)
        self.cloud.record("create", self.key)
        self._hook("create")
        rid = self.cloud.new_id(self.key)
        with self.cloud.lock:
            self.cloud.resources[self.key] = {**desired, "id": rid, "revision": 1, "_owned": True}
        return {"id": rid, "revision": 1}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
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

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        self.cloud.record("delete", self.key)
        self._hook("delete")
        with self.cloud.lock:
            self.cloud.resources.pop(self.key, None)

    def check(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        return list(self.problems)


def ctx() -> Context:
    # The engine never touches AWS: `aws` is unused by the fake steps.
    return Context(stack=make_stack(), aws=None, timeouts=Timeouts(default=5, delay=0))  # type: ignore[arg-type]


def run(steps: list[Step], *, destroy: bool = False, events: list[Event] | None = None) -> tuple[Plan, Any]:
    c = ctx()
    p = plan(steps, c, destroy=destroy)
    return p, apply(p, steps, c, on_event=(events.append if events is not None else lambda e: None))


def actions(p: Plan) -> dict[str, Action]:
    return {c.key: c.action for c in p.changes}


# ----------------------------------------------------------------------------- diff


U = Unknown("x.id")

DIFFS = [
    ("equal", {"a": 1}, {"a": 1}, []),
    ("changed-scalar", {"a": 2}, {"a": 1}, [("a", 1, 2)]),
    ("missing-in-current", {"a": 1}, {}, [("a", None, 1)]),
    ("current-extras-are-outputs", {"a": 1}, {"a": 1, "id": "i-1", "arn": "arn:x"}, []),
    ("metadata-keys-ignored", {"a": 1, "_note": "x"}, {"a": 1, "_owned": False}, []),
    (
        "nested-key-by-key",
        {"hc": {"path": "/", "interval": 30}},
        {"hc": {"path": "/x", "interval": 30}},
        [("hc.path", "/x", "/")],
    ),
    ("nested-two-changes", {"n": {"a": 1, "b": 2}}, {"n": {"a": 0, "b": 0}}, [("n.a", 0, 1), ("n.b", 0, 2)]),
    ("list-as-a-whole", {"l": [1, 2]}, {"l": [2, 1]}, [("l", [2, 1], [1, 2])]),
    ("list-equal", {"l": [{"k": 1}]}, {"l": [{"k": 1}]}, []),
    (
        "list-of-dicts-extra-key-differs",
        {"l": [{"k": 1}]},
        {"l": [{"k": 1, "x": 2}]},
        [("l", [{"k": 1, "x": 2}], [{"k": 1}])],
    ),
    ("none-matches-empty", {"a": None, "b": None, "c": None, "d": None}, {"a": "", "b": [], "c": {}}, []),
    ("none-vs-value", {"a": None}, {"a": 30}, [("a", 30, None)]),
    ("zero-is-not-none", {"a": None}, {"a": 0}, [("a", 0, None)]),
    ("dict-vs-scalar", {"a": {"x": 1}}, {"a": None}, [("a", None, {"x": 1})]),
]


@pytest.mark.parametrize(("desired", "current", "expected"), [d[1:] for d in DIFFS], ids=[d[0] for d in DIFFS])
def test_diff(desired: dict[str, Any], current: dict[str, Any], expected: list[tuple[str, Any, Any]]) -> None:
    assert [(d.path, d.old, d.new) for d in diff(desired, current)] == expected


def test_unknown_is_always_a_change() -> None:
    (d,) = diff({"vpc": U}, {"vpc": "vpc-1"})
    assert d.path == "vpc" and d.new is U
    assert diff({"l": [U]}, {"l": ["x"]})[0].path == "l"
    assert U != U  # an unknown value never equals anything, itself included
    assert repr(U) == "(known after apply)"
    assert has_unknown({"a": [{"b": U}]}) and not has_unknown({"a": [{"b": 1}]})


# (id, desired, current, replace_on, versioned, action, forced paths)
CHOICES = [
    ("absent-create", {"a": 1}, None, (), False, Action.CREATE, []),
    ("absent-nothing-wanted", None, None, (), False, Action.NOOP, []),
    ("wanted-gone-delete", None, {"a": 1}, (), False, Action.DELETE, []),
    ("equal-noop", {"a": 1}, {"a": 1, "id": "x"}, (), False, Action.NOOP, []),
    ("change-update", {"a": 2}, {"a": 1}, (), False, Action.UPDATE, []),
    ("change-versioned", {"a": 2}, {"a": 1}, (), True, Action.NEW_VERSION, []),
    ("replace-field", {"a": 2, "b": 1}, {"a": 1, "b": 0}, ("a",), False, Action.REPLACE, ["a"]),
    ("replace-wins-over-version", {"a": 2}, {"a": 1}, ("a",), True, Action.REPLACE, ["a"]),
    ("nested-replace-by-top-field", {"n": {"x": 2}}, {"n": {"x": 1}}, ("n",), False, Action.REPLACE, ["n.x"]),
    ("other-field-no-replace", {"a": 1, "b": 2}, {"a": 1, "b": 1}, ("a",), False, Action.UPDATE, []),
    ("unknown-update", {"a": U}, {"a": "x"}, (), False, Action.UPDATE, []),
    ("unknown-in-replace-field", {"a": U}, {"a": "x"}, ("a",), False, Action.REPLACE, ["a"]),
]


@pytest.mark.parametrize(
    ("desired", "current", "replace_on", "versioned", "action", "forced"),
    [c[1:] for c in CHOICES],
    ids=[c[0] for c in CHOICES],
)
def test_choose_action(
    desired: dict[str, Any] | None,
    current: dict[str, Any] | None,
    replace_on: tuple[str, ...],
    versioned: bool,
    action: Action,
    forced: list[str],
) -> None:
    got, diffs = choose_action(desired, current, replace_on, versioned)
    assert got is action
    assert [d.path for d in diffs if d.forces_replace] == forced


@pytest.mark.parametrize(
    ("action", "symbol", "verb", "past"),
    [
        (Action.CREATE, "+", "create", "created"),
        (Action.UPDATE, "~", "update", "updated"),
        (Action.NEW_VERSION, "~", "new version", "new version"),
        (Action.REPLACE, "-/+", "replace", "replaced"),
        (Action.DELETE, "-", "delete", "deleted"),
        (Action.NOOP, " ", "no-op", "unchanged"),
    ],
)
def test_action_symbols(action: Action, symbol: str, verb: str, past: str) -> None:
    assert (action.symbol, action.verb, action.past) == (symbol, verb, past)


def test_plan_summary_counts() -> None:
    p = Plan(
        [
            Change(str(i), "thing", str(i), a)
            for i, a in enumerate(
                [
                    Action.CREATE,
                    Action.CREATE,
                    Action.UPDATE,
                    Action.NEW_VERSION,
                    Action.REPLACE,
                    Action.DELETE,
                    Action.NOOP,
                ]
            )
        ]
    )
    assert p.counts() == {"add": 2, "change": 2, "replace": 1, "destroy": 1}
    assert p.summary() == "Plan: 2 to add, 2 to change, 1 to replace, 1 to destroy."
    assert p.has_changes
    assert not Plan([Change("a", "thing", "a", Action.NOOP)]).has_changes
    assert p.get("4").action is Action.REPLACE


# ----------------------------------------------------------------------------- order


def _fake(key: str, *deps: str) -> Step:
    return Step(key, key, deps)


# (id, steps as (key, deps...), constraint pairs (before, after) or an error fragment)
ORDERS = [
    ("chain", [("c", "b"), ("b", "a"), ("a",)], [("a", "b"), ("b", "c")]),
    (
        "diamond",
        [("top",), ("l", "top"), ("r", "top"), ("bottom", "l", "r")],
        [("top", "l"), ("top", "r"), ("l", "bottom"), ("r", "bottom")],
    ),
    ("independent", [("x",), ("y",)], []),
    ("cycle", [("a", "b"), ("b", "a")], "dependency cycle"),
    ("self-cycle", [("a", "a")], "dependency cycle"),
    ("unknown-dep", [("a", "ghost")], "depends on unknown step(s) ['ghost']"),
    ("duplicate", [("a",), ("a",)], "duplicate step keys"),
]


@pytest.mark.parametrize(("spec", "expected"), [o[1:] for o in ORDERS], ids=[o[0] for o in ORDERS])
def test_order(spec: list[tuple[str, ...]], expected: list[tuple[str, str]] | str) -> None:
    steps = [_fake(*s) for s in spec]
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=re.escape(expected)):
            order(steps)
        return
    got = order(steps)
    assert sorted(got) == sorted(s[0] for s in spec)
    for before, after in expected:
        assert got.index(before) < got.index(after)


def test_graph_is_the_steps_dependencies() -> None:
    assert graph([_fake("a"), _fake("b", "a")]) == {"a": (), "b": ("a",)}


# ----------------------------------------------------------------------------- plan


def test_plan_is_data_built_before_any_write() -> None:
    cloud = Cloud()
    steps: list[Step] = [Thing("a", cloud), Thing("b", cloud, uses=["a"])]
    p = plan(steps, ctx())
    assert actions(p) == {"a": Action.CREATE, "b": Action.CREATE}
    assert cloud.ops("create", "update", "delete") == []
    b = p.get("b")
    assert b.kind == "thing" and b.name == "demo-b"
    assert isinstance(b.desired["a_id"], Unknown)  # type: ignore[index]
    assert b.desired["size"] == 1  # type: ignore[index]


def test_plan_reads_run_in_parallel() -> None:
    cloud = Cloud()
    barrier = threading.Barrier(2)

    def meet() -> None:
        barrier.wait(timeout=10)  # BrokenBarrierError unless both reads run at once

    steps: list[Step] = [Thing("a", cloud, hooks={"read": meet}), Thing("b", cloud, uses=["a"], hooks={"read": meet})]
    p = plan(steps, ctx())
    assert len(p.changes) == 2


def test_plan_read_error_propagates() -> None:
    def boom() -> None:
        raise RuntimeError("describe failed")

    with pytest.raises(RuntimeError, match="describe failed"):
        plan([Thing("a", Cloud(), hooks={"read": boom})], ctx())


def test_plan_each_action_with_field_diffs() -> None:
    cloud = Cloud()
    cloud.resources = {
        "same": {"size": 1, "id": "i-same", "_owned": True},
        "grow": {"size": 1, "id": "i-grow", "_owned": True},
        "move": {"size": 1, "zone": "a", "id": "i-move", "_owned": True},
        "rev": {"size": 1, "id": "i-rev", "revision": 3, "_owned": True},
    }
    steps: list[Step] = [
        Thing("new", cloud),
        Thing("same", cloud),
        Thing("grow", cloud, settings={"size": 2}),
        Thing("move", cloud, settings={"size": 1, "zone": "b"}, replace_on=["zone"]),
        Thing("rev", cloud, settings={"size": 5}, versioned=True),
    ]
    p = plan(steps, ctx())
    assert actions(p) == {
        "new": Action.CREATE,
        "same": Action.NOOP,
        "grow": Action.UPDATE,
        "move": Action.REPLACE,
        "rev": Action.NEW_VERSION,
    }
    assert p.get("grow").diffs == [FieldDiff("size", 1, 2)]
    assert p.get("move").diffs == [FieldDiff("zone", "a", "b", True)]
    assert p.summary() == "Plan: 1 to add, 2 to change, 1 to replace, 0 to destroy."


def test_plan_outputs_of_existing_upstream_are_known() -> None:
    cloud = Cloud()
    cloud.resources["a"] = {"size": 1, "id": "i-a", "_owned": True}
    steps: list[Step] = [Thing("a", cloud), Thing("b", cloud, uses=["a"])]
    assert plan(steps, ctx()).get("b").desired == {"size": 1, "a_id": "i-a"}


def test_plan_outputs_of_replaced_upstream_are_unknown() -> None:
    cloud = Cloud()
    cloud.resources["a"] = {"size": 1, "id": "i-a", "_owned": True}
    cloud.resources["b"] = {"size": 1, "a_id": "i-a", "id": "i-b", "_owned": True}
    steps: list[Step] = [Thing("a", cloud, settings={"size": 2}, replace_on=["size"]), Thing("b", cloud, uses=["a"])]
    p = plan(steps, ctx())
    assert p.get("a").action is Action.REPLACE
    assert p.get("b").action is Action.UPDATE
    assert isinstance(p.get("b").desired["a_id"], Unknown)  # type: ignore[index]


def test_plan_new_version_hides_only_per_version_outputs() -> None:
    cloud = Cloud()
    cloud.resources["td"] = {"size": 1, "id": "i-td", "revision": 3, "_owned": True}

    class UsesRevision(Thing):
        def desired(self, ctx: Context) -> dict[str, Any]:
            return {"family": ctx.output("td", "id"), "revision": ctx.output("td", "revision")}

    svc = UsesRevision("svc", cloud, depends_on=["td"])
    cloud.resources["svc"] = {"family": "i-td", "revision": 3, "id": "i-svc", "_owned": True}
    p = plan([Thing("td", cloud, settings={"size": 2}, versioned=True), svc], ctx())
    assert p.get("td").action is Action.NEW_VERSION
    d = p.get("svc").desired
    assert d is not None
    assert d["family"] == "i-td"
    assert isinstance(d["revision"], Unknown)


def test_plan_data_only_steps_feed_outputs_but_are_not_changes() -> None:
    cloud = Cloud()
    cloud.resources["net"] = {"id": "vpc-1"}
    steps: list[Step] = [Thing("net", cloud, data_only=True), Thing("sg", cloud, uses=["net"])]
    p = plan(steps, ctx())
    assert [c.key for c in p.changes] == ["sg"]
    assert p.get("sg").desired["net_id"] == "vpc-1"  # type: ignore[index]


def test_check_problems_are_all_collected_before_any_write() -> None:
    cloud = Cloud()
    steps: list[Step] = [
        Thing("a", cloud, problems=["task api needs 4096 MiB; the largest instance type has 2048"]),
        Thing("b", cloud),
        Thing("c", cloud, uses=["b"], problems=["AMI is arm64 but t3.small is x86_64", "third problem"]),
    ]
    with pytest.raises(CheckError) as info:
        plan(steps, ctx())
    assert info.value.problems == [
        "task api needs 4096 MiB; the largest instance type has 2048",
        "AMI is arm64 but t3.small is x86_64",
        "third problem",
    ]
    assert info.value.exit_code == 2
    assert cloud.ops("create", "update", "delete") == []


def test_plan_carries_the_stacks_warnings() -> None:
    p = plan([Thing("a", Cloud())], ctx())
    assert any("spot-heavy" in w for w in p.warnings)


# ----------------------------------------------------------------------------- not owned


def test_not_owned_resource_is_noop_with_note_and_never_updated() -> None:
    cloud = Cloud()
    cloud.resources["role"] = {"size": 1, "id": "i-theirs", "_owned": False}
    steps: list[Step] = [Thing("role", cloud, settings={"size": 9}), Thing("user", cloud, uses=["role"])]
    c = ctx()
    p = plan(steps, c)
    ch = p.get("role")
    assert ch.action is Action.NOOP
    assert ch.note == NOT_OWNED
    # Its outputs are used as they are.
    assert p.get("user").desired["role_id"] == "i-theirs"  # type: ignore[index]
    result = apply(p, steps, c)
    assert result.ok
    assert ("update", "role") not in cloud.log
    assert cloud.resources["role"]["size"] == 1


def test_not_owned_resource_is_never_deleted() -> None:
    cloud = Cloud()
    cloud.resources["mine"] = {"size": 1, "id": "i-1", "_owned": True}
    cloud.resources["theirs"] = {"size": 1, "id": "i-2", "_owned": False}
    p, _ = run([Thing("mine", cloud), Thing("theirs", cloud)], destroy=True)
    assert actions(p) == {"mine": Action.DELETE, "theirs": Action.NOOP}
    assert p.get("theirs").note == NOT_OWNED
    assert cloud.ops("delete") == [("delete", "mine")]
    assert "theirs" in cloud.resources


# ----------------------------------------------------------------------------- apply


def test_apply_creates_then_replan_is_noop() -> None:
    cloud = Cloud()
    steps: list[Step] = [Thing("a", cloud), Thing("b", cloud, uses=["a"]), Thing("c", cloud, uses=["b"])]
    _, result = run(steps)
    assert result.ok
    assert result.applied == ["a", "b", "c"]
    again = plan(steps, ctx())
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
        def desired(self, ctx: Context) -> dict[str, Any]:
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

    steps: list[Step] = [
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
    steps: list[Step] = [Thing("c", cloud, uses=["b"]), Thing("b", cloud, uses=["a"]), Thing("a", cloud)]
    run(steps)
    assert cloud.ops("create") == [("create", "a"), ("create", "b"), ("create", "c")]


def test_apply_failure_skips_dependants_and_finishes_independent_branch() -> None:
    cloud = Cloud()

    def boom() -> None:
        raise RuntimeError("Failed to create thing demo-a: LimitExceeded")

    steps: list[Step] = [
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

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        return {**super().create(ctx, desired), "name": "demo-a-1a2b3c4d"}


def test_apply_done_event_names_what_was_created() -> None:
    events: list[Event] = []
    run([Named("a", Cloud()), Thing("b", Cloud())], events=events)
    done = {e.key: e.name for e in events if e.state == "done"}
    assert done == {"a": "demo-a-1a2b3c4d", "b": "demo-b"}


def test_apply_does_not_touch_noop_steps() -> None:
    cloud = Cloud()
    cloud.resources["a"] = {"size": 1, "id": "i-a", "_owned": True}
    steps: list[Step] = [Thing("a", cloud), Thing("b", cloud, uses=["a"])]
    _, result = run(steps)
    assert result.applied == ["b"]
    assert cloud.ops("create", "update", "delete") == [("create", "b")]


# ----------------------------------------------------------------------------- destroy


def test_destroy_plans_delete_for_what_exists_and_deletes_in_reverse_order() -> None:
    cloud = Cloud()
    steps: list[Step] = [
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
    again = plan(steps, ctx(), destroy=True)
    assert again.changes == [] and not again.has_changes


def test_destroy_failure_keeps_upstreams() -> None:
    cloud = Cloud()

    def boom() -> None:
        raise RuntimeError("DependencyViolation")

    steps: list[Step] = [Thing("a", cloud), Thing("b", cloud, uses=["a"], hooks={"delete": boom}), Thing("x", cloud)]
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

    def desired(self, ctx: Context) -> Any:
        return None


def test_up_plan_deletes_unwanted_steps_after_the_forward_walk_in_reverse_order() -> None:
    cloud = Cloud()
    run([Thing("a", cloud), Thing("old-a", cloud), Thing("old-b", cloud, uses=["old-a"]), Thing("theirs", cloud)])
    cloud.resources["theirs"]["_owned"] = False
    cloud.log.clear()
    steps: list[Step] = [
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
