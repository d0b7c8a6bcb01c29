"""A resource's tags as a converging field: what the file gives (`desired_tags`), what AWS holds
(`held_tags`), and the tag and untag calls of each API that bring one to the other (`retag`).

Every resource spotecs creates carries the stack's tags plus the file's `tags:`; an edit of
`tags:` must reach every one of them, and a tag the file dropped must go (as Terraform removes
a tag no longer configured). Tags that AWS itself sets are never ours to change: `aws:*` keys
(AWS refuses to write them: https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html)
and the ones services add, such as the `AmazonECSManaged` tag ECS puts on an auto scaling group
with managed termination protection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from spotecs.aws import tag_list
from spotecs.engine.model import Whole
from spotecs.steps.base import Context

# Keys a service adds to resources it manages, never set nor removed by spotecs.
AWS_ADDED = frozenset({"AmazonECSManaged"})


def ours(key: str) -> bool:
    return not key.startswith("aws:") and key not in AWS_ADDED


def desired_tags(ctx: Context, **extra: str) -> Whole:
    """The tags the file gives a resource: the stack's own, the file's `tags:`, and `extra`
    (e.g. Name), exactly as the create call sends them."""
    return Whole(ctx.tags(**extra))


def held_tags(tags: dict[str, str]) -> Whole:
    """What AWS holds of the tags spotecs manages (without AWS's own)."""
    return Whole({k: v for k, v in tags.items() if ours(k)})


K = TypeVar("K")


def suspected(ctx: Context, indexed: Mapping[K, dict[str, str] | None]) -> list[K]:
    """The keys of `indexed` whose tags `confirmed` asks of the resource: missing from the
    tagging read, or not what the file wants."""
    want = ctx.tags()
    return [k for k, tags in indexed.items() if tags is None or dict(held_tags(tags)) != want]


def confirmed(
    ctx: Context,
    indexed: Mapping[K, dict[str, str] | None],
    ask: Callable[[list[K]], Mapping[K, dict[str, str] | None]],
) -> dict[K, dict[str, str] | None]:
    """The tags of each resource of `indexed` (by the key its step knows it by), as the stack's
    Resource Groups Tagging API read (steps.base.stack_tagged) gives them when they are what the
    file wants (`ctx.tags()`), else as the resource itself answers: `ask` gets every key to
    confirm at once (ELB's DescribeTags takes 20 ARNs) and returns key -> tags (None: gone).

    That read answers from the tagging API's index, kept apart from the resources (GetResources
    returns the "tagged or previously tagged" resources:
    https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html;
    https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/overview.html), and
    that index is eventually consistent: right after `up` re-tags a resource it may still give
    the old tags, and a plan trusting it would show a `~ tags` change after "Apply complete!".
    A difference it shows is only a suspicion until the resource confirms it. A resource the
    read lacks (indexed late, or outside a plan: None) is asked too. When the index agrees with
    the file, as in every no-op plan, nothing is asked."""
    suspects = suspected(ctx, indexed)
    answered = ask(suspects) if suspects else {}
    return {k: answered.get(k) if k in suspects else tags for k, tags in indexed.items()}


# How each API tags and untags one resource: (ctx, what, identifier, tags to put, keys to drop).
Tagger = Callable[[Context, str, str, dict[str, str], list[str]], None]


def _ecs(ctx: Context, what: str, arn: str, put: dict[str, str], drop: list[str]) -> None:
    ecs = ctx.client("ecs")
    if put:
        ctx.call(f"tag {what}", ecs.tag_resource, resourceArn=arn, tags=tag_list(put, "key", "value"))
    if drop:
        ctx.call(f"untag {what}", ecs.untag_resource, resourceArn=arn, tagKeys=drop)


def _elbv2(ctx: Context, what: str, arn: str, put: dict[str, str], drop: list[str]) -> None:
    elb = ctx.client("elbv2")
    if put:
        ctx.call(f"tag {what}", elb.add_tags, ResourceArns=[arn], Tags=tag_list(put))
    if drop:
        ctx.call(f"untag {what}", elb.remove_tags, ResourceArns=[arn], TagKeys=drop)


def _ec2(ctx: Context, what: str, resource_id: str, put: dict[str, str], drop: list[str]) -> None:
    ec2 = ctx.client("ec2")
    if put:
        ctx.call(f"tag {what}", ec2.create_tags, Resources=[resource_id], Tags=tag_list(put))
    if drop:
        ctx.call(f"untag {what}", ec2.delete_tags, Resources=[resource_id], Tags=[{"Key": k} for k in drop])


def _logs(ctx: Context, what: str, arn: str, put: dict[str, str], drop: list[str]) -> None:
    logs = ctx.client("logs")
    arn = arn.removesuffix(":*")  # DescribeLogGroups' `arn` ends in ":*"; the tagging calls refuse it
    if put:
        ctx.call(f"tag {what}", logs.tag_resource, resourceArn=arn, tags=put)
    if drop:
        ctx.call(f"untag {what}", logs.untag_resource, resourceArn=arn, tagKeys=drop)


def _iam_role(ctx: Context, what: str, name: str, put: dict[str, str], drop: list[str]) -> None:
    iam = ctx.client("iam")
    if put:
        ctx.call(f"tag {what}", iam.tag_role, RoleName=name, Tags=tag_list(put))
    if drop:
        ctx.call(f"untag {what}", iam.untag_role, RoleName=name, TagKeys=drop)


def _iam_instance_profile(ctx: Context, what: str, name: str, put: dict[str, str], drop: list[str]) -> None:
    iam = ctx.client("iam")
    if put:
        ctx.call(f"tag {what}", iam.tag_instance_profile, InstanceProfileName=name, Tags=tag_list(put))
    if drop:
        ctx.call(f"untag {what}", iam.untag_instance_profile, InstanceProfileName=name, TagKeys=drop)


def _scaling(ctx: Context, what: str, arn: str, put: dict[str, str], drop: list[str]) -> None:
    aas = ctx.client("application-autoscaling")
    if put:
        ctx.call(f"tag {what}", aas.tag_resource, ResourceARN=arn, Tags=put)
    if drop:
        ctx.call(f"untag {what}", aas.untag_resource, ResourceARN=arn, TagKeys=drop)


def _cloudwatch(ctx: Context, what: str, arn: str, put: dict[str, str], drop: list[str]) -> None:
    cw = ctx.client("cloudwatch")
    if put:
        ctx.call(f"tag {what}", cw.tag_resource, ResourceARN=arn, Tags=tag_list(put))
    if drop:
        ctx.call(f"untag {what}", cw.untag_resource, ResourceARN=arn, TagKeys=drop)


TAGGERS: dict[str, Tagger] = {
    "ecs": _ecs,
    "elbv2": _elbv2,
    "ec2": _ec2,
    "logs": _logs,
    "iam role": _iam_role,
    "iam instance profile": _iam_instance_profile,
    "application-autoscaling": _scaling,
    "cloudwatch": _cloudwatch,
}


def delta(want: dict[str, Any], have: dict[str, Any] | None) -> tuple[dict[str, str], list[str]]:
    """The tags to put (new or changed) and the keys to remove (dropped by the file) to bring
    `have` to `want`; AWS's own tags are left alone."""
    held = held_tags(dict(have or {}))
    put = {k: v for k, v in want.items() if ours(k) and held.get(k) != v}
    return put, sorted(k for k in held if k not in want)


def retag(ctx: Context, api: str, what: str, ident: str, want: dict[str, Any], have: dict[str, Any] | None) -> None:
    """Bring the tags AWS holds on `ident` (an ARN, an id or a name, as `api` takes it) from
    `have` to `want`: put what is new or changed, then remove what the file dropped. AWS's own
    tags are left alone. S3 buckets take their tags whole: see access_log_bucket."""
    put, drop = delta(want, have)
    if put or drop:
        TAGGERS[api](ctx, what, ident, put, drop)


# ELB's AddTags and RemoveTags take several resources (DescribeTags up to 20, the same here).
ELB_BATCH = 20


def retag_elb(ctx: Context, what: str, want: dict[str, Any], held: dict[str, dict[str, str]]) -> None:
    """`retag` for several ELB resources at once (a load balancer's listeners and rules, `held`
    by ARN): those needing the same change share one AddTags and one RemoveTags."""
    together: dict[tuple[tuple[tuple[str, str], ...], tuple[str, ...]], list[str]] = {}
    for arn, have in sorted(held.items()):
        put, drop = delta(want, have)
        if put or drop:
            together.setdefault((tuple(sorted(put.items())), tuple(drop)), []).append(arn)
    elb = ctx.client("elbv2")
    for (put_items, drop_keys), arns in together.items():
        for i in range(0, len(arns), ELB_BATCH):
            batch = arns[i : i + ELB_BATCH]
            if put_items:
                ctx.call(f"tag {what}", elb.add_tags, ResourceArns=batch, Tags=tag_list(dict(put_items)))
            if drop_keys:
                ctx.call(f"untag {what}", elb.remove_tags, ResourceArns=batch, TagKeys=list(drop_keys))
