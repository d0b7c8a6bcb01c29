"""steps/base.py: the run context steps share across worker threads."""

from __future__ import annotations

import threading

from spotecs.engine.model import Unknown
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
