"""steps/base.py: the run context steps share across worker threads."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotecs.engine.model import Unknown
from spotecs.errors import WaitTimeout
from spotecs.steps.base import retry_iam_propagation
from tests.helpers import (
    make_ctx,
)


def test_facts_are_computed_once_and_one_slow_fact_holds_up_no_other() -> None:
    ctx = make_ctx()
    barrier = threading.Barrier(2)
    computed: list[str] = []

    def slow(name: str) -> str:
        computed.append(name)
        barrier.wait(timeout=10)  # BrokenBarrierError unless both facts are computed at once
        return f"value of {name}"

    got: dict[str, str] = {}
    workers = [
        threading.Thread(target=lambda n=n: got.update({n: ctx.for_step(n).fact(n, lambda: slow(n))}))
        for n in ("a", "b")
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert got == {"a": "value of a", "b": "value of b"}
    assert ctx.fact("a", lambda: slow("again")) == "value of a"
    assert sorted(computed) == ["a", "b"]


def test_outputs_set_through_one_view_are_seen_by_every_view() -> None:
    ctx = make_ctx()
    assert isinstance(ctx.for_step("b").output("a", "id"), Unknown)
    ctx.for_step("a").set_output("a", {"id": "i-1"})
    assert ctx.for_step("b").output("a", "id") == "i-1"
    assert isinstance(ctx.output("a", "arn"), Unknown)


def test_a_wait_that_runs_out_says_what_where_it_stands_and_what_to_do() -> None:
    ctx = make_ctx()
    budgets: list[float] = []

    def attempt(budget: float) -> None:
        budgets.append(budget)
        raise WaitTimeout("delete security group demo-lb (DependencyViolation)", budget)

    with pytest.raises(WaitTimeout) as info:
        ctx.until(
            "security group demo-lb to be free",
            attempt,
            status=lambda: "still used by network interface eni-1",
            hint=lambda: "Run the same command again.",
            budget=42,
        )
    assert budgets == [42]
    assert str(info.value) == (
        "Timed out after 42s waiting for security group demo-lb to be free "
        "(still used by network interface eni-1). Run the same command again."
    )


def test_a_wait_within_its_budget_returns_what_the_attempt_returns() -> None:
    ctx = make_ctx()
    assert ctx.until("x", lambda budget: budget * 2, hint="h") == 2 * ctx.timeouts.default


def _iam_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateAutoScalingGroup")


def test_a_just_created_instance_profile_is_retried() -> None:
    ctx = make_ctx()
    answers: list[Any] = [
        _iam_error(
            "ValidationError",
            "You must use a valid fully-formed launch template. Value (arn) for "
            "parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN",
        ),
        _iam_error("InvalidParameterValue", "Invalid IamInstanceProfile: demo"),
        {"ok": True},
    ]

    def fake(**kw: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry_iam_propagation(ctx, "create auto scaling group demo", fake, Name="x") == {"ok": True}
    assert answers == []


def test_other_validation_errors_are_not_retried() -> None:
    from spotecs.errors import AwsError

    calls = []

    def fake(**kw: Any) -> Any:
        calls.append(kw)
        raise _iam_error("ValidationError", "Max bound, 1, must be greater than or equal to min bound, 2")

    with pytest.raises(AwsError, match="Failed to create auto scaling group demo: Max bound"):
        retry_iam_propagation(make_ctx(), "create auto scaling group demo", fake)
    assert len(calls) == 1


def test_iam_retry_is_bounded() -> None:
    def never_ready(**kw: Any) -> Any:
        raise _iam_error("ValidationError", "Invalid IAM Instance Profile name")

    ctx = make_ctx()
    ctx.timeouts.default = 0
    with pytest.raises(WaitTimeout, match="create launch template demo-instances") as info:
        retry_iam_propagation(ctx, "create launch template demo-instances", never_ready)
    # AWS's own code, not one made up for the retry
    assert "Invalid IAM Instance Profile name (ValidationError)" in str(info.value)


def test_the_stack_s_tagging_read_asks_aws_s_most_resources_a_page(moto: None) -> None:
    """Every task definition revision counts towards the tagging read's pages: 120 of them take
    2 pages of 100, not the 3 of moto's (and AWS's undocumented) default."""
    from spotecs import aws
    from spotecs.steps.base import RESOURCES_PER_PAGE, stack_tagged

    ctx = make_ctx()
    ecs = ctx.aws.client("ecs")
    tags = aws.tag_list(ctx.tags(), "key", "value")
    for family in ("web", "worker", "cron"):
        for _ in range(40):
            ecs.register_task_definition(
                family=f"{ctx.name}-{family}",
                containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
                tags=tags,
            )
    ctx.aws.calls.clear()

    found = stack_tagged(ctx)

    assert len([arn for arn in found if ":task-definition/" in arn]) == 120
    reads = [c for c in ctx.aws.calls if c.operation == "GetResources"]
    assert len(reads) == 2
    assert {c.params.get("ResourcesPerPage") for c in reads} == {RESOURCES_PER_PAGE}
