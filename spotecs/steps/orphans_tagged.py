"""Orphans beyond what orphans.py finds under the file's own names, at no extra call when there
are none: the Container Insights log group of a cluster the file no longer names, and what
carries the stack's tags under a name or id the file does not give (an earlier file's or an
earlier spotecs's): launch templates, auto scaling groups with their capacity providers, load
balancers (their listeners go with them), target groups, security groups, log groups, and IAM
roles with their instance profiles (the task role of a removed service or of a service that
dropped `task_role`, an earlier file's role).

They come from reads the plan makes anyway: the tagging-API read that gives the steps their
ownership tags (steps.base.stack_tagged), the plan's one read of the account's roles that the
IAM steps read from (iam.account_roles), and the tag-filtered listing of the stack's groups that
the group step reads from (auto_scaling_group.stack_groups); the tagging API covers no group
(https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html).
A resource the file names is told by the id its own step reads. Each orphan reuses its kind's
step under the name found, so it is read, checked for the stack's ownership tags and deleted
like a resource the file names. Deletion order follows AWS: a group goes before its launch
template and after its capacity provider; a security group after the load balancers and launch
templates that use it; a target group after the load balancer that forwards to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spotecs import names
from spotecs.aws import tags_from_list
from spotecs.steps.auto_scaling_group import AutoScalingGroup, stack_groups
from spotecs.steps.base import Context, Step, arn_resource, stack_tagged
from spotecs.steps.capacity_provider import CapacityProvider, services_using
from spotecs.steps.cluster import describe_cluster
from spotecs.steps.iam import Role, account_roles
from spotecs.steps.launch_template import NOT_FOUND as TEMPLATE_NOT_FOUND
from spotecs.steps.launch_template import LaunchTemplate, default_version
from spotecs.steps.load_balancer import LoadBalancer
from spotecs.steps.log_group import ContainerInsightsLogGroup, LogGroup
from spotecs.steps.security_groups import ROLES, SecurityGroup, named_group
from spotecs.steps.target_group import TargetGroup, describe_target_group

PREFIX = "orphan:"  # as orphans.PREFIX
# `add(make, *depends_on)` of orphans.find: `make(depends_on=...)` builds the orphan step.
Add = Callable[..., None]


def key(kind: str, name: str) -> str:
    return f"{PREFIX}{kind}:{name}"


def insights_key(cluster: str) -> str:
    return key("log-group", f"container-insights/{cluster}")


def task_role_key(stack: str, region: str, service: str) -> str:
    return key("iam:role", names.task_role(stack, region, service))


def _make(
    gone: type,
    base: type,
    args: tuple[Any, ...],
    name: str | None,
    k: str,
    attrs: dict[str, Any] | None = None,
    **kw: Any,
) -> Callable[..., Step]:
    """A constructor of a `gone` + `base` step for the resource found as `name` (None: the name
    the step gives itself), keyed `k`; `attrs` are set on the step (what its read needs)."""
    cls = type(f"Orphan{base.__name__}", (gone, base), {})

    def make(depends_on: tuple[str, ...] = ()) -> Step:
        step: Step = cls(*args, depends_on=depends_on, **kw)
        step.name = step.name if name is None else name
        step.key = k
        for attr, value in (attrs or {}).items():
            setattr(step, attr, value)
        return step

    return make


class TaggedTargetGroup(TargetGroup):
    """A target group found by tag under a name outside the stack's listing: read by its ARN."""

    arn = ""

    def describe(self, ctx: Context) -> dict[str, Any] | None:
        return describe_target_group(ctx, self.name, arn=self.arn)


class TaggedLogGroup(LogGroup):
    """A log group found by tag outside the stack's prefix: listed by its own name."""

    def describe(self, ctx: Context) -> dict[str, Any] | None:
        groups = ctx.read_pages(
            f"describe log group {self.name}", "logs", "describe_log_groups", "logGroups", logGroupNamePrefix=self.name
        )
        return next((g for g in groups if g["logGroupName"] == self.name), None)


class TaggedSecurityGroup(SecurityGroup):
    """A security group found by tag under a name the stack's steps do not read: read by id, with
    the others found so, in one read."""

    group_id = ""
    found_ids: tuple[str, ...] = ()

    def __init__(self, stack: str) -> None:
        super().__init__("tagged", stack, "")

    def describe(self, ctx: Context) -> dict[str, Any] | None:
        return next((g for g in _groups_by_id(ctx, self.found_ids) if g["GroupId"] == self.group_id), None)


