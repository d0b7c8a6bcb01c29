"""steps/auto_scaling_group.py: the mixed spot/on-demand group, what it shares with ECS, deletion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from spotecs.engine.model import Action
from spotecs.errors import WaitTimeout
from spotecs.sandbox.agent import SimulatedAgent
from tests.helpers import (
    COMPUTE,
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
    steps_for,
    up,
    writes,
)

pytestmark = pytest.mark.usefixtures("moto")


def test_group_request_mixes_spot_and_on_demand_over_every_type() -> None:
    # Asymmetric on purpose: base 1 and 20 % differ from their complements (80 %), so a swap of
    # on-demand and spot fails here, in the request and in the instances launched.
    stack = make_stack(
        instances={
            "types": ["t3.small", "t3a.small"],
            "on_demand_base": 1,
            "on_demand_percent": 20,
            "min": 1,
            "max": 8,
            "desired": 6,
        }
    )
    _, ctx = up(stack, only(*COMPUTE))
    (req,) = sent(ctx, "CreateAutoScalingGroup")
    lt_id = ctx.outputs["launch-template"]["id"]
    assert req["MixedInstancesPolicy"] == {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": lt_id, "Version": "$Default"},
            "Overrides": [{"InstanceType": "t3.small"}, {"InstanceType": "t3a.small"}],
        },
        "InstancesDistribution": {
            "OnDemandBaseCapacity": 1,
            "OnDemandPercentageAboveBaseCapacity": 20,
            "SpotAllocationStrategy": "price-capacity-optimized",
        },
    }
    # The result, as the sandbox's agent marks purchase options: 1 base + ceil(20 % of 5) = 2
    # on-demand, 4 spot (the complement would give 5 on-demand, 1 spot).
    SimulatedAgent().tick()
    g = group(ctx)
    assert g is not None
    ids = [i["InstanceId"] for i in g["Instances"]]
    reservations = ctx.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    lifecycles = [i.get("InstanceLifecycle", "on-demand") for r in reservations for i in r["Instances"]]
    assert sorted(lifecycles) == ["on-demand"] * 2 + ["spot"] * 4
    subnets = ctx.client("ec2").describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    assert sorted(req["VPCZoneIdentifier"].split(",")) == sorted(s["SubnetId"] for s in subnets)
    assert len(subnets) == 6
    assert (req["MinSize"], req["MaxSize"], req["DesiredCapacity"]) == (1, 8, 6)
    assert req["NewInstancesProtectedFromScaleIn"] is True
    assert req["TerminationPolicies"] == ["OldestLaunchTemplate", "ClosestToNextInstanceHour", "OldestInstance"]
    assert req["CapacityRebalance"] is True
    name_tag = next(t for t in req["Tags"] if t["Key"] == "Name")
    assert name_tag["PropagateAtLaunch"] is True and name_tag["Value"] == "demo-instances"


def test_desired_capacity_is_sent_on_create_only() -> None:
    steps, first = up(make_stack(), only(*COMPUTE))
    assert sent(first, "CreateAutoScalingGroup")[0]["DesiredCapacity"] == 1
    # the capacity provider scales the group; a re-run must not fight it
    first.client("autoscaling").set_desired_capacity(AutoScalingGroupName="demo-instances", DesiredCapacity=3)
    assert not replan(steps, make_stack(instances={"desired": 2})).has_changes

    bigger = make_stack(instances={"max": 6})
    the_plan = replan(steps, bigger)
    assert the_plan.get("auto-scaling-group").action is Action.UPDATE
    assert [d.path for d in the_plan.get("auto-scaling-group").diffs] == ["max"]
    ctx = fresh(bigger)
    converge(steps, ctx)
    (req,) = sent(ctx, "UpdateAutoScalingGroup")
    assert "DesiredCapacity" not in req and req["MaxSize"] == 6
    g = group(ctx)
    assert g is not None and g["MaxSize"] == 6 and g["DesiredCapacity"] == 3
    assert not replan(steps, bigger).has_changes


def test_ecs_managed_tag_is_neither_a_diff_nor_removed() -> None:
    stack = make_stack()
    steps, first = up(stack, only(*COMPUTE))
    ctx = first
    # ECS tags a group its capacity provider manages (moto does not: do it as ECS would)
    ctx.client("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": "demo-instances",
                "ResourceType": "auto-scaling-group",
                "Key": "AmazonECSManaged",
                "Value": "",
                "PropagateAtLaunch": True,
            }
        ]
    )
    assert replan(steps, stack).get("auto-scaling-group").action is Action.NOOP

    tagged = make_stack(tags={"team": "api"})
    assert replan(steps, tagged).get("auto-scaling-group").action is Action.UPDATE
    again = fresh(tagged)
    converge(steps, again)
    assert "UpdateAutoScalingGroup" not in writes(again)  # only the tags changed
    (put,) = sent(again, "CreateOrUpdateTags")
    assert [t["Key"] for t in put["Tags"]] == ["team"]
    assert sent(again, "DeleteTags") == []
    g = group(again)
    assert g is not None
    assert {t["Key"] for t in g["Tags"]} >= {"AmazonECSManaged", "team", "Name"}
    assert not replan(steps, tagged).has_changes


def test_group_delete_lifts_protection_force_deletes_and_twice_is_fine() -> None:
    stack = make_stack(instances={"desired": 2, "max": 4})
    steps, ctx = up(stack, only(*COMPUTE))
    g = group(ctx)
    assert g is not None
    ids = sorted(i["InstanceId"] for i in g["Instances"])
    assert ids and all(i["ProtectedFromScaleIn"] for i in g["Instances"])
    asg = step(steps, "auto-scaling-group")
    current = asg.read(ctx)
    assert current is not None
    asg.delete(ctx, current)
    (protection,) = sent(ctx, "SetInstanceProtection")
    assert sorted(protection["InstanceIds"]) == ids and protection["ProtectedFromScaleIn"] is False
    (delete,) = sent(ctx, "DeleteAutoScalingGroup")
    assert delete["ForceDelete"] is True
    assert writes(ctx)[-2:] == ["SetInstanceProtection", "DeleteAutoScalingGroup"]
    assert group(ctx) is None and asg.read(ctx) is None
    n = len(ctx.aws.writes())
    asg.delete(ctx, current)
    assert len(ctx.aws.writes()) == n


def test_group_unprotects_force_deletes_and_waits_for_its_instances(moto: None) -> None:
    stack = make_stack(instances={"desired": 2})
    steps, ctx = up(stack, lambda s: s.key == "auto-scaling-group")
    asg = step(steps, "auto-scaling-group")
    current = asg.read(ctx)
    assert current is not None
    ids = sorted(
        i["InstanceId"]
        for i in ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["demo-instances"])[
            "AutoScalingGroups"
        ][0]["Instances"]
    )
    assert len(ids) == 2
    asg.delete(ctx, current)
    (unprotect,) = sent(ctx, "SetInstanceProtection")
    assert sorted(unprotect["InstanceIds"]) == ids and unprotect["ProtectedFromScaleIn"] is False
    (delete,) = sent(ctx, "DeleteAutoScalingGroup")
    assert delete["ForceDelete"] is True
    states = ctx.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    assert {i["State"]["Name"] for r in states for i in r["Instances"]} == {"terminated"}


def test_group_wait_is_bounded_and_names_the_instances_left(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack(instances={"desired": 2})
    steps, ctx = up(stack, lambda s: s.key == "auto-scaling-group")
    asg = step(steps, "auto-scaling-group")
    current = asg.read(ctx)
    assert current is not None
    real = ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["demo-instances"])
    ids = sorted(i["InstanceId"] for i in real["AutoScalingGroups"][0]["Instances"])

    def lingering(_: Callable[..., Any], **kw: Any) -> Any:
        group = dict(
            real["AutoScalingGroups"][0],
            Status="Delete in progress",
            Instances=[{"InstanceId": i, "LifecycleState": "Terminating:Wait"} for i in ids],
        )
        return {"AutoScalingGroups": [group]}

    patch_client(monkeypatch, ctx, "autoscaling", "describe_auto_scaling_groups", lingering)
    short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        asg.delete(ctx, current)
    left = ", ".join(f"{i} (Terminating:Wait)" for i in ids)
    assert str(e.value) == (
        f"Timed out after 1s waiting for auto scaling group demo-instances to terminate its instances and go "
        f"(2 instance(s) left: {left}). AWS is still terminating them (lifecycle hooks or a slow shutdown can hold "
        "an instance). Run the same command again to keep waiting; the group is already being deleted."
    )
    assert sent(ctx, "DeleteAutoScalingGroup") == []  # already being deleted: not asked again


def test_a_group_not_listed_yet_right_after_its_create_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    steps = steps_for(stack, only("auto-scaling-group"))
    ctx = fresh(stack)
    created: list[bool] = []

    def create(real: Callable[..., Any], **kw: Any) -> Any:
        created.append(True)
        return real(**kw)

    def describe(real: Callable[..., Any], **kw: Any) -> Any:
        if created and len(created) < 3:  # the first describe after the create: not listed yet
            created.append(True)
            return {"AutoScalingGroups": []}
        return real(**kw)

    patch_client(monkeypatch, ctx, "autoscaling", "create_auto_scaling_group", create)
    patch_client(monkeypatch, ctx, "autoscaling", "describe_auto_scaling_groups", describe)
    converge(steps, ctx)
    assert ctx.outputs["auto-scaling-group"]["arn"].startswith("arn:aws:autoscaling:")
    assert len(created) == 3


def test_group_tags_converge_key_by_key_and_propagate_again() -> None:
    steps, _ = up(make_stack(tags={"team": "payments", "cost-center": "cc-17"}), only(*COMPUTE))
    edited = make_stack(tags={"team": "billing", "owner": "ops"})
    ch = replan(steps, edited).get("auto-scaling-group")
    assert [(d.path, d.old, d.new) for d in ch.diffs] == [
        ("tags", ch.current["tags"], ch.desired["tags"])  # type: ignore[index]
    ]
    ctx = fresh(edited)
    converge(steps, ctx)
    assert "UpdateAutoScalingGroup" not in writes(ctx)
    (put,) = sent(ctx, "CreateOrUpdateTags")
    assert {t["Key"]: t["Value"] for t in put["Tags"]} == {"team": "billing", "owner": "ops"}
    (drop,) = [c.params for c in ctx.aws.calls if c.service == "autoscaling" and c.operation == "DeleteTags"]
    assert [t["Key"] for t in drop["Tags"]] == ["cost-center"]
    # Someone turns propagation off by hand: instances launched now would lack the tag.
    ctx.client("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": "demo-instances",
                "ResourceType": "auto-scaling-group",
                "Key": "owner",
                "Value": "ops",
                "PropagateAtLaunch": False,
            }
        ]
    )
    again = replan(steps, edited).get("auto-scaling-group")
    assert again.changed_fields() == {"tags_propagate_at_launch"}
    ctx = fresh(edited)
    converge(steps, ctx)
    g = group(ctx)
    assert g is not None
    assert all(t["PropagateAtLaunch"] for t in g["Tags"])
    assert {t["Key"]: t["Value"] for t in g["Tags"]}.get("owner") == "ops" and "cost-center" not in {
        t["Key"] for t in g["Tags"]
    }
    assert not replan(steps, edited).get("auto-scaling-group").is_change
