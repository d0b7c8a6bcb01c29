"""Edits of a running stack converge in one `up`: after it, the next plan is empty and AWS
holds what the file says. On the sandbox (moto's server with the simulated ECS agent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from spotecs.aws import Aws
from spotecs.sandbox import Sandbox
from tests.stack_inventory import inventory

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(agent_interval=0.2, clock_factor=20) as box:  # AWS's delays 20 times faster
        yield box


def spotecs_cli(sandbox: Sandbox, *args: str) -> tuple[int, str, Aws]:
    from tests import walk

    out = walk.spotecs_cli(sandbox, *args)
    return out.code, out.output, out.aws


def article(path: Path, stack: str, *replacements: tuple[str, str]) -> Path:
    text = (ROOT / "examples" / "article.yaml").read_text()
    text = text.replace("stack: demo-api", f"stack: {stack}").replace("DemoApiClusterProd", f"{stack}-cluster")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def test_internal_load_balancer_replaces_it_with_its_listeners_in_one_up(sandbox: Sandbox, tmp_path: Path) -> None:
    stack = "cv-internal"
    path = article(tmp_path / "spotecs.yaml", stack)
    code, out, _ = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
    assert code == 0, out

    # A desired count under auto scaling belongs to the scaler: a note, not a change.
    article(path, stack, ("desired_count: 2", "desired_count: 3"))
    code, out, _ = spotecs_cli(sandbox, "up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert code == 0, out
    # Said of the service that exists (not "once the service exists"), and how the file's value is used.
    assert (
        "note: desired_count: 3 in the file, 2 on the service: service auto scaling (min 1, max 10) sets it; "
        "the file's value only starts a new service\n" in out
    )

    article(path, stack, ("load_balancer: {}", "load_balancer: {internal: true}"))
    code, out, _ = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
    assert code == 0, out
    assert f"-/+ load balancer {stack} (replace)" in out
    assert f"-/+ listeners {stack} :80 (replace: load balancer replaced)" in out
    assert "Apply complete!" in out

    code, out, aws = spotecs_cli(sandbox, "up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert code == 0, out
    assert aws.writes() == []
    elbv2 = sandbox.client("elbv2")
    [lb] = elbv2.describe_load_balancers(Names=[stack])["LoadBalancers"]
    assert lb["Scheme"] == "internal"
    [listener] = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert listener["Port"] == 80 and listener["DefaultActions"][0]["Type"] == "forward"

    code, out, _ = spotecs_cli(sandbox, "teardown", "-f", str(path), "--yes")
    assert code == 0, out
    assert inventory(sandbox.client, stack) == set()


def test_cluster_rename_is_refused_before_any_write_and_teardown_removes_the_old_cluster(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    stack = "cv-rename"
    path = article(tmp_path / "spotecs.yaml", stack)
    code, out, _ = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
    assert code == 0, out

    article(path, stack, (f"name: {stack}-cluster", f"name: {stack}-renamed"))
    code, out, aws = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
    assert code == 2, out
    lines = [ln for ln in out.splitlines() if "cluster.name:" in ln]
    assert len(lines) == 1, out
    line = lines[0]
    assert f"registered to cluster {stack}-cluster" in line and "spotecs teardown" in line, out
    assert aws.writes() == []
    assert not any(c.operation.startswith("Wait") for c in aws.calls)

    # The way out: teardown with the file as it is now removes the stack, old cluster included.
    code, out, _ = spotecs_cli(sandbox, "teardown", "-f", str(path), "--yes")
    assert code == 0, out
    assert f"ECS cluster {stack}-cluster" in out
    assert inventory(sandbox.client, stack) == set()
    code, out, _ = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
    assert code == 0, out
    ecs = sandbox.client("ecs")
    [service] = ecs.describe_services(cluster=f"{stack}-renamed", services=[f"{stack}-demo-api"])["services"]
    assert service["runningCount"] == service["desiredCount"] == 2

    # The walk's read-back sees what it checks: a value changed behind spotecs's back, a tag
    # and a security group of the stack's that the file does not name.
    from tests.walk import mismatches, orphans

    doc = yaml.safe_load(path.read_text())
    assert mismatches(sandbox, doc) == [] and orphans(sandbox, doc) == []
    elbv2 = sandbox.client("elbv2")
    [group] = elbv2.describe_target_groups(Names=[f"{stack}-demo-api"])["TargetGroups"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=group["TargetGroupArn"],
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "7"}],
    )
    sandbox.client("autoscaling").create_or_update_tags(
        Tags=[{"ResourceId": f"{stack}-instances", "ResourceType": "auto-scaling-group", "Key": "team", "Value": "x"}]
    )
    ec2 = sandbox.client("ec2")
    [instance, *_] = sandbox.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"{stack}-instances"]
    )["AutoScalingGroups"][0]["Instances"]
    ec2.create_tags(Resources=[instance["InstanceId"]], Tags=[{"Key": "team", "Value": "y"}])
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    stray = ec2.create_security_group(GroupName=f"{stack}-old", Description="an earlier file's", VpcId=vpc)["GroupId"]
    ec2.create_tags(Resources=[stray], Tags=[{"Key": "spotecs:stack", "Value": stack}])
    assert mismatches(sandbox, doc) == [
        "group tags {'Name': 'cv-rename-instances', 'team': 'x'}",
        "service demo-api deregistration delay 7",
        f"tags of instance {instance['InstanceId']}: {{'team': 'y'}}",
    ]
    assert orphans(sandbox, doc) == [f"security-group:{stack}-old"]
    ec2.delete_security_group(GroupId=stray)

    # Access logs on, then off: the read-back counts the bucket as orphaned once the file has no
    # access logs; `up --keep-logs` keeps it (the walk's check of that), then `up` deletes it.
    from tests.walk import _logs_bucket, _up_keeping_logs

    doc["load_balancer"] = {"access_logs": {"expire_days": 9}}
    path.write_text(yaml.safe_dump(doc))
    code, out, _ = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
    assert code == 0, out
    assert mismatches(sandbox, doc) == [] and orphans(sandbox, doc) == []
    doc["load_balancer"] = {}
    path.write_text(yaml.safe_dump(doc))
    bucket = _logs_bucket(doc)
    assert orphans(sandbox, doc) == [f"tagged:arn:aws:s3:::{bucket}"]
    assert _up_keeping_logs(sandbox, path, doc) is None
    assert orphans(sandbox, doc) == [f"tagged:arn:aws:s3:::{bucket}"]
    code, out, _ = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
    assert code == 0, out
    assert f"- S3 bucket {bucket}" in out and f"The logs in S3 bucket {bucket} will be deleted" in out
    assert mismatches(sandbox, doc) == [] and orphans(sandbox, doc) == []

    code, out, _ = spotecs_cli(sandbox, "teardown", "-f", str(path), "--yes")
    assert code == 0, out


# The property test: one fixed seed walking as many edits as the catalogue has kinds (27), every
# kind once (the walk draws without replacement); bench/converge.py walks a seed range.
CI_SEED = 15


def test_a_seeded_walk_of_every_kind_of_edit_converges_after_each_up(sandbox: Sandbox, tmp_path: Path) -> None:
    from tests.walk import CATALOGUE, walk

    result = walk(sandbox, tmp_path, CI_SEED, edits=len(CATALOGUE))
    assert not result.failure, result.failure
    assert len(result.steps) == len(CATALOGUE) >= 25
    assert sorted(result.kinds) == sorted(kind.__name__ for kind in CATALOGUE)