class TaggedCapacityProvider(CapacityProvider):
    """The capacity provider of a group the file no longer names (`group`), in the cluster that
    holds it. The stack's services leave it as they are deleted in the same run: waited for."""

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        name = current["name"]

        def unused() -> tuple[bool, str]:
            users = services_using(ctx, self.cluster, name)
            return not users, f"used by service(s) {', '.join(users)}"

        ctx.poll(
            f"the services of cluster {self.cluster} to stop using capacity provider {name}",
            unused,
            timeout=ctx.timeouts.budget("service deleted"),
            hint="Move those services to another capacity provider or delete them, then run the same command again.",
        )
        super().delete(ctx, current)


@dataclass(frozen=True)
class OrphanGroup:
    """A group tagged as the stack's that the file does not name, its capacity provider's name and
    the cluster holding that provider (the file's when none does)."""

    name: str
    provider: str
    cluster: str

    @property
    def key(self) -> str:
        return key("auto-scaling-group", self.name)

    @property
    def provider_key(self) -> str:
        return key("capacity-provider", self.name)


def orphan_groups(ctx: Context, other_clusters: list[str]) -> list[OrphanGroup]:
    """From the reads the plan shares (the stack's groups, its clusters): no call of its own."""
    found = []
    for g in sorted(stack_groups(ctx), key=lambda g: str(g["AutoScalingGroupName"])):
        group = g["AutoScalingGroupName"]
        if group == names.auto_scaling_group(ctx.name):
            continue
        provider = names.capacity_provider(group, g["AutoScalingGroupARN"])
        clusters = [ctx.stack.cluster_name, *other_clusters]
        held = (c for c in clusters if provider in (describe_cluster(ctx, c) or {}).get("capacityProviders", []))
        found.append(OrphanGroup(group, provider, next(held, ctx.stack.cluster_name)))
    return found


def reads(ctx: Context) -> list[Callable[[], Any]]:
    """The reads this search starts from besides the tagging-API read (orphans.find's own, for its
    other clusters), for orphans.find to make at once with its listings (the plan's read layer
    keeps their answers): the search then waits for the longest of them, not for each in turn."""
    return [
        lambda: stack_groups(ctx),
        lambda: named_group(ctx, names.security_group(ctx.name, ROLES[0])),
        lambda: _own_template_ids(ctx),
        lambda: account_roles(ctx),
    ]


def find(ctx: Context, add: Add, gone: type, other_clusters: list[str]) -> None:
    """Add these orphans through `add`; `gone` is orphans.Gone (the mixin they take)."""
    name = ctx.stack.stack
    for cluster in other_clusters:
        add(_make(gone, ContainerInsightsLogGroup, (cluster,), None, insights_key(cluster)))
    for role, profiled in _stack_roles(ctx):
        add(_make(gone, Role, (role, role, "", []), role, key("iam:role", role), instance_profile=profiled))
    tagged = list(stack_tagged(ctx))
    group_keys = _security_groups(ctx, add, gone, tagged)
    target_keys = []
    for tg, arn in sorted(_named(tagged, "targetgroup/").items()):
        if tg.startswith(names.service_prefix(name)):
            continue  # under the stack's names: orphans.py's, from the listing of those
        target_keys.append(key("target-group", tg))
        add(_make(gone, TaggedTargetGroup, (name, ""), tg, target_keys[-1], {"arn": arn}), "network")
    for lb in sorted(set(_named(tagged, "loadbalancer/app/")) - {names.load_balancer(name)}):
        make = _make(gone, LoadBalancer, (name, False), lb, key("load-balancer", lb))
        # Before the security groups it may be in and the target groups it may forward to.
        add(make, "network", "security-group:lb", f"{PREFIX}security-group:lb", *group_keys, *target_keys)
    for arn in tagged:
        group = arn_resource(arn).removeprefix("log-group:")
        if arn_resource(arn).startswith("log-group:") and not group.startswith(names.log_group_prefix(name)):
            add(_make(gone, TaggedLogGroup, (name, ""), group, key("log-group", group)))
    template_keys = _launch_templates(ctx, add, gone, tagged, group_keys)
    _auto_scaling_groups(ctx, add, gone, template_keys, other_clusters)


