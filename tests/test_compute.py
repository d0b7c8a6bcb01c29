"""steps/compute.py: the compute layer as a whole (AMI, launch template, group, cluster, provider)."""

from __future__ import annotations

import pytest

from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from tests.helpers import (
    COMPUTE,
    cluster,
    compute_steps,
    converge,
    fresh,
    group,
    make_ctx,
    make_stack,
    only,
    up,
    writes,
)

pytestmark = pytest.mark.usefixtures("moto")


def test_layer_plans_every_resource_as_a_create() -> None:
    the_plan = plan(compute_steps(make_stack()), make_ctx(make_stack()))
    actions = {c.key: c.action for c in the_plan.changes}
    for key in ("cluster", "launch-template", "auto-scaling-group", "capacity-provider"):
        assert actions[key] is Action.CREATE
    # data steps are facts, not changes
    assert "ami" not in actions and "instance-types" not in actions


def test_outputs_and_a_rerun_that_is_a_noop_and_writes_nothing() -> None:
    stack = make_stack()
    steps, first = up(stack, only(*COMPUTE))
    for key, outputs in (
        ("cluster", {"name", "arn"}),
        ("launch-template", {"id", "name"}),
        ("auto-scaling-group", {"name", "arn"}),
        ("capacity-provider", {"name", "arn"}),
    ):
        assert set(first.outputs[key]) >= outputs  # outputs of create
    ctx = fresh(stack)
    the_plan, _ = converge(steps, ctx)
    assert [c.key for c in the_plan.changes if c.is_change] == []
    assert writes(ctx) == []
    # the workload layer's inputs are there on a no-op run too (read from AWS)
    out = ctx.outputs
    assert out["cluster"]["name"] == "demo" and out["cluster"]["arn"].endswith(":cluster/demo")
    assert out["launch-template"]["name"] == "demo-instances" and out["launch-template"]["id"].startswith("lt-")
    assert out["auto-scaling-group"]["name"] == "demo-instances"
    assert out["capacity-provider"]["name"].startswith("demo-instances-")


def test_teardown_deletes_everything_again_is_a_noop_and_up_gets_a_fresh_provider_name() -> None:
    stack = make_stack()
    steps, ctx = up(stack, only(*COMPUTE))
    the_plan, _ = converge(steps, fresh(stack), destroy=True)
    assert {c.key for c in the_plan.changes if c.action is Action.DELETE} >= COMPUTE - {"ami", "instance-types"}
    assert group(ctx) is None
    assert cluster(ctx)["status"] == "INACTIVE"
    again = fresh(stack)
    the_plan, _ = converge(steps, again, destroy=True)
    assert not the_plan.has_changes
    assert writes(again) == []
    # up again soon after: ECS still holds the old provider's name, so the new one needs another
    second = fresh(stack)
    converge(steps, second)
    assert second.outputs["capacity-provider"]["name"] != ctx.outputs["capacity-provider"]["name"]
