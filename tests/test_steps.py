"""steps/__init__.py: the whole DAG `build` lists, applied and deleted together, in the right order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spotecs.config import Stack
from spotecs.engine.plan import plan
from spotecs.steps.base import Step
from tests.helpers import (
    converge,
    fresh,
    leftovers,
    make_ctx,
    make_stack,
    sent,
    steps_for,
    up,
)

SG_KEYS = ("security-group:lb", "security-group:instances")
IAM_KEYS = ("iam:instance-role", "iam:execution-role")


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
    assert not p.has_changes and second.aws.writes() == []
    third = make_ctx(core_stack)
    p, _ = converge(steps, third, destroy=True)
    assert p.counts()["destroy"] == 5
    assert not plan(steps, make_ctx(core_stack), destroy=True).has_changes


def test_listeners_target_groups_load_balancer_then_security_groups(moto: None) -> None:
    stack = make_stack()
    steps, _ = up(stack)
    destroy = fresh(stack)
    converge(steps, destroy, destroy=True)
    ops = [c.operation for c in destroy.aws.writes()]
    assert ops.index("DeleteListener") < ops.index("DeleteTargetGroup")
    assert ops.index("DeleteListener") < ops.index("DeleteLoadBalancer")
    groups = [c.params["GroupId"] for c in destroy.aws.writes() if c.operation == "DeleteSecurityGroup"]
    assert len(groups) == 2 and ops.index("DeleteLoadBalancer") < ops.index("DeleteSecurityGroup")
    (revoke,) = sent(destroy, "RevokeSecurityGroupIngress")  # the instances' rule naming the lb group
    assert revoke["IpPermissions"][0]["UserIdGroupPairs"]
    assert ops.index("RevokeSecurityGroupIngress") < ops.index("DeleteSecurityGroup")


def test_launch_template_roles_profile_and_log_groups_go_when_ours(moto: None) -> None:
    stack = make_stack()
    steps, _ = up(stack)
    destroy = fresh(stack)
    converge(steps, destroy, destroy=True)
    ops = [c.operation for c in destroy.aws.writes()]
    for op in ("DeleteLaunchTemplate", "DeleteLogGroup", "RemoveRoleFromInstanceProfile", "DeleteInstanceProfile"):
        assert op in ops
    assert ops.count("DeleteRole") == 2
    assert ops.index("DeleteAutoScalingGroup") < ops.index("DeleteLaunchTemplate") < ops.index("DeleteCluster")
    assert leftovers("demo", "demo") == []
