"""steps/fleet_tags.py: an edit of `tags:` reaches what already runs (issue 10). AWS tags
instances, their volumes and tasks only at launch; `up` re-tags the running ones in the same
apply, says so in the plan, keeps AWS's and others' tags, and a failure half-way is finished by
the next `up`."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from spotecs.engine.apply import apply
from spotecs.engine.contract import Node
from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from spotecs.sandbox.agent import SimulatedAgent
from spotecs.steps.base import Context
from tests.helpers import REGION, converge, fresh, make_stack, patch_client, refuse, up
from tests.tag_edits import AFTER, BEFORE, holds_the_edit

pytestmark = pytest.mark.usefixtures("moto")

# Three instances, two tasks: a count mixed up between them fails.
FLEET = {"instances": {"min": 1, "desired": 3, "max": 5}, "services": {"api": {"desired_count": 2}}}


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t.get("Key", t.get("key", "")): t.get("Value", t.get("value", "")) for t in items or []}


def running_fleet() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Instance id -> tags, volume id -> tags, task ARN -> tags, read back from AWS."""
    ec2, ecs = boto3.client("ec2", region_name=REGION), boto3.client("ecs", region_name=REGION)
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:aws:autoscaling:groupName", "Values": ["demo-instances"]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )["Reservations"]
    instances = {i["InstanceId"]: _tags(i.get("Tags")) for r in reservations for i in r["Instances"]}
    volumes = {
        v["VolumeId"]: _tags(v.get("Tags"))
        for v in ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": sorted(instances)}])[
            "Volumes"
        ]
    }
    arns = ecs.list_tasks(cluster="demo", serviceName="demo-api", desiredStatus="RUNNING")["taskArns"]
    tasks = {
        t["taskArn"]: _tags(t.get("tags"))
        for t in ecs.describe_tasks(cluster="demo", tasks=arns, include=["TAGS"])["tasks"]
    }
    return instances, volumes, tasks


def _running(tags: dict[str, str]) -> list[Node]:
    """The stack with `tags:` up, its instances registered and its tasks running."""
    steps, _ = up(make_stack(**FLEET, tags=tags))
    SimulatedAgent().tick()
    instances, volumes, tasks = running_fleet()
    assert (len(instances), len(volumes), len(tasks)) == (3, 6, 2)  # a root and a data volume each
    for held in (*instances.values(), *volumes.values(), *tasks.values()):
        assert (held["team"], held["cost-center"]) == ("payments", "cc-17"), held
    return steps


def _fleet_calls(ctx: Context) -> list[tuple[str, str]]:
    """The apply's calls that touch the running fleet or tag its source, in order: (operation, what)."""
    out = []
    for c in ctx.aws.calls:
        if (
            c.service == "ec2"
            and c.operation.endswith("Tags")
            and any(r.startswith("i-") for r in c.params["Resources"])
        ):
            out.append((c.operation, f"{len(c.params['Resources'])} ids"))
        elif c.operation in ("TagResource", "UntagResource") and ":task/" in c.params.get("resourceArn", ""):
            out.append((c.operation, "task"))
        elif c.operation in ("DescribeInstances", "ListTasks"):
            out.append((c.operation, ""))
        elif c.operation in ("CreateOrUpdateTags",) or (
            c.operation == "TagResource" and ":service/" in c.params.get("resourceArn", "")
        ):
            out.append((c.operation, "source"))
    return out


def test_tags_edit_retags_the_running_instances_their_volumes_and_the_tasks() -> None:
    steps = _running(BEFORE)
    ec2 = boto3.client("ec2", region_name=REGION)
    instances, _, _ = running_fleet()
    # Someone else's tag on one instance: never the file's to remove.
    mine = sorted(instances)[0]
    ec2.create_tags(Resources=[mine], Tags=[{"Key": "backup", "Value": "nightly"}])

    stack = make_stack(**FLEET, tags=AFTER)
    ctx = fresh(stack)
    the_plan = plan(steps, ctx)
    group, service = the_plan.get("auto-scaling-group"), the_plan.get("service:api")
    assert group.action is Action.UPDATE and group.changed_fields() == {"tags"}
    assert group.notes == [
        "also re-tags the 3 running instances and their volumes "
        "(AWS tags them from the group and the launch template only at launch)"
    ]
    assert service.action is Action.UPDATE and service.changed_fields() == {"tags"}
    assert service.notes == ["also re-tags the 2 running tasks (ECS propagates the service's tags only at launch)"]

    # While the plan waits for its yes, the group launches a fourth instance, with the old tags.
    boto3.client("autoscaling", region_name=REGION).set_desired_capacity(
        AutoScalingGroupName="demo-instances", DesiredCapacity=4
    )
    result = apply(the_plan, steps, ctx)
    assert not result.failed and not result.skipped, result.failed
    # One read and one call each way for the twelve ids of the four instances and their volumes,
    # before the group's own tags; one listing and a call each way per task, before the service's.
    calls = _fleet_calls(ctx)
    ec2_side = [c for c in calls if c[0] in ("DescribeInstances", "CreateTags", "DeleteTags", "CreateOrUpdateTags")]
    assert ec2_side == [
        ("DescribeInstances", ""),
        ("CreateTags", "12 ids"),
        ("DeleteTags", "12 ids"),
        ("CreateOrUpdateTags", "source"),
    ]
    ecs_side = [c for c in calls if c not in ec2_side]
    assert ecs_side == [
        ("ListTasks", ""),
        ("TagResource", "task"),
        ("UntagResource", "task"),
        ("TagResource", "task"),
        ("UntagResource", "task"),
        ("TagResource", "source"),
    ]

    instances, volumes, tasks = running_fleet()
    assert (len(instances), len(volumes), len(tasks)) == (4, 8, 2)
    for held in [*instances.values(), *volumes.values(), *tasks.values()]:
        holds_the_edit(held)
    for held in instances.values():  # AWS's own and each resource's Name are left as they were
        assert (held["Name"], held["aws:autoscaling:groupName"]) == ("demo-instances", "demo-instances"), held
        assert held["aws:ec2launchtemplate:version"] == "1", held
    for held in volumes.values():
        assert held["Name"] == "demo-instances", held
    assert instances[mine]["backup"] == "nightly"

    again = plan(steps, fresh(stack))
    assert not again.has_changes
    assert again.get("auto-scaling-group").notes == [] and again.get("service:api").notes == []


