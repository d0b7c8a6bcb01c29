"""Orphans: resources of the stack that the stack file no longer names. A service removed from the
file leaves its ECS service, task definition family, target group (and listener rule), log group
and scaling behind; a stack that no longer routes any service leaves its load balancer, listeners
and load balancer security group. `find` discovers them by the stack's deterministic names and
tags and returns steps that want them gone (`desired()` is None), so the engine plans a DELETE:
`up` deletes them after its forward walk, `teardown` with everything else, in reverse order.

Only resources that carry the stack's ownership tags are returned; anything else of a matching
name (another stack's, a user's) is never touched. Each orphan reuses its kind's step, so it is
read and deleted exactly like a resource the file names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spotecs import names
from spotecs.errors import AwsError
from spotecs.steps.base import Context, Step
from spotecs.steps.cluster import cluster_services
from spotecs.steps.listeners import Listeners
from spotecs.steps.load_balancer import AccessLogBucket, LoadBalancer
from spotecs.steps.log_group import LogGroup
from spotecs.steps.security_groups import LoadBalancerGroup
from spotecs.steps.service import Service
from spotecs.steps.service_scaling import DIMENSION, NAMESPACE, ServiceScaling
from spotecs.steps.target_group import TargetGroup
from spotecs.steps.task_definition import TaskDefinition

PREFIX = "orphan:"


class Gone:
    """Mixin: a resource the stack file no longer names, so its desired state is "absent"."""

    def desired(self, ctx: Context) -> Any:
        return None

    def check(self, ctx: Context, desired: Any, current: dict[str, Any] | None) -> list[str]:
        return []


class OrphanService(Gone, Service):
    def __init__(self, stack: str, name: str) -> None:
        # Not Service.__init__: it reads the service's settings from the stack file. Keyed by the
        # AWS name: a tagged service need not be named `<stack>-<service>`.
        Step.__init__(self, f"service:{name}", name)
        self.service = names.service_of(stack, name)


class OrphanScaling(Gone, ServiceScaling):
    def __init__(self, stack: str, cluster: str, name: str) -> None:
        Step.__init__(self, f"scaling:{name}", f"service/{cluster}/{name}")
        self.service_name = name
        self.service = names.service_of(stack, name)


class OrphanTaskDefinition(Gone, TaskDefinition):
    pass


class OrphanTargetGroup(Gone, TargetGroup):
    pass


class OrphanLogGroup(Gone, LogGroup):
    pass


class OrphanLoadBalancer(Gone, LoadBalancer):
    pass


class OrphanListeners(Gone, Listeners):
    pass


class OrphanLoadBalancerGroup(Gone, LoadBalancerGroup):
    pass


class OrphanAccessLogBucket(Gone, AccessLogBucket):
    pass


def _rekey(step: Step, depends_on: Sequence[str] = ()) -> Step:
    step.key = f"{PREFIX}{step.key}"
    step.depends_on = tuple(depends_on)
    return step


def find(ctx: Context, steps: Sequence[Step], *, destroy: bool = False) -> list[Step]:
    """Steps deleting what the stack owns but `ctx.stack` no longer names. What the file names is
    decided from the stack file itself, never from `steps` (which a caller may have filtered);
    `steps` only gives the keys orphans may depend on. With `destroy` (teardown), the access-log
    bucket is included too: `up` never deletes logs because access logs were switched off."""
    stack = ctx.stack
    name = stack.stack
    services = {names.service(name, s): s for s in stack.services}
    web = {names.target_group(name, s) for s in stack.web_services()}
    scaled = {names.service(name, s) for s, cfg in stack.services.items() if cfg.scaling is not None}
    keys = {s.key for s in steps}
    named = {(s.kind, s.name) for s in steps}

    def service_key(svc: str) -> str:
        return f"service:{services[svc]}" if svc in services else f"{PREFIX}service:{svc}"

    found: list[Step] = []
    for svc in _services(ctx, set(services)):
        short = names.service_of(name, svc)
        found.append(
            _rekey(
                OrphanService(name, svc),
                (
                    "cluster",
                    "capacity-provider",
                    "listeners",
                    f"{PREFIX}listeners",
                    f"{PREFIX}task-definition:{short}",
                    f"{PREFIX}target-group:{short}",
                ),
            )
        )
    for svc in _scaled_services(ctx, scaled):
        found.append(_rekey(OrphanScaling(name, stack.cluster_name, svc), (service_key(svc),)))
    for family in _families(ctx, set(services)):
        short = names.service_of(name, family)
        found.append(
            _rekey(
                OrphanTaskDefinition(name, short),
                ("iam:execution-role", f"log-group:{short}", f"{PREFIX}log-group:{short}"),
            )
        )
    for tg in _target_groups(ctx, web):
        found.append(_rekey(OrphanTargetGroup(name, names.service_of(name, tg)), ("network",)))
    for group in _log_groups(ctx, {names.log_group(name, s) for s in stack.services}):
        found.append(_rekey(OrphanLogGroup(name, group.removeprefix(names.log_group_prefix(name)))))
    if not web:
        orphan_tgs = [s.key for s in found if isinstance(s, OrphanTargetGroup)]
        found.append(_rekey(OrphanLoadBalancerGroup(name), ("network",)))
        found.append(
            _rekey(
                OrphanLoadBalancer(name, own_bucket=False),
                ("network", f"{PREFIX}security-group:lb", f"{PREFIX}access-log-bucket"),
            )
        )
        found.append(_rekey(OrphanListeners(name, [], https=False), (f"{PREFIX}load-balancer", *orphan_tgs)))
    if destroy and "access-log-bucket" not in keys:
        found.append(_rekey(OrphanAccessLogBucket(name)))
    # Candidates found by name prefix are kept only if they exist and carry our tags.
    found = [s for s in found if (s.kind, s.name) not in named and s.key not in keys and _owned(ctx, s)]
    present = keys | {s.key for s in found}
    for s in found:
        s.depends_on = tuple(d for d in s.depends_on if d in present)
    return found


def _owned(ctx: Context, step: Step) -> bool:
    current = step.read(ctx.for_step(step.key))
    return current is not None and bool(current.get("_owned"))


def _services(ctx: Context, named: set[str]) -> list[str]:
    """ACTIVE services in the stack's cluster tagged as the stack's (whatever their name)."""
    return sorted(
        s["serviceName"]
        for s in cluster_services(ctx, ctx.stack.cluster_name)
        if s.get("status") == "ACTIVE" and s["serviceName"] not in named
    )


def _scaled_services(ctx: Context, named: set[str]) -> list[str]:
    """Services of the stack's cluster with a scalable target the file does not ask for."""
    prefix = names.scalable_target_prefix(ctx.stack.cluster_name, ctx.name)
    targets = ctx.paginate(
        "list the scalable targets of ECS services",
        "application-autoscaling",
        "describe_scalable_targets",
        "ScalableTargets",
        ServiceNamespace=NAMESPACE,
    )
    return sorted(
        {
            t["ResourceId"].rsplit("/", 1)[-1]
            for t in targets
            if t["ResourceId"].startswith(prefix) and t.get("ScalableDimension") == DIMENSION
        }
        - named
    )


def _families(ctx: Context, named: set[str]) -> list[str]:
    families = ctx.paginate(
        "list task definition families",
        "ecs",
        "list_task_definition_families",
        "families",
        familyPrefix=names.service_prefix(ctx.name),
        status="ACTIVE",
    )
    return sorted(f for f in families if f.startswith(names.service_prefix(ctx.name)) and f not in named)


def _target_groups(ctx: Context, named: set[str]) -> list[str]:
    try:
        groups = ctx.paginate("list target groups", "elbv2", "describe_target_groups", "TargetGroups")
    except AwsError as e:
        if e.code == "TargetGroupNotFound":
            return []
        raise
    return sorted(
        g["TargetGroupName"]
        for g in groups
        if g["TargetGroupName"].startswith(names.service_prefix(ctx.name)) and g["TargetGroupName"] not in named
    )


def _log_groups(ctx: Context, named: set[str]) -> list[str]:
    groups = ctx.paginate(
        "list log groups",
        "logs",
        "describe_log_groups",
        "logGroups",
        logGroupNamePrefix=names.log_group_prefix(ctx.name),
    )
    return sorted(g["logGroupName"] for g in groups if g["logGroupName"] not in named)
