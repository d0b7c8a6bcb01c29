"""engine/plan.py with fake steps and a fake context (no Stack, no AWS): dependency order, parallel
reads, outputs flowing to dependants, data sources, check() problems collected, not-owned
resources left alone."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from spotecs.engine.apply import apply
from spotecs.engine.contract import Node
from spotecs.engine.model import Action, FieldDiff, Unknown
from spotecs.engine.plan import NOT_OWNED, order, plan, read_all
from spotecs.errors import CheckError
from tests.helpers import Cloud, Data, FakeContext, Thing, actions, run


def _fake(key: str, *deps: str) -> Thing:
    return Thing(key, Cloud(), depends_on=deps)


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


def test_plan_is_data_built_before_any_write() -> None:
    cloud = Cloud()
    steps: list[Node] = [Thing("a", cloud), Thing("b", cloud, uses=["a"])]
    p = plan(steps, FakeContext())
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

    steps: list[Node] = [Thing("a", cloud, hooks={"read": meet}), Thing("b", cloud, uses=["a"], hooks={"read": meet})]
    p = plan(steps, FakeContext())
    assert len(p.changes) == 2


class Chained(Thing):
    """A step whose read is a longer chain of round trips than the others', started by `first_read`."""

    def __init__(self, key: str, cloud: Cloud, log: list[str], fail: str = "") -> None:
        super().__init__(key, cloud, hooks={"read": lambda: log.append(key)})
        self.log, self.fail = log, fail

    def first_read(self, ctx: FakeContext) -> None:
        self.log.append(f"first read of {self.key}")
        if self.fail:
            raise RuntimeError(self.fail)


def test_the_first_read_of_the_longest_chain_is_asked_before_every_other_read() -> None:
    # One worker: the reads run in the order they were asked. The step's own read keeps its place.
    cloud, log = Cloud(), []
    steps: list[Node] = [
        Thing("a", cloud, hooks={"read": lambda: log.append("a")}),
        Chained("chain", cloud, log),
        Thing("b", cloud, hooks={"read": lambda: log.append("b")}),
    ]
    got = read_all(steps, FakeContext(), max_workers=1)
    assert log == ["first read of chain", "a", "chain", "b"]
    assert list(got) == ["a", "chain", "b"]
    assert plan(steps, FakeContext()).get("chain").action is Action.CREATE


class TwoRounds(Thing):
    """A step whose read asks what names a resource, then reads it by that name."""

    chained = True


def test_chained_reads_are_asked_before_single_round_reads() -> None:
    # One worker: the reads run in the order they were asked; the answers keep the steps' order.
    cloud, log = Cloud(), []
    steps: list[Node] = [
        Thing("a", cloud, hooks={"read": lambda: log.append("a")}),
        TwoRounds("two", cloud, hooks={"read": lambda: log.append("two")}),
        Chained("chain", cloud, log),
        Thing("b", cloud, hooks={"read": lambda: log.append("b")}),
    ]
    got = read_all(steps, FakeContext(), max_workers=1)
    assert log == ["first read of chain", "two", "a", "chain", "b"]
    assert list(got) == ["a", "two", "chain", "b"]


def test_a_read_error_comes_before_a_first_read_error() -> None:
    def boom() -> None:
        raise RuntimeError("describe failed")

    log: list[str] = []
    chained = [Chained("chain", Cloud(), log, fail="first read failed")]
    with pytest.raises(RuntimeError, match=r"^first read failed$"):
        read_all(chained, FakeContext())
    steps: list[Node] = [*chained, Thing("a", Cloud(), hooks={"read": boom})]
    with pytest.raises(RuntimeError, match=r"^describe failed$"):
        read_all(steps, FakeContext())


def test_plan_read_error_propagates() -> None:
    def boom() -> None:
        raise RuntimeError("describe failed")

    with pytest.raises(RuntimeError, match="describe failed"):
        plan([Thing("a", Cloud(), hooks={"read": boom})], FakeContext())


