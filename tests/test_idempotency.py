"""Idempotency tokens: a create whose response is lost and that is then retried (by botocore
within the call, or by the next run) makes nothing twice. The sandbox honours the tokens as AWS
does (sandbox/fills.py); the tests also check the requests carried them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError

from spotecs.aws import client_token
from spotecs.engine.apply import apply
from spotecs.engine.plan import plan
from spotecs.steps.base import Context
from tests.helpers import COMPUTE, WEB, converge, fresh, make_stack, only, sent, steps_for, up, workload_steps

pytestmark = pytest.mark.usefixtures("moto")


def lose_first_response(ctx: Context, service: str, operation: str) -> list[int]:
    """The call reaches AWS, then the connection drops before its answer arrives."""
    lost: list[int] = []

    def drop(**_: Any) -> None:
        if not lost:
            lost.append(1)
            raise ConnectionClosedError(endpoint_url="https://injected")

    ctx.client(service).meta.events.register(f"after-call.{service}.{operation}", drop)
    return lost


def resend_after_first_success(ctx: Context, service: str, operation: str) -> list[int]:
    """botocore retries a call whose answer it did not get: the same request, sent again."""
    resent: list[int] = []

    def retry(response: Any, **_: Any) -> int | None:
        if not resent and response is not None and response[1].get("ResponseMetadata", {}).get("HTTPStatusCode") == 200:
            resent.append(1)
            return 0
        return None

    ctx.client(service).meta.events.register_first(f"needs-retry.{service}.{operation}", retry)
    return resent


def test_token_is_stable_for_the_same_create_and_differs_otherwise() -> None:
    a = client_token("demo", "launch-template", {"LaunchTemplateData": {"ImageId": "ami-1"}})
    assert a == client_token("demo", "launch-template", {"LaunchTemplateData": {"ImageId": "ami-1"}})
    assert len(a) == 32
    assert a != client_token("demo", "launch-template", {"LaunchTemplateData": {"ImageId": "ami-2"}})
    assert a != client_token("other", "launch-template", {"LaunchTemplateData": {"ImageId": "ami-1"}})
    assert a != client_token("demo", "service:api", {"LaunchTemplateData": {"ImageId": "ami-1"}})


def test_a_new_template_version_whose_answer_is_lost_is_not_made_twice_by_the_next_run() -> None:
    steps, first = up(make_stack(), only(*COMPUTE))
    lt_id = first.outputs["launch-template"]["id"]
    changed = make_stack(instances={"container_stop_timeout": 30})

    failing = fresh(changed)
    lost = lose_first_response(failing, "ec2", "CreateLaunchTemplateVersion")
    result = apply(plan(steps, failing), steps, failing)
    assert lost and "launch-template" in result.failed

    again = fresh(changed)
    converge(steps, again)
    ec2 = again.client("ec2")
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=lt_id)["LaunchTemplateVersions"]
    assert sorted(v["VersionNumber"] for v in versions) == [1, 2]
    assert ec2.describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"][0]["DefaultVersionNumber"] == 2
    (before,) = sent(failing, "CreateLaunchTemplateVersion")
    (after,) = sent(again, "CreateLaunchTemplateVersion")
    assert before["ClientToken"] == after["ClientToken"]
    assert not plan(steps, fresh(changed)).has_changes


def test_a_template_version_resent_by_botocore_is_one_version() -> None:
    steps, first = up(make_stack(), only(*COMPUTE))
    lt_id = first.outputs["launch-template"]["id"]
    ctx = fresh(make_stack(instances={"container_stop_timeout": 45}))
    resent = resend_after_first_success(ctx, "ec2", "CreateLaunchTemplateVersion")
    converge(steps, ctx)
    assert resent
    versions = ctx.client("ec2").describe_launch_template_versions(LaunchTemplateId=lt_id)["LaunchTemplateVersions"]
    assert len(versions) == 2 and ctx.outputs["launch-template"]["version"] == 2


def test_a_service_create_resent_by_botocore_returns_the_service_it_made() -> None:
    stack = make_stack()
    steps = steps_for(stack, only("service:api"))
    ctx = fresh(stack)
    resent = resend_after_first_success(ctx, "ecs", "CreateService")
    converge(steps, ctx)
    assert resent
    (req,) = sent(ctx, "CreateService")  # one call, two attempts
    assert len(req["clientToken"]) == 32
    ecs = ctx.client("ecs")
    arns = ecs.list_services(cluster=stack.cluster_name)["serviceArns"]
    assert len(arns) == 1 and ctx.outputs["service:api"]["arn"] == arns[0]


@pytest.mark.parametrize("change", [{}, {"image": "nginx:1.27"}])
def test_a_task_definition_resent_by_botocore_leaves_one_revision(change: dict[str, Any]) -> None:
    """RegisterTaskDefinition takes no token: the twin a resend registers is deregistered
    (found by the fault soak, seeds 107 and 249). With a change, the previous revision stays."""
    before = 0
    stack = make_stack(**WEB)
    steps = steps_for(stack, only("task-definition:api"))
    if change:
        converge(steps, fresh(stack))
        before = 1
        stack = make_stack(services={"api": {**WEB["services"]["api"], **change}})
        steps = steps_for(stack, only("task-definition:api"))
    ctx = fresh(stack)
    resent = resend_after_first_success(ctx, "ecs", "RegisterTaskDefinition")
    converge(steps, ctx)
    assert resent
    ecs = ctx.client("ecs")
    family = ctx.outputs["task-definition:api"]["family"]
    active = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    kept = ctx.outputs["task-definition:api"]["arn"]
    assert sorted(active) == sorted([*([f"{kept.rsplit(':', 1)[0]}:1"] if before else []), kept])
    assert len(active) == before + 1


def test_sandbox_refuses_a_second_create_of_a_service_without_its_token() -> None:
    """What ECS answers: a retried create with no (or another) token is not idempotent."""
    stack = make_stack()
    steps = steps_for(stack, only("service:api"))
    ctx = fresh(stack)
    converge(steps, ctx)
    (req,) = sent(ctx, "CreateService")
    ecs = ctx.client("ecs")
    again = {k: v for k, v in req.items() if k != "clientToken"}
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="not idempotent"):
        ecs.create_service(**again)
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="not idempotent"):
        ecs.create_service(**again, clientToken="another")
    assert ecs.create_service(**req)["service"]["serviceArn"] == ctx.outputs["service:api"]["arn"]


def test_sandbox_launch_template_token_with_other_parameters_is_a_mismatch() -> None:
    _, ctx = up(make_stack(), only(*COMPUTE))
    (req,) = sent(ctx, "CreateLaunchTemplate")
    ec2 = ctx.client("ec2")
    assert (
        ec2.create_launch_template(**req)["LaunchTemplate"]["LaunchTemplateId"] == ctx.outputs["launch-template"]["id"]
    )
    with pytest.raises(ec2.exceptions.ClientError, match="IdempotentParameterMismatch"):
        ec2.create_launch_template(**{**req, "VersionDescription": "other"})


def test_a_load_balancer_create_resent_by_botocore_is_one_load_balancer(compute: dict[str, Any]) -> None:
    """ELBv2 creates are idempotent by name and settings (sandbox/fills_elbv2.py): a resent
    CreateLoadBalancer answers with the load balancer it made, never a second one."""
    stack = make_stack(**WEB)
    steps = workload_steps(stack, compute, lambda s: s.key in {"load-balancer", "target-group:api"})
    ctx = fresh(stack)
    resent_lb = resend_after_first_success(ctx, "elbv2", "CreateLoadBalancer")
    resent_tg = resend_after_first_success(ctx, "elbv2", "CreateTargetGroup")
    converge(steps, ctx)
    assert resent_lb == [1] and resent_tg == [1]
    elbv2 = ctx.client("elbv2")
    lbs = [lb for lb in elbv2.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerName"] == "demo"]
    assert [lb["LoadBalancerArn"] for lb in lbs] == [ctx.outputs["load-balancer"]["arn"]]
    tgs = [tg for tg in elbv2.describe_target_groups()["TargetGroups"] if tg["TargetGroupName"] == "demo-api"]
    assert len(tgs) == 1


def test_sandbox_refuses_a_load_balancer_of_the_same_name_with_other_settings(compute: dict[str, Any]) -> None:
    stack = make_stack(**WEB)
    ctx = fresh(stack)
    converge(workload_steps(stack, compute, lambda s: s.key == "load-balancer"), ctx)
    (req,) = sent(ctx, "CreateLoadBalancer")
    elbv2 = ctx.client("elbv2")
    assert (
        elbv2.create_load_balancer(**req)["LoadBalancers"][0]["LoadBalancerArn"] == ctx.outputs["load-balancer"]["arn"]
    )
    with pytest.raises(elbv2.exceptions.DuplicateLoadBalancerNameException):
        elbv2.create_load_balancer(**{**req, "Scheme": "internal"})


def test_a_listener_create_resent_by_botocore_is_one_listener(compute: dict[str, Any]) -> None:
    """CreateListener is idempotent with the same settings (sandbox/fills_elbv2.py); another
    listener on a port in use is DuplicateListener, as AWS answers."""
    stack = make_stack(**WEB)
    steps = workload_steps(stack, compute, lambda s: s.key in {"load-balancer", "target-group:api", "listeners"})
    ctx = fresh(stack)
    resent = resend_after_first_success(ctx, "elbv2", "CreateListener")
    converge(steps, ctx)
    assert resent == [1]
    elbv2 = ctx.client("elbv2")
    listeners = elbv2.describe_listeners(LoadBalancerArn=ctx.outputs["load-balancer"]["arn"])["Listeners"]
    assert [li["Port"] for li in listeners] == [80]
    (req,) = sent(ctx, "CreateListener")
    with pytest.raises(elbv2.exceptions.DuplicateListenerException):
        elbv2.create_listener(
            **{**req, "DefaultActions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]}
        )
