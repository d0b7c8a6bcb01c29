"""steps/launch_template.py: the hardened launch template, its user data, new versions, deletion."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from spotecs.config import parse
from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from spotecs.errors import ConfigError
from spotecs.sandbox.userdata import parse_ecs_config
from spotecs.steps import base
from tests.helpers import (
    COMPUTE,
    REGION,
    compute_steps,
    converge,
    fresh,
    make_ctx,
    make_stack,
    only,
    replan,
    sent,
    step,
    up,
    writes,
)
from tests.tag_edits import AFTER, BEFORE, holds_the_edit, planned_as_tags_only

pytestmark = pytest.mark.usefixtures("moto")


AL2023 = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"


def test_launch_template_request_is_hardened() -> None:
    _, ctx = up(make_stack(), only(*COMPUTE))
    (req,) = sent(ctx, "CreateLaunchTemplate")
    data = req["LaunchTemplateData"]
    ami = ctx.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    profile = ctx.client("iam").get_instance_profile(InstanceProfileName=f"demo-{REGION}-ecs-instance")
    sg = ctx.client("ec2").describe_security_groups(GroupNames=["demo-instances"])["SecurityGroups"][0]
    assert data["ImageId"] == ami
    assert data["IamInstanceProfile"] == {"Arn": profile["InstanceProfile"]["Arn"]}
    assert data["SecurityGroupIds"] == [sg["GroupId"]]
    assert data["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,  # containers (one bridge hop away) get no instance credentials
    }
    # moto's ECS AMI has a 15 GiB root; the ECS-optimized minimum (30) wins
    assert data["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
        }
    ]
    assert data["EbsOptimized"] is True
    assert data["CreditSpecification"] == {"CpuCredits": "unlimited"}  # t3.small is burstable
    assert "KeyName" not in data
    assert {"Key": "spotecs:managed", "Value": "true"} in req["TagSpecifications"][0]["Tags"]


def test_user_data_writes_the_three_ecs_settings() -> None:
    stack = make_stack(
        cluster={"name": "DemoApiClusterProd"},
        instances={"container_stop_timeout": "1m", "ecs_agent": {"ECS_ENABLE_TASK_IAM_ROLE": "true"}},
    )
    _, ctx = up(stack, only(*COMPUTE))
    (req,) = sent(ctx, "CreateLaunchTemplate")
    script = base64.b64decode(req["LaunchTemplateData"]["UserData"]).decode()
    assert script.startswith("#!/bin/bash\n")
    body = script.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    settings = dict(line.split("=", 1) for line in body.splitlines())
    assert settings == {
        "ECS_CLUSTER": "DemoApiClusterProd",
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING": "true",
        "ECS_CONTAINER_STOP_TIMEOUT": "60s",
        "ECS_ENABLE_TASK_IAM_ROLE": "true",
    }
    assert "/etc/ecs/ecs.config" in script.split("<<'EOF'")[0]
    # the sandbox's simulated agent reads the same settings
    assert parse_ecs_config(script)["ECS_CLUSTER"] == "DemoApiClusterProd"


def test_stop_timeout_change_is_a_new_version_and_the_group_is_untouched() -> None:
    steps, first = up(make_stack(), only(*COMPUTE))
    lt_id = first.outputs["launch-template"]["id"]
    changed = make_stack(instances={"container_stop_timeout": 30})
    the_plan = replan(steps, changed)
    assert the_plan.get("launch-template").action is Action.NEW_VERSION
    assert [d.path for d in the_plan.get("launch-template").diffs] == ["user_data"]
    assert the_plan.get("auto-scaling-group").action is Action.NOOP
    assert the_plan.get("capacity-provider").action is Action.NOOP

    ctx = fresh(changed)
    converge(steps, ctx)
    assert writes(ctx, "autoscaling") == [] and writes(ctx, "ecs") == []
    (req,) = sent(ctx, "CreateLaunchTemplateVersion")
    assert req["LaunchTemplateId"] == lt_id
    assert "SourceVersion" not in req and req["LaunchTemplateData"]["ImageId"]  # full data, always
    assert "ECS_CONTAINER_STOP_TIMEOUT=30s" in base64.b64decode(req["LaunchTemplateData"]["UserData"]).decode()
    lt = ctx.client("ec2").describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"][0]
    assert lt["DefaultVersionNumber"] == 2
    assert ctx.outputs["launch-template"]["id"] == lt_id and ctx.outputs["launch-template"]["version"] == 2
    assert not replan(steps, changed).has_changes


def test_a_dropped_tag_leaves_the_volumes_of_new_instances_and_the_group() -> None:
    steps, first = up(make_stack(tags={"team": "payments", "cost-center": "cc-17"}), only(*COMPUTE))
    lt_id = first.outputs["launch-template"]["id"]
    dropped = make_stack(tags={"team": "payments"})
    the_plan = replan(steps, dropped)
    assert the_plan.get("launch-template").action is Action.NEW_VERSION
    # The volumes' in a new version; the template's own tags in place, beside it.
    assert the_plan.get("launch-template").changed_fields() == {"volume_tags", "tags"}
    assert the_plan.get("auto-scaling-group").changed_fields() == {"tags"}
    ctx = fresh(dropped)
    converge(steps, ctx)
    (req,) = sent(ctx, "CreateLaunchTemplateVersion")
    (volumes,) = req["LaunchTemplateData"]["TagSpecifications"]
    assert {t["Key"]: t["Value"] for t in volumes["Tags"]} == {
        "Name": "demo-instances",
        "team": "payments",
        "spotecs:stack": "demo",
        "spotecs:managed": "true",
    }
    (version,) = ctx.client("ec2").describe_launch_template_versions(LaunchTemplateId=lt_id, Versions=["$Default"])[
        "LaunchTemplateVersions"
    ]
    (held,) = version["LaunchTemplateData"]["TagSpecifications"]
    assert "cost-center" not in {t["Key"] for t in held["Tags"]} and version["VersionNumber"] == 2
    assert not replan(steps, dropped).has_changes


def test_launch_template_delete_twice() -> None:
    stack = make_stack()
    steps, ctx = up(stack, only(*COMPUTE))
    lt = step(steps, "launch-template")
    current = lt.read(ctx)
    assert current is not None
    lt.delete(ctx, current)
    assert lt.read(ctx) is None
    n = len(ctx.aws.writes())
    lt.delete(ctx, current)  # already gone: no error, and nothing written
    assert lt.read(ctx) is None and len(ctx.aws.writes()) == n


@pytest.mark.parametrize(
    ("types", "credits", "ebs_optimized"),
    [
        (["t3.small"], "unlimited", True),
        (["t3.medium", "m5.large"], None, True),  # the flag is invalid for m5; t3 is unlimited by default
        (["t2.micro"], "unlimited", False),  # t2 cannot be EBS-optimized
    ],
)
def test_credits_and_ebs_optimization_follow_the_types(
    types: list[str], credits: str | None, ebs_optimized: bool
) -> None:
    stack = make_stack(instances={"types": types}, services={"api": {"memory_soft": 128}})
    desired = plan(compute_steps(stack), make_ctx(stack)).get("launch-template").desired
    assert desired is not None
    assert desired["cpu_credits"] == credits
    assert desired["ebs_optimized"] is ebs_optimized
    assert desired["instance_type"] == types[0]


def test_ami_alias_explicit_id_and_disk_size() -> None:
    ctx = make_ctx()
    arm = ctx.client("ssm").get_parameter(
        Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    )["Parameter"]["Value"]
    stack = make_stack(instances={"ami": "al2023-arm64", "types": ["t4g.small"], "disk_gib": 50})
    desired = plan(compute_steps(stack), fresh(stack)).get("launch-template").desired
    assert desired is not None
    assert desired["image_id"] == arm and desired["root_volume"]["size_gib"] == 50
    explicit = make_stack(instances={"ami": arm, "types": ["t4g.small"]})
    desired = plan(compute_steps(explicit), fresh(explicit)).get("launch-template").desired
    assert desired is not None and desired["image_id"] == arm


def test_key_pair_is_sent_when_configured() -> None:
    make_ctx().client("ec2").create_key_pair(KeyName="ops")
    _, ctx = up(make_stack(instances={"key_pair": "ops"}), only(*COMPUTE))
    assert sent(ctx, "CreateLaunchTemplate")[0]["LaunchTemplateData"]["KeyName"] == "ops"


def test_containers_reach_the_instance_metadata_only_with_a_stated_reason() -> None:
    reason = "the app reads its AZ from the instance metadata"
    steps, ctx = up(make_stack(opt_outs={"imds_hop_limit_2": reason}), only(*COMPUTE))
    (req,) = sent(ctx, "CreateLaunchTemplate")
    assert req["LaunchTemplateData"]["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    # Dropping the opt-out is a new version at hop limit 1, the group untouched.
    p = plan(steps, fresh(make_stack()))
    assert p.get("launch-template").action is Action.NEW_VERSION
    assert [d.path for d in p.get("launch-template").diffs] == ["metadata.hop_limit"]
    with pytest.raises(ConfigError, match=r"opt_outs\.imds_hop_limit_2"):
        parse("stack: demo\nopt_outs: {imds_hop_limit_2: because}\nservices: {api: {image: a}}\n")


def test_ownership_comes_from_the_stack_s_tagging_read_and_a_template_missing_there_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = make_stack()
    steps, _ = up(stack, only(*COMPUTE))
    lt = step(steps, "launch-template")
    ctx = fresh(stack)
    with ctx.aws.reading():
        current = lt.read(ctx)
    assert current is not None and current["_owned"] and current["version"] == 1
    assert sent(ctx, "DescribeLaunchTemplates") == [] and len(sent(ctx, "GetResources")) == 1

    # The tagging API has not indexed the template yet: asked directly, still the stack's.
    monkeypatch.setattr(base, "stack_tagged", lambda ctx: {})
    ctx = fresh(stack)
    with ctx.aws.reading():
        current = lt.read(ctx)
    assert current is not None and current["_owned"]
    assert [p["LaunchTemplateNames"] for p in sent(ctx, "DescribeLaunchTemplates")] == [["demo-instances"]]


@pytest.mark.parametrize("tags", [[], [{"Key": "spotecs:stack", "Value": "demo-api"}]], ids=["untagged", "other-stack"])
def test_a_template_of_the_stack_s_name_but_not_its_tags_is_not_owned(tags: list[dict[str, str]]) -> None:
    ec2 = make_ctx().client("ec2")
    spec = [{"ResourceType": "launch-template", "Tags": tags}] if tags else []
    lt_id = ec2.create_launch_template(
        LaunchTemplateName="demo-instances", LaunchTemplateData={"ImageId": "ami-12c6146b"}, TagSpecifications=spec
    )["LaunchTemplate"]["LaunchTemplateId"]
    for _ in range(2):
        ec2.create_launch_template_version(LaunchTemplateId=lt_id, LaunchTemplateData={"ImageId": "ami-12c6146b"})
    ec2.modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion="3")
    stack = make_stack()
    ctx = fresh(stack)
    with ctx.aws.reading():
        current = step(compute_steps(stack), "launch-template").read(ctx)
    assert current is not None and current["version"] == 3 and current["id"] == lt_id
    assert current["_owned"] is False


def _template_tags(ctx: base.Context, lt_id: str) -> dict[str, str]:
    lt = ctx.client("ec2").describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"][0]
    return {t["Key"]: t["Value"] for t in lt.get("Tags", [])}


def _on(ctx: base.Context, operation: str, resource: str) -> list[dict[str, Any]]:
    return [c for c in sent(ctx, operation) if c.get("Resources") == [resource]]


def test_template_tag_edit_tags_it_in_place_and_its_volumes_in_a_new_version() -> None:
    steps, first = up(make_stack(tags=BEFORE), only(*COMPUTE))
    lt_id = first.outputs["launch-template"]["id"]
    edited = make_stack(tags=AFTER)
    change = replan(steps, edited).get("launch-template")
    # The volumes' tags are launch data (a new version); the template's own are tagged in place.
    assert change.action is Action.NEW_VERSION and change.changed_fields() == {"tags", "volume_tags"}

    ctx = fresh(edited)
    converge(steps, ctx)
    (put,) = _on(ctx, "CreateTags", lt_id)
    (drop,) = _on(ctx, "DeleteTags", lt_id)
    assert put["Tags"] == [{"Key": "owner", "Value": "ops"}, {"Key": "team", "Value": "billing"}]
    assert drop["Tags"] == [{"Key": "cost-center"}]
    (version,) = sent(ctx, "CreateLaunchTemplateVersion")
    assert version["VersionDescription"] == "spotecs: volume_tags"
    holds_the_edit(_template_tags(ctx, lt_id))
    assert not replan(steps, edited).has_changes


def test_template_tags_changed_by_hand_are_put_back_without_a_new_version() -> None:
    stack = make_stack(tags=AFTER)
    steps, first = up(stack, only(*COMPUTE))
    lt_id = first.outputs["launch-template"]["id"]
    ec2 = first.client("ec2")
    ec2.create_tags(
        Resources=[lt_id], Tags=[{"Key": "team", "Value": "payments"}, {"Key": "cost-center", "Value": "cc-17"}]
    )
    ec2.delete_tags(Resources=[lt_id], Tags=[{"Key": "owner"}])
    planned_as_tags_only(replan(steps, stack), "launch-template")

    ctx = fresh(stack)
    converge(steps, ctx)
    assert writes(ctx) == ["CreateTags", "DeleteTags"]  # no new version, nothing else
    assert _on(ctx, "CreateTags", lt_id) and _on(ctx, "DeleteTags", lt_id)
    holds_the_edit(_template_tags(ctx, lt_id))
    lt = ec2.describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"][0]
    assert lt["LatestVersionNumber"] == lt["DefaultVersionNumber"] == 1
    assert not replan(steps, stack).has_changes
