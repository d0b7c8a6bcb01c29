"""steps/network.py: the VPC and subnets, a data source; bad input is a problem for `check`."""

from __future__ import annotations

from typing import Any

import pytest

from spotecs.engine.plan import plan
from spotecs.errors import CheckError
from spotecs.steps.network import Network
from tests.helpers import (
    converge,
    make_ctx,
    make_stack,
    only,
    steps_for,
)


def test_network_defaults_to_the_default_vpc_and_all_its_subnets(ec2: Any) -> None:
    out = Network().read(make_ctx())
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    assert out["vpc_id"] == vpc
    assert sorted(out["subnets"]) == sorted(s["SubnetId"] for s in subnets)
    zones = [next(s["AvailabilityZone"] for s in subnets if s["SubnetId"] == sid) for sid in out["subnets"]]
    assert zones == sorted(zones)  # ordered by zone, so the plan is stable
    assert out["zones"] == sorted({s["AvailabilityZone"] for s in subnets})


def test_network_explicit_vpc_and_subnets(ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.2.0/24", AvailabilityZone="us-east-1a")
    out = Network().read(make_ctx(make_stack(network={"vpc_id": vpc, "subnets": [a]})))
    assert out == {"vpc_id": vpc, "subnets": [a], "zones": ["us-east-1b"], "subnet_zones": {a: "us-east-1b"}}


def test_the_default_vpc_and_all_its_subnets_in_one_call(ec2: Any) -> None:
    """Its own subnets too (not only the default ones), never another VPC's."""
    default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    mine = ec2.create_subnet(VpcId=default, CidrBlock="172.31.200.0/24", AvailabilityZone="us-east-1c")["Subnet"]
    other = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    theirs = ec2.create_subnet(VpcId=other, CidrBlock="10.8.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    ctx = make_ctx()
    out = Network().read(ctx)
    assert out["vpc_id"] == default
    assert mine["SubnetId"] in out["subnets"] and theirs["SubnetId"] not in out["subnets"]
    assert [c.operation for c in ctx.aws.calls] == ["DescribeSubnets"]


def test_a_default_vpc_without_default_subnets_is_still_found(ec2: Any) -> None:
    default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    own = ec2.create_subnet(VpcId=default, CidrBlock="172.31.200.0/24", AvailabilityZone="us-east-1c")["Subnet"]
    out = Network().read(make_ctx())
    assert out["vpc_id"] == default and out["subnets"] == [own["SubnetId"]]


@pytest.mark.parametrize(
    ("network", "fragment"),
    [
        ({"vpc_id": "vpc-0123456789abcdef0"}, "does not exist in us-east-1"),
        ({"vpc_id": "DEFAULT", "subnets": ["subnet-0123456789abcdef0"]}, "subnet-0123456789abcdef0 not found in"),
    ],
)
def test_network_bad_ids_are_problems_for_the_check(ec2: Any, network: dict[str, Any], fragment: str) -> None:
    if network["vpc_id"] == "DEFAULT":
        network = {**network, "vpc_id": ec2.describe_vpcs()["Vpcs"][0]["VpcId"]}
    ctx = make_ctx(make_stack(network=network))
    current = Network().read(ctx)
    assert current["vpc_id"] is None and current["subnets"] == []
    (problem,) = Network().check(ctx, current)
    assert problem.startswith("network.") and fragment in problem


def test_a_bad_network_fails_the_plan_with_every_problem_and_no_write(ec2: Any) -> None:
    stack = make_stack(network={"vpc_id": "vpc-0123456789abcdef0"})
    ctx = make_ctx(stack)
    with pytest.raises(CheckError) as info:
        plan(steps_for(stack), ctx)
    assert "network.vpc_id: vpc-0123456789abcdef0 does not exist in us-east-1" in info.value.problems
    assert ctx.aws.writes() == []


def test_network_no_default_vpc(ec2: Any) -> None:
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
        for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]:
            ec2.delete_subnet(SubnetId=s["SubnetId"])
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    ctx = make_ctx()
    (problem,) = Network().check(ctx, Network().read(ctx))
    assert "has no default VPC" in problem


def test_network_is_data_only_and_never_written(moto: None) -> None:
    steps = steps_for(make_stack(), only("network"))
    ctx = make_ctx()
    the_plan, _ = converge(steps, ctx)
    assert the_plan.changes == []
    assert ctx.outputs["network"]["vpc_id"].startswith("vpc-")
    assert ctx.aws.writes() == []
