"""The tags of what the stack runs: the group's instances, their EBS volumes and the services'
tasks. AWS tags them only at launch, from the group's tags (PropagateAtLaunch), the launch
template's TagSpecifications and the service's (propagateTags SERVICE); an edit of `tags:` would
leave the running fleet with the old ones until it is replaced, and a cost report keyed on a new
`cost-center` tag would miss the very instances that cost money. So when `up` changes the group's
or a service's tags, the same apply re-tags what runs from it, and the plan says so.

Order is what makes a failure half-way repairable without any extra read in a plan: the fleet is
re-tagged *before* its source (the group, the service) gets its new tags. Until the source holds
them, every plan still shows its tags change and the next `up` re-tags the fleet again (the tag
calls are idempotent); once the source holds them, the fleet already does. The fleet is listed
at apply time, not taken from the plan's read (a confirmation can take minutes, and instances
launch meanwhile); the one window left is an instance or task launched between that listing
and its source's re-tag, a few calls later, which keeps the old tags until it is replaced.

Only the stack's and the file's tags are written, and only keys the file dropped are removed:
`aws:*` keys (aws:autoscaling:groupName, aws:ecs:*), tags AWS services add and the per-resource
`Name` (the group's on instances, the template's on volumes) are never touched."""

from __future__ import annotations

from typing import Any

from spotecs.aws import tag_list
from spotecs.steps.base import Context
from spotecs.steps.tagging import delta, held_tags

# CreateTags and DeleteTags take up to 1000 resource ids, AWS recommending smaller batches
# (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html).
TAG_BATCH = 200
# What AWS tags every instance an auto scaling group launches with (never written by spotecs).
GROUP_TAG = "aws:autoscaling:groupName"
# The instances that are (or soon will be) running: a terminating one goes with its old tags.
LIVE_STATES = ("pending", "running", "stopping", "stopped")
# Each resource has its own Name (the group's on instances, the template's on volumes).
PER_RESOURCE = frozenset({"Name"})


def fleet_change(want: dict[str, Any], have: dict[str, Any] | None) -> tuple[dict[str, str], list[str]]:
    """What the fleet of a source whose tags go from `have` to `want` must get: every tag of the
    file and the stack (put whole: an instance launched with some missing gets them too), and
    the removal of the keys the file dropped. AWS's own and the per-resource Name left alone."""
    _, drop = delta(want, have)
    put = {k: v for k, v in held_tags(want).items() if k not in PER_RESOURCE}
    return put, [k for k in drop if k not in PER_RESOURCE]


def live_instances(group: dict[str, Any] | None) -> list[str]:
    """The ids of the group's instances that are not on their way out, from the plan's read of
    the group (for the plan's note; the apply lists them afresh)."""
    return [
        i["id"]
        for i in (group or {}).get("instances", [])
        if not str(i.get("lifecycle_state") or "").startswith(("Terminat", "Detach"))
    ]


def _instances_and_volumes(ctx: Context, group: str) -> list[str]:
    """The ids of the group's live instances and of their EBS volumes, in one paginated
    DescribeInstances, asked at apply time by the tag AWS puts on every instance a group launches
    (`aws:autoscaling:groupName`): an instance launched since the plan read the group is found
    too, where the plan's list of ids would miss it, and one gone meanwhile is no error."""
    reservations = ctx.paginate(
        f"find the running instances of {group} and their volumes",
        "ec2",
        "describe_instances",
        "Reservations",
        Filters=[
            {"Name": f"tag:{GROUP_TAG}", "Values": [group]},
            {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
        ],
    )
    found: list[str] = []
    for r in reservations:
        for inst in r.get("Instances", []):
            found.append(inst["InstanceId"])
            found += [m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings", []) if "Ebs" in m]
    return found


def retag_instances(ctx: Context, group: str, want: dict[str, Any], have: dict[str, Any] | None) -> list[str]:
    """Bring the group's running instances and their volumes to the tags `want` (the group's new
    tags) from `have` (its old): one DescribeInstances, then one CreateTags and (if the file
    dropped a key) one DeleteTags for every id at once. Returns the ids tagged."""
    put, drop = fleet_change(want, have)
    resources = _instances_and_volumes(ctx, group)
    ec2 = ctx.client("ec2")
    for i in range(0, len(resources), TAG_BATCH):
        batch = resources[i : i + TAG_BATCH]
        what = f"the running instances of {group} and their volumes"
        if put:
            ctx.call(f"tag {what}", ec2.create_tags, Resources=batch, Tags=tag_list(put))
        if drop:
            ctx.call(f"untag {what}", ec2.delete_tags, Resources=batch, Tags=[{"Key": k} for k in drop])
    return resources


def retag_tasks(ctx: Context, cluster: str, service: str, want: dict[str, Any], have: dict[str, Any] | None) -> int:
    """Bring the service's running tasks to the tags `want` (the service's new tags, which it
    propagates to them at launch) from `have`: one ListTasks, then one TagResource and (if the
    file dropped a key) one UntagResource per task, ECS's tagging calls taking one ARN each
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TagResource.html). A task
    that stopped meanwhile keeps its tags as it goes. Returns how many tasks were re-tagged."""
    put, drop = fleet_change(want, have)
    arns = ctx.paginate(
        f"list the running tasks of ECS service {service}",
        "ecs",
        "list_tasks",
        "taskArns",
        cluster=cluster,
        serviceName=service,
        desiredStatus="RUNNING",
    )
    ecs = ctx.client("ecs")
    for arn in arns:
        what = f"task {arn.rsplit('/', 1)[-1]} of ECS service {service}"
        if put:
            ctx.call(f"tag {what}", ecs.tag_resource, resourceArn=arn, tags=tag_list(put, "key", "value"))
        if drop:
            ctx.call(f"untag {what}", ecs.untag_resource, resourceArn=arn, tagKeys=drop)
    return len(arns)


def instances_note(group: dict[str, Any] | None) -> list[str]:
    """The plan's word that a tags change of the group reaches its running instances too."""
    n = len(live_instances(group))
    if not n:
        return []
    return [
        f"also re-tags the {n} running instance{'s' if n != 1 else ''} and their volumes "
        "(AWS tags them from the group and the launch template only at launch)"
    ]


def tasks_note(service: dict[str, Any] | None) -> list[str]:
    """The plan's word that a tags change of the service reaches its running tasks too."""
    n = int((service or {}).get("running_count") or 0) + int((service or {}).get("pending_count") or 0)
    if not n:
        return []
    return [
        f"also re-tags the {n} running task{'s' if n != 1 else ''} (ECS propagates the service's tags only at launch)"
    ]
