"""steps/security_groups.py: the load balancer's and the instances' security groups, the five cases,
drift, replacement, ownership, and deletion (cross-group rules, DependencyViolation, what holds a group)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotecs.engine.model import Action, Unknown
from spotecs.engine.plan import NOT_OWNED, plan
from spotecs.errors import WaitTimeout
from spotecs.steps.base import Step
from tests.helpers import (
    converge,
    fresh,
    leftovers,
    make_ctx,
    make_stack,
    only,
    patch_client,
    refuse,
    replan,
    short_waits,
    step,
    steps_for,
    touching,
    up,
    writes,
)
from tests.tag_edits import AFTER, BEFORE, holds_the_edit, planned_as_tags_only

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
    # HTTP only (no certificate): 443 stays closed.
    assert _perms(lb) == {("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 80, 80, "::/0")}
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
        for c in ctx.aws.writes()
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
    assert ctx.aws.writes() == []


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
    assert [c.operation for c in ctx.aws.writes()] == ["RevokeSecurityGroupIngress"]
    assert ctx.aws.writes()[0].params["IpPermissions"] == [
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
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ctx = make_ctx()
    p, _ = converge(sg_steps, ctx)
    assert p.get("security-group:lb").action is Action.UPDATE
    assert [c.operation for c in ctx.aws.writes()] == ["AuthorizeSecurityGroupIngress"]
    after = _group(ec2, "demo-lb")
    assert after is not None and ("tcp", 80, 80, "0.0.0.0/0") in _perms(after)


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
    ops = [(c.operation, c.params.get("GroupId")) for c in ctx.aws.writes()]
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
    assert not any(c.operation == "AuthorizeSecurityGroupIngress" for c in ctx.aws.writes())


def test_a_first_web_service_opens_the_instances_to_the_new_load_balancer_group_once_aws_sees_it(
    moto: None, ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = make_stack(services={"api": {"container_port": None}})
    converge(steps_for(worker, only(*SG_KEYS)), make_ctx(worker))
    web = make_stack()
    ctx = make_ctx(web)
    refused: list[str] = []

    def not_yet_seen(real: Callable[..., Any], **kw: Any) -> Any:
        # As AWS answers while the load balancer's group just created propagates.
        if kw["GroupId"] == inst["GroupId"] and not refused:
            refused.append(kw["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"])
            raise ClientError({"Error": {"Code": "InvalidGroup.NotFound", "Message": "does not exist"}}, "op")
        return real(**kw)

    inst = _group(ec2, "demo-instances")
    assert inst is not None
    patch_client(monkeypatch, ctx, "ec2", "authorize_security_group_ingress", not_yet_seen)
    p, _ = converge(steps_for(web, only(*SG_KEYS)), ctx)
    assert p.get("security-group:lb").action is Action.CREATE
    assert p.get("security-group:instances").action is Action.UPDATE
    lb, inst = _group(ec2, "demo-lb"), _group(ec2, "demo-instances")
    assert lb is not None and inst is not None
    assert refused == [lb["GroupId"]]
    assert _perms(inst) == {("tcp", 0, 65535, lb["GroupId"])}
    assert not replan(steps_for(web, only(*SG_KEYS)), web).has_changes


def test_ingress_the_file_states_a_reason_for_is_added_to_the_load_balancers(moto: None, ec2: Any) -> None:
    extra = [
        {"port": 22, "source": "10.20.0.0/16"},
        {"port": 9100, "to_port": 9110, "protocol": "udp", "source": "2001:db8::/32"},
    ]
    reason = {"instance_ingress": "SSH from the bastion; node metrics to the monitoring hosts"}
    stack = make_stack(instances={"ingress": extra}, opt_outs=reason)
    steps = steps_for(stack, only(*SG_KEYS))
    converge(steps, make_ctx(stack))
    lb, inst = _group(ec2, "demo-lb"), _group(ec2, "demo-instances")
    assert lb is not None and inst is not None
    assert _perms(inst) == {
        ("tcp", 0, 65535, lb["GroupId"]),
        ("tcp", 22, 22, "10.20.0.0/16"),
        ("udp", 9100, 9110, "2001:db8::/32"),
    }
    assert not replan(steps, stack).has_changes
    # Taken out of the file: revoked, the load balancer's rule kept.
    plain = make_stack()
    converge(steps_for(plain, only(*SG_KEYS)), make_ctx(plain))
    inst = _group(ec2, "demo-instances")
    assert inst is not None and _perms(inst) == {("tcp", 0, 65535, lb["GroupId"])}


def test_security_group_not_owned_is_used_read_only(sg_steps: list[Step], ec2: Any) -> None:
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    theirs = ec2.create_security_group(GroupName="demo-lb", Description="someone else's", VpcId=vpc)["GroupId"]
    ctx = make_ctx()
    p, _ = converge(sg_steps, ctx)
    ch = p.get("security-group:lb")
    assert ch.action is Action.NOOP and ch.note == NOT_OWNED
    assert touching(ctx.aws.writes(), GroupId=theirs) == []
    # The instances group still trusts it: its id is the lb group's output.
    inst = _group(ec2, "demo-instances")
    assert inst is not None and _perms(inst) == {("tcp", 0, 65535, theirs)}
    destroy_ctx = make_ctx()
    p, _ = converge(sg_steps, destroy_ctx, destroy=True)
    assert p.get("security-group:lb").action is Action.NOOP
    assert touching(destroy_ctx.aws.writes(), GroupId=theirs) == []
    assert _group(ec2, "demo-lb") is not None


def test_security_group_retries_dependency_violation_then_names_what_holds_it(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    steps, ctx = up(stack, lambda s: s.key.startswith("security-group:"))
    ec2 = ctx.client("ec2")
    lb_group = step(steps, "security-group:lb")
    current = lb_group.read(ctx)
    assert current is not None
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    eni = ec2.create_network_interface(
        SubnetId=subnet, Groups=[current["group_id"]], Description="ELB app/demo/0123456789"
    )["NetworkInterface"]
    tries: list[dict[str, Any]] = []

    def in_use(real: Callable[..., Any], **kw: Any) -> Any:
        tries.append(kw)
        return refuse("DependencyViolation")(real, **kw)

    patch_client(monkeypatch, ctx, "ec2", "delete_security_group", in_use)
    short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        lb_group.delete(ctx, current)
    message = str(e.value)
    assert message.startswith(
        "Timed out after 1s waiting for security group demo-lb to be free (still used by "
        f"network interface {eni['NetworkInterfaceId']} (ELB app/demo/0123456789))"
    )
    assert "run the same command again" in message
    assert len(tries) > 1  # retried within the bound
    # Revoked first: the instances' group (ours) no longer names the load balancer's.
    instances = step(steps, "security-group:instances").read(ctx)
    assert instances is not None and instances["ingress"] == []


def test_security_group_gone_after_a_few_dependency_violations(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    steps, _ = up(stack, lambda s: s.key.startswith("security-group:"))
    refusals = ["DependencyViolation"] * 3

    def eventually(real: Callable[..., Any], **kw: Any) -> Any:
        if refusals:
            raise ClientError({"Error": {"Code": refusals.pop(), "Message": "in use"}}, "DeleteSecurityGroup")
        return real(**kw)

    destroy = fresh(stack)
    patch_client(monkeypatch, destroy, "ec2", "delete_security_group", eventually)
    converge(steps, destroy, destroy=True)
    assert refusals == []
    assert not [x for x in leftovers("demo", "demo") if x.startswith("security group")]


def test_the_load_balancer_opens_443_only_while_it_serves_https(ec2: Any) -> None:
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
    https = make_stack(load_balancer={"certificate_arn": cert})
    converge(steps_for(https, only(*SG_KEYS)), fresh(https))
    lb = _group(ec2, "demo-lb")
    assert lb is not None and {p for p in _perms(lb) if p[1] == 443} == {
        ("tcp", 443, 443, "0.0.0.0/0"),
        ("tcp", 443, 443, "::/0"),
    }
    http = make_stack()
    p, _ = converge(steps_for(http, only(*SG_KEYS)), fresh(http))
    assert p.get("security-group:lb").action is Action.UPDATE
    lb = _group(ec2, "demo-lb")
    assert lb is not None and not {p for p in _perms(lb) if p[1] == 443}


def test_security_group_tag_edit_converges_with_tag_calls_only(moto: None, ec2: Any) -> None:
    steps, _ = up(make_stack(tags=BEFORE), only(*SG_KEYS))
    edited = make_stack(tags=AFTER)
    the_plan = replan(steps, edited)
    for key in SG_KEYS:
        planned_as_tags_only(the_plan, key)

    ctx = fresh(edited)
    converge(steps, ctx)
    assert sorted(writes(ctx)) == ["CreateTags", "CreateTags", "DeleteTags", "DeleteTags"]  # no ingress call
    for name in ("demo-lb", "demo-instances"):
        group = _group(ec2, name)
        assert group is not None
        (put,) = [
            c for c in ctx.aws.writes() if c.operation == "CreateTags" and c.params["Resources"] == [group["GroupId"]]
        ]
        assert put.params["Tags"] == [{"Key": "owner", "Value": "ops"}, {"Key": "team", "Value": "billing"}]
        tags = {t["Key"]: t["Value"] for t in group["Tags"]}
        holds_the_edit(tags)
        assert tags["Name"] == name  # the console's name stays
    assert not replan(steps, edited).has_changes
