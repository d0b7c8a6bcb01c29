"""steps/service_scaling.py: target tracking, step scaling with its alarm, scheduled actions, deletion."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
from rich.console import Console

from spotecs import render_status, scaling_status
from spotecs.aws import tag_list
from spotecs.config import Stack
from spotecs.engine.contract import Node
from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from spotecs.render_plan import leaf_diffs
from tests.helpers import (
    CLUSTER,
    REGION,
    STACK_TAG,
    StandIn,
    changes,
    converge,
    deep_merge,
    fresh,
    make_stack,
    replan,
    sent,
    up,
    workload_steps,
    writes,
)


def _policies() -> dict[str, dict[str, Any]]:
    aas = boto3.client("application-autoscaling", region_name=REGION)
    return {
        p["PolicyName"]: p
        for p in aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=f"service/{CLUSTER}/demo-api")[
            "ScalingPolicies"
        ]
    }


def test_target_tracking_on_requests_names_the_target_group(compute: dict[str, StandIn]) -> None:
    stack = make_stack(
        services={
            "api": {
                "scaling": {
                    "min": 1,
                    "max": 4,
                    "target_tracking": [
                        {"metric": "requests", "target": 1000},
                        {"metric": "cpu", "target": 85, "disable_scale_in": True},
                    ],
                }
            }
        }
    )
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    ctx = fresh(stack)
    converge(steps, ctx)

    lb = ctx.outputs["load-balancer"]["arn"].split(":loadbalancer/")[1]
    tg = ctx.outputs["target-group:api"]["arn"].split(":")[-1]
    label = f"{lb}/{tg}"
    assert label.startswith("app/demo/") and "/targetgroup/demo-api/" in label
    # moto accepts ALBRequestCountPerTarget without a label, so the request is what proves it.
    policies = {p["PolicyName"]: p for p in sent(ctx, "PutScalingPolicy")}
    spec = policies["demo-api-track-requests"]["TargetTrackingScalingPolicyConfiguration"]
    assert spec["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "ALBRequestCountPerTarget",
        "ResourceLabel": label,
    }
    assert spec["TargetValue"] == 1000.0
    cpu = _policies()["demo-api-track-cpu"]["TargetTrackingScalingPolicyConfiguration"]
    assert cpu["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    assert (cpu["TargetValue"], cpu["DisableScaleIn"], cpu["ScaleInCooldown"], cpu["ScaleOutCooldown"]) == (
        85.0,
        True,
        300,
        60,
    )
    target = boto3.client("application-autoscaling", region_name=REGION).describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/{CLUSTER}/demo-api"]
    )["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    assert changes(replan(steps, stack)) == {}


STEP_SCALING: dict[str, Any] = {
    "services": {
        "api": {
            "scaling": {
                "min": 2,
                "max": 10,
                "step_scaling": [
                    {
                        "name": "pushes",
                        "cooldown": 60,
                        "alarm": {
                            "namespace": "AWS/SQS",
                            "metric": "ApproximateNumberOfMessagesVisible",
                            "dimensions": {"QueueName": "outgoing-pushes"},
                            "statistic": "Maximum",
                            "threshold": 10000,
                        },
                        "steps": [{"lower": 0, "upper": 50000, "change": 2}, {"lower": 50000, "change": 5}],
                    }
                ],
            }
        }
    }
}


def test_step_scaling_fires_from_an_alarm_on_any_metric(compute: dict[str, StandIn]) -> None:
    stack = make_stack(**STEP_SCALING)
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    converge(steps, fresh(stack))

    policy = _policies()["demo-api-step-pushes"]
    cfg = policy["StepScalingPolicyConfiguration"]
    assert cfg["AdjustmentType"] == "ChangeInCapacity"
    assert (cfg["Cooldown"], cfg["MetricAggregationType"]) == (60, "Maximum")
    assert cfg["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 50000.0, "ScalingAdjustment": 2},
        {"MetricIntervalLowerBound": 50000.0, "ScalingAdjustment": 5},
    ]
    alarm = boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=["demo-api-step-pushes"])[
        "MetricAlarms"
    ][0]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        10000.0,
    )
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": "outgoing-pushes"}]
    assert alarm["AlarmActions"] == [policy["PolicyARN"]]
    # AWS lists the alarm that acts on a step policy with it (moto listed none: fills_aas).
    assert policy["Alarms"] == [{"AlarmName": "demo-api-step-pushes", "AlarmARN": alarm["AlarmArn"]}]
    check_status_shows_the_alarm(stack, steps, alarm["StateValue"])
    assert changes(replan(steps, stack)) == {}

    # A new threshold updates the alarm, still wired to the policy.
    pushes = STEP_SCALING["services"]["api"]["scaling"]["step_scaling"][0]
    higher = make_stack(
        services={
            "api": {
                "scaling": {
                    "min": 2,
                    "max": 10,
                    "step_scaling": [{**pushes, "alarm": {**pushes["alarm"], "threshold": 20000}}],
                }
            }
        }
    )
    p = replan(steps, higher)
    assert p.get("scaling:api").action is Action.UPDATE
    converge(workload_steps(higher, compute, lambda s: s.key == "scaling:api"), fresh(higher))
    alarm = boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=["demo-api-step-pushes"])[
        "MetricAlarms"
    ][0]
    assert alarm["Threshold"] == 20000.0
    assert alarm["AlarmActions"] == [_policies()["demo-api-step-pushes"]["PolicyARN"]]
    assert changes(replan(steps, higher)) == {}


def check_status_shows_the_alarm(stack: Stack, steps: list[Node], state: str) -> None:
    """`status`'s scaling section names the step policy's alarm and its state, not "no alarm"."""
    ctx = fresh(stack)
    (scaling,) = (s for s in steps if s.key == "scaling:api")
    ctx.outputs["scaling:api"] = scaling.read(ctx)
    with ThreadPoolExecutor(2) as pool:
        doc = {"scaling": scaling_status.read(ctx, pool, datetime.now(UTC))}
    (service,) = doc["scaling"]["services"]
    (policy,) = service["policies"]
    assert policy["name"] == "demo-api-step-pushes"
    assert [(a["name"], a["state"]) for a in policy["alarms"]] == [("demo-api-step-pushes", state)]
    console = Console(width=120, file=io.StringIO(), emoji=False)
    console.print(render_status.scaling(doc, interactive=False))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert f"policy demo-api-step-pushes: demo-api-step-pushes {state}" in text
    assert "no alarm" not in text


def test_scheduled_actions_with_timezone_and_removal(compute: dict[str, StandIn]) -> None:
    burst = {"name": "newsletter", "schedule": "cron(0 9 ? * TUE *)", "timezone": "Europe/Paris", "min": 6}
    calm = {"name": "night", "schedule": "cron(0 23 * * ? *)", "max": 2}
    stack = make_stack(services={"api": {"scaling": {"min": 1, "max": 8, "scheduled": [burst, calm]}}})
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    converge(steps, fresh(stack))
    aas = boto3.client("application-autoscaling", region_name=REGION)

    def actions() -> dict[str, dict[str, Any]]:
        return {
            a["ScheduledActionName"]: a
            for a in aas.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=f"service/{CLUSTER}/demo-api")[
                "ScheduledActions"
            ]
        }

    got = actions()
    assert (got["demo-api-newsletter"]["Schedule"], got["demo-api-newsletter"]["Timezone"]) == (
        "cron(0 9 ? * TUE *)",
        "Europe/Paris",
    )
    assert got["demo-api-newsletter"]["ScalableTargetAction"] == {"MinCapacity": 6}
    assert got["demo-api-night"]["ScalableTargetAction"] == {"MaxCapacity": 2}
    assert changes(replan(steps, stack)) == {}

    fewer = make_stack(services={"api": {"scaling": {"min": 1, "max": 8, "scheduled": [burst]}}})
    p = replan(steps, fewer)
    assert [d.path for d in p.get("scaling:api").diffs] == ["scheduled"]
    ctx = fresh(fewer)
    converge(steps, ctx)
    assert list(actions()) == ["demo-api-newsletter"]
    assert [w["ScheduledActionName"] for w in sent(ctx, "DeleteScheduledAction")] == ["demo-api-night"]
    assert sent(ctx, "PutScheduledAction") == sent(ctx, "RegisterScalableTarget") == []


def test_a_scheduled_window_is_not_undone_and_a_changed_bound_is_still_applied(compute: dict[str, StandIn]) -> None:
    burst = {"name": "newsletter", "schedule": "cron(0 9 ? * TUE *)", "min": 6, "max": 12}
    stack = make_stack(services={"api": {"scaling": {"min": 1, "max": 8, "scheduled": [burst]}}})
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    converge(steps, fresh(stack))
    aas = boto3.client("application-autoscaling", region_name=REGION)
    target = {"ServiceNamespace": "ecs", "ResourceId": f"service/{CLUSTER}/demo-api"}
    query = {"ServiceNamespace": "ecs", "ResourceIds": [target["ResourceId"]]}
    arn = aas.describe_scalable_targets(**query)["ScalableTargets"][0]["ScalableTargetARN"]
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"]["spotecs:bounds"] == "min=1,max=8"

    # Tuesday 09:00: the schedule sets the bounds, as Application Auto Scaling does.
    aas.register_scalable_target(**target, ScalableDimension="ecs:service:DesiredCount", MinCapacity=6, MaxCapacity=12)
    p = replan(steps, stack)
    assert changes(p) == {}  # no drift, nothing for `up` to put back
    [note] = p.get("scaling:api").notes
    assert note.startswith("min/max: 1/8 in the file, 6/12 in force: set by a scheduled action (demo-api-newsletter)")
    ctx = fresh(stack)
    converge(steps, ctx)
    assert sent(ctx, "RegisterScalableTarget") == sent(ctx, "TagResource") == []
    live = aas.describe_scalable_targets(**query)["ScalableTargets"][0]
    assert (live["MinCapacity"], live["MaxCapacity"]) == (6, 12)

    # A max changed in the file is applied, and remembered.
    bigger = make_stack(services={"api": {"scaling": {"min": 1, "max": 20, "scheduled": [burst]}}})
    assert [d.path for d in replan(steps, bigger).get("scaling:api").diffs] == ["max"]
    ctx = fresh(bigger)
    converge(steps, ctx)
    assert [(w["MinCapacity"], w["MaxCapacity"]) for w in sent(ctx, "RegisterScalableTarget")] == [(1, 20)]
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"]["spotecs:bounds"] == "min=1,max=20"
    assert changes(replan(steps, bigger)) == {}

    # The schedule removed from the file: the bounds it left in force are the file's again.
    aas.register_scalable_target(**target, ScalableDimension="ecs:service:DesiredCount", MinCapacity=6, MaxCapacity=12)
    plain = make_stack(services={"api": {"scaling": {"min": 1, "max": 20}}})
    ctx = fresh(plain)
    converge(steps, ctx)
    assert [(w["MinCapacity"], w["MaxCapacity"]) for w in sent(ctx, "RegisterScalableTarget")] == [(1, 20)]
    assert changes(replan(steps, plain)) == {}


def test_scaling_teardown_removes_policies_alarms_actions_and_target_before_the_service(
    compute: dict[str, StandIn],
) -> None:
    stack = make_stack(
        **deep_merge(
            STEP_SCALING,
            {
                "services": {
                    "api": {
                        "scaling": {
                            "target_tracking": [{"metric": "memory", "target": 70}],
                            "scheduled": [{"name": "burst", "schedule": "at(2030-01-01T09:00:00)", "min": 4}],
                        }
                    }
                }
            },
        )
    )
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    converge(steps, fresh(stack))
    ctx = fresh(stack)
    converge(steps, ctx, destroy=True)

    ops = [c.operation for c in ctx.aws.calls if c.is_write]
    assert ops.index("DeregisterScalableTarget") < ops.index("DeleteService")
    assert ops.index("DeleteAlarms") < ops.index("DeleteScalingPolicy")
    aas = boto3.client("application-autoscaling", region_name=REGION)
    rid = f"service/{CLUSTER}/demo-api"
    assert aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[rid])["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=rid)["ScalingPolicies"] == []
    assert aas.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=rid)["ScheduledActions"] == []
    alarms = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms if a["AlarmName"].startswith("demo-")] == []


FULLY_SCALED = {
    "services": {
        "api": {
            "scaling": {
                "min": 1,
                "max": 4,
                "target_tracking": [{"metric": "cpu", "target": 85}],
                "step_scaling": [
                    {
                        "name": "queue",
                        "alarm": {"namespace": "AWS/SQS", "metric": "Depth", "threshold": 10},
                        "steps": [{"lower": 0, "change": 1}],
                    }
                ],
                "scheduled": [{"name": "morning", "schedule": "cron(0 8 * * ? *)", "min": 2}],
            }
        }
    }
}


def test_scaling_goes_first_policies_alarms_actions_target(moto: None) -> None:
    stack = make_stack(**FULLY_SCALED)
    steps, ctx = up(stack, lambda s: s.key == "scaling:api")
    cw, aas = ctx.client("cloudwatch"), ctx.client("application-autoscaling")
    # An alarm of a step policy that was removed by hand: Application Auto Scaling leaves it.
    cw.put_metric_alarm(
        AlarmName="demo-api-step-old",
        Namespace="AWS/SQS",
        MetricName="Depth",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        Tags=tag_list({STACK_TAG: "demo", "spotecs:managed": "true"}),
    )
    cw.put_metric_alarm(
        AlarmName="demo-api-step-theirs",
        Namespace="AWS/SQS",
        MetricName="Depth",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    destroy = fresh(stack)
    converge(steps, destroy, destroy=True)
    ops = [c.operation for c in destroy.aws.writes()]
    assert ops.index("DeleteScheduledAction") < ops.index("DeregisterScalableTarget")
    assert ops.index("DeleteAlarms") < ops.index("DeleteScalingPolicy") < ops.index("DeregisterScalableTarget")
    assert ops.index("DeregisterScalableTarget") < ops.index("DeleteService")
    assert aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []
    assert aas.describe_scheduled_actions(ServiceNamespace="ecs")["ScheduledActions"] == []
    assert [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]] == ["demo-api-step-theirs"]


def test_scaling_tag_edit_retags_the_target_and_alarms_only_keeping_the_bounds_memo(
    compute: dict[str, StandIn],
) -> None:
    burst = {"name": "newsletter", "schedule": "cron(0 9 ? * TUE *)", "min": 3, "max": 12}
    scaling = deep_merge(STEP_SCALING, {"services": {"api": {"scaling": {"scheduled": [burst]}}}})
    tagged = make_stack(**scaling, tags={"team": "payments", "cost-center": "cc-17"})
    steps = workload_steps(tagged, compute, lambda s: s.key == "scaling:api")
    converge(steps, fresh(tagged))
    edited = make_stack(**scaling, tags={"team": "billing", "owner": "ops"})
    ch = replan(steps, edited).get("scaling:api")
    assert ch.action is Action.UPDATE and ch.changed_fields() == {"tags", "step_scaling"}
    # The alarm's tags are its policy's (no field of spotecs's own shows in a plan).
    assert "step_scaling[0].alarm.tags.team" in {
        path for d in ch.diffs for path, _, _ in leaf_diffs(d.path, d.old, d.new)
    }
    ctx = fresh(edited)
    converge(steps, ctx)
    # (the service, its task definition and log group are retagged too: their own tests)
    assert writes(ctx, "application-autoscaling") == writes(ctx, "cloudwatch") == ["TagResource", "UntagResource"]
    aas = boto3.client("application-autoscaling", region_name=REGION)
    cw = boto3.client("cloudwatch", region_name=REGION)
    query = {"ServiceNamespace": "ecs", "ResourceIds": [f"service/{CLUSTER}/demo-api"]}
    target = aas.describe_scalable_targets(**query)["ScalableTargets"][0]["ScalableTargetARN"]
    (untag_target,) = [c.params for c in ctx.aws.writes() if c.service == "application-autoscaling"][1:]
    (untag_alarm,) = [c.params for c in ctx.aws.writes() if c.service == "cloudwatch"][1:]
    assert untag_target == {"ResourceARN": target, "TagKeys": ["cost-center"]}  # never spotecs:bounds
    held = aas.list_tags_for_resource(ResourceARN=target)["Tags"]
    assert held["team"] == "billing" and held["owner"] == "ops" and "cost-center" not in held
    assert held[STACK_TAG] == "demo" and held["spotecs:bounds"] == "min=2,max=10"
    alarm = cw.describe_alarms(AlarmNames=["demo-api-step-pushes"])["MetricAlarms"][0]["AlarmArn"]
    assert untag_alarm == {"ResourceARN": alarm, "TagKeys": ["cost-center"]}
    held = {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(ResourceARN=alarm)["Tags"]}
    assert held["team"] == "billing" and held["owner"] == "ops" and "cost-center" not in held
    assert held[STACK_TAG] == "demo"
    assert changes(replan(steps, edited)) == {}


def test_a_plan_asks_the_alarms_of_the_file_s_step_policies_beside_the_policies(compute: dict[str, StandIn]) -> None:
    """The alarm of a step policy is named as the policy: the file's are asked with the policies
    (two round trips, not three), their tags taken from the tagging-API read when they are the
    file's (no ListTagsForResource). A step policy the file dropped has its alarm asked after."""
    stack = make_stack(**STEP_SCALING)
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    converge(steps, fresh(stack))

    def planned(stack: Stack) -> tuple[bool, list[tuple[int, str, list[str]]]]:
        ctx = fresh(stack)
        with ctx.aws.reading():
            change = plan(steps, ctx).get("scaling:api")
        assert [c.depth for c in ctx.aws.calls if c.operation == "DescribeScalingPolicies"] == [2]
        cloudwatch = [c for c in ctx.aws.calls if c.service == "cloudwatch"]
        return change.is_change, [(c.depth, c.operation, c.params.get("AlarmNames", [])) for c in cloudwatch]

    assert planned(stack) == (False, [(2, "DescribeAlarms", ["demo-api-step-pushes"])])
    dropped = make_stack(services={"api": {"scaling": {"min": 2, "max": 10}}})
    assert planned(dropped) == (True, [(3, "DescribeAlarms", ["demo-api-step-pushes"])])
