"""Fills for moto's EC2 launch templates: the tags DescribeLaunchTemplates answers, and the
volume tags an auto scaling group's launches take from the template.

AWS answers DescribeLaunchTemplates with the tags each template holds now
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplates.html,
`LaunchTemplate.Tags`: "The tags for the launch template"), so a CreateTags or DeleteTags on the
template id
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html) shows in the next
answer. moto 5.2 keeps a copy of the tags taken at creation and answers with that copy forever:
a template tagged again reads as it was created. Here the template's `tags` are read from
moto's own tag store on each answer (as its other EC2 resources are); nothing else changes.

An instance launched from a template gets the template's TagSpecifications, those of resource
type `volume` on the EBS volumes created with it
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateTagSpecificationRequest.html:
"The tags are applied to all resources of that type that are created during instance launch").
moto 5.2 applies only the `instance` ones, so an auto scaling group's instances had untagged
volumes. Here each instance a group launches (`asg_volume_tags_from_template`, over moto's
`replace_autoscaling_group_instances`) gets the volume tags of the template version the group
launches on each volume attached to it at launch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _live_tags(self: Any) -> list[dict[str, str]]:
    return list(self.get_tags())


def _ignore_copy(self: Any, value: Any) -> None:
    """moto's constructor assigns its copy; the tag store already holds the same tags."""


def _volume_tags(group: Any) -> dict[str, str]:
    template = group.ec2_launch_template
    if template is None:
        return {}
    version = template.get_version(group.launch_template_version)
    specs = version.data.get("TagSpecifications") or []
    return {
        t["Key"]: t.get("Value", "")
        for spec in specs
        if spec.get("ResourceType") == "volume"
        for t in spec.get("Tags", [])
    }


def asg_volume_tags_from_template(original: Callable[..., None]) -> Callable[..., None]:
    def replace_autoscaling_group_instances(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        before = {s.instance.id for s in self.instance_states}
        original(self, count_needed, propagated_tags)
        tags = _volume_tags(self)
        if not tags:
            return
        ec2 = self.autoscaling_backend.ec2_backend
        for state in self.instance_states:
            if state.instance.id not in before:
                for _, device in state.instance.get_block_device_mapping:
                    ec2.create_tags([device.volume_id], tags)

    # Marks the method as filled for fills._wrap too (refresh.stamp_launched_version's own).
    replace_autoscaling_group_instances.__wrapped__ = original  # type: ignore[attr-defined]
    return replace_autoscaling_group_instances


def install(wrap_again: Callable[[type, str, Callable[[Any], Any]], None]) -> None:
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.ec2.models.launch_templates import LaunchTemplate

    if not isinstance(LaunchTemplate.__dict__.get("tags"), property):
        LaunchTemplate.tags = property(_live_tags, _ignore_copy)  # type: ignore[assignment]
    wrap_again(FakeAutoScalingGroup, "replace_autoscaling_group_instances", asg_volume_tags_from_template)