def _stack_roles(ctx: Context) -> list[tuple[str, bool]]:
    """Roles of the stack in this region the file does not name, each with whether it holds an
    instance profile of its own name. IAM is global: the stack's roles in another region carry
    the same tags, so only names under `<stack>-<region>-` are this region's (a long task role
    name keeps that head). The drill's role is `spotecs drill`'s: `up` leaves it, teardown
    deletes it by its own name (orphans.OrphanFisRole)."""
    stack, region = ctx.stack, ctx.region
    prefix = f"{stack.stack}-{region}-"
    named = {
        names.instance_role(stack.stack, region),
        names.execution_role(stack.stack, region),
        names.fis_role(stack.stack, region),
        *(names.task_role(stack.stack, region, s) for s, cfg in stack.services.items() if cfg.task_role),
    }
    return [
        (role, any(p["InstanceProfileName"] == role for p in detail.get("InstanceProfileList") or []))
        for role, detail in sorted(account_roles(ctx).items())
        if role.startswith(prefix) and role not in named and ctx.owned(tags_from_list(detail.get("Tags")))
    ]


def _named(arns: list[str], kind: str) -> dict[str, str]:
    """Name -> ARN of the ELB resources of one kind (`targetgroup/`, `loadbalancer/app/`)."""
    return {
        arn_resource(arn).removeprefix(kind).split("/")[0]: arn for arn in arns if arn_resource(arn).startswith(kind)
    }


def _ids(arns: list[str], kind: str) -> list[str]:
    """The ids of the EC2 resources of one kind (`launch-template/`, `security-group/`)."""
    return sorted(arn_resource(arn).removeprefix(kind) for arn in arns if arn_resource(arn).startswith(kind))


def _groups_by_id(ctx: Context, ids: tuple[str, ...]) -> list[dict[str, Any]]:
    return ctx.read_pages(
        "describe the security groups tagged as the stack's",
        "ec2",
        "describe_security_groups",
        "SecurityGroups",
        GroupIds=list(ids),
    )


def _security_groups(ctx: Context, add: Add, gone: type, tagged: list[str]) -> list[str]:
    """Security groups tagged as the stack's other than those of its names (the load balancer's,
    once no service is routed, is orphans.py's); their keys."""
    own = {g["GroupId"] for r in ROLES if (g := named_group(ctx, names.security_group(ctx.name, r)))}
    ids = tuple(i for i in _ids(tagged, "security-group/") if i not in own)
    if not ids:
        return []
    found = {g["GroupId"]: g["GroupName"] for g in _groups_by_id(ctx, ids)}
    keys = []
    for group_id, group in sorted(found.items(), key=lambda item: item[1]):
        keys.append(key("security-group", group_id))  # a name may repeat in another VPC
        attrs = {"group_id": group_id, "found_ids": ids}
        add(_make(gone, TaggedSecurityGroup, (ctx.name,), group, keys[-1], attrs), "network")
    return keys


def _own_template_ids(ctx: Context) -> set[str]:
    """The id of the file's launch template, from the read its step makes."""
    own = default_version(ctx, names.launch_template(ctx.name))
    return {own["LaunchTemplateId"]} if own else set()


def _launch_templates(ctx: Context, add: Add, gone: type, tagged: list[str], group_keys: list[str]) -> list[str]:
    """Launch templates tagged as the stack's other than the file's (told by the id its step
    reads); their keys. A template goes after the security groups it names are free of it."""
    own_ids = _own_template_ids(ctx)
    ids = [i for i in _ids(tagged, "launch-template/") if i not in own_ids]
    if not ids:
        return []
    found = ctx.read(
        "describe the launch templates tagged as the stack's",
        "ec2",
        "describe_launch_templates",
        missing=TEMPLATE_NOT_FOUND,
        LaunchTemplateIds=ids,
    )
    keys = []
    for lt in sorted((found or {}).get("LaunchTemplates") or [], key=lambda t: t["LaunchTemplateName"]):
        keys.append(key("launch-template", lt["LaunchTemplateName"]))
        add(_make(gone, LaunchTemplate, (ctx.name,), lt["LaunchTemplateName"], keys[-1]), *group_keys)
    return keys


def _auto_scaling_groups(ctx: Context, add: Add, gone: type, template_keys: list[str], clusters: list[str]) -> None:
    """Groups tagged as the stack's other than the file's: each goes before the launch template it
    launches (the file's or an orphan's), and after its capacity provider; that provider goes
    before the file's cluster holding it (an orphan cluster holding it goes first: orphans.py)."""
    for group in orphan_groups(ctx, clusters):
        add(
            _make(gone, AutoScalingGroup, (ctx.name,), group.name, group.key),
            "network",
            "launch-template",
            *template_keys,
        )
        attrs = {"group": group.name, "_pattern": names.capacity_provider_pattern(group.name)}
        make = _make(gone, TaggedCapacityProvider, (ctx.name, group.cluster), group.provider, group.provider_key, attrs)
        add(make, group.key, *(["cluster"] if group.cluster == ctx.stack.cluster_name else []))
