"""steps/workload.py: the five cases (create, no-op, one field changed, delete, delete again) for
every workload step, as one table."""

from __future__ import annotations

from typing import Any

import pytest

from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from tests.helpers import (
    SCALED,
    StandIn,
    changes,
    converge,
    deep_merge,
    fresh,
    make_stack,
    replan,
    workload_steps,
)

LIFECYCLES = [
    # key, stack overrides, a one-field change, the action it plans, the field it names
    pytest.param(
        "load-balancer",
        {},
        {"load_balancer": {"idle_timeout": 120}},
        Action.UPDATE,
        "attributes.idle_timeout.timeout_seconds",
        id="load-balancer",
    ),
    pytest.param(
        "load-balancer", {}, {"load_balancer": {"internal": True}}, Action.REPLACE, "scheme", id="load-balancer-scheme"
    ),
    pytest.param(
        "access-log-bucket",
        {"load_balancer": {"access_logs": {}}},
        {"load_balancer": {"access_logs": {"expire_days": 7}}},
        Action.UPDATE,
        "expire_days",
        id="access-log-bucket",
    ),
    pytest.param(
        "target-group:api",
        {},
        {"services": {"api": {"health_check": {"path": "/health"}}}},
        Action.UPDATE,
        "health_check.path",
        id="target-group",
    ),
    pytest.param(
        "listeners",
        {"services": {"admin": {"image": "a", "container_port": 80, "routing": {"paths": ["/admin/*"]}}}},
        {"services": {"admin": {"routing": {"paths": ["/admin/*", "/staff/*"]}}}},
        Action.UPDATE,
        "http.rules",
        id="listeners",
    ),
    pytest.param(
        "task-definition:api",
        {},
        {"services": {"api": {"image": "bitnami/node-example:0.0.2"}}},
        Action.NEW_VERSION,
        "container.image",
        id="task-definition",
    ),
    pytest.param(
        "service:api",
        {},
        {"services": {"api": {"deployment": {"min_healthy_percent": 75}}}},
        Action.UPDATE,
        "deployment.minimumHealthyPercent",
        id="service",
    ),
    pytest.param(
        "scaling:api", SCALED, {"services": {"api": {"scaling": {"max": 6}}}}, Action.UPDATE, "max", id="scaling"
    ),
]


@pytest.mark.parametrize(("key", "base", "change", "action", "field"), LIFECYCLES)
def test_step_lifecycle(
    compute: dict[str, StandIn], key: str, base: dict[str, Any], change: dict[str, Any], action: Action, field: str
) -> None:
    stack = make_stack(**base)
    steps = workload_steps(stack, compute, lambda s: s.key == key)
    ctx = fresh(stack)

    first, _ = converge(steps, ctx)  # absent -> create, applied
    assert first.get(key).action is Action.CREATE
    assert changes(replan(steps, stack)) == {}  # again -> no-op

    changed = make_stack(**deep_merge(base, change))
    steps = workload_steps(changed, compute, lambda s: s.key == key)
    p = replan(steps, changed)  # one field -> its action
    assert p.get(key).action is action
    assert field in [d.path for d in p.get(key).diffs]
    converge(steps, fresh(changed))
    assert changes(replan(steps, changed)) == {}

    gone, _ = converge(steps, fresh(changed), destroy=True)  # delete ...
    assert gone.get(key).action is Action.DELETE
    assert next(s for s in steps if s.key == key).read(fresh(changed)) is None
    again = plan(steps, fresh(changed), destroy=True)  # ... and again: nothing to do
    assert all(c.action is not Action.DELETE for c in again.changes)
