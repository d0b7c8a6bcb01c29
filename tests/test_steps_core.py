"""The core steps on moto: network (data), the two security groups, the IAM roles and a log
group per service. Each gets STYLE.md's five cases: absent -> plan says create; apply; plan again
-> no-op (and no write call); one field changed -> update or replace; delete, and delete again is
a no-op. Plus: a resource of the same name that spotecs does not own is used read-only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from spotecs.aws import Call
from spotecs.config import Stack
from spotecs.engine.model import Action, Unknown
from spotecs.engine.plan import NOT_OWNED, plan
from spotecs.errors import CheckError
from spotecs.steps.base import Context, Step
from spotecs.steps.iam import EXECUTION_POLICY, INSTANCE_POLICY, SECRETS_POLICY
from spotecs.steps.network import Network
from tests.conftest import REGION, converge, make_ctx, make_stack, replan, steps_for

SECRET_A = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
SECRET_B = "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-XyZ123"
REGISTRY = "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-QwErTy"
PARAM = "arn:aws:ssm:us-east-1:123456789012:parameter/demo/token"

INSTANCE_ROLE = f"demo-{REGION}-ecs-instance"
EXECUTION_ROLE = f"demo-{REGION}-ecs-execution"


def only(*keys: str) -> Any:
    return lambda s: s.key in keys


def writes(ctx: Context) -> list[Call]:
    return ctx.aws.writes()


def touching(calls: list[Call], **match: str) -> list[Call]:
    return [c for c in calls if all(c.params.get(k) == v for k, v in match.items())]


@pytest.fixture
def ec2(moto: None) -> Any:
    return make_ctx().client("ec2")


@pytest.fixture
def iam(moto: None) -> Any:
    return make_ctx().client("iam")


@pytest.fixture
def logs(moto: None) -> Any:
    return make_ctx().client("logs")


# ============================================================================= network


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
    assert out == {"vpc_id": vpc, "subnets": [a], "zones": ["us-east-1b"]}


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
    assert writes(ctx) == []


# ============================================================================= security groups

SG_KEYS = ("security-group:lb", "security-group:instances")


def _group(ec2: Any, name: str) -> dict[str, Any] | None:
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    return groups[0] if groups else None


def _perms(group: dict[str, Any]) -> set[tuple[Any, ...]]:
    out = set()
    for p in group["IpPermissions"]:
        for r in p.get("IpRanges", []):
            out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"]))
        for r in p.get("Ipv6Ranges", []):
            out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIpv6"]))
        for g in p.get("UserIdGroupPairs", []):
            out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], g["GroupId"]))
    return out


@pytest.fixture
def sg_steps(moto: None) -> list[Step]:
    return steps_for(make_stack(), only(*SG_KEYS))


def test_security_groups_absent_plan_create(sg_steps: list[Step]) -> None:
    p = plan(sg_steps, make_ctx())
    assert {c.key: c.action for c in p.changes} == dict.fromkeys(SG_KEYS, Action.CREATE)
    inst = p.get("security-group:instances").desired
    assert inst is not None
    # The lb group's id is known only after it is created.
    (rule,) = inst["ingress"]
    assert isinstance(rule["source_group"], Unknown)
    assert p.get("security-group:lb").name == "demo-lb"
    assert p.get("security-group:instances").name == "demo-instances"


def test_security_groups_apply(sg_steps: list[Step], ec2: Any) -> None:
    ctx = make_ctx()
    converge(sg_steps, ctx)
    lb, inst = _group(ec2, "demo-lb"), _group(ec2, "demo-instances")
    assert lb is not None and inst is not None
    assert _perms(lb) == {
        ("tcp", 80, 80, "0.0.0.0/0"),
        ("tcp", 443, 443, "0.0.0.0/0"),
        ("tcp", 80, 80, "::/0"),
        ("tcp", 443, 443, "::/0"),
    }
    # Every TCP port (dynamic host ports), from the load balancer's group only.
    assert _perms(inst) == {("tcp", 0, 65535, lb["GroupId"])}
    vpc = ctx.outputs["network"]["vpc_id"]
    assert lb["VpcId"] == inst["VpcId"] == vpc
    for g in (lb, inst):
        tags = {t["Key"]: t["Value"] for t in g["Tags"]}
        assert tags["spotecs:stack"] == "demo" and tags["spotecs:managed"] == "true"
        assert tags["Name"] == g["GroupName"]
    assert ctx.outputs["security-group:lb"]["group_id"] == lb["GroupId"]
    assert ctx.outputs["security-group:instances"]["group_id"] == inst["GroupId"]
    # The instance group's rule names the real lb group id: the Unknown was resolved.
    (grant,) = [
        c
        for c in writes(ctx)
        if c.operation == "AuthorizeSecurityGroupIngress" and c.params["GroupId"] == inst["GroupId"]
    ]
    assert grant.params["IpPermissions"] == [
        {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": lb["GroupId"]}]}
    ]


def test_security_groups_plan_again_is_noop(sg_steps: list[Step]) -> None:
    converge(sg_steps, make_ctx())
    ctx = make_ctx()
    p, result = converge(sg_steps, ctx)
    assert not p.has_changes
    assert result.applied == []
    assert writes(ctx) == []


def test_security_group_drift_is_updated(sg_steps: list[Step], ec2: Any) -> None:
    converge(sg_steps, make_ctx())
    inst = _group(ec2, "demo-instances")
    assert inst is not None
    ec2.authorize_security_group_ingress(
        GroupId=inst["GroupId"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    p = replan(sg_steps, make_stack())
    ch = p.get("security-group:instances")
    assert ch.action is Action.UPDATE
    assert [d.path for d in ch.diffs] == ["ingress"]
    assert p.get("security-group:lb").action is Action.NOOP
    ctx = make_ctx()
    converge(sg_steps, ctx)
    assert [c.operation for c in writes(ctx)] == ["RevokeSecurityGroupIngress"]
    assert writes(ctx)[0].params["IpPermissions"] == [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ]
    after = _group(ec2, "demo-instances")
    assert after is not None and ("tcp", 22, 22, "0.0.0.0/0") not in _perms(after)
    assert not replan(sg_steps, make_stack()).has_changes


def test_security_group_missing_rule_is_granted_again(sg_steps: list[Step], ec2: Any) -> None:
    converge(sg_steps, make_ctx())
    lb = _group(ec2, "demo-lb")
    assert lb is not None
    ec2.revoke_security_group_ingress(
        GroupId=lb["GroupId"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ctx = make_ctx()
    p, _ = converge(sg_steps, ctx)
    assert p.get("security-group:lb").action is Action.UPDATE
    assert [c.operation for c in writes(ctx)] == ["AuthorizeSecurityGroupIngress"]
    after = _group(ec2, "demo-lb")
    assert after is not None and ("tcp", 443, 443, "0.0.0.0/0") in _perms(after)


def test_security_group_description_change_forces_replace(
    sg_steps: list[Step], ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    converge(sg_steps, make_ctx())
    old = _group(ec2, "demo-instances")
    assert old is not None
    inst = next(s for s in sg_steps if s.key == "security-group:instances")
    monkeypatch.setattr(inst, "description", "spotecs demo: new wording")
    p = replan(sg_steps, make_stack())
    ch = p.get("security-group:instances")
    assert ch.action is Action.REPLACE
    assert [(d.path, d.forces_replace) for d in ch.diffs] == [("description", True)]
    converge(sg_steps, make_ctx())
    new = _group(ec2, "demo-instances")
    assert new is not None
    assert new["GroupId"] != old["GroupId"]
    assert new["Description"] == "spotecs demo: new wording"


def test_security_groups_delete_and_delete_again(sg_steps: list[Step], ec2: Any) -> None:
    converge(sg_steps, make_ctx())
    ctx = make_ctx()
    current = {s.key: s.read(ctx.for_step(s.key)) for s in sg_steps if isinstance(s, Step)}
    p, _ = converge(sg_steps, ctx, destroy=True)
    assert {c.key: c.action for c in p.changes} == dict.fromkeys(SG_KEYS, Action.DELETE)
    assert _group(ec2, "demo-lb") is None and _group(ec2, "demo-instances") is None
    # The instances group (which names the lb group) went first, its cross rule revoked.
    ops = [(c.operation, c.params.get("GroupId")) for c in writes(ctx)]
    inst_id = current["security-group:instances"]["group_id"]  # type: ignore[index]
    lb_id = current["security-group:lb"]["group_id"]  # type: ignore[index]
    assert ops.index(("DeleteSecurityGroup", inst_id)) < ops.index(("DeleteSecurityGroup", lb_id))
    # Delete again: already gone is fine.
    again = make_ctx()
    for s in sg_steps:
        if s.key in current:
            s.delete(again.for_step(s.key), current[s.key])  # type: ignore[arg-type]
    assert not plan(sg_steps, make_ctx(), destroy=True).has_changes


def test_worker_only_stack_has_no_lb_group_and_no_ingress(moto: None, ec2: Any) -> None:
    stack = make_stack(services={"api": {"container_port": None}})
    steps = steps_for(stack, lambda s: s.key.startswith("security-group:"))
    assert [s.key for s in steps if s.key.startswith("security-group")] == ["security-group:instances"]
    ctx = make_ctx(stack)
    converge(steps, ctx)
    inst = _group(ec2, "demo-instances")
    assert inst is not None and inst["IpPermissions"] == []
    assert not any(c.operation == "AuthorizeSecurityGroupIngress" for c in writes(ctx))


def test_security_group_not_owned_is_used_read_only(sg_steps: list[Step], ec2: Any) -> None:
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    theirs = ec2.create_security_group(GroupName="demo-lb", Description="someone else's", VpcId=vpc)["GroupId"]
    ctx = make_ctx()
    p, _ = converge(sg_steps, ctx)
    ch = p.get("security-group:lb")
    assert ch.action is Action.NOOP and ch.note == NOT_OWNED
    assert touching(writes(ctx), GroupId=theirs) == []
    # The instances group still trusts it: its id is the lb group's output.
    inst = _group(ec2, "demo-instances")
    assert inst is not None and _perms(inst) == {("tcp", 0, 65535, theirs)}
    destroy_ctx = make_ctx()
    p, _ = converge(sg_steps, destroy_ctx, destroy=True)
    assert p.get("security-group:lb").action is Action.NOOP
    assert touching(writes(destroy_ctx), GroupId=theirs) == []
    assert _group(ec2, "demo-lb") is not None


# ============================================================================= IAM

IAM_KEYS = ("iam:instance-role", "iam:execution-role")


def _iam_stack(**service: Any) -> Stack:
    return make_stack(services={"api": service})


def _inline(iam: Any, role: str) -> dict[str, Any]:
    return {
        n: iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]
        for n in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }


def _attached(iam: Any, role: str) -> list[str]:
    return sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"])


@pytest.fixture
def iam_steps(moto: None) -> list[Step]:
    return steps_for(make_stack(), only(*IAM_KEYS))


def test_iam_absent_plan_create(iam_steps: list[Step]) -> None:
    p = plan(iam_steps, make_ctx())
    assert {c.key: c.action for c in p.changes} == dict.fromkeys(IAM_KEYS, Action.CREATE)
    assert p.get("iam:instance-role").name == INSTANCE_ROLE
    assert p.get("iam:execution-role").name == EXECUTION_ROLE


def test_iam_apply(iam_steps: list[Step], iam: Any) -> None:
    ctx = make_ctx()
    converge(iam_steps, ctx)
    role = iam.get_role(RoleName=INSTANCE_ROLE)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert _attached(iam, INSTANCE_ROLE) == [INSTANCE_POLICY]
    profile = iam.get_instance_profile(InstanceProfileName=INSTANCE_ROLE)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [INSTANCE_ROLE]
    exec_role = iam.get_role(RoleName=EXECUTION_ROLE)["Role"]
    assert exec_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert _attached(iam, EXECUTION_ROLE) == [EXECUTION_POLICY]
    assert _inline(iam, EXECUTION_ROLE) == {}  # no secrets named: no secrets access
    for name in (INSTANCE_ROLE, EXECUTION_ROLE):
        tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
        assert tags == {"spotecs:stack": "demo", "spotecs:managed": "true"}
    # Outputs the launch template and task definitions need, right after creation.
    out = ctx.outputs["iam:instance-role"]
    assert out["arn"] == role["Arn"]
    assert out["instance_profile"] == INSTANCE_ROLE
    assert out["instance_profile_arn"] == profile["Arn"]
    assert ctx.outputs["iam:execution-role"]["arn"] == exec_role["Arn"]


def test_execution_role_reads_exactly_the_services_secrets(moto: None, iam: Any) -> None:
    stack = make_stack(
        services={
            "api": {"secrets": {"DB": SECRET_A, "TOKEN": PARAM}, "repository_credentials": REGISTRY},
            "worker": {"image": "busybox", "secrets": {"KEY": SECRET_B, "DB": SECRET_A}},
        }
    )
    steps = steps_for(stack, only("iam:execution-role"))
    converge(steps, make_ctx(stack))
    assert _inline(iam, EXECUTION_ROLE) == {
        SECRETS_POLICY: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": sorted([SECRET_A, SECRET_B, REGISTRY]),
                },
                {"Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": [PARAM]},
            ],
        }
    }
    assert not replan(steps, stack).has_changes


def test_iam_plan_again_is_noop(iam_steps: list[Step]) -> None:
    converge(iam_steps, make_ctx())
    ctx = make_ctx()
    p, result = converge(iam_steps, ctx)
    assert not p.has_changes and result.applied == []
    assert writes(ctx) == []


def test_execution_role_secret_added_is_an_update(moto: None, iam: Any) -> None:
    before = _iam_stack(secrets={"DB": SECRET_A})
    steps = steps_for(before, only("iam:execution-role"))
    converge(steps, make_ctx(before))
    after = _iam_stack(secrets={"DB": SECRET_A, "KEY": SECRET_B})
    p = replan(steps, after)
    ch = p.get("iam:execution-role")
    assert ch.action is Action.UPDATE
    assert [d.path for d in ch.diffs] == [f"inline_policies.{SECRETS_POLICY}.Statement"]
    ctx = make_ctx(after)
    converge(steps, ctx)
    assert [c.operation for c in writes(ctx)] == ["PutRolePolicy"]
    doc = _inline(iam, EXECUTION_ROLE)[SECRETS_POLICY]
    assert doc["Statement"][0]["Resource"] == sorted([SECRET_A, SECRET_B])
    assert not replan(steps, after).has_changes


def test_execution_role_all_secrets_removed_drops_the_policy(moto: None, iam: Any) -> None:
    before = _iam_stack(secrets={"DB": SECRET_A})
    steps = steps_for(before, only("iam:execution-role"))
    converge(steps, make_ctx(before))
    after = _iam_stack()
    ch = replan(steps, after).get("iam:execution-role")
    assert ch.action is Action.UPDATE
    assert [(d.path, d.old, d.new) for d in ch.diffs] == [("inline_policy_names", [SECRETS_POLICY], [])]
    ctx = make_ctx(after)
    converge(steps, ctx)
    assert [c.operation for c in writes(ctx)] == ["DeleteRolePolicy"]
    assert _inline(iam, EXECUTION_ROLE) == {}
    assert not replan(steps, after).has_changes


def test_instance_role_drift_is_repaired(iam_steps: list[Step], iam: Any) -> None:
    converge(iam_steps, make_ctx())
    iam.detach_role_policy(RoleName=INSTANCE_ROLE, PolicyArn=INSTANCE_POLICY)
    iam.remove_role_from_instance_profile(InstanceProfileName=INSTANCE_ROLE, RoleName=INSTANCE_ROLE)
    p = replan(iam_steps, make_stack())
    ch = p.get("iam:instance-role")
    assert ch.action is Action.UPDATE
    assert sorted(d.path for d in ch.diffs) == ["instance_profile", "managed_policies"]
    ctx = make_ctx()
    converge(iam_steps, ctx)
    assert sorted(c.operation for c in writes(ctx)) == ["AddRoleToInstanceProfile", "AttachRolePolicy"]
    assert _attached(iam, INSTANCE_ROLE) == [INSTANCE_POLICY]
    assert ctx.outputs["iam:instance-role"]["instance_profile"] == INSTANCE_ROLE
    assert not replan(iam_steps, make_stack()).has_changes


def test_role_trust_policy_drift_is_updated(iam_steps: list[Step], iam: Any) -> None:
    converge(iam_steps, make_ctx())
    wrong = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.update_assume_role_policy(RoleName=EXECUTION_ROLE, PolicyDocument=json.dumps(wrong))
    ctx = make_ctx()
    p, _ = converge(iam_steps, ctx)
    assert [d.path for d in p.get("iam:execution-role").diffs] == ["trusted_service"]
    (call,) = writes(ctx)
    assert call.operation == "UpdateAssumeRolePolicy"
    assert json.loads(call.params["PolicyDocument"])["Statement"][0]["Principal"] == {
        "Service": "ecs-tasks.amazonaws.com"
    }


def test_iam_delete_and_delete_again(iam_steps: list[Step], iam: Any) -> None:
    stack = _iam_stack(secrets={"DB": SECRET_A})
    converge(iam_steps, make_ctx(stack))
    ctx = make_ctx(stack)
    current = {s.key: s.read(ctx.for_step(s.key)) for s in iam_steps}
    p, _ = converge(iam_steps, ctx, destroy=True)
    assert {c.key: c.action for c in p.changes} == dict.fromkeys(IAM_KEYS, Action.DELETE)
    assert iam.list_roles()["Roles"] == []
    assert iam.list_instance_profiles()["InstanceProfiles"] == []
    again = make_ctx(stack)
    for s in iam_steps:
        s.delete(again.for_step(s.key), current[s.key])  # type: ignore[arg-type]
    assert not plan(iam_steps, make_ctx(stack), destroy=True).has_changes


@pytest.fixture
def foreign_execution_role(iam: Any) -> str:
    """A role with spotecs's name that spotecs did not create: no tags, another policy."""
    iam.create_role(
        RoleName=EXECUTION_ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    iam.put_role_policy(
        RoleName=EXECUTION_ROLE,
        PolicyName="theirs",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    return str(iam.get_role(RoleName=EXECUTION_ROLE)["Role"]["Arn"])


def test_not_owned_role_is_reused_read_only(iam_steps: list[Step], iam: Any, foreign_execution_role: str) -> None:
    stack = _iam_stack(secrets={"DB": SECRET_A})
    ctx = make_ctx(stack)
    p, _ = converge(iam_steps, ctx)
    ch = p.get("iam:execution-role")
    assert ch.action is Action.NOOP and ch.note == NOT_OWNED and ch.diffs == []
    assert p.get("iam:instance-role").action is Action.CREATE
    # No write call of any kind names the foreign role...
    assert touching(writes(ctx), RoleName=EXECUTION_ROLE) == []
    assert writes(ctx), "the owned role must still have been created"
    # ...its ARN is still the output dependants get...
    assert ctx.outputs["iam:execution-role"]["arn"] == foreign_execution_role
    # ...and it is exactly as it was.
    assert list(_inline(iam, EXECUTION_ROLE)) == ["theirs"]
    assert _attached(iam, EXECUTION_ROLE) == []
    assert iam.list_role_tags(RoleName=EXECUTION_ROLE)["Tags"] == []


def test_not_owned_role_is_never_deleted(iam_steps: list[Step], iam: Any, foreign_execution_role: str) -> None:
    converge(iam_steps, make_ctx())
    ctx = make_ctx()
    p, _ = converge(iam_steps, ctx, destroy=True)
    assert p.get("iam:execution-role").action is Action.NOOP
    assert p.get("iam:instance-role").action is Action.DELETE
    assert touching(writes(ctx), RoleName=EXECUTION_ROLE) == []
    assert iam.get_role(RoleName=EXECUTION_ROLE)["Role"]["Arn"] == foreign_execution_role


# ============================================================================= log groups


def _log_group(logs: Any, name: str) -> dict[str, Any] | None:
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return next((g for g in groups if g["logGroupName"] == name), None)


def _lg_steps(stack: Stack) -> list[Step]:
    return steps_for(stack, lambda s: s.key.startswith("log-group:"))


def test_log_group_absent_plan_create(moto: None) -> None:
    stack = make_stack(services={"worker": {"image": "busybox"}})
    p = plan(_lg_steps(stack), make_ctx(stack))
    assert {c.key: (c.action, c.name, c.desired) for c in p.changes} == {
        "log-group:api": (Action.CREATE, "/ecs/demo/api", {"retention_days": 30}),
        "log-group:worker": (Action.CREATE, "/ecs/demo/worker", {"retention_days": 30}),
    }


def test_log_group_apply(moto: None, logs: Any) -> None:
    stack = make_stack()
    ctx = make_ctx(stack)
    converge(_lg_steps(stack), ctx)
    g = _log_group(logs, "/ecs/demo/api")
    assert g is not None and g["retentionInDays"] == 30
    assert logs.list_tags_log_group(logGroupName="/ecs/demo/api")["tags"] == {
        "spotecs:stack": "demo",
        "spotecs:managed": "true",
    }
    out = ctx.outputs["log-group:api"]
    assert out["log_group"] == "/ecs/demo/api"
    assert out["arn"] == g["arn"].removesuffix(":*")


def test_log_group_plan_again_is_noop(moto: None) -> None:
    stack = make_stack()
    converge(_lg_steps(stack), make_ctx(stack))
    ctx = make_ctx(stack)
    p, _ = converge(_lg_steps(stack), ctx)
    assert not p.has_changes
    assert writes(ctx) == []


@pytest.mark.parametrize(("retention", "operation"), [(90, "PutRetentionPolicy"), (None, "DeleteRetentionPolicy")])
def test_log_group_retention_change_is_an_update(moto: None, logs: Any, retention: int | None, operation: str) -> None:
    stack = make_stack()
    converge(_lg_steps(stack), make_ctx(stack))
    changed = make_stack(services={"api": {"log_retention_days": retention}})
    ch = replan(_lg_steps(changed), changed).get("log-group:api")
    assert ch.action is Action.UPDATE
    assert [(d.path, d.old, d.new) for d in ch.diffs] == [("retention_days", 30, retention)]
    ctx = make_ctx(changed)
    converge(_lg_steps(changed), ctx)
    assert [c.operation for c in writes(ctx)] == [operation]
    g = _log_group(logs, "/ecs/demo/api")
    assert g is not None and g.get("retentionInDays") == retention
    assert not replan(_lg_steps(changed), changed).has_changes


def test_log_group_created_without_retention(moto: None, logs: Any) -> None:
    stack = make_stack(services={"api": {"log_retention_days": None}})
    ctx = make_ctx(stack)
    converge(_lg_steps(stack), ctx)
    g = _log_group(logs, "/ecs/demo/api")
    assert g is not None and "retentionInDays" not in g
    assert not any(c.operation == "PutRetentionPolicy" for c in writes(ctx))
    assert not replan(_lg_steps(stack), stack).has_changes


def test_log_group_delete_and_delete_again(moto: None, logs: Any) -> None:
    stack = make_stack()
    steps = _lg_steps(stack)
    converge(steps, make_ctx(stack))
    ctx = make_ctx(stack)
    current = steps[-1].read(ctx)
    p, _ = converge(steps, ctx, destroy=True)
    assert [c.action for c in p.changes] == [Action.DELETE]
    assert _log_group(logs, "/ecs/demo/api") is None
    steps[-1].delete(make_ctx(stack), current)  # type: ignore[arg-type]
    assert not plan(steps, make_ctx(stack), destroy=True).has_changes


def test_log_group_prefix_match_is_not_mistaken_for_ours(moto: None, logs: Any) -> None:
    logs.create_log_group(logGroupName="/ecs/demo/api-old")
    stack = make_stack()
    assert plan(_lg_steps(stack), make_ctx(stack)).get("log-group:api").action is Action.CREATE


def test_log_group_not_owned_is_left_alone(moto: None, logs: Any) -> None:
    logs.create_log_group(logGroupName="/ecs/demo/api")
    stack = make_stack()
    ctx = make_ctx(stack)
    p, _ = converge(_lg_steps(stack), ctx)
    assert p.get("log-group:api").note == NOT_OWNED
    assert writes(ctx) == []
    destroy_ctx = make_ctx(stack)
    converge(_lg_steps(stack), destroy_ctx, destroy=True)
    assert writes(destroy_ctx) == []
    assert _log_group(logs, "/ecs/demo/api") is not None


# ============================================================================= all core steps together


def _core(stack: Stack) -> list[Step]:
    return steps_for(stack, lambda s: s.key in (*SG_KEYS, *IAM_KEYS) or s.key.startswith("log-group:"))


@pytest.fixture
def core_stack(moto: None) -> Iterator[Stack]:
    yield make_stack()


def test_core_converges_then_is_stable_then_tears_down(core_stack: Stack) -> None:
    steps = _core(core_stack)
    first = make_ctx(core_stack)
    p, _ = converge(steps, first)
    assert p.counts() == {"add": 5, "change": 0, "replace": 0, "destroy": 0}
    second = make_ctx(core_stack)
    p, _ = converge(steps, second)
    assert not p.has_changes and writes(second) == []
    third = make_ctx(core_stack)
    p, _ = converge(steps, third, destroy=True)
    assert p.counts()["destroy"] == 5
    assert not plan(steps, make_ctx(core_stack), destroy=True).has_changes
