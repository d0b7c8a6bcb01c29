"""What service auto scaling reads from AWS, apart from its step (steps/service_scaling.py): the
namespace's scalable targets, policies and scheduled actions, read once per plan and shared with
the orphan search; a scalable target's tags; the step policies' alarms (by the names the file
gives them) and their tags (from the stack's tagging-API read when they are the file's)."""

from __future__ import annotations

from typing import Any

from spotecs import names
from spotecs.aws import tags_from_list
from spotecs.steps.base import Context, stack_tagged
from spotecs.steps.tagging import confirmed

NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"


def scaling_reads(ctx: Context, operation: str, key: str) -> list[dict[str, Any]]:
    """Every scalable target, policy or scheduled action (by `operation`) of ECS services, read for
    the whole namespace once per plan: every service's scaling and the orphan search share it."""
    what = operation.removeprefix("describe_").replace("_", " ")
    return ctx.read_pages(
        f"list the {what} of ECS services", "application-autoscaling", operation, key, ServiceNamespace=NAMESPACE
    )


def target_tags(ctx: Context, resource_id: str, target: dict[str, Any]) -> dict[str, str] | None:
    """Every tag of the scalable target (DescribeScalableTargets gives none), or None when it
    has no ARN or is gone meanwhile."""
    arn = target.get("ScalableTargetARN")
    got = arn and ctx.call(
        f"list tags of scalable target {resource_id}",
        ctx.client("application-autoscaling").list_tags_for_resource,
        missing=("ResourceNotFoundException",),
        ResourceARN=arn,
    )
    return dict(got.get("Tags", {})) if got else None


def step_alarms(ctx: Context, resource_id: str, policy_names: list[str]) -> dict[str, dict[str, Any]]:
    """The alarm of each step policy, by name (a step policy's alarm bears its name); none asked
    when there is no step policy."""
    if not policy_names:
        return {}
    return {
        a["AlarmName"]: a
        for a in ctx.paginate(
            f"describe alarms of {resource_id}",
            "cloudwatch",
            "describe_alarms",
            "MetricAlarms",
            AlarmNames=policy_names,
        )
    }


def named_step_policies(ctx: Context, service: str, service_name: str) -> list[str]:
    """The names of the step policies the file gives `service` (none for an orphan's): also
    their alarms' (names.step_policy)."""
    svc = ctx.stack.services.get(service)
    if svc is None or svc.scaling is None:
        return []
    return [names.step_policy(service_name, s.name) for s in svc.scaling.step_scaling]


def alarm_tags(ctx: Context, alarms: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The tags of each step policy's alarm (DescribeAlarms gives none): while a plan shares its
    reads, from the stack's tagging-API read when they are the file's; the others (missing there,
    or differing: tagging.confirmed) asked of each alarm at once."""
    cw = ctx.client("cloudwatch")
    tagged = stack_tagged(ctx) if ctx.aws.sharing_reads else {}

    def tags_of(arn: str) -> dict[str, str]:
        got = ctx.call(
            f"list tags of alarm {arn.rsplit(':', 1)[-1]}",
            cw.list_tags_for_resource,
            missing=("ResourceNotFound", "ResourceNotFoundException"),
            ResourceARN=arn,
        )
        return tags_from_list((got or {}).get("Tags"))

    def ask(arns: list[str]) -> dict[str, dict[str, str] | None]:
        return dict(zip(arns, ctx.at_once(*(lambda a=a: tags_of(a) for a in arns)), strict=True))

    found = confirmed(ctx, {a["AlarmArn"]: tagged.get(a["AlarmArn"]) for a in alarms}, ask)
    return {a["AlarmName"]: found.get(a["AlarmArn"]) or {} for a in alarms}
