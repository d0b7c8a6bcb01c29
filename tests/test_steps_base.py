"""steps/base.py: the run context steps share across worker threads."""

from __future__ import annotations

import threading

import pytest

from spotecs.engine.model import Unknown
from spotecs.errors import WaitTimeout
from tests.conftest import make_ctx


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