def test_no_running_fleet_no_note_and_no_fleet_call() -> None:
    steps, _ = up(make_stack(tags=BEFORE, instances={"min": 0, "desired": 0}, services={"api": {"desired_count": 0}}))
    stack = make_stack(tags=AFTER, instances={"min": 0, "desired": 0}, services={"api": {"desired_count": 0}})
    the_plan = plan(steps, fresh(stack))
    assert the_plan.get("auto-scaling-group").notes == [] and the_plan.get("service:api").notes == []
    ctx = fresh(stack)
    converge(steps, ctx)
    # The group's instances are listed at apply time (one may have launched since the plan).
    assert [c.operation for c in ctx.aws.calls if c.operation == "DescribeInstances"] == ["DescribeInstances"]
    assert _fleet_calls(ctx) == [
        ("DescribeInstances", ""),
        ("CreateOrUpdateTags", "source"),
        ("ListTasks", ""),  # none running: none tagged
        ("TagResource", "source"),
    ]


def _apply_failing(
    monkeypatch: pytest.MonkeyPatch, steps: list[Node], stack: Any, service: str, method: str, fails: str
) -> None:
    """One `up` whose `service.method` is refused on the fleet: the group's or the service's step
    fails there, and nothing of its own tags is written."""
    ctx = fresh(stack)
    refused = refuse("ThrottlingException")

    def on_the_fleet(real: Any, **kw: Any) -> Any:
        if any(r.startswith("i-") for r in kw.get("Resources", [])) or ":task/" in kw.get("resourceArn", ""):
            return refused(real, **kw)
        return real(**kw)

    with monkeypatch.context() as m:
        patch_client(m, ctx, service, method, on_the_fleet)
        result = apply(plan(steps, ctx), steps, ctx)
    assert list(result.failed) == [fails], result.failed


def _group_tags() -> dict[str, str]:
    asg = boto3.client("autoscaling", region_name=REGION)
    return _tags(
        asg.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-instances"])["AutoScalingGroups"][0]["Tags"]
    )


def _service_tags() -> dict[str, str]:
    ecs = boto3.client("ecs", region_name=REGION)
    return _tags(ecs.describe_services(cluster="demo", services=["demo-api"], include=["TAGS"])["services"][0]["tags"])


def test_a_fleet_retag_failing_half_way_is_finished_by_the_next_up(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _running(BEFORE)
    stack = make_stack(**FLEET, tags=AFTER)
    # The new tags reach the instances and volumes, the dropped one is refused on them: the group's
    # own tags wait for its fleet, so the next plan still shows them changing, with the note.
    _apply_failing(monkeypatch, steps, stack, "ec2", "delete_tags", "auto-scaling-group")
    instances, volumes, _ = running_fleet()
    assert all(h["team"] == "billing" and h["cost-center"] == "cc-17" for h in [*instances.values(), *volumes.values()])
    assert _group_tags()["cost-center"] == "cc-17"
    group = plan(steps, fresh(stack)).get("auto-scaling-group")
    assert group.action is Action.UPDATE and group.notes[0].startswith("also re-tags the 3 running instances")

    # The same for the tasks (the group is finished by this run): one task could not be untagged.
    _apply_failing(monkeypatch, steps, stack, "ecs", "untag_resource", "service:api")
    instances, volumes, tasks = running_fleet()
    for held in [*instances.values(), *volumes.values()]:
        holds_the_edit(held)
    assert all(h["cost-center"] == "cc-17" for h in tasks.values())  # the first one's untag failed
    assert _service_tags()["cost-center"] == "cc-17"
    service = plan(steps, fresh(stack)).get("service:api")
    assert service.action is Action.UPDATE and service.notes[0].startswith("also re-tags the 2 running tasks")

    # And the next `up` finishes the job.
    converge(steps, fresh(stack))
    for held in [*running_fleet()[2].values(), _group_tags(), _service_tags()]:
        holds_the_edit(held)
    assert not plan(steps, fresh(stack)).has_changes


def test_propagation_turned_back_on_retags_the_tasks_launched_without_it() -> None:
    steps = _running(BEFORE)
    ecs = boto3.client("ecs", region_name=REGION)
    # Propagation turned off by hand, and a task launched meanwhile without the service's tags.
    ecs.update_service(cluster="demo", service="demo-api", propagateTags="NONE")
    _, _, tasks = running_fleet()
    bare = sorted(tasks)[0]
    ecs.untag_resource(resourceArn=bare, tagKeys=["team", "cost-center"])

    stack = make_stack(**FLEET, tags=BEFORE)
    service = plan(steps, fresh(stack)).get("service:api")
    assert service.changed_fields() == {"propagate_tags"}
    assert service.notes == ["also re-tags the 2 running tasks (ECS propagates the service's tags only at launch)"]
    converge(steps, fresh(stack))
    _, _, tasks = running_fleet()
    assert [(t["team"], t["cost-center"]) for t in tasks.values()] == [("payments", "cc-17")] * 2
    assert not plan(steps, fresh(stack)).has_changes
