"""Orphans of kinds the stack names only one way, left under a name the current file would not
give: task definition families outside `<stack>-`, capacity providers no group of the file has
(an older group's, a deleted group's), CloudWatch alarms no scaling policy of the file names,
the scalable targets of the stack's services gone from another cluster (or with it), access-log
buckets of another name (`up` deletes them as it deletes a dropped service's log group, unless
`--keep-logs`), and the instance profile left when its role was deleted by hand (teardown only:
`up` takes it back for the role).

All come from reads the plan makes anyway: the stack's tagging-API read
(steps.base.stack_tagged, which lists task definitions, capacity providers, alarms and buckets:
https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html),
the namespace's scalable targets (scaling_reads.scaling_reads), the stack's groups and the
account's roles. A probe costs a call only for a candidate found so. Each orphan reuses its
kind's step (or a small one here), read by its own name and deleted only if it carries the
stack's ownership tags."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from spotecs import names
from spotecs.aws import tags_from_list
from spotecs.errors import AwsError
from spotecs.steps.access_log_bucket import AccessLogBucket
from spotecs.steps.auto_scaling_group import stack_groups
from spotecs.steps.base import Context, Step, arn_resource, stack_read_tags, stack_tagged
from spotecs.steps.cluster import describe_cluster
from spotecs.steps.iam import account_roles, describe_instance_profile
from spotecs.steps.orphans_tagged import Add, OrphanGroup, TaggedCapacityProvider, _make, key
from spotecs.steps.scaling_reads import DIMENSION, scaling_reads
from spotecs.steps.service_scaling import ServiceScaling
from spotecs.steps.task_definition import TaskDefinition

GONE_ALARM = ("ResourceNotFound", "ResourceNotFoundException")
DENIED = ("AccessDenied", "AccessDeniedException")


class FamilyTaskDefinition(TaskDefinition):
    """A task definition family found by tag under a name outside `<stack>-`. Deleted, its ACTIVE
    revisions are deregistered and then deleted (DeleteTaskDefinitions), so that the tagging API
    stops listing a family no file names, which each plan would otherwise describe again."""

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        revisions = sorted(self._active_revisions(ctx), key=lambda a: int(a.rsplit(":", 1)[-1]))
        super().delete(ctx, current)
        for i in range(0, len(revisions), 10):  # DeleteTaskDefinitions takes at most 10
            try:
                ctx.call(
                    f"delete task definitions of family {self.name}",
                    ctx.client("ecs").delete_task_definitions,
                    taskDefinitions=revisions[i : i + 10],
                )
            except AwsError as e:
                # Deregistered, the family is gone for ECS: without this permission it only stays
                # listed (INACTIVE), and each plan describes it once.
                if e.code not in DENIED:
                    raise
                return


class NamedCapacityProvider(TaggedCapacityProvider):
    """A capacity provider found by tag whose group the file does not name (or that is gone):
    read by its own name, detached from the cluster holding it (if one does), deleted."""

    def _group(self, ctx: Context) -> dict[str, Any] | None:
        return None  # read by its own name: its group is not asked

    def _candidates(self, ctx: Context, cluster: dict[str, Any] | None, group: dict[str, Any] | None) -> list[str]:
        return [self.name]


class Alarm(Step):
    """A CloudWatch alarm of the stack (a step-scaling policy's) that no policy of the file names."""

    kind = "CloudWatch alarm"

    def __init__(self, name: str) -> None:
        super().__init__(f"alarm:{name}", name)

    def read(self, ctx: Context) -> dict[str, Any] | None:
        got = ctx.call(f"describe alarm {self.name}", ctx.client("cloudwatch").describe_alarms, AlarmNames=[self.name])
        alarm = next(iter((got or {}).get("MetricAlarms") or []), None)
        if alarm is None:
            return None
        tags = stack_read_tags(ctx, f"alarm:{self.name}")
        if tags is None:  # not in the plan's tagging read (indexed late, or outside a plan): asked
            listed = ctx.call(
                f"list tags of alarm {self.name}",
                ctx.client("cloudwatch").list_tags_for_resource,
                missing=GONE_ALARM,
                ResourceARN=alarm["AlarmArn"],
            )
            tags = tags_from_list((listed or {}).get("Tags"))
        return {"metric": alarm.get("MetricName"), "arn": alarm["AlarmArn"], "_owned": ctx.owned(tags)}

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        ctx.call(
            f"delete alarm {self.name}",
            ctx.client("cloudwatch").delete_alarms,
            missing=GONE_ALARM,
            AlarmNames=[self.name],
        )


class TargetScaling(ServiceScaling):
    """The scalable target (with its policies and scheduled actions) of a service of the stack in a
    cluster that no longer exists: owned only if the target itself carries the stack's tags (its
    service, which would tell otherwise, is gone)."""

    def read(self, ctx: Context) -> dict[str, Any] | None:
        target = next(iter(self._mine(scaling_reads(ctx, "describe_scalable_targets", "ScalableTargets"))), None)
        if target is None:
            return None
        listed = ctx.read(
            f"list tags of scalable target {self.resource_id}",
            "application-autoscaling",
            "list_tags_for_resource",
            missing=("ResourceNotFoundException",),
            ResourceARN=target.get("ScalableTargetARN", ""),
        )
        if not ctx.owned(dict((listed or {}).get("Tags") or {})):
            return {"_owned": False}  # someone else's: nothing more is read
        current = super().read(ctx)
        return None if current is None else {**current, "_owned": True}


class NamedBucket(AccessLogBucket):
    """An access-log bucket tagged as the stack's under a name other than the stack's (an earlier
    spotecs's); read and deleted like the stack's own, and only if it is in the stack's region."""

    found = ""

    def bucket(self, ctx: Context) -> str:
        return self.found

    def read(self, ctx: Context) -> dict[str, Any] | None:
        try:
            where = ctx.call(
                f"look up the region of bucket {self.found}",
                ctx.client("s3").get_bucket_location,
                missing=("NoSuchBucket", "404"),
                Bucket=self.found,
            )
        except AwsError as e:
            # The permissions README gives cover `<stack>-alb-logs-*` only: a bucket of another
            # name spotecs may not read is left, not a failed `up` or teardown.
            if e.code in DENIED:
                return None
            raise
        # S3 names us-east-1 with no constraint (and eu-west-1 with the legacy "EU").
        region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(
            (where or {}).get("LocationConstraint"), (where or {}).get("LocationConstraint")
        )
        if where is None or region != ctx.region:
            return None
        return super().read(ctx)


class InstanceProfile(Step):
    """The stack's instance profile, left without its role (deleted by hand): its role's step,
    which would delete it with the role, finds no role."""

    kind = "IAM instance profile"

    def __init__(self, name: str) -> None:
        super().__init__(f"iam:instance-profile:{name}", name)

    def read(self, ctx: Context) -> dict[str, Any] | None:
        profile = describe_instance_profile(ctx, self.name)
        if profile is None:
            return None
        return {
            "roles": sorted(r["RoleName"] for r in profile.get("Roles") or []),
            "arn": profile["Arn"],
            "_owned": ctx.owned(tags_from_list(profile.get("Tags"))),
        }

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        iam = ctx.client("iam")
        for role in current.get("roles", []):  # a role put in it since; the role itself stays
            ctx.call(
                f"remove role {role} from instance profile {self.name}",
                iam.remove_role_from_instance_profile,
                missing=("NoSuchEntity",),
                InstanceProfileName=self.name,
                RoleName=role,
            )
        ctx.call(
            f"delete instance profile {self.name}",
            iam.delete_instance_profile,
            missing=("NoSuchEntity",),
            InstanceProfileName=self.name,
        )


def find(
    ctx: Context,
    add: Add,
    gone: type,
    *,
    destroy: bool,
    other_clusters: list[str],
    held: list[OrphanGroup],
    scaled: Collection[str],
) -> None:
    """Add these orphans through `add`. `held`: the orphan groups orphans_tagged found (their
    providers are its); `scaled`: the scalable targets (resource ids) orphans.py deletes."""
    tagged = list(stack_tagged(ctx))
    _families(ctx, add, gone, tagged)
    _providers(ctx, add, gone, tagged, other_clusters, held)
    _alarms(ctx, add, gone, tagged, scaled)
    _targets(ctx, add, gone, scaled)
    _buckets(ctx, add, gone, tagged, destroy=destroy)
    if destroy:
        _profile(ctx, add, gone)


def _of_kind(tagged: list[str], kind: str) -> list[str]:
    """What follows `kind` in the ARNs of one kind (`task-definition/`, `alarm:`)."""
    return sorted(arn_resource(a).removeprefix(kind) for a in tagged if arn_resource(a).startswith(kind))


def _families(ctx: Context, add: Add, gone: type, tagged: list[str]) -> None:
    """Families under the stack's prefix are orphans.py's (from its ACTIVE listing)."""
    prefix = names.service_prefix(ctx.name)
    families = {r.rsplit(":", 1)[0] for r in _of_kind(tagged, "task-definition/")}
    for family in sorted(f for f in families if not f.startswith(prefix)):
        add(_make(gone, FamilyTaskDefinition, (ctx.name, ""), family, key("task-definition", f"family/{family}")))


def _providers(
    ctx: Context, add: Add, gone: type, tagged: list[str], clusters: list[str], held: list[OrphanGroup]
) -> None:
    """Providers of the stack but the file's group's (its step's) and the orphan groups' (theirs).
    Without the file's group, those of its name attached to the file's cluster are its step's."""
    group = names.auto_scaling_group(ctx.name)
    own = next((g for g in stack_groups(ctx) if g["AutoScalingGroupName"] == group), None)
    pattern = names.capacity_provider_pattern(group)
    cluster_names = [ctx.stack.cluster_name, *clusters]
    attached = {c: (describe_cluster(ctx, c) or {}).get("capacityProviders", []) for c in cluster_names}
    skip = {g.provider for g in held}
    if own is not None:
        skip.add(names.capacity_provider(group, own["AutoScalingGroupARN"]))
    else:
        skip |= {p for p in attached[ctx.stack.cluster_name] if pattern.match(p)}
    for provider in _of_kind(tagged, "capacity-provider/"):
        if provider in skip:
            continue
        cluster = next((c for c in cluster_names if provider in attached[c]), ctx.stack.cluster_name)
        # Before the cluster holding it (its delete detaches it first), as the file's provider.
        holder = "cluster" if cluster == ctx.stack.cluster_name else key("cluster", cluster)
        k = key("capacity-provider", f"name/{provider}")
        attrs = {"group": "", "_pattern": pattern}
        add(_make(gone, NamedCapacityProvider, (ctx.name, cluster), provider, k, attrs), holder)


def _alarms(ctx: Context, add: Add, gone: type, tagged: list[str], scaled: Collection[str]) -> None:
    """Alarms of the stack but those the file's step policies name, those of the scaling orphans.py
    deletes, and those of a policy the file dropped from a service it still scales: that scaling's
    step deletes the policy with its alarm (not planned twice)."""
    stack = ctx.stack
    named = {
        names.step_policy(names.service(stack.stack, svc), s.name)
        for svc, cfg in stack.services.items()
        if cfg.scaling is not None
        for s in cfg.scaling.step_scaling
    }
    theirs = tuple(names.step_policy_prefix(r.rsplit("/", 1)[-1]) for r in scaled)
    found = [a for a in _of_kind(tagged, "alarm:") if a not in named and not (theirs and a.startswith(theirs))]
    if found:  # the policies' read is the scaling steps' (shared): asked here only for a candidate
        targets = {
            names.scalable_target(stack.cluster_name, names.service(stack.stack, svc))
            for svc, cfg in stack.services.items()
            if cfg.scaling is not None
        }
        policies = scaling_reads(ctx, "describe_scaling_policies", "ScalingPolicies")
        named |= {p["PolicyName"] for p in policies if p.get("ResourceId") in targets}
    for alarm in found:
        if alarm not in named:
            add(_make(gone, Alarm, (alarm,), alarm, key("alarm", alarm)))


def _targets(ctx: Context, add: Add, gone: type, scaled: Collection[str]) -> None:
    """Scalable targets of services named like the stack's outside the file's cluster (orphans.py
    reads that one) that orphans.py does not delete with a service: the service is gone, in a
    cluster of the stack's or one deleted since (the targets left). Probed for their tags."""
    prefix = names.service_prefix(ctx.name)
    for t in scaling_reads(ctx, "describe_scalable_targets", "ScalableTargets"):
        parts = t["ResourceId"].split("/")
        if t.get("ScalableDimension") != DIMENSION or len(parts) != 3 or t["ResourceId"] in scaled:
            continue
        _, cluster, service = parts
        if cluster == ctx.stack.cluster_name or not service.startswith(prefix):
            continue
        short = names.service_of(ctx.name, service)
        args = (ctx.name, short)
        kw = {"cluster": cluster, "service_name": service}
        add(_make(gone, TargetScaling, args, t["ResourceId"], key("scaling", t["ResourceId"]), **kw))


def _buckets(ctx: Context, add: Add, gone: type, tagged: list[str], *, destroy: bool) -> None:
    """Buckets of the stack under another name than its access-log bucket's (orphans.py's). `up`
    leaves the bucket the file names for access logs, whatever its tags: the load balancer writes
    there."""
    found = tagged_buckets(tagged)
    if not found:  # the account id is asked only when a bucket is the stack's
        return
    logs = ctx.stack.load_balancer.access_logs
    keep = {names.access_log_bucket(ctx.name, ctx.account_id)}
    if not destroy and logs is not None and logs.bucket:
        keep.add(logs.bucket)
    for bucket in found:
        if bucket not in keep:
            add(_make(gone, NamedBucket, (ctx.name,), bucket, key("access-log-bucket", bucket), {"found": bucket}))


def tagged_buckets(tagged: Collection[str]) -> list[str]:
    """The buckets in the stack's tagging-API read (of the stack's region only)."""
    return sorted(arn_resource(a) for a in tagged if a.split(":")[2:3] == ["s3"])


def own_bucket_left(ctx: Context) -> bool:
    """Whether `up` finds the stack's own access-log bucket in the stack's tagging-API read while
    the file does not name it as its access logs' bucket (orphans.py then plans it gone, unless
    the file's own bucket step holds it). From that read only: the no-op plan asks nothing more."""
    found = tagged_buckets(stack_tagged(ctx))
    if not found:
        return False
    own = names.access_log_bucket(ctx.name, ctx.account_id)
    logs = ctx.stack.load_balancer.access_logs
    return own in found and not (logs is not None and logs.bucket == own)


def _profile(ctx: Context, add: Add, gone: type) -> None:
    """The instance role's profile, probed only when that role is gone (with the role, the role's
    step deletes it)."""
    role = names.instance_role(ctx.name, ctx.region)
    if role not in account_roles(ctx):
        add(_make(gone, InstanceProfile, (role,), role, key("iam:instance-profile", role)))
