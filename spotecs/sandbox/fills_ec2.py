"""Fill for moto's EC2 launch templates: the tags DescribeLaunchTemplates answers.

AWS answers DescribeLaunchTemplates with the tags each template holds now
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplates.html,
`LaunchTemplate.Tags`: "The tags for the launch template"), so a CreateTags or DeleteTags on the
template id
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html) shows in the next
answer. moto 5.2 keeps a copy of the tags taken at creation and answers with that copy forever:
a template tagged again reads as it was created. Here the template's `tags` are read from
moto's own tag store on each answer (as its other EC2 resources are); nothing else changes.
"""

from __future__ import annotations

from typing import Any


def _live_tags(self: Any) -> list[dict[str, str]]:
    return list(self.get_tags())


def _ignore_copy(self: Any, value: Any) -> None:
    """moto's constructor assigns its copy; the tag store already holds the same tags."""


def install() -> None:
    from moto.ec2.models.launch_templates import LaunchTemplate

    if not isinstance(LaunchTemplate.__dict__.get("tags"), property):
        LaunchTemplate.tags = property(_live_tags, _ignore_copy)  # type: ignore[assignment]
