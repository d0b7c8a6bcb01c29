"""The scaling part of `status`: who sets the group's and the services' sizes right now, what
the policies' alarms say, when the scheduled actions run next, and what the scalers did lately
(failed activities first: spot capacity and quota errors are the ones users need to see).
Reads what the plan did not: the activities (one call per scaler), the alarms (one call for
all) and the capacity provider's reservation metric (one call)."""

from __future__ import annotations

from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any

from spotecs import names
from spotecs.errors import AwsError
from spotecs.schedule import next_run
from spotecs.steps.base import Context
from spotecs.steps.scaling_reads import DIMENSION, NAMESPACE

RECENT = 10  # activities shown per scaler
FAILED = ("Failed", "Cancelled", "Unfulfilled")
ALARM_BATCH = 100  # DescribeAlarms takes at most 100 names


def group_activities(ctx: Context, group: str) -> list[dict[str, Any]]:
    got = ctx.call(
        f"describe scaling activities of {group}",
        ctx.client("autoscaling").describe_scaling_activities,
        AutoScalingGroupName=group,
        MaxRecords=RECENT,
    )
    return [
        {
            "scaler": "group",
            "status": a.get("StatusCode"),
            "description": a.get("Description"),
            "cause": a.get("Cause"),
            "message": a.get("StatusMessage"),
            "start": a.get("StartTime"),
            "end": a.get("EndTime"),
        }
        for a in got.get("Activities", [])
    ]


def service_activities(ctx: Context, service: str, resource_id: str) -> list[dict[str, Any]]:
    got = ctx.call(
        f"describe scaling activities of {resource_id}",
        ctx.client("application-autoscaling").describe_scaling_activities,
        ServiceNamespace=NAMESPACE,
        ResourceId=resource_id,
        ScalableDimension=DIMENSION,
        MaxResults=RECENT,
    )
    return [
        {
            "scaler": f"service {service}",
            "status": a.get("StatusCode"),
            "description": a.get("Description"),
            "cause": a.get("Cause"),
            "message": a.get("StatusMessage"),
            "start": a.get("StartTime"),
            "end": a.get("EndTime"),
        }
        for a in got.get("ScalingActivities", [])
    ]


def alarm_states(ctx: Context, names: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), ALARM_BATCH):
        for a in ctx.paginate(
            "describe the scaling alarms",
            "cloudwatch",
            "describe_alarms",
            "MetricAlarms",
            AlarmNames=names[start : start + ALARM_BATCH],
        ):
            out[a["AlarmName"]] = {"state": a.get("StateValue"), "reason": a.get("StateReason")}
    return out


def reservation(ctx: Context, cluster: str, provider: str, now: datetime) -> float | None:
    """The capacity provider's current capacity: CapacityProviderReservation, the percent of
    the group's instances its tasks need (100 = exactly full), its newest datapoint."""
    got = ctx.call(
        f"read the capacity of {provider}",
        ctx.client("cloudwatch").get_metric_data,
        MetricDataQueries=[
            {
                "Id": "reservation",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/ECS/ManagedScaling",
                        "MetricName": "CapacityProviderReservation",
                        "Dimensions": [
                            {"Name": "ClusterName", "Value": cluster},
                            {"Name": "CapacityProviderName", "Value": provider},
                        ],
                    },
                    "Period": 60,
                    "Stat": "Average",
                },
            }
        ],
        StartTime=now - timedelta(minutes=15),
        EndTime=now,
        ScanBy="TimestampDescending",
    )
    for result in got.get("MetricDataResults", []):
        values = result.get("Values", [])
        if values:
            return float(values[0])
    return None


def read(ctx: Context, pool: Executor, now: datetime) -> dict[str, Any]:
    """Every scaling read at once; a scaler that cannot be read leaves a problem, not a crash."""
    outputs = ctx.outputs
    group = outputs.get("auto-scaling-group", {})
    provider = outputs.get("capacity-provider", {})
    scalers = {svc: outputs[f"scaling:{svc}"] for svc in ctx.stack.services if outputs.get(f"scaling:{svc}")}
    jobs: dict[str, Any] = {}
    if group.get("name"):
        jobs["group"] = pool.submit(group_activities, ctx, group["name"])
    for svc in scalers:
        resource_id = names.scalable_target(ctx.stack.cluster_name, names.service(ctx.stack.stack, svc))
        jobs[f"service:{svc}"] = pool.submit(service_activities, ctx, svc, resource_id)
    alarm_names = sorted(
        {a for out in scalers.values() for alarms in out.get("policy_alarms", {}).values() for a in alarms}
    )
    alarms_job = pool.submit(alarm_states, ctx, alarm_names) if alarm_names else None
    cap_job = (
        pool.submit(reservation, ctx, ctx.stack.cluster_name, provider["name"], now) if provider.get("name") else None
    )
    problems: list[str] = []
    activities: list[dict[str, Any]] = []
    for job in jobs.values():
        try:
            activities.extend(job.result())
        except AwsError as e:
            problems.append(str(e))
    alarms: dict[str, dict[str, Any]] = {}
    if alarms_job is not None:
        try:
            alarms = alarms_job.result()
        except AwsError as e:
            problems.append(str(e))
    current: float | None = None
    if cap_job is not None:
        try:
            current = cap_job.result()
        except AwsError as e:
            problems.append(str(e))
    activities.sort(key=lambda a: a["start"] or now, reverse=True)
    activities.sort(key=lambda a: a["status"] not in FAILED)  # stable: failed first, newest first
    return {
        "group": {
            "name": group.get("name"),
            "min": group.get("min"),
            "desired": group.get("desired_capacity"),
            "max": group.get("max"),
            "in_service": sum(1 for i in group.get("instances", []) if i.get("lifecycle_state") == "InService"),
        },
        "capacity_provider": {
            "name": provider.get("name"),
            "target_capacity": provider.get("managed_scaling", {}).get("target_capacity"),
            "current_capacity": current,
        },
        "services": [_service(ctx, svc, out, alarms, now) for svc, out in sorted(scalers.items())],
        "activities": activities,
        "problems": problems,
    }


def _service(
    ctx: Context, svc: str, out: dict[str, Any], alarms: dict[str, dict[str, Any]], now: datetime
) -> dict[str, Any]:
    cfg = ctx.stack.services[svc].scaling
    scheduled = [
        {
            "name": a["name"],
            "schedule": a["schedule"],
            "timezone": a.get("timezone") or "UTC",
            "min": a.get("min"),
            "max": a.get("max"),
            "next_run": next_run(a["schedule"], a.get("timezone") or "UTC", now),
        }
        for a in out.get("scheduled", [])
    ]
    # With schedules, the read's min/max are those spotecs applied; `in_force` are the live ones.
    live = out.get("in_force") or out
    lo, hi = live.get("min"), live.get("max")
    set_by = None
    if cfg is not None and (lo, hi) != (cfg.min, cfg.max):
        # The scalable target's min/max differ from the file's: a scheduled action set them.
        set_by = next(
            (a["name"] for a in scheduled if a["min"] in (None, lo) and a["max"] in (None, hi)),
            "changed outside spotecs",
        )
    policies = [
        {"name": name, "alarms": [{"name": a, **alarms.get(a, {"state": None, "reason": None})} for a in names]}
        for name, names in sorted(out.get("policy_alarms", {}).items())
    ]
    return {
        "service": svc,
        "min": lo,
        "max": hi,
        "configured_min": cfg.min if cfg else None,
        "configured_max": cfg.max if cfg else None,
        "set_by": set_by,
        "policies": policies,
        "scheduled": scheduled,
    }
