"""Live facts `status` adds to the plan's reads: the group's instances as EC2 and ECS see them,
the tasks on them, the services' targets. Every describe is batched (100 container instances
or tasks per call, instance ids by the thousand) and paginated, so the calls grow with
instances/100 and tasks/100, never with instances or tasks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from datetime import datetime
from typing import Any, TypeVar

from spotecs.errors import AwsError
from spotecs.steps.base import Context

ECS_BATCH = 100  # DescribeContainerInstances and DescribeTasks take at most 100 each
EC2_PAGE = 1000  # DescribeInstances' largest page
T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _describe_batched(
    ctx: Context, pool: Executor, intent: str, fn: Any, key: str, arns: list[str], **kwargs: Any
) -> list[dict[str, Any]]:
    futures = [pool.submit(ctx.call, intent, fn, **{key: batch}, **kwargs) for batch in chunks(arns, ECS_BATCH)]
    out: list[dict[str, Any]] = []
    for f in futures:
        out.extend(f.result().get(key, []))
    return out


def _list(ctx: Context, intent: str, operation: str, key: str, cluster: str) -> list[str]:
    """Every ARN of a cluster's list call; none when the cluster does not exist (yet)."""
    try:
        return ctx.paginate(intent, "ecs", operation, key, cluster=cluster, PaginationConfig={"PageSize": ECS_BATCH})
    except AwsError as e:
        if e.code == "ClusterNotFoundException":
            return []
        raise


def container_instances(ctx: Context, pool: Executor, cluster: str) -> list[dict[str, Any]]:
    ecs = ctx.client("ecs")
    arns = _list(
        ctx, f"list container instances of {cluster}", "list_container_instances", "containerInstanceArns", cluster
    )
    return _describe_batched(
        ctx,
        pool,
        f"describe container instances of {cluster}",
        ecs.describe_container_instances,
        "containerInstances",
        arns,
        cluster=cluster,
    )


def tasks(ctx: Context, pool: Executor, cluster: str) -> list[dict[str, Any]]:
    ecs = ctx.client("ecs")
    arns = _list(ctx, f"list tasks of {cluster}", "list_tasks", "taskArns", cluster)
    intent = f"describe tasks of {cluster}"
    return _describe_batched(ctx, pool, intent, ecs.describe_tasks, "tasks", arns, cluster=cluster)


def ec2_instances(ctx: Context, group: str) -> dict[str, dict[str, Any]]:
    """The group's instances as EC2 sees them (lifecycle, AMI, launch time), found by the tag
    Auto Scaling puts on each: a page per 1,000 instances, and unlike a list of ids, never
    failed by an instance that is already gone."""
    reservations = ctx.paginate(
        f"describe the instances of {group}",
        "ec2",
        "describe_instances",
        "Reservations",
        Filters=[{"Name": "tag:aws:autoscaling:groupName", "Values": [group]}],
        PaginationConfig={"PageSize": EC2_PAGE},
    )
    return {i["InstanceId"]: i for r in reservations for i in r.get("Instances", [])}


def target_health(ctx: Context, arn: str) -> list[dict[str, Any]]:
    got = ctx.call(
        "describe target health",
        ctx.client("elbv2").describe_target_health,
        missing=("TargetGroupNotFound",),
        TargetGroupArn=arn,
    )
    return [
        {
            "id": t["Target"]["Id"],
            "port": t["Target"].get("Port"),
            "state": t.get("TargetHealth", {}).get("State"),
            "reason": t.get("TargetHealth", {}).get("Reason"),
            "description": t.get("TargetHealth", {}).get("Description"),
        }
        for t in (got or {}).get("TargetHealthDescriptions", [])
    ]


def _resource(ci: dict[str, Any], which: str, name: str) -> int | None:
    for r in ci.get(which, []):
        if r.get("name") == name:
            return int(r.get("integerValue", 0))
    return None


def instance_rows(
    group_instances: list[dict[str, Any]],
    ec2: dict[str, dict[str, Any]],
    ecs_instances: list[dict[str, Any]],
    task_list: list[dict[str, Any]],
    latest_ami: str | None,
    now: datetime,
    services: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per instance of the group, joining the group's, EC2's and ECS's views; tasks are
    counted by service, named as in the stack file where `services` maps ECS names to those."""
    by_ec2 = {ci.get("ec2InstanceId"): ci for ci in ecs_instances}
    on_host: dict[str, Counter[str]] = {}
    for t in task_list:
        if t.get("lastStatus") == "STOPPED" or t.get("desiredStatus") == "STOPPED":
            continue
        service = str(t.get("group", "")).removeprefix("service:")
        service = (services or {}).get(service, service)
        on_host.setdefault(t.get("containerInstanceArn", ""), Counter())[service] += 1
    rows = []
    for gi in group_instances:
        i = ec2.get(gi["id"], {})
        ci = by_ec2.get(gi["id"])
        launched = i.get("LaunchTime")
        counts = on_host.get(ci["containerInstanceArn"], Counter()) if ci else Counter()
        ami = i.get("ImageId")
        rows.append(
            {
                "id": gi["id"],
                "type": gi.get("type") or i.get("InstanceType"),
                "zone": gi.get("zone") or i.get("Placement", {}).get("AvailabilityZone"),
                "lifecycle": "spot" if i.get("InstanceLifecycle") == "spot" else "on-demand",
                "state": gi.get("lifecycle_state"),
                "launch_template_version": gi.get("launch_template_version"),
                "ami": ami,
                "ami_outdated": bool(latest_ami and ami and ami != latest_ami),
                "health": gi.get("health"),
                "protected": gi.get("protected", False),
                "ecs_status": ci.get("status") if ci else None,
                "agent_connected": ci.get("agentConnected") if ci else None,
                "tasks": dict(sorted(counts.items())),
                "free_cpu": _resource(ci, "remainingResources", "CPU") if ci else None,
                "free_memory_mib": _resource(ci, "remainingResources", "MEMORY") if ci else None,
                "cpu": _resource(ci, "registeredResources", "CPU") if ci else None,
                "memory_mib": _resource(ci, "registeredResources", "MEMORY") if ci else None,
                "uptime_s": int((now - launched).total_seconds()) if isinstance(launched, datetime) else None,
            }
        )
    return rows


def mix(rows: list[dict[str, Any]], base: int, percent: int) -> dict[str, Any]:
    """The actual spot share beside the configured one (on-demand base + percent above it)."""
    live = [r for r in rows if not str(r.get("state") or "").startswith("Terminat")]
    spot = sum(1 for r in live if r["lifecycle"] == "spot")
    n = len(live)
    above = max(n - base, 0)
    wanted_od = min(n, base) + -(-above * percent // 100)
    return {
        "instances": n,
        "spot": spot,
        "on_demand": n - spot,
        "spot_share": round(spot / n, 3) if n else None,
        "configured": {"on_demand_base": base, "on_demand_percent": percent},
        "expected_on_demand": wanted_od,
        "expected_spot_share": round((n - wanted_od) / n, 3) if n else None,
    }
