"""Orphans beyond what orphans.py finds under the file's own names, at no extra call when there
are none: the task role of a service the file no longer names (probed only for a task
definition family that is itself an orphan), the Container Insights log group of a cluster the
file no longer names, and load balancers (their listeners go with them) that carry the stack's
tags under a name the file does not give (an earlier file's or spotecs's), from the tagging-API
read the orphan search already makes (steps.base.stack_tagged). Each reuses its kind's step under the
name found, so it is read, checked for the stack's ownership tags and deleted like a resource
the file names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spotecs import names
from spotecs.steps.base import Context, Step, stack_tagged
from spotecs.steps.iam import Role
from spotecs.steps.load_balancer import LoadBalancer
from spotecs.steps.log_group import ContainerInsightsLogGroup

PREFIX = "orphan:"  # as orphans.PREFIX
# `add(make, *depends_on)` of orphans.find: `make(depends_on=...)` builds the orphan step.
Add = Callable[..., None]


def key(kind: str, name: str) -> str:
    return f"{PREFIX}{kind}:{name}"


def insights_key(cluster: str) -> str:
    return key("log-group", f"container-insights/{cluster}")


def task_role_key(stack: str, region: str, service: str) -> str:
    return key("iam:role", names.task_role(stack, region, service))


def _make(gone: type, base: type, args: tuple[Any, ...], name: str | None, k: str, **kw: Any) -> Callable[..., Step]:
    """A constructor of a `gone` + `base` step for the resource found as `name` (None: the name
    the step gives itself), keyed `k`."""
    cls = type(f"Orphan{base.__name__}", (gone, base), {})

    def make(depends_on: tuple[str, ...] = ()) -> Step:
        step: Step = cls(*args, depends_on=depends_on, **kw)
        step.name = step.name if name is None else name
        step.key = k
        return step

    return make


def find(ctx: Context, add: Add, gone: type, other_clusters: list[str], orphan_services: list[str]) -> None:
    """Add these orphans through `add`; `gone` is orphans.Gone (the mixin they take).
    `orphan_services`: short names of services whose task definition family is an orphan."""
    stack, region = ctx.stack, ctx.region
    name = stack.stack
    for cluster in other_clusters:
        add(_make(gone, ContainerInsightsLogGroup, (cluster,), None, insights_key(cluster)))
    for short in orphan_services:
        if short in stack.services and stack.services[short].task_role:
            continue
        role = names.task_role(name, region, short)
        add(_make(gone, Role, (role, role, "ecs-tasks.amazonaws.com", []), role, task_role_key(name, region, short)))
    balancers = {
        arn.split(":loadbalancer/app/", 1)[1].split("/")[0] for arn in stack_tagged(ctx) if ":loadbalancer/app/" in arn
    }
    for lb in sorted(balancers - {names.load_balancer(name)}):
        add(_make(gone, LoadBalancer, (name, False), lb, key("load-balancer", lb)), "network")
