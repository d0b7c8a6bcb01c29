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

from collections.abc import Callable, Collection, Sequence
from functools import partial
from typing import Any

from spotecs import names
from spotecs.errors import AwsError
from spotecs.steps import fis, orphans_tagged, orphans_unnamed
from spotecs.steps.access_log_bucket import AccessLogBucket
from spotecs.steps.base import Context, Node, Step, arn_resource, stack_tagged
from spotecs.steps.cluster import Cluster, cluster_services, describe_cluster
from spotecs.steps.listeners import Listeners
from spotecs.steps.load_balancer import LoadBalancer, stack_target_groups
from spotecs.steps.log_group import LogGroup, stack_log_groups
from spotecs.steps.scaling_reads import DIMENSION, scaling_reads
from spotecs.steps.security_groups import LoadBalancerGroup
from spotecs.steps.service import Service
from spotecs.steps.service_scaling import ServiceScaling
from spotecs.steps.target_group import TargetGroup
from spotecs.steps.task_definition import TaskDefinition

PREFIX = "orphan:"


class Gone(Step):
    """Mixin, first among the bases: a resource the stack file no longer names, so its desired
    state is "absent". Keyed `orphan:<key>`, with the dependencies `find` gives it."""

    key_prefix = PREFIX
    # Shown in the plan beside its `-`: why a resource of the stack goes.
    gone_reason = "tagged as the stack's, no longer in its file"

    def __init__(self, *args: Any, depends_on: Collection[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.depends_on = tuple(depends_on)

    def desired(self, ctx: Context) -> Any:
        return None

    def check(self, ctx: Context, desired: Any, current: dict[str, Any] | None) -> list[str]:
        return []


class OrphanService(Gone, Service):
    def __init__(self, *args: Any, cluster: str | None = None, **kwargs: Any) -> None:
        """`cluster`: a cluster of the stack other than the file's (then keyed by it too)."""
        super().__init__(*args, **kwargs)
        self.in_cluster = cluster
        if cluster is not None:
            self.key = f"{PREFIX}service:{cluster}/{self.name}"


class OrphanScaling(Gone, ServiceScaling):
    def __init__(self, *args: Any, keyed_by_cluster: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if keyed_by_cluster:
            self.key = f"{PREFIX}scaling:{self.name}"


class OrphanCluster(Gone, Cluster):
    """A cluster of the stack the file no longer names (cluster.name changed): deleted after its
    services, with its instances deregistered (Cluster.delete)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.key = f"{PREFIX}cluster:{name}"


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
    def __init__(self, *args: Any, why: str = "", **kwargs: Any) -> None:
        """`why`: the plan's reason when `up` deletes it (the user never named this bucket)."""
        super().__init__(*args, **kwargs)
        self.gone_reason = why or Gone.gone_reason


def _own_bucket_gone(ctx: Context) -> str:
    logs = ctx.stack.load_balancer.access_logs
    if logs is None:
        return "access logs are off in the file"
    if logs.bucket:
        return f"the file's access logs go to bucket {logs.bucket}"
    return "the file has no load balancer for access logs"


class OrphanFisRole(Gone, fis.FisRole):
    pass


class OrphanFisTemplate(Gone, fis.FisTemplate):
    def read(self, ctx: Context) -> dict[str, Any] | None:
        try:
            return super().read(ctx)
        except AwsError as e:
            # Without FIS permissions no drill can have made a template: nothing to delete.
            if e.code in ("AccessDeniedException", "UnrecognizedClientException"):
                return None
            raise


# An orphan to be: its constructor, to be given the dependencies that turn out to exist.
Candidate = tuple[Callable[..., Step], tuple[str, ...]]


def find(ctx: Context, steps: Sequence[Node], *, destroy: bool = False) -> list[Step]:
    """Steps deleting what the stack owns but `ctx.stack` no longer names. What the file names is
    decided from the stack file itself, never from `steps` (which a caller may have filtered);
    `steps` only gives the keys orphans may depend on. The stack's own access-log bucket is an
    orphan once the file no longer has it (access logs off, or a bucket of the file's): `up` finds
    it in the tagging-API read, teardown asks it (it must go whatever that index holds)."""
    stack = ctx.stack
    name = stack.stack
    services = {names.service(name, s): s for s in stack.services}
    web = {names.target_group(name, s) for s in stack.web_services()}
    scaled = {names.service(name, s) for s, cfg in stack.services.items() if cfg.scaling is not None}
    keys = {s.key for s in steps}
    named = {(s.kind, s.name) for s in steps}

    def service_key(svc: str) -> str:
        return f"service:{services[svc]}" if svc in services else f"{PREFIX}service:{svc}"

    candidates: list[Candidate] = []

    def add(make: Callable[..., Step], *depends_on: str) -> None:
        candidates.append((make, depends_on))

    # Teardown's candidates that no listing names (the bucket, the drill's template and role) are
    # probed with the listings, not after them.
    unlisted: list[Candidate] = []
    if destroy and "access-log-bucket" not in keys:
        unlisted.append((partial(OrphanAccessLogBucket, name), ()))
    if destroy:  # made by `spotecs drill`, never by `up`: only teardown removes them
        unlisted.append((partial(OrphanFisTemplate, name), (f"{PREFIX}{fis.ROLE_KEY}",)))
        unlisted.append((partial(OrphanFisRole, name, ctx.region), ()))
    early = [
        probe for make, deps in unlisted if not _named(probe := make(depends_on=deps), named) and probe.key not in keys
    ]
    tagged_reads = orphans_tagged.reads(ctx)
    # The search's listings at once: it waits for the longest of them, not for their sum.
    found = ctx.at_once(
        lambda: _services(ctx, set(services)),
        lambda: _scaled_services(ctx, scaled),
        lambda: _other_clusters(ctx),
        lambda: _families(ctx, set(services)),
        lambda: _target_groups(ctx, web),
        lambda: _log_groups(ctx, {names.log_group(name, s) for s in stack.services}),
        # The file's cluster, whose capacity providers the search looks at after these listings
        # (orphans_unnamed): its step reads it too, and whichever asks first, it is asked in the
        # first round, never a round trip after it.
        lambda: describe_cluster(ctx, stack.cluster_name),
        # Likewise the account id, which names the stack's own bucket (orphans_unnamed), when the
        # file's bucket step asks it too: a plan without that step asks STS nothing.
        lambda: ctx.account_id if "access-log-bucket" in keys else None,
        *tagged_reads,
        *(partial(_owned, ctx, probe) for probe in early),
    )
    listed_services, scaled_services, other_clusters, families, target_groups, log_groups = found[:6]
    probes = found[8 + len(tagged_reads) :]
    probed = {probe.key: mine for probe, mine in zip(early, probes, strict=True)}
    for svc in listed_services:
        short = names.service_of(name, svc)
        add(
            partial(OrphanService, name, short, web=False, name=svc),
            "cluster",
            "capacity-provider",
            "listeners",
            f"{PREFIX}listeners",
            f"{PREFIX}task-definition:{short}",
            f"{PREFIX}target-group:{short}",
        )
    for svc in scaled_services:
        add(
            partial(OrphanScaling, name, names.service_of(name, svc), cluster=stack.cluster_name, service_name=svc),
            service_key(svc),
        )
    held = orphans_tagged.orphan_groups(ctx, other_clusters)
    # The scalable targets deleted with the scaling found here (their alarms go with them).
    scaled_ids = {names.scalable_target(stack.cluster_name, svc) for svc in scaled_services}
    for cluster in other_clusters:
        # In reverse order: after its own services and their scaling, and before the capacity
        # providers and the groups (its deletion deregisters their instances, which releases the
        # providers from it; ECS refuses to delete a provider a cluster still holds), and before
        # its Container Insights log group.
        insights = orphans_tagged.insights_key(cluster)
        providers = [g.provider_key for g in held if g.cluster == cluster]
        add(partial(OrphanCluster, cluster), "capacity-provider", "auto-scaling-group", *providers, insights)
        for svc in sorted(s["serviceName"] for s in cluster_services(ctx, cluster) if s.get("status") == "ACTIVE"):
            short = names.service_of(name, svc)
            add(partial(OrphanService, name, short, web=False, name=svc, cluster=cluster), f"{PREFIX}cluster:{cluster}")
            scaled_ids.add(names.scalable_target(cluster, svc))
            add(
                partial(OrphanScaling, name, short, cluster=cluster, service_name=svc, keyed_by_cluster=True),
                f"{PREFIX}service:{cluster}/{svc}",
            )
    for family in families:
        short = names.service_of(name, family)
        add(
            partial(OrphanTaskDefinition, name, short),
            "iam:execution-role",
            f"log-group:{short}",
            f"{PREFIX}log-group:{short}",
            orphans_tagged.task_role_key(name, ctx.region, short),
        )
    orphan_tgs: list[str] = []
    for tg in target_groups:
        short = names.service_of(name, tg)
        orphan_tgs.append(f"{PREFIX}target-group:{short}")
        add(partial(OrphanTargetGroup, name, short), "network")
    for group in log_groups:
        short = group.removeprefix(names.log_group_prefix(name))
        add(partial(OrphanLogGroup, name, short))
    if not web:
        add(partial(OrphanLoadBalancerGroup, name), "network")
        add(
            partial(OrphanLoadBalancer, name, own_bucket=False),
            "network",
            f"{PREFIX}security-group:lb",
            f"{PREFIX}access-log-bucket",
        )
        add(partial(OrphanListeners, name, [], https=False), f"{PREFIX}load-balancer", *orphan_tgs)
    if not destroy and "access-log-bucket" not in keys and orphans_unnamed.own_bucket_left(ctx):
        candidates.append((partial(OrphanAccessLogBucket, name, why=_own_bucket_gone(ctx)), ()))
    candidates += unlisted
    orphans_tagged.find(ctx, add, Gone, other_clusters)
    orphans_unnamed.find(ctx, add, Gone, destroy=destroy, other_clusters=other_clusters, held=held, scaled=scaled_ids)
    # Candidates found by name prefix are kept only if they exist and carry our tags.
    unnamed = [
        (make, deps, probe)
        for make, deps in candidates
        if not _named(probe := make(depends_on=deps), named) and probe.key not in keys
    ]
    todo = [probe for _, _, probe in unnamed if probe.key not in probed]
    probed |= dict(zip((p.key for p in todo), ctx.at_once(*(partial(_owned, ctx, p) for p in todo)), strict=True))
    kept = [(make, deps) for make, deps, probe in unnamed if probed[probe.key]]
    present = keys | {make(depends_on=deps).key for make, deps in kept}
    return [make(depends_on=tuple(d for d in deps if d in present)) for make, deps in kept]


def _named(step: Step, named: set[tuple[str, str]]) -> bool:
    """Whether the file names this resource; a service of another cluster never is, whatever
    its name (the file's service of that name lives in the file's cluster)."""
    if isinstance(step, OrphanService) and step.in_cluster is not None:
        return False
    return (step.kind, step.name) in named


def _other_clusters(ctx: Context) -> list[str]:
    """Clusters tagged as the stack's other than the one the file names: found with the
    Resource Groups Tagging API (ECS lists clusters by name only)."""
    found = {
        arn_resource(arn).removeprefix("cluster/")
        for arn in stack_tagged(ctx)
        if arn.split(":")[2:3] == ["ecs"] and arn_resource(arn).startswith("cluster/")
    }
    return sorted(c for c in found - {ctx.stack.cluster_name} if describe_cluster(ctx, c) is not None)


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
    targets = scaling_reads(ctx, "describe_scalable_targets", "ScalableTargets")
    return sorted(
        {
            t["ResourceId"].rsplit("/", 1)[-1]
            for t in targets
            if t["ResourceId"].startswith(prefix) and t.get("ScalableDimension") == DIMENSION
        }
        - named
    )


def _families(ctx: Context, named: set[str]) -> list[str]:
    families = ctx.read_pages(
        "list task definition families",
        "ecs",
        "list_task_definition_families",
        "families",
        familyPrefix=names.service_prefix(ctx.name),
        status="ACTIVE",
    )
    return sorted(f for f in families if f.startswith(names.service_prefix(ctx.name)) and f not in named)


def _target_groups(ctx: Context, named: set[str]) -> list[str]:
    return sorted(g["TargetGroupName"] for g in stack_target_groups(ctx) if g["TargetGroupName"] not in named)


def _log_groups(ctx: Context, named: set[str]) -> list[str]:
    return sorted(g["logGroupName"] for g in stack_log_groups(ctx) if g["logGroupName"] not in named)
