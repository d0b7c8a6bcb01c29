"""steps/load_balancer.py: the load balancer and its access-log bucket."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from spotecs.engine.plan import plan
from spotecs.errors import CheckError
from spotecs.steps.base import Timeouts
from tests.helpers import (
    ACCOUNT,
    REGION,
    StandIn,
    converge,
    fresh,
    make_stack,
    replan,
    sent,
    workload_steps,
    writes,
)
from tests.tag_edits import AFTER, BEFORE, holds_the_edit, planned_as_tags_only
from tests.test_access_log_bucket import private_bucket


def test_access_log_bucket_expires_logs_and_lets_the_elb_account_write(compute: dict[str, StandIn]) -> None:
    stack = make_stack(load_balancer={"access_logs": {"expire_days": 14}})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    converge(steps, fresh(stack))

    s3, elbv2 = boto3.client("s3", region_name=REGION), boto3.client("elbv2", region_name=REGION)
    bucket = f"demo-alb-logs-{ACCOUNT}"
    rule = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert (rule["Expiration"], rule["Filter"], rule["Status"]) == ({"Days": 14}, {"Prefix": "alb/"}, "Enabled")
    statement = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}  # us-east-1's ELB account
    assert statement["Resource"] == f"arn:aws:s3:::{bucket}/alb/AWSLogs/{ACCOUNT}/*"
    lb_arn = elbv2.describe_load_balancers(Names=["demo"])["LoadBalancers"][0]["LoadBalancerArn"]
    attrs = {
        a["Key"]: a["Value"] for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
    }
    assert (attrs["access_logs.s3.enabled"], attrs["access_logs.s3.bucket"], attrs["access_logs.s3.prefix"]) == (
        "true",
        bucket,
        "alb",
    )

    # Teardown empties the bucket spotecs created, then deletes it.
    s3.put_object(Bucket=bucket, Key="alb/AWSLogs/x.log.gz", Body=b"log")
    converge(steps, fresh(stack), destroy=True)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_access_logs_wait_while_a_fresh_bucket_policy_propagates(
    compute: dict[str, StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(load_balancer={"access_logs": {}})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    ctx = fresh(stack)
    elbv2 = ctx.client("elbv2")
    real = elbv2.modify_load_balancer_attributes
    refusals = 2

    def not_yet(**kw: Any) -> Any:
        nonlocal refusals
        if refusals:
            refusals -= 1
            message = f"Access Denied for bucket: demo-alb-logs-{ACCOUNT}. Please check S3bucket permission"
            raise ClientError(
                {"Error": {"Code": "InvalidConfigurationRequest", "Message": message}}, "ModifyLoadBalancerAttributes"
            )
        return real(**kw)

    monkeypatch.setattr(elbv2, "modify_load_balancer_attributes", not_yet)
    converge(steps, ctx)
    assert refusals == 0
    assert Timeouts().budget("access-log bucket policy") == 120


def test_another_invalid_configuration_is_not_retried(
    compute: dict[str, StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(load_balancer={"access_logs": {}})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    ctx = fresh(stack)
    elbv2 = ctx.client("elbv2")
    calls: list[int] = []

    def refused(**kw: Any) -> Any:
        calls.append(1)
        raise ClientError(
            {"Error": {"Code": "InvalidConfigurationRequest", "Message": "Idle timeout out of range"}},
            "ModifyLoadBalancerAttributes",
        )

    monkeypatch.setattr(elbv2, "modify_load_balancer_attributes", refused)
    the_plan = plan(steps, ctx)
    from spotecs.engine.apply import apply

    result = apply(the_plan, steps, ctx)
    assert "load-balancer" in result.failed and calls == [1]


def test_a_named_access_log_bucket_is_used_not_created(compute: dict[str, StandIn]) -> None:
    private_bucket("corp-logs")
    stack = make_stack(load_balancer={"access_logs": {"bucket": "corp-logs", "prefix": "demo"}})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    assert "access-log-bucket" not in [s.key for s in steps]
    ctx = fresh(stack)
    converge(steps, ctx)
    attrs = {a["Key"]: a["Value"] for a in sent(ctx, "ModifyLoadBalancerAttributes")[0]["Attributes"]}
    assert (attrs["access_logs.s3.bucket"], attrs["access_logs.s3.prefix"]) == ("corp-logs", "demo")
    assert sent(ctx, "CreateBucket") == []


def test_load_balancer_is_internet_facing_in_the_stack_subnets_behind_its_group(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    ctx = fresh(stack)
    converge(steps, ctx)
    lb = boto3.client("elbv2", region_name=REGION).describe_load_balancers(Names=["demo"])["LoadBalancers"][0]
    subnets = [s["SubnetId"] for s in boto3.client("ec2", region_name=REGION).describe_subnets()["Subnets"]]
    assert (lb["Scheme"], lb["Type"]) == ("internet-facing", "application")
    assert sorted(z["SubnetId"] for z in lb["AvailabilityZones"]) == sorted(subnets)
    assert lb["SecurityGroups"] == [ctx.outputs["security-group:lb"]["group_id"]]
    assert ctx.outputs["load-balancer"]["url"] == f"http://{lb['DNSName']}"


def test_load_balancer_needs_one_subnet_in_each_of_two_zones(compute: dict[str, StandIn]) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    default_1a = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])
    first = default_1a["Subnets"][0]["SubnetId"]
    second = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.200.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    stack = make_stack(network={"vpc_id": vpc, "subnets": [first, second["SubnetId"]]})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    with pytest.raises(CheckError) as e:
        plan(steps, fresh(stack))
    assert any("one subnet per Availability Zone" in p and "us-east-1a" in p for p in e.value.problems)
    assert any("at least two Availability Zones" in p for p in e.value.problems)


def _elb_tags(arn: str) -> dict[str, str]:
    described = boto3.client("elbv2", region_name=REGION).describe_tags(ResourceArns=[arn])["TagDescriptions"]
    return {t["Key"]: t["Value"] for t in described[0]["Tags"]}


@pytest.mark.parametrize(
    ("key", "arn_of"),
    [
        pytest.param(
            "load-balancer",
            lambda elbv2: elbv2.describe_load_balancers(Names=["demo"])["LoadBalancers"][0]["LoadBalancerArn"],
            id="load-balancer",
        ),
        pytest.param(
            "target-group:api",
            lambda elbv2: elbv2.describe_target_groups(Names=["demo-api"])["TargetGroups"][0]["TargetGroupArn"],
            id="target-group",
        ),
    ],
)
def test_elb_tag_edit_converges_with_tag_calls_only(compute: dict[str, StandIn], key: str, arn_of: Any) -> None:
    stack = make_stack(tags=BEFORE)
    converge(workload_steps(stack, compute, lambda s: s.key == key), fresh(stack))
    edited = make_stack(tags=AFTER)
    steps = workload_steps(edited, compute, lambda s: s.key == key)
    planned_as_tags_only(replan(steps, edited), key)

    ctx = fresh(edited)
    converge(steps, ctx)
    arn = arn_of(boto3.client("elbv2", region_name=REGION))
    assert writes(ctx, "elbv2") == ["AddTags", "RemoveTags"]  # no Modify*, no new resource
    (add,) = sent(ctx, "AddTags")
    (remove,) = sent(ctx, "RemoveTags")
    assert add["ResourceArns"] == remove["ResourceArns"] == [arn]
    assert add["Tags"] == [{"Key": "owner", "Value": "ops"}, {"Key": "team", "Value": "billing"}]
    assert remove["TagKeys"] == ["cost-center"]
    holds_the_edit(_elb_tags(arn))
    assert not replan(steps, edited).get(key).is_change


def test_an_edit_to_many_tags_is_taken_as_aws_takes_it(compute: dict[str, StandIn]) -> None:
    """fills_elbv2: an ALB takes 50 tags; moto refused an 11th once it held 10."""
    many = {f"cost-{n:02}": f"cc-{n}" for n in range(30)}
    stack = make_stack(tags=many)
    converge(workload_steps(stack, compute, lambda s: s.key == "load-balancer"), fresh(stack))
    edited = make_stack(tags={**many, "owner": "ops"})
    ctx = fresh(edited)
    converge(workload_steps(edited, compute, lambda s: s.key == "load-balancer"), ctx)
    assert [c["Tags"] for c in sent(ctx, "AddTags")] == [[{"Key": "owner", "Value": "ops"}]]
    elbv2 = boto3.client("elbv2", region_name=REGION)
    arn = elbv2.describe_load_balancers(Names=["demo"])["LoadBalancers"][0]["LoadBalancerArn"]
    tags = _elb_tags(arn)
    assert len(tags) == 33 and tags["owner"] == "ops"
    with pytest.raises(ClientError, match="TooManyTags"):  # AWS's own limit still holds
        elbv2.add_tags(ResourceArns=[arn], Tags=[{"Key": f"more-{n}", "Value": "x"} for n in range(18)])
