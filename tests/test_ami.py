"""The machine image on moto: an alias keeps the image the stack runs when AWS publishes a new
release (a note, not drift); an explicit id is applied; a new stack starts on the latest; and
the one "latest recommended AMI" lookup that `up`, `refresh-ami` and `status` share."""

from __future__ import annotations

from typing import Any

import pytest

from spotecs.engine.contract import Node
from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from spotecs.sandbox.amis import publish_ami
from spotecs.steps.ami import AmiRelease, latest_ami, same_family
from tests.helpers import REGION, converge, make_ctx, make_stack, steps_for

pytestmark = pytest.mark.usefixtures("moto")

COMPUTE = {"launch-template"}
AL2023 = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
AL2 = "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id"


def template_steps(stack: Any) -> list[Node]:
    return steps_for(stack, lambda s: s.key in COMPUTE)


def recommended(name: str) -> str:
    return str(make_ctx().client("ssm").get_parameter(Name=name)["Parameter"]["Value"])


def template_image() -> str:
    got = (
        make_ctx()
        .client("ec2")
        .describe_launch_template_versions(LaunchTemplateName="demo-instances", Versions=["$Default"])
    )
    return str(got["LaunchTemplateVersions"][0]["LaunchTemplateData"]["ImageId"])


def test_latest_ami_gives_id_name_and_date_and_follows_a_new_release() -> None:
    ctx = make_ctx()
    first = latest_ami(ctx.aws, "al2023")
    assert first is not None and first.image_id == recommended(AL2023)
    assert first.name.startswith("al2023-ami-ecs-hvm-") and first.architecture == "x86_64" and first.created
    newer = publish_ami("al2023", REGION)
    second = latest_ami(ctx.aws, "al2023")
    assert second is not None and second.image_id == newer != first.image_id
    assert second.created >= first.created and second.name != first.name
    arm = latest_ami(ctx.aws, "al2023-arm64")
    assert isinstance(arm, AmiRelease) and arm.architecture == "arm64" and arm.image_id != newer


def test_a_new_release_is_a_note_not_a_new_template_version() -> None:
    stack = make_stack()
    steps = template_steps(stack)
    converge(steps, make_ctx(stack))
    old = template_image()
    newer = publish_ami("al2023", REGION)

    change = plan(steps, make_ctx(stack)).get("launch-template")
    assert change.action is Action.NOOP and not change.diffs
    assert old in change.note and newer in change.note and "refresh-ami" in change.note

    # A change to the file still makes a version, and it keeps the image in use.
    longer = make_stack(instances={"container_stop_timeout": 90})
    ctx = make_ctx(longer)
    the_plan, _ = converge(steps, ctx)
    assert the_plan.get("launch-template").action is Action.NEW_VERSION
    assert template_image() == old


def test_a_stack_from_nothing_uses_the_latest_release() -> None:
    newer = publish_ami("al2023", REGION)
    stack = make_stack()
    steps = template_steps(stack)
    the_plan, _ = converge(steps, make_ctx(stack))
    assert the_plan.get("launch-template").note == ""
    assert template_image() == newer


def test_an_explicit_id_is_applied_and_another_alias_moves_to_its_latest() -> None:
    stack = make_stack()
    steps = template_steps(stack)
    converge(steps, make_ctx(stack))
    newer = publish_ami("al2023", REGION)

    pinned = make_stack(instances={"ami": newer})
    change = plan(template_steps(pinned), make_ctx(pinned)).get("launch-template")
    assert change.action is Action.NEW_VERSION and [d.path for d in change.diffs] == ["image_id"]
    converge(template_steps(pinned), make_ctx(pinned))
    assert template_image() == newer

    # al2023 -> al2 is a change to the file: the al2 image, not the al2023 one in use.
    al2 = make_stack(instances={"ami": "al2"})
    converge(template_steps(al2), make_ctx(al2))
    assert template_image() == recommended(AL2)


def test_same_family_tells_releases_from_other_images() -> None:
    def image(name: str, arch: str = "x86_64") -> dict[str, str]:
        return {"Name": name, "Architecture": arch}

    a = image("al2023-ami-ecs-hvm-2023.0.20241031-kernel-6.1-x86_64")
    assert same_family(a, image("al2023-ami-ecs-hvm-2023.0.20241115-kernel-6.1-x86_64"))
    assert not same_family(a, image("amzn2-ami-ecs-hvm-2.0.20241115-x86_64-ebs"))
    assert not same_family(a, image("al2023-ami-ecs-hvm-2023.0.20241115-kernel-6.1-arm64", "arm64"))
    assert not same_family(a, image("al2023-ami-ecs-gpu-hvm-2023.0.20241115-kernel-6.1-x86_64"))
