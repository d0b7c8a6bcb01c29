"""steps/capacity_provider.py: the provider over the group, its name, the cluster's default strategy,
deletion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spotecs import names
from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from spotecs.errors import AwsError, WaitTimeout
from spotecs.steps.base import BUDGETS, Timeouts
from tests.helpers import (
    COMPUTE,
    cluster,
    compute_steps,
    converge,
    fresh,
    group,
    make_stack,
    only,
    patch_client,
    replan,
    sent,
    short_waits,
    step,
    up,
    writes,
)

pytestmark = pytest.mark.usefixtures("moto")


def test_capacity_provider_request_and_cluster_default() -> None:
    _, ctx = up(make_stack(capacity_provider={"target_capacity": 80}), only(*COMPUTE))
    g = group(ctx)
    assert g is not None
    (req,) = sent(ctx, "CreateCapacityProvider")
    name = names.capacity_provider("demo-instances", g["AutoScalingGroupARN"])
    assert req["name"] == name == ctx.outputs["capacity-provider"]["name"]
    assert req["autoScalingGroupProvider"] == {
        "autoScalingGroupArn": g["AutoScalingGroupARN"],
        "managedScaling": {
            "status": "ENABLED",
            "targetCapacity": 80,
            "minimumScalingStepSize": 1,
            "maximumScalingStepSize": 10,
            "instanceWarmupPeriod": 300,
        },
        "managedTerminationProtection": "ENABLED",
        "managedDraining": "ENABLED",
    }
    c = cluster(ctx)
    assert c["capacityProviders"] == [name]
    assert c["defaultCapacityProviderStrategy"] == [{"capacityProvider": name, "weight": 1, "base": 0}]


def test_capacity_provider_read_changes_nothing_and_the_plan_shows_the_live_name() -> None:
    _, first = up(make_stack(), only(*COMPUTE))
    live = first.outputs["capacity-provider"]["name"]
    steps = compute_steps(make_stack())
    cp = step(steps, "capacity-provider")
    before = cp.name
    ctx = fresh(make_stack())
    assert cp.read(ctx.for_step(cp.key))["name"] == live
    assert cp.name == before == "demo-instances-<group id>"
    assert plan(steps, fresh(make_stack())).get("capacity-provider").name == live


def test_capacity_provider_target_change_is_an_update() -> None:
    steps, first = up(make_stack(), only(*COMPUTE))
    name = first.outputs["capacity-provider"]["name"]
    changed = make_stack(capacity_provider={"target_capacity": 90})
    the_plan = replan(steps, changed)
    assert the_plan.get("capacity-provider").action is Action.UPDATE
    assert the_plan.get("capacity-provider").name == name
    ctx = fresh(changed)
    converge(steps, ctx)
    assert writes(ctx) == ["UpdateCapacityProvider"]
    live = ctx.client("ecs").describe_capacity_providers(capacityProviders=[name])["capacityProviders"][0]
    assert live["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 90
    assert not replan(steps, changed).has_changes


def test_capacity_provider_detached_by_hand_is_reattached() -> None:
    stack = make_stack()
    steps, first = up(stack, only(*COMPUTE))
    first.client("ecs").put_cluster_capacity_providers(
        cluster="demo", capacityProviders=[], defaultCapacityProviderStrategy=[]
    )
    assert replan(steps, stack).get("capacity-provider").action is Action.UPDATE
    again = fresh(stack)
    converge(steps, again)
    assert writes(again) == ["PutClusterCapacityProviders"]
    assert cluster(again)["capacityProviders"] == [again.outputs["capacity-provider"]["name"]]


def test_a_recreated_group_replaces_the_provider_under_a_fresh_name() -> None:
    stack = make_stack()
    steps, first = up(stack, only(*COMPUTE))
    old = first.outputs["capacity-provider"]["name"]
    # someone deletes the group by hand: the provider now points at nothing
    first.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="demo-instances", ForceDelete=True)
    the_plan = replan(steps, stack)
    assert the_plan.get("auto-scaling-group").action is Action.CREATE
    change = the_plan.get("capacity-provider")
    assert change.action is Action.REPLACE
    assert {d.path for d in change.diffs if d.forces_replace} >= {"auto_scaling_group_arn", "name"}
    ctx = fresh(stack)
    converge(steps, ctx)
    new = ctx.outputs["capacity-provider"]["name"]
    assert new != old and new.startswith("demo-instances-")
    assert cluster(ctx)["capacityProviders"] == [new]
    gone = ctx.client("ecs").describe_capacity_providers(capacityProviders=[old])["capacityProviders"]
    assert all(p["status"] == "INACTIVE" for p in gone)
    assert not replan(steps, stack).has_changes


def test_capacity_provider_delete_detaches_first_and_twice_is_fine() -> None:
    steps, ctx = up(make_stack(), only(*COMPUTE))
    cp = step(steps, "capacity-provider")
    current = cp.read(ctx)
    assert current is not None
    cp.delete(ctx, current)
    assert writes(ctx)[-2:] == ["PutClusterCapacityProviders", "DeleteCapacityProvider"]
    assert sent(ctx, "PutClusterCapacityProviders")[-1]["capacityProviders"] == []
    assert cluster(ctx)["capacityProviders"] == [] and cp.read(ctx) is None
    n = len(ctx.aws.writes())
    cp.delete(ctx, current)
    assert len(ctx.aws.writes()) == n


def test_other_providers_on_the_cluster_are_kept() -> None:
    stack = make_stack()
    steps, ctx = up(stack, only(*COMPUTE))
    name = ctx.outputs["capacity-provider"]["name"]
    ctx.client("ecs").put_cluster_capacity_providers(
        cluster="demo",
        capacityProviders=["FARGATE", name],
        defaultCapacityProviderStrategy=[{"capacityProvider": name, "weight": 1, "base": 0}],
    )
    cp = step(steps, "capacity-provider")
    current = cp.read(ctx)
    assert current is not None
    cp.delete(ctx, current)
    assert cluster(ctx)["capacityProviders"] == ["FARGATE"]


def test_capacity_provider_leaves_the_cluster_then_is_deleted_and_waited_for(moto: None) -> None:
    stack = make_stack()
    steps, _ = up(stack)
    destroy = fresh(stack)
    converge(steps, destroy, destroy=True)
    calls = [c for c in destroy.aws.calls]
    ops = [c.operation for c in calls]
    put = max(i for i, o in enumerate(ops) if o == "PutClusterCapacityProviders")
    assert calls[put].params["capacityProviders"] == [] and calls[put].params["defaultCapacityProviderStrategy"] == []
    assert ops.index("DeleteService") < put < ops.index("DeleteCapacityProvider") < ops.index("DeleteAutoScalingGroup")
    deleted = ops.index("DeleteCapacityProvider")
    assert "DescribeCapacityProviders" in ops[deleted + 1 :]  # the wait


def test_a_service_outside_the_stack_on_the_provider_is_named_not_waited_for(moto: None) -> None:
    stack = make_stack()
    steps, ctx = up(stack, lambda s: s.key.startswith(("capacity-provider", "task-definition")))
    ecs = ctx.client("ecs")
    name = ctx.outputs["capacity-provider"]["name"]
    td = ctx.outputs["task-definition:api"]["arn"]
    ecs.create_service(
        cluster="demo",
        serviceName="theirs",
        taskDefinition=td,
        desiredCount=0,
        capacityProviderStrategy=[{"capacityProvider": name, "weight": 1}],
    )
    cp = step(steps, "capacity-provider")
    current = cp.read(ctx)
    assert current is not None
    with pytest.raises(AwsError) as e:
        cp.delete(ctx, current)
    assert str(e.value) == (
        f"Failed to delete capacity provider {name}: ECS service(s) theirs in cluster demo still "
        "use it; move them to another capacity provider or delete them, then run the same "
        "command again"
    )
    assert "DeleteCapacityProvider" not in [c.operation for c in ctx.aws.writes()]
    # The cluster says the same about it, at once, instead of retrying until the timeout.
    cluster = step(steps, "cluster")
    with pytest.raises(AwsError, match="still runs service\\(s\\) theirs that this stack does not delete"):
        cluster.delete(ctx, cluster.read(ctx) or {})


def test_capacity_provider_wait_is_bounded_and_says_what_is_left(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    steps, ctx = up(stack, lambda s: s.key == "capacity-provider")
    cp = step(steps, "capacity-provider")
    current = cp.read(ctx)
    assert current is not None

    def stuck(real: Callable[..., Any], **kw: Any) -> Any:
        got = real(**kw)
        for p in got["capacityProviders"]:
            p.update(status="ACTIVE", updateStatus="DELETE_IN_PROGRESS", updateStatusReason="tasks still running")
        return got

    patch_client(monkeypatch, ctx, "ecs", "describe_capacity_providers", stuck)
    short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        cp.delete(ctx, current)
    assert str(e.value).startswith(
        f"Timed out after 1s waiting for capacity provider {current['name']} to be "
        "deleted (ACTIVE, DELETE_IN_PROGRESS: tasks still running). ECS still holds"
    )
    assert "run the same command again" in str(e.value)


def test_capacity_provider_wait_has_the_20_minutes_ecs_may_take(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    steps, ctx = up(stack, lambda s: s.key == "capacity-provider")
    cp = step(steps, "capacity-provider")
    current = cp.read(ctx)
    assert current is not None
    ctx.timeouts = Timeouts(delay=0)  # the budgets spotecs uses on real AWS
    bounds: list[float] = []

    def out_of_time(intent: str, client: Any, waiter: Any, *, delay: float, timeout: float, **kw: Any) -> None:
        bounds.append(timeout)
        raise WaitTimeout(intent, timeout)

    monkeypatch.setattr("spotecs.aws.wait", out_of_time)
    with pytest.raises(WaitTimeout) as e:
        cp.delete(ctx, current)
    assert bounds == [1200]
    assert str(e.value).startswith(f"Timed out after 1200s waiting for capacity provider {current['name']}")
    assert "run the same command again" in str(e.value)


def test_each_wait_has_its_own_documented_budget() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    budgets = Timeouts()
    for name, seconds in BUDGETS.items():
        assert budgets.budget(name) == seconds
        assert f"| {name} | {seconds / 60:g} min |" in readme, name
    assert budgets.budget("capacity provider deleted") == 20 * 60
    assert budgets.budget("service stable") > 10 * 60
    assert Timeouts(default=5).budget("service stable") == 5
    with pytest.raises(ValueError, match="no budget for a wait named 'capacity provider delted'"):
        budgets.budget("capacity provider delted")


def test_capacity_provider_tag_edit_converges_with_tag_calls_only() -> None:
    steps, first = up(make_stack(tags={"team": "payments", "cost-center": "cc-17"}), only(*COMPUTE))
    arn = first.outputs["capacity-provider"]["arn"]
    edited = make_stack(tags={"team": "billing", "owner": "ops"})
    ch = replan(steps, edited).get("capacity-provider")
    assert ch.action is Action.UPDATE and ch.changed_fields() == {"tags"}
    ctx = fresh(edited)
    converge(steps, ctx)
    # the cluster is retagged too; no UpdateCapacityProvider nor PutClusterCapacityProviders
    assert sorted(writes(ctx, "ecs")) == ["TagResource", "TagResource", "UntagResource", "UntagResource"]
    (tag,) = [r for r in sent(ctx, "TagResource") if r["resourceArn"] == arn]
    assert {t["key"]: t["value"] for t in tag["tags"]} == {"team": "billing", "owner": "ops"}
    (untag,) = [r for r in sent(ctx, "UntagResource") if r["resourceArn"] == arn]
    assert untag["tagKeys"] == ["cost-center"]
    held = {t["key"]: t["value"] for t in ctx.client("ecs").list_tags_for_resource(resourceArn=arn)["tags"]}
    assert held["team"] == "billing" and held["owner"] == "ops" and "cost-center" not in held
    assert held["spotecs:stack"] == "demo"
    assert not replan(steps, edited).get("capacity-provider").is_change
