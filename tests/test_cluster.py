"""steps/cluster.py: the ECS cluster, container insights, deletion while ECS catches up."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotecs.engine.model import Action
from spotecs.errors import AwsError, WaitTimeout
from spotecs.steps.base import Context
from tests.helpers import (
    COMPUTE,
    REGION,
    cluster,
    converge,
    fresh,
    group,
    make_stack,
    only,
    patch_client,
    refuse,
    replan,
    sent,
    short_waits,
    step,
    up,
    writes,
)

pytestmark = pytest.mark.usefixtures("moto")


def test_cluster_is_created_with_container_insights_and_tags() -> None:
    _, ctx = up(make_stack(cluster={"name": "DemoApiClusterProd"}), only(*COMPUTE))
    (req,) = sent(ctx, "CreateCluster")
    assert req["clusterName"] == "DemoApiClusterProd"
    assert req["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert {"key": "spotecs:stack", "value": "demo"} in req["tags"]


def test_cluster_insights_switch_is_an_update() -> None:
    steps, _ = up(make_stack(), only(*COMPUTE))
    off = make_stack(cluster={"container_insights": False})
    the_plan = replan(steps, off)
    assert the_plan.get("cluster").action is Action.UPDATE
    assert [(d.path, d.old, d.new) for d in the_plan.get("cluster").diffs] == [
        ("container_insights", "enabled", "disabled")
    ]
    ctx = fresh(off)
    converge(steps, ctx)
    assert writes(ctx) == ["UpdateCluster"]
    assert cluster(ctx)["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    assert not replan(steps, off).has_changes


def _register_instances(ctx: Context) -> list[str]:
    """What the ECS agent on each instance does at boot."""
    g = group(ctx)
    assert g is not None
    ecs = ctx.client("ecs")
    for i in g["Instances"]:
        ecs.register_container_instance(
            cluster="demo", instanceIdentityDocument=json.dumps({"instanceId": i["InstanceId"], "region": REGION})
        )
    return ecs.list_container_instances(cluster="demo")["containerInstanceArns"]


def test_cluster_delete_deregisters_instances_and_twice_is_fine() -> None:
    steps, ctx = up(make_stack(instances={"desired": 2, "on_demand_base": 1, "on_demand_percent": 20}), only(*COMPUTE))
    arns = _register_instances(ctx)
    assert arns
    cl = step(steps, "cluster")
    current = cl.read(ctx)
    assert current is not None
    cl.delete(ctx, current)
    assert sorted(p["containerInstance"] for p in sent(ctx, "DeregisterContainerInstance")) == sorted(arns)
    assert all(p["force"] is True for p in sent(ctx, "DeregisterContainerInstance"))
    assert cluster(ctx)["status"] == "INACTIVE" and cl.read(ctx) is None
    n = len(ctx.aws.writes())
    cl.delete(ctx, current)
    assert len(ctx.aws.writes()) == n


def test_cluster_delete_retries_while_ecs_catches_up(monkeypatch: pytest.MonkeyPatch) -> None:
    steps, ctx = up(make_stack(), only(*COMPUTE))
    ecs = ctx.client("ecs")
    real = ecs.delete_cluster
    refusals = ["ClusterContainsTasksException", "ClusterContainsContainerInstancesException"]

    def eventually(**kw: Any) -> Any:
        if refusals:
            code = refusals.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": "still busy"}}, "DeleteCluster")
        return real(**kw)

    monkeypatch.setattr(ecs, "delete_cluster", eventually)
    cl = step(steps, "cluster")
    current = cl.read(ctx)
    assert current is not None
    cl.delete(ctx, current)
    assert refusals == [] and cluster(ctx)["status"] == "INACTIVE"


def test_cluster_retries_while_ecs_catches_up_then_says_what_is_left(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    steps, ctx = up(stack, lambda s: s.key == "cluster")
    cluster = step(steps, "cluster")
    current = cluster.read(ctx)
    assert current is not None
    patch_client(monkeypatch, ctx, "ecs", "delete_cluster", refuse("ClusterContainsContainerInstancesException"))

    def one_instance(real: Callable[..., Any], **kw: Any) -> Any:
        got = real(**kw)
        for c in got["clusters"]:
            c["registeredContainerInstancesCount"] = 1
        return got

    patch_client(monkeypatch, ctx, "ecs", "describe_clusters", one_instance)
    short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        cluster.delete(ctx, current)
    assert str(e.value).startswith(
        "Timed out after 1s waiting for ECS cluster demo to be empty "
        "(1 container instance(s) registered). ECS has not caught up"
    )
    assert len(sent(ctx, "ListContainerInstances")) > 1  # retried, deregistering what is left each time


@pytest.mark.parametrize("deregistered_meanwhile", [True, False])
def test_an_instance_ecs_deregisters_meanwhile_is_not_a_failure(
    moto: None, monkeypatch: pytest.MonkeyPatch, deregistered_meanwhile: bool
) -> None:
    stack = make_stack(instances={"desired": 1, "on_demand_percent": 100})
    steps, ctx = up(stack, lambda s: s.key in ("cluster", "auto-scaling-group"))
    ecs = ctx.client("ecs")
    (instance,) = ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["demo-instances"])[
        "AutoScalingGroups"
    ][0]["Instances"]
    ecs.register_container_instance(
        cluster="demo", instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"], "region": REGION})
    )

    def racing(real: Callable[..., Any], **kw: Any) -> Any:
        if deregistered_meanwhile:
            real(**kw)  # ECS got there first
        raise ClientError({"Error": {"Code": "ServerException", "Message": "try again"}}, "DeregisterContainerInstance")

    patch_client(monkeypatch, ctx, "ecs", "deregister_container_instance", racing)
    cluster = step(steps, "cluster")
    if deregistered_meanwhile:
        cluster.delete(ctx, cluster.read(ctx) or {})
        assert cluster.read(ctx) is None
    else:
        with pytest.raises(AwsError, match=r"^Failed to deregister container instance .*: try again"):
            cluster.delete(ctx, cluster.read(ctx) or {})


def test_cluster_tag_edit_converges_with_tag_calls_only() -> None:
    steps, _ = up(make_stack(tags={"team": "payments", "cost-center": "cc-17"}), only(*COMPUTE))
    edited = make_stack(tags={"team": "billing", "owner": "ops"})
    the_plan = replan(steps, edited)
    ch = the_plan.get("cluster")
    assert ch.action is Action.UPDATE and ch.changed_fields() == {"tags"}
    ctx = fresh(edited)
    converge(steps, ctx)
    # no UpdateCluster (the capacity provider is retagged too: test_capacity_provider.py)
    assert sorted(writes(ctx, "ecs")) == ["TagResource", "TagResource", "UntagResource", "UntagResource"]
    arn = cluster(ctx)["clusterArn"]
    (untag,) = [r for r in sent(ctx, "UntagResource") if r["resourceArn"] == arn]
    assert untag["tagKeys"] == ["cost-center"]
    held = ctx.client("ecs").list_tags_for_resource(resourceArn=arn)["tags"]
    tags = {t["key"]: t["value"] for t in held}
    assert tags["team"] == "billing" and tags["owner"] == "ops" and "cost-center" not in tags
    assert tags["spotecs:stack"] == "demo"
    assert not replan(steps, edited).get("cluster").is_change
