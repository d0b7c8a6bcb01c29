"""Service auto scaling: the scalable target (min/max tasks), target tracking on CPU, memory or
ALB requests per target, step scaling driven by a CloudWatch alarm on any metric (the article's
queue of outgoing pushes), and scheduled actions for predictable bursts. Depends on the service,
so a teardown removes all of it before the service."""

from __future__ import annotations

from typing import Any

from spotecs import names
from spotecs.aws import caused_by, tag_list, tags_from_list
from spotecs.engine.model import Change, Unknown
from spotecs.steps.base import Context, Step, stack_tagged
from spotecs.steps.cluster import listed_service
from spotecs.steps.scaling_policies import (
    BOUNDS_TAG,
    bounds_note,
    bounds_of_tags,
    bounds_tag,
    by_name,
    scheduled_of,
    step_adjustment,
    step_policy_of,
    step_request,
    tracking_of,
    tracking_request,
    untagged,
)
from spotecs.steps.scaling_reads import (
    DIMENSION,
    NAMESPACE,
    alarm_tags,
    named_step_policies,
    scaling_reads,
    step_alarms,
    target_tags,
)
from spotecs.steps.service_linked_roles import NOT_USABLE_YET
from spotecs.steps.tagging import desired_tags, held_tags, retag

PREDEFINED = {
    "cpu": "ECSServiceAverageCPUUtilization",
    "memory": "ECSServiceAverageMemoryUtilization",
    "requests": "ALBRequestCountPerTarget",
}
# Application Auto Scaling's not-found code; its deletes are idempotent with it.
GONE = ("ObjectNotFoundException",)
# Right after CreateService, Application Auto Scaling may not see the service yet.
SERVICE_NOT_YET = ("ValidationException", "ECS service doesn't exist")