def test_plan_each_action_with_field_diffs() -> None:
    cloud = Cloud()
    cloud.resources = {
        "same": {"size": 1, "id": "i-same", "_owned": True},
        "grow": {"size": 1, "id": "i-grow", "_owned": True},
        "move": {"size": 1, "zone": "a", "id": "i-move", "_owned": True},
        "rev": {"size": 1, "id": "i-rev", "revision": 3, "_owned": True},
    }
    steps: list[Node] = [
        Thing("new", cloud),
        Thing("same", cloud),
        Thing("grow", cloud, settings={"size": 2}),
        Thing("move", cloud, settings={"size": 1, "zone": "b"}, replace_on=["zone"]),
        Thing("rev", cloud, settings={"size": 5}, versioned=True),
    ]
    p = plan(steps, FakeContext())
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
    steps: list[Node] = [Thing("a", cloud), Thing("b", cloud, uses=["a"])]
    assert plan(steps, FakeContext()).get("b").desired == {"size": 1, "a_id": "i-a"}


def test_plan_outputs_of_replaced_upstream_are_unknown() -> None:
    cloud = Cloud()
    cloud.resources["a"] = {"size": 1, "id": "i-a", "_owned": True}
    cloud.resources["b"] = {"size": 1, "a_id": "i-a", "id": "i-b", "_owned": True}
    steps: list[Node] = [Thing("a", cloud, settings={"size": 2}, replace_on=["size"]), Thing("b", cloud, uses=["a"])]
    p = plan(steps, FakeContext())
    assert p.get("a").action is Action.REPLACE
    assert p.get("b").action is Action.UPDATE
    assert isinstance(p.get("b").desired["a_id"], Unknown)  # type: ignore[index]


def test_plan_new_version_hides_only_per_version_outputs() -> None:
    cloud = Cloud()
    cloud.resources["td"] = {"size": 1, "id": "i-td", "revision": 3, "_owned": True}

    class UsesRevision(Thing):
        def desired(self, ctx: FakeContext) -> dict[str, Any] | None:
            return {"family": ctx.output("td", "id"), "revision": ctx.output("td", "revision")}

    svc = UsesRevision("svc", cloud, depends_on=["td"])
    cloud.resources["svc"] = {"family": "i-td", "revision": 3, "id": "i-svc", "_owned": True}
    p = plan([Thing("td", cloud, settings={"size": 2}, versioned=True), svc], FakeContext())
    assert p.get("td").action is Action.NEW_VERSION
    d = p.get("svc").desired
    assert d is not None
    assert d["family"] == "i-td"
    assert isinstance(d["revision"], Unknown)


def test_plan_data_sources_feed_outputs_but_are_not_changes() -> None:
    cloud = Cloud()
    net = Data("net", {"id": "vpc-1"})
    steps: list[Node] = [net, Thing("sg", cloud, uses=["net"])]
    p = plan(steps, FakeContext())
    assert [c.key for c in p.changes] == ["sg"]
    assert p.get("sg").desired["net_id"] == "vpc-1"  # type: ignore[index]
    assert net.reads == 1


def test_a_data_source_is_never_written_not_even_by_a_teardown() -> None:
    cloud = Cloud()
    net = Data("net", {"id": "vpc-1"})
    run([net, Thing("sg", cloud, uses=["net"])])
    p, result = run([net, Thing("sg", cloud, uses=["net"])], destroy=True)
    assert [c.key for c in p.changes] == ["sg"] and result.applied == ["sg"]


def test_a_teardown_neither_reads_nor_checks_data_sources() -> None:
    """Facts feed desired states and their checks, which a teardown has none of: a problem one
    would find (an AMI alias gone from the region) must not keep a stack from being deleted."""
    cloud = Cloud()
    run([Data("net", {"id": "vpc-1"}), Thing("sg", cloud, uses=["net"])])
    net = Data("net", {"id": "vpc-1"}, problems=["instances.ami: al2023 has no ECS-optimized image"])
    p, result = run([net, Thing("sg", cloud, uses=["net"])], destroy=True)
    assert net.reads == 0
    assert [c.key for c in p.changes] == ["sg"] and result.applied == ["sg"]


def test_check_problems_are_all_collected_before_any_write() -> None:
    cloud = Cloud()
    steps: list[Node] = [
        Thing("a", cloud, problems=["task api needs 4096 MiB; the largest instance type has 2048"]),
        Thing("b", cloud),
        Thing("c", cloud, uses=["b"], problems=["AMI is arm64 but t3.small is x86_64", "third problem"]),
    ]
    with pytest.raises(CheckError) as info:
        plan(steps, FakeContext())
    assert info.value.problems == [
        "task api needs 4096 MiB; the largest instance type has 2048",
        "AMI is arm64 but t3.small is x86_64",
        "third problem",
    ]
    assert info.value.exit_code == 2
    assert cloud.ops("create", "update", "delete") == []


