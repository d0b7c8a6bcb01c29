"""steps/service.py: the ECS service request, updates, the wait for a healthy deployment, deletion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from spotecs.config import Stack
from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from spotecs.errors import AwsError, WaitTimeout
from spotecs.steps import workload
from spotecs.steps.base import Context, Timeouts
from spotecs.steps.service import delete_service, wait_until_healthy
from tests.helpers import (
    ACCOUNT,
    CLUSTER,
    MINIMAL,
    PROVIDER,
    REGION,
    StandIn,
    changes,
    converge,
    fresh,
    make_ctx,
    make_stack,
    patch_client,
    replan,
    sent,
    short_waits,
    step,
    target_group_arn,
    up,
    with_status,
    workload_steps,
)


def test_create_service_sends_what_moto_drops(compute: dict[str, StandIn]) -> None:
    """moto's create_service drops the capacity provider strategy, placement, deployment settings and
    grace period (moto-gaps.md): assert on the request spotecs sent."""
    stack = make_stack()
    ctx = fresh(stack)
    converge(workload_steps(stack, compute, lambda s: s.key == "service:api"), ctx)
    (create,) = sent(ctx, "CreateService")
    assert create["cluster"] == CLUSTER and create["serviceName"] == "demo-api"
    assert create["taskDefinition"].endswith("task-definition/demo-api:1")
    assert create["desiredCount"] == 2
    assert create["capacityProviderStrategy"] == [{"capacityProvider": PROVIDER, "weight": 1, "base": 0}]
    assert "launchType" not in create
    assert create["deploymentConfiguration"] == {
        "minimumHealthyPercent": 50,
        "maximumPercent": 200,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }
    assert create["deploymentController"] == {"type": "ECS"}
    assert create["placementStrategy"] == [
        {"type": "binpack", "field": "cpu"},
        {"type": "spread", "field": "attribute:ecs.availability-zone"},
    ]
    assert create["loadBalancers"] == [
        {"targetGroupArn": target_group_arn("demo-api"), "containerName": "api", "containerPort": 3000}
    ]
    assert create["healthCheckGracePeriodSeconds"] == 60
    assert (create["enableECSManagedTags"], create["propagateTags"]) == (True, "SERVICE")
    assert {t["key"]: t["value"] for t in create["tags"]}["spotecs:stack"] == "demo"


def test_a_worker_service_has_no_load_balancer(compute: dict[str, StandIn]) -> None:
    stack = Stack.model_validate({**MINIMAL, "services": {"jobs": {"image": "worker:1", "command": ["run"]}}})
    keys = [s.key for s in workload.steps(stack, REGION)]
    assert keys == ["task-definition:jobs", "service:jobs"]
    steps = workload_steps(stack, compute)
    ctx = fresh(stack)
    converge(steps, ctx)
    (create,) = sent(ctx, "CreateService")
    assert "loadBalancers" not in create and "healthCheckGracePeriodSeconds" not in create
    (td,) = sent(ctx, "RegisterTaskDefinition")
    assert "portMappings" not in td["containerDefinitions"][0]
    assert changes(replan(steps, stack)) == {}


def test_a_web_service_turned_worker_settles_after_one_update(compute: dict[str, StandIn]) -> None:
    web = make_stack()
    converge(workload_steps(web, compute, lambda s: s.key == "service:api"), fresh(web))
    worker = Stack.model_validate({**MINIMAL, "services": {"api": {"image": "worker:1"}}})
    steps = workload_steps(worker, compute, lambda s: s.key == "service:api")
    ctx = fresh(worker)
    converge(steps, ctx)
    (update,) = sent(ctx, "UpdateService")
    assert update["loadBalancers"] == []
    # The grace period only applies behind a load balancer: it must not keep the plan dirty.
    assert changes(replan(steps, worker)) == {}


def test_a_new_capacity_provider_strategy_forces_a_new_deployment(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    converge(workload_steps(stack, compute, lambda s: s.key == "service:api"), fresh(stack))
    moved = {**compute, "capacity-provider": StandIn("capacity-provider", {"name": f"{PROVIDER}-2"})}
    steps = workload_steps(stack, moved, lambda s: s.key == "service:api")
    p = replan(steps, stack)
    assert [d.path for d in p.get("service:api").diffs] == ["capacity_provider_strategy"]
    ctx = fresh(stack)
    converge(steps, ctx)
    (update,) = sent(ctx, "UpdateService")
    assert update["forceNewDeployment"] is True
    assert update["capacityProviderStrategy"] == [{"capacityProvider": f"{PROVIDER}-2", "weight": 1, "base": 0}]


def test_service_tag_edit_converges_with_tag_calls_only_and_no_deployment(compute: dict[str, StandIn]) -> None:
    tagged = make_stack(tags={"team": "payments", "cost-center": "cc-17"})
    converge(workload_steps(tagged, compute, lambda s: s.key == "service:api"), fresh(tagged))
    ecs = boto3.client("ecs", region_name=REGION)
    arn = ecs.describe_services(cluster=CLUSTER, services=["demo-api"])["services"][0]["serviceArn"]
    edited = make_stack(tags={"team": "billing", "owner": "ops"})
    steps = workload_steps(edited, compute, lambda s: s.key == "service:api")
    ch = replan(steps, edited).get("service:api")
    assert ch.action is Action.UPDATE and ch.changed_fields() == {"tags"}
    ctx = fresh(edited)
    converge(steps, ctx)
    assert not sent(ctx, "UpdateService") and not sent(ctx, "CreateService")
    (tag,) = [r for r in sent(ctx, "TagResource") if r["resourceArn"] == arn]
    assert {t["key"]: t["value"] for t in tag["tags"]} == {"team": "billing", "owner": "ops"}
    (untag,) = [r for r in sent(ctx, "UntagResource") if r["resourceArn"] == arn]
    assert untag["tagKeys"] == ["cost-center"]
    held = {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert held["team"] == "billing" and held["owner"] == "ops" and "cost-center" not in held
    assert held["spotecs:stack"] == "demo"
    assert not replan(steps, edited).get("service:api").is_change


def test_with_scaling_the_desired_count_is_set_only_at_creation(compute: dict[str, StandIn]) -> None:
    # (A desired count above scaling.max is refused by the stack file check; below min, a warning.)
    stack = make_stack(services={"api": {"desired_count": 1, "scaling": {"min": 3, "max": 4}}})
    steps = workload_steps(stack, compute, lambda s: s.key == "service:api")
    ctx = fresh(stack)
    converge(steps, ctx)
    assert sent(ctx, "CreateService")[0]["desiredCount"] == 3  # within the scaling bounds
    # Auto scaling moves the count; spotecs leaves it alone, even when updating other fields.
    boto3.client("ecs", region_name=REGION).update_service(cluster=CLUSTER, service="demo-api", desiredCount=3)
    assert changes(replan(steps, stack)) == {}
    slower = make_stack(
        services={"api": {"desired_count": 1, "scaling": {"min": 3, "max": 4}, "health_check_grace_period": 90}}
    )
    ctx = fresh(slower)
    converge(workload_steps(slower, compute, lambda s: s.key == "service:api"), ctx)
    assert "desiredCount" not in sent(ctx, "UpdateService")[0]


def test_service_teardown_scales_to_zero_deletes_with_force_and_waits(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    steps = workload_steps(stack, compute, lambda s: s.key == "service:api")
    converge(steps, fresh(stack))
    ctx = fresh(stack)
    converge(steps, ctx, destroy=True)
    ops = [(c.operation, c.params) for c in ctx.aws.calls if c.operation in ("UpdateService", "DeleteService")]
    assert ops == [
        ("UpdateService", {"cluster": CLUSTER, "service": "demo-api", "desiredCount": 0}),
        ("DeleteService", {"cluster": CLUSTER, "service": "demo-api", "force": True}),
    ]
    # The wait for INACTIVE looked after the delete.
    after = [c.operation for c in ctx.aws.calls][[c.operation for c in ctx.aws.calls].index("DeleteService") :]
    assert "DescribeServices" in after
    svc = boto3.client("ecs", region_name=REGION).describe_services(cluster=CLUSTER, services=["demo-api"])
    assert svc["services"][0]["status"] == "INACTIVE"  # still listed by ECS, but gone for spotecs
    assert "service:api" not in changes(plan(steps, fresh(stack), destroy=True))


TD1 = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/demo-api:1"

TD2 = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/demo-api:2"

TG = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/demo-api/0123456789abcdef"


def _service(deployments: list[dict[str, Any]], desired: int = 2, events: int = 0) -> dict[str, Any]:
    return {
        "services": [
            {
                "serviceName": "demo-api",
                "status": "ACTIVE",
                "desiredCount": desired,
                "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
                "deployments": [{"id": f"ecs-svc/{i}", **d} for i, d in enumerate(deployments)],
                "events": [{"id": str(i), "message": f"(service demo-api) event {i}"} for i in range(events)],
            }
        ],
        "failures": [],
    }


def _health(states: list[str]) -> dict[str, Any]:
    return {
        "TargetHealthDescriptions": [
            {"Target": {"Id": f"i-{i}", "Port": 32768 + i}, "TargetHealth": {"State": s}} for i, s in enumerate(states)
        ]
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Context, Stubber, Stubber, list[str]]]:
    """A context whose ECS and ELB calls answer from a script (no moto): ECS deployment states
    that moto never reaches."""
    ctx = make_ctx(make_stack())
    statuses: list[str] = []
    ctx.on_status = lambda key, status: statuses.append(status)
    with Stubber(ctx.client("ecs")) as ecs, Stubber(ctx.client("elbv2")) as elbv2:
        yield ctx, ecs, elbv2, statuses
        ecs.assert_no_pending_responses()
        elbv2.assert_no_pending_responses()


def test_wait_ends_when_the_deployment_completes_and_targets_are_healthy(stubbed: Any) -> None:
    ctx, ecs, elbv2, statuses = stubbed
    ecs.add_response(
        "describe_services",
        _service(
            [
                {"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "IN_PROGRESS", "runningCount": 1},
                {"status": "ACTIVE", "taskDefinition": TD1, "rolloutState": "COMPLETED", "runningCount": 1},
            ]
        ),
        {"cluster": CLUSTER, "services": ["demo-api"], "include": ["TAGS"]},
    )
    elbv2.add_response("describe_target_health", _health(["healthy", "initial", "healthy"]), {"TargetGroupArn": TG})
    ecs.add_response(
        "describe_services",
        _service([{"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "COMPLETED", "runningCount": 2}]),
    )
    elbv2.add_response("describe_target_health", _health(["healthy", "healthy", "draining"]))

    wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)
    assert statuses == ["running 1/2, targets healthy 2/2", "running 2/2, targets healthy 2/2"]


def test_wait_for_a_worker_counts_tasks_only(stubbed: Any) -> None:
    ctx, ecs, _, statuses = stubbed
    ecs.add_response(
        "describe_services",
        _service(
            [{"status": "PRIMARY", "taskDefinition": TD1, "rolloutState": "COMPLETED", "runningCount": 3}], desired=3
        ),
    )
    wait_until_healthy(ctx, CLUSTER, "demo-api", TD1, None)
    assert statuses == ["running 3/3"]


def test_a_failed_deployment_ends_the_wait_with_the_reason_and_last_events(stubbed: Any) -> None:
    ctx, ecs, _, _ = stubbed
    ecs.add_response(
        "describe_services",
        _service(
            [
                {"status": "PRIMARY", "taskDefinition": TD1, "rolloutState": "IN_PROGRESS", "runningCount": 1},
                {
                    "status": "ACTIVE",
                    "taskDefinition": TD2,
                    "rolloutState": "FAILED",
                    "runningCount": 0,
                    "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
                },
            ],
            events=7,
        ),
    )
    with pytest.raises(AwsError) as e:
        wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)
    message = str(e.value)
    assert message.startswith(
        "Failed to deploy ECS service demo-api: deployment failed: "
        "ECS deployment circuit breaker: tasks failed to start."
    )
    assert [f"event {i}" in message for i in range(7)] == [True] * 5 + [False] * 2  # the newest five


def test_a_rollback_is_a_failure_too(stubbed: Any) -> None:
    ctx, ecs, elbv2, _ = stubbed
    ecs.add_response(
        "describe_services",
        _service([{"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "IN_PROGRESS", "runningCount": 0}]),
    )
    elbv2.add_response("describe_target_health", _health([]))
    ecs.add_response(
        "describe_services",
        _service([{"status": "PRIMARY", "taskDefinition": TD1, "rolloutState": "IN_PROGRESS", "runningCount": 2}]),
    )
    with pytest.raises(AwsError, match="ECS rolled back to demo-api:1"):
        wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)


def test_ours_listed_but_not_primary_is_a_rollback_at_the_first_poll(stubbed: Any) -> None:
    ctx, ecs, _, _ = stubbed
    ecs.add_response(
        "describe_services",
        _service(
            [
                {"status": "PRIMARY", "taskDefinition": TD1, "rolloutState": "IN_PROGRESS", "runningCount": 2},
                {"status": "ACTIVE", "taskDefinition": TD2, "rolloutState": "IN_PROGRESS", "runningCount": 0},
            ]
        ),
    )
    with pytest.raises(AwsError, match="ECS rolled back to demo-api:1"):
        wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)


def test_right_after_an_update_the_previous_primary_is_not_a_rollback(stubbed: Any) -> None:
    ctx, ecs, elbv2, statuses = stubbed
    previous = {"status": "PRIMARY", "taskDefinition": TD1, "rolloutState": "COMPLETED", "runningCount": 2}
    ecs.add_response("describe_services", _service([previous]))  # ECS has not started ours yet
    ecs.add_response(
        "describe_services",
        _service([{"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "COMPLETED", "runningCount": 2}]),
    )
    elbv2.add_response("describe_target_health", _health(["healthy", "healthy"]))
    wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)
    assert statuses == ["deployment starting", "running 2/2, targets healthy 2/2"]


def test_a_service_not_visible_yet_is_waited_for_not_called_deleted(stubbed: Any) -> None:
    ctx, ecs, elbv2, statuses = stubbed
    ecs.add_response("describe_services", {"services": [], "failures": [{"reason": "MISSING"}]})
    ecs.add_response(
        "describe_services",
        _service([{"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "COMPLETED", "runningCount": 2}]),
    )
    elbv2.add_response("describe_target_health", _health(["healthy", "healthy"]))
    wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)
    assert statuses == ["not visible yet", "running 2/2, targets healthy 2/2"]
    # Once seen, a service that goes away was deleted: that is a failure, not a wait.
    ecs.add_response(
        "describe_services",
        _service([{"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "IN_PROGRESS", "runningCount": 0}]),
    )
    elbv2.add_response("describe_target_health", _health([]))
    ecs.add_response("describe_services", {"services": [], "failures": [{"reason": "MISSING"}]})
    with pytest.raises(AwsError, match="the service was deleted while deploying"):
        wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)


def test_a_timeout_names_the_counts_and_the_last_events(stubbed: Any) -> None:
    ctx, ecs, elbv2, _ = stubbed
    ctx.timeouts = Timeouts(default=0, delay=0)
    stuck = [{"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "IN_PROGRESS", "runningCount": 0}]
    ecs.add_response("describe_services", _service(stuck))
    elbv2.add_response("describe_target_health", _health([]))
    ecs.add_response("describe_services", _service(stuck, events=2))
    with pytest.raises(WaitTimeout) as e:
        wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)
    message = str(e.value)
    assert "waiting for ECS service demo-api to become healthy (running 0/2, targets healthy 0/2)" in message
    assert "event 0" in message and "event 1" in message


def test_up_waits_for_the_service_unless_told_not_to(compute: dict[str, StandIn]) -> None:
    """On plain moto a service never starts its tasks: a waiting `up` times out, naming the counts."""
    from spotecs.engine.apply import apply

    stack = make_stack()
    steps = workload_steps(stack, compute, lambda s: s.key == "service:api")
    ctx = make_ctx(stack)
    ctx.timeouts = Timeouts(default=0, delay=0)
    result = apply(plan(steps, ctx), steps, ctx)
    assert list(result.failed) == ["service:api"]
    assert "running 0/2, targets healthy 0/2" in str(result.failed["service:api"])
    assert sent(ctx, "CreateService")  # created, then waited: the next `up` goes on

    ctx = fresh(stack)
    assert apply(plan(steps, ctx), steps, ctx).ok


def test_service_scales_to_zero_deletes_with_force_and_waits_until_inactive(moto: None) -> None:
    stack = make_stack()
    steps, ctx = up(stack, lambda s: s.key == "service:api")
    svc = step(steps, "service:api")
    current = svc.read(ctx)
    assert current is not None
    svc.delete(ctx, current)
    assert [c.operation for c in ctx.aws.calls if c.is_write][-2:] == ["UpdateService", "DeleteService"]
    assert sent(ctx, "UpdateService")[-1]["desiredCount"] == 0
    assert sent(ctx, "DeleteService")[-1]["force"] is True
    assert ctx.aws.calls[-1].operation == "DescribeServices"  # the wait saw it INACTIVE
    assert svc.read(ctx) is None
    n = len(ctx.aws.writes())
    svc.delete(ctx, current)  # twice: nothing to do
    assert len(ctx.aws.writes()) == n


def test_a_draining_service_counts_as_gone_and_is_only_waited_for(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    steps, _ = up(stack, lambda s: s.key == "service:api")
    again = fresh(stack)
    answers = iter(["DRAINING", "DRAINING", "DRAINING", "INACTIVE"])
    patch_client(
        monkeypatch,
        again,
        "ecs",
        "describe_services",
        lambda real, **kw: with_status(next(answers, "INACTIVE"))(real, **kw),
    )
    assert step(steps, "service:api").read(again) is None  # planned as gone: not deleted again
    delete_service(again, "demo", "demo-api")
    assert again.aws.writes() == []
    assert next(answers, "done") == "done"  # it polled until ECS said INACTIVE


def test_service_wait_is_bounded_and_says_what_is_left(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    _, ctx = up(stack, lambda s: s.key == "service:api")
    patch_client(monkeypatch, ctx, "ecs", "describe_services", with_status("DRAINING", running=2))
    short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        delete_service(ctx, "demo", "demo-api")
    assert str(e.value) == (
        "Timed out after 1s waiting for ECS service demo-api to be deleted (draining, 2 task(s) still running). "
        "ECS is still stopping its tasks (each gets its stop timeout and the target group's deregistration "
        "delay). Run the same command again to keep waiting, or stop the tasks in the ECS console."
    )