class ServiceScaling(Step):
    kind = "service auto scaling"
    # Its read is two round trips (the scalable targets, then policies, schedules and tags):
    # asked first (engine.plan.read_all).
    chained = True
    # A scalable target names its service: a new service is registered again.
    binds_to = frozenset({"service"})

    def __init__(
        self, stack: str, service: str, *, cluster: str, by_requests: bool = False, service_name: str | None = None
    ) -> None:
        """`by_requests`: a policy tracks the load balancer's requests per target. `service_name`:
        the AWS name when it is not derived (a tagged service found in the cluster)."""
        self.service_name = service_name or names.service(stack, service)
        super().__init__(
            f"scaling:{service_name or service}",
            names.scalable_target(cluster, self.service_name),
            (f"service:{service}", *(("load-balancer", f"target-group:{service}") if by_requests else ())),
        )
        self.service = service

    @property
    def resource_id(self) -> str:
        return self.name

    def _mine(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items of `scaling_reads` that belong to this service's scalable target."""
        return [i for i in items if i.get("ResourceId") == self.resource_id and i.get("ScalableDimension") == DIMENSION]

    def _target(self) -> dict[str, str]:
        return {"ServiceNamespace": NAMESPACE, "ResourceId": self.resource_id, "ScalableDimension": DIMENSION}

    def desired(self, ctx: Context) -> dict[str, Any]:
        sc = ctx.stack.services[self.service].scaling
        assert sc is not None
        prefix = self.service_name
        tracking = [
            {
                "name": names.tracking_policy(prefix, t.metric),
                "metric": PREDEFINED[t.metric],
                "resource_label": self._label(ctx) if t.metric == "requests" else None,
                "target": float(t.target),
                "scale_in_cooldown": t.scale_in_cooldown,
                "scale_out_cooldown": t.scale_out_cooldown,
                "disable_scale_in": t.disable_scale_in,
            }
            for t in sc.target_tracking
        ]
        steps = [
            {
                "name": names.step_policy(prefix, s.name),
                "adjustment_type": s.adjustment_type,
                "steps": [step_adjustment(a.lower, a.upper, a.change) for a in s.steps],
                "cooldown": s.cooldown,
                # Step scaling aggregates only with these three; other statistics read as an average.
                "aggregation": s.alarm.statistic if s.alarm.statistic in ("Minimum", "Maximum") else "Average",
                "alarm": {
                    "namespace": s.alarm.namespace,
                    "metric": s.alarm.metric,
                    "dimensions": sorted(
                        ({"Name": k, "Value": v} for k, v in s.alarm.dimensions.items()), key=lambda d: d["Name"]
                    ),
                    "statistic": s.alarm.statistic,
                    "period": s.alarm.period,
                    "evaluation_periods": s.alarm.evaluation_periods,
                    "threshold": float(s.alarm.threshold),
                    "comparison": s.alarm.comparison,
                    "wired": True,
                    # A policy takes no tags; its alarm is tagged as every resource of the stack.
                    "tags": desired_tags(ctx),
                },
            }
            for s in sc.step_scaling
        ]
        scheduled = [
            {
                "name": names.scheduled_action(prefix, a.name),
                "schedule": a.schedule,
                "timezone": a.timezone,
                "min": a.min,
                "max": a.max,
            }
            for a in sc.scheduled
        ]
        return {
            "min": sc.min,
            "max": sc.max,
            "target_tracking": by_name(tracking),
            "step_scaling": by_name(steps),
            "scheduled": by_name(scheduled),
            # The scalable target's; spotecs:bounds, a memo of the bounds applied, is never one of them.
            "tags": desired_tags(ctx),
        }

    def _label(self, ctx: Context) -> Any:
        """`app/<lb>/<id>/targetgroup/<tg>/<id>`: which target group's requests to count."""
        lb = ctx.output("load-balancer", "full_name")
        tg = ctx.output(f"target-group:{self.service}", "full_name")
        if isinstance(lb, Unknown) or isinstance(tg, Unknown):
            return Unknown("load-balancer.full_name")
        return f"{lb}/{tg}"

    def read(self, ctx: Context) -> dict[str, Any] | None:
        targets = self._mine(scaling_reads(ctx, "describe_scalable_targets", "ScalableTargets"))
        if not targets:
            return None
        prefix = names.scaling_prefix(self.service_name)
        target = targets[0]
        # The alarms of the step policies the file names are asked beside the policies: their
        # names are the policies', known before any answer (two round trips, not three). A step
        # policy the file no longer names has its alarm asked after.
        named = named_step_policies(ctx, self.service, self.service_name)
        # None of these needs another's answer: asked at once, they cost one round trip, not five.
        all_policies, all_scheduled, service, on_target, early, _ = ctx.at_once(
            lambda: scaling_reads(ctx, "describe_scaling_policies", "ScalingPolicies"),
            lambda: scaling_reads(ctx, "describe_scheduled_actions", "ScheduledActions"),
            lambda: listed_service(ctx, ctx.stack.cluster_name, self.service_name),
            lambda: target_tags(ctx, self.resource_id, target),
            lambda: step_alarms(ctx, self.resource_id, named),
            # What the alarms' tags are read from (scaling_reads.alarm_tags), never a round after.
            lambda: stack_tagged(ctx) if named and ctx.aws.sharing_reads else {},
        )
        policies = [p for p in self._mine(all_policies) if p["PolicyName"].startswith(prefix)]
        step_policies = [p for p in policies if p.get("PolicyType") == "StepScaling"]
        later = [p["PolicyName"] for p in step_policies if p["PolicyName"] not in named]
        found = {**early, **step_alarms(ctx, self.resource_id, later)}
        alarms = {p["PolicyName"]: found[p["PolicyName"]] for p in step_policies if p["PolicyName"] in found}
        held = alarm_tags(ctx, list(alarms.values()))
        scheduled = [a for a in self._mine(all_scheduled) if a["ScheduledActionName"].startswith(prefix)]
        live = {"min": target["MinCapacity"], "max": target["MaxCapacity"]}
        applied = bounds_of_tags(on_target or {}) if scheduled else None
        return {
            **(applied or live),
            # Live facts, never diffed: the bounds in force, and whether the tag was read.
            "in_force": live,
            "applied": applied,
            "target_arn": target.get("ScalableTargetARN"),
            "target_tracking": by_name(
                [tracking_of(p) for p in policies if p.get("PolicyType") == "TargetTrackingScaling"]
            ),
            "step_scaling": by_name(
                [step_policy_of(p, alarms.get(p["PolicyName"]), held.get(p["PolicyName"])) for p in step_policies]
            ),
            "scheduled": by_name([scheduled_of(a) for a in scheduled]),
            "tags": held_tags({k: v for k, v in (on_target or {}).items() if k != BOUNDS_TAG}),
            "alarm_arns": {name: a["AlarmArn"] for name, a in alarms.items()},
            # Live facts, never diffed: `status` shows each policy's alarms from this same read.
            "policy_alarms": {p["PolicyName"]: sorted(a["AlarmName"] for a in p.get("Alarms", [])) for p in policies},
            # Scalable targets carry no tags spotecs can read back everywhere: they belong to the
            # service they scale (one left behind by a deleted service is this stack's leftover).
            "_owned": service is None or ctx.owned(tags_from_list(service.get("tags"))),
        }

    def notes(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        return bounds_note(desired, current)

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        return self._converge(ctx, desired, None)

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        return self._converge(ctx, desired, current)

    def _converge(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
        aas, cw = ctx.client("application-autoscaling"), ctx.client("cloudwatch")
        have: dict[str, Any] = current or {"target_tracking": [], "step_scaling": [], "scheduled": []}
        wanted_bounds = (desired["min"], desired["max"])
        remember = bounds_tag(*wanted_bounds) if desired["scheduled"] else {}
        # Without schedules any more, the bounds a schedule left in force are the file's again.
        in_force = (current or {}).get("in_force") if not desired["scheduled"] else None
        if (
            current is None
            or wanted_bounds != (current["min"], current["max"])
            or (in_force and wanted_bounds != (in_force["min"], in_force["max"]))
        ):
            # Right after CreateService (and in a fresh account, its role), Application Auto
            # Scaling may not see the service, or may not assume its role, yet.
            ctx.retry(
                f"register scalable target {self.resource_id}",
                aas.register_scalable_target,
                codes=(),
                when=caused_by(*NOT_USABLE_YET, SERVICE_NOT_YET),
                timeout=ctx.timeouts.budget("service-linked role"),
                MinCapacity=desired["min"],
                MaxCapacity=desired["max"],
                **({"Tags": {**desired["tags"], **remember}} if current is None else {}),
                **self._target(),
            )
        if (
            current is not None
            and remember
            and current.get("applied") != {"min": wanted_bounds[0], "max": wanted_bounds[1]}
        ):
            ctx.call(
                f"remember the bounds of scalable target {self.resource_id}",
                aas.tag_resource,
                ResourceARN=current["target_arn"],
                Tags=remember,
            )
        for kind in ("target_tracking", "step_scaling"):
            wanted = {p["name"]: p for p in desired[kind]}
            for old in have[kind]:
                if old["name"] not in wanted:
                    self._delete_policy(ctx, old["name"], with_alarm=kind == "step_scaling")
            existing = {p["name"]: p for p in have[kind]}
            for name, policy in wanted.items():
                # An alarm's tags alone are changed by the tagging calls (_retag), not a new put.
                if name in existing and untagged(existing[name]) == untagged(policy):
                    continue
                if kind == "target_tracking":
                    ctx.call(
                        f"put scaling policy {name}",
                        aas.put_scaling_policy,
                        PolicyName=name,
                        PolicyType="TargetTrackingScaling",
                        TargetTrackingScalingPolicyConfiguration=tracking_request(policy),
                        **self._target(),
                    )
                    continue
                arn = ctx.call(
                    f"put scaling policy {name}",
                    aas.put_scaling_policy,
                    PolicyName=name,
                    PolicyType="StepScaling",
                    StepScalingPolicyConfiguration=step_request(policy),
                    **self._target(),
                )["PolicyARN"]
                a = policy["alarm"]
                ctx.call(
                    f"put alarm {name}",
                    cw.put_metric_alarm,
                    AlarmName=name,
                    AlarmDescription=f"spotecs {ctx.name}: step scaling of {self.service_name}",
                    Namespace=a["namespace"],
                    MetricName=a["metric"],
                    Dimensions=a["dimensions"],
                    Statistic=a["statistic"],
                    Period=a["period"],
                    EvaluationPeriods=a["evaluation_periods"],
                    Threshold=a["threshold"],
                    ComparisonOperator=a["comparison"],
                    AlarmActions=[arn],
                    # Taken by a new alarm only: an existing one's are changed below.
                    Tags=tag_list(a["tags"]),
                )
        wanted = {a["name"]: a for a in desired["scheduled"]}
        existing = {a["name"]: a for a in have["scheduled"]}
        for name in sorted(set(existing) - set(wanted)):
            ctx.call(
                f"delete scheduled action {name}",
                aas.delete_scheduled_action,
                missing=GONE,
                ScheduledActionName=name,
                **self._target(),
            )
        for name, a in wanted.items():
            if existing.get(name) != a:
                bounds = {k: v for k, v in (("MinCapacity", a["min"]), ("MaxCapacity", a["max"])) if v is not None}
                ctx.call(
                    f"put scheduled action {name}",
                    aas.put_scheduled_action,
                    ScheduledActionName=name,
                    Schedule=a["schedule"],
                    Timezone=a["timezone"],
                    ScalableTargetAction=bounds,
                    **self._target(),
                )
        if current is not None:
            self._retag(ctx, desired, current)
        return {"resource_id": self.resource_id}

    def _retag(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any]) -> None:
        """The scalable target's tags and those of each alarm that was there before (a new one was
        created with the file's). RegisterScalableTarget and PutMetricAlarm ignore `Tags` on
        an existing resource: only the tagging calls change them."""
        if current.get("target_arn"):
            what = f"scalable target {self.resource_id}"
            retag(ctx, "application-autoscaling", what, current["target_arn"], desired["tags"], current.get("tags"))
        arns = current.get("alarm_arns", {})
        held = {p["name"]: (p["alarm"] or {}).get("tags") for p in current.get("step_scaling", [])}
        for p in desired["step_scaling"]:
            if p["name"] in arns:
                retag(ctx, "cloudwatch", f"alarm {p['name']}", arns[p["name"]], p["alarm"]["tags"], held.get(p["name"]))

    def _delete_policy(self, ctx: Context, name: str, *, with_alarm: bool) -> None:
        if with_alarm:  # the alarm first: it would otherwise fire into a deleted policy
            ctx.call(
                f"delete alarm {name}",
                ctx.client("cloudwatch").delete_alarms,
                missing=("ResourceNotFound",),
                AlarmNames=[name],
            )
        ctx.call(
            f"delete scaling policy {name}",
            ctx.client("application-autoscaling").delete_scaling_policy,
            missing=GONE,
            PolicyName=name,
            **self._target(),
        )

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        for a in current.get("scheduled", []):
            ctx.call(
                f"delete scheduled action {a['name']}",
                ctx.client("application-autoscaling").delete_scheduled_action,
                missing=GONE,
                ScheduledActionName=a["name"],
                **self._target(),
            )
        for p in current.get("step_scaling", []):
            self._delete_policy(ctx, p["name"], with_alarm=True)
        for p in current.get("target_tracking", []):
            self._delete_policy(ctx, p["name"], with_alarm=False)
        ctx.call(
            f"deregister scalable target {self.resource_id}",
            ctx.client("application-autoscaling").deregister_scalable_target,
            missing=GONE,
            **self._target(),
        )
        self._delete_stray_alarms(ctx, {p["name"] for p in current.get("step_scaling", [])})

    def _delete_stray_alarms(self, ctx: Context, done: set[str]) -> None:
        """Step-scaling alarms whose policy is already gone (removed by hand, or with a scalable
        target deregistered outside spotecs): Application Auto Scaling never deletes them."""
        cw = ctx.client("cloudwatch")
        alarms = ctx.paginate(
            f"list alarms of {self.resource_id}",
            "cloudwatch",
            "describe_alarms",
            "MetricAlarms",
            AlarmNamePrefix=names.step_policy_prefix(self.service_name),
        )
        stray = alarm_tags(ctx, [a for a in alarms if a["AlarmName"] not in done])
        for name in (n for n, tags in stray.items() if ctx.owned(tags)):
            ctx.call(f"delete alarm {name}", cw.delete_alarms, missing=("ResourceNotFound",), AlarmNames=[name])
