"""Read-only facts about a stack's instances and their machine image: the launch template's
default version and its AMI, the AMI each instance of the group runs, the latest recommended
AMI for the stack's alias, the group's instance refreshes and the capacity provider's managed
draining. `refresh-ami` decides from these; `status` can show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spotecs import aws, names
from spotecs.aws import Aws
from spotecs.config import AMI_ALIASES, Stack
from spotecs.steps.ami import AmiRelease, describe_images, latest_ami, release
from spotecs.steps.launch_template import NOT_FOUND as TEMPLATE_MISSING

# Instance refresh statuses in which the refresh still acts on the group (AWS's list).
ACTIVE_REFRESH = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")


@dataclass
class Instance:
    instance_id: str
    image_id: str | None
    protected: bool
    lifecycle: str


@dataclass
class Fleet:
    template: str
    group: str
    template_id: str | None = None
    version: int | None = None  # the default version's number
    data: dict[str, Any] = field(default_factory=dict)  # its LaunchTemplateData
    group_arn: str | None = None
    instances: list[Instance] = field(default_factory=list)
    images: dict[str, AmiRelease] = field(default_factory=dict)  # every image in use, and the latest
    latest: AmiRelease | None = None

    @property
    def template_image(self) -> str | None:
        image = self.data.get("ImageId")
        return str(image) if image else None

    @property
    def outdated(self) -> list[Instance]:
        """Instances not running the latest image."""
        latest = self.latest.image_id if self.latest else None
        return [i for i in self.instances if i.image_id != latest]

    @property
    def up_to_date(self) -> bool:
        return self.latest is not None and self.template_image == self.latest.image_id and not self.outdated


def read(session: Aws, stack: Stack) -> Fleet:
    """Template, group, instances and images (a handful of calls, none of them a write)."""
    fleet = Fleet(names.launch_template(stack.stack), names.auto_scaling_group(stack.stack))
    ec2 = session.client("ec2")
    got = aws.call(
        f"describe the default version of launch template {fleet.template}",
        ec2.describe_launch_template_versions,
        missing=TEMPLATE_MISSING,
        LaunchTemplateName=fleet.template,
        Versions=["$Default"],
    )
    versions = (got or {}).get("LaunchTemplateVersions") or []
    if versions:
        fleet.template_id = versions[0]["LaunchTemplateId"]
        fleet.version = int(versions[0]["VersionNumber"])
        fleet.data = dict(versions[0].get("LaunchTemplateData") or {})
    groups = aws.call(
        f"describe auto scaling group {fleet.group}",
        session.client("autoscaling").describe_auto_scaling_groups,
        AutoScalingGroupNames=[fleet.group],
    )["AutoScalingGroups"]
    if groups:
        fleet.group_arn = groups[0]["AutoScalingGroupARN"]
        members = [i for i in groups[0].get("Instances", []) if not i["LifecycleState"].startswith("Terminat")]
        running = _instance_images(session, [i["InstanceId"] for i in members])
        fleet.instances = [
            Instance(
                i["InstanceId"], running.get(i["InstanceId"]), bool(i.get("ProtectedFromScaleIn")), i["LifecycleState"]
            )
            for i in members
        ]
    if stack.instances.ami in AMI_ALIASES:
        fleet.latest = latest_ami(session, stack.instances.ami)
    in_use = {fleet.template_image or "", *(i.image_id or "" for i in fleet.instances)}
    fleet.images = {k: release(v) for k, v in describe_images(session, sorted(in_use)).items()}
    if fleet.latest:
        fleet.images[fleet.latest.image_id] = fleet.latest
    return fleet


def _instance_images(session: Aws, instance_ids: list[str]) -> dict[str, str]:
    if not instance_ids:
        return {}
    found = aws.paginate(
        "describe the group's instances",
        session.client("ec2"),
        "describe_instances",
        "Reservations",
        InstanceIds=instance_ids,
    )
    return {i["InstanceId"]: i.get("ImageId") for r in found for i in r.get("Instances", [])}


def refreshes(session: Aws, group: str, refresh_id: str | None = None) -> list[dict[str, Any]]:
    """The group's instance refreshes, newest first (or the one named)."""
    kwargs: dict[str, Any] = {"AutoScalingGroupName": group}
    if refresh_id:
        kwargs["InstanceRefreshIds"] = [refresh_id]
    got = aws.call(
        f"describe the instance refreshes of {group}",
        session.client("autoscaling").describe_instance_refreshes,
        **kwargs,
    )
    return list(got.get("InstanceRefreshes", []))


def active_refresh(session: Aws, group: str) -> dict[str, Any] | None:
    return next((r for r in refreshes(session, group) if r.get("Status") in ACTIVE_REFRESH), None)


def last_activities(session: Aws, group: str, count: int = 5) -> list[dict[str, Any]]:
    got = aws.call(
        f"describe the scaling activities of {group}",
        session.client("autoscaling").describe_scaling_activities,
        AutoScalingGroupName=group,
        MaxRecords=count,
    )
    return list(got.get("Activities", []))[:count]


def draining_provider(session: Aws, cluster: str, group_arn: str) -> tuple[str | None, bool]:
    """(name of the cluster's capacity provider over the group, whether managed draining is on)."""
    clusters = aws.call(f"describe cluster {cluster}", session.client("ecs").describe_clusters, clusters=[cluster]).get(
        "clusters", []
    )
    provider_names = clusters[0].get("capacityProviders", []) if clusters else []
    if not provider_names:
        return None, False
    providers = aws.call(
        f"describe the capacity providers of cluster {cluster}",
        session.client("ecs").describe_capacity_providers,
        capacityProviders=provider_names,
    ).get("capacityProviders", [])
    for p in providers:
        asg = p.get("autoScalingGroupProvider", {})
        if asg.get("autoScalingGroupArn") == group_arn:
            # ECS turns managed draining on unless told otherwise.
            return p["name"], asg.get("managedDraining", "ENABLED") == "ENABLED"
    return None, False


def age(created: str, now: datetime | None = None) -> str:
    """`12 days` from an ISO 8601 creation date; "" when it does not parse."""
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    days = ((now or datetime.now(UTC)) - when).days
    return "today" if days < 1 else f"{days} day{'s' if days != 1 else ''} old"