def test_a_data_source_check_joins_the_other_problems() -> None:
    cloud = Cloud()
    steps: list[Node] = [
        Data("net", {"id": None}, problems=["network.vpc_id: vpc-0abc does not exist in us-east-1"]),
        Thing("sg", cloud, uses=["net"], problems=["sg problem"]),
    ]
    with pytest.raises(CheckError) as info:
        plan(steps, FakeContext())
    assert info.value.problems == ["network.vpc_id: vpc-0abc does not exist in us-east-1", "sg problem"]


def test_the_plan_names_a_resource_by_the_name_its_read_reports() -> None:
    cloud = Cloud()
    cloud.resources["cp"] = {"size": 1, "id": "i-cp", "name": "demo-cp-1a2b3c4d", "_owned": True}
    p = plan([Thing("cp", cloud), Thing("new", cloud)], FakeContext())
    assert p.get("cp").name == "demo-cp-1a2b3c4d" and p.get("new").name == "demo-new"


def test_not_owned_resource_is_noop_with_note_and_never_updated() -> None:
    cloud = Cloud()
    cloud.resources["role"] = {"size": 1, "id": "i-theirs", "_owned": False}
    steps: list[Node] = [Thing("role", cloud, settings={"size": 9}), Thing("user", cloud, uses=["role"])]
    c = FakeContext()
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


# ----------------------------------------------------------------------------- replacement consequences


class Bound(Thing):
    """A resource that goes with its upstream "a" (a listener with its load balancer): its own
    settings never mention "a", so only its declared binding can plan it."""

    binds_to = frozenset({"a"})


class BoundByKind(Thing):
    binds_to = frozenset({"bound"})  # matches any upstream key "bound:<x>"


def test_replacement_plans_and_applies_what_is_bound_to_it_with_the_reason() -> None:
    cloud = Cloud()
    cloud.resources["a"] = {"size": 1, "id": "i-a", "_owned": True}
    cloud.resources["bound:x"] = {"size": 1, "id": "i-b", "_owned": True}
    cloud.resources["c"] = {"size": 1, "id": "i-c", "_owned": True}
    cloud.resources["free"] = {"size": 1, "id": "i-f", "_owned": True}
    a = Thing("a", cloud, settings={"size": 2}, replace_on=["size"])
    b = Bound("bound:x", cloud, depends_on=["a"])
    c = BoundByKind("c", cloud, depends_on=["bound:x"])  # bound to b: the consequence carries on
    free = Thing("free", cloud, depends_on=["a"])  # depends on a, bound to nothing: untouched
    p, result = run([a, b, c, free])

    assert actions(p) == {"a": Action.REPLACE, "bound:x": Action.REPLACE, "c": Action.REPLACE, "free": Action.NOOP}
    assert (p.get("bound:x").reason, p.get("c").reason, p.get("a").reason) == ("thing replaced", "thing replaced", "")
    assert p.get("bound:x").diffs == []  # nothing of its own changed
    assert result.ok
    # In the same run, each after its upstream: delete the old, create the new.
    assert cloud.ops("create", "delete", "update") == [
        ("delete", "a"),
        ("create", "a"),
        ("delete", "bound:x"),
        ("create", "bound:x"),
        ("delete", "c"),
        ("create", "c"),
    ]
    # Converged: a new plan of the same steps is empty.
    assert not plan([a, b, c, free], FakeContext()).has_changes


def test_binding_to_an_upstream_that_is_only_updated_changes_nothing() -> None:
    cloud = Cloud()
    cloud.resources["a"] = {"size": 1, "id": "i-a", "_owned": True}
    cloud.resources["bound:x"] = {"size": 1, "id": "i-b", "_owned": True}
    a = Thing("a", cloud, settings={"size": 2})  # updated in place
    b = Bound("bound:x", cloud, depends_on=["a"])
    p = plan([a, b], FakeContext())
    assert actions(p) == {"a": Action.UPDATE, "bound:x": Action.NOOP}
