"""steps/log_group.py: a log group per service with its retention."""

from __future__ import annotations

from typing import Any

import pytest

from spotecs.config import Stack
from spotecs.engine.model import Action
from spotecs.engine.plan import NOT_OWNED, plan
from spotecs.steps import base
from spotecs.steps.base import Step
from tests.helpers import (
    converge,
    make_ctx,
    make_stack,
    replan,
    sent,
    steps_for,
)

TAGS = {"spotecs:stack": "demo", "spotecs:managed": "true"}


def _log_group(logs: Any, name: str) -> dict[str, Any] | None:
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return next((g for g in groups if g["logGroupName"] == name), None)


def _lg_steps(stack: Stack) -> list[Step]:
    return steps_for(stack, lambda s: s.key.startswith("log-group:"))


def test_log_group_absent_plan_create(moto: None) -> None:
    stack = make_stack(services={"worker": {"image": "busybox"}})
    p = plan(_lg_steps(stack), make_ctx(stack))
    assert {c.key: (c.action, c.name, c.desired) for c in p.changes} == {
        "log-group:api": (Action.CREATE, "/ecs/demo/api", {"retention_days": 30, "tags": TAGS}),
        "log-group:worker": (Action.CREATE, "/ecs/demo/worker", {"retention_days": 30, "tags": TAGS}),
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
    assert ctx.aws.writes() == []


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
    assert [c.operation for c in ctx.aws.writes()] == [operation]
    g = _log_group(logs, "/ecs/demo/api")
    assert g is not None and g.get("retentionInDays") == retention
    assert not replan(_lg_steps(changed), changed).has_changes


def test_log_group_tag_edit_converges_with_tag_calls_only(moto: None, logs: Any) -> None:
    tagged = make_stack(tags={"team": "payments", "cost-center": "cc-17"})
    converge(_lg_steps(tagged), make_ctx(tagged))
    edited = make_stack(tags={"team": "billing", "owner": "ops"})
    ch = replan(_lg_steps(edited), edited).get("log-group:api")
    assert ch.action is Action.UPDATE and ch.changed_fields() == {"tags"}
    ctx = make_ctx(edited)
    converge(_lg_steps(edited), ctx)
    assert [c.operation for c in ctx.aws.writes()] == ["TagResource", "UntagResource"]  # no PutRetentionPolicy
    (tag,) = sent(ctx, "TagResource")
    assert tag["tags"] == {"team": "billing", "owner": "ops"}
    (untag,) = sent(ctx, "UntagResource")
    assert untag["tagKeys"] == ["cost-center"]
    arn = ctx.outputs["log-group:api"]["arn"]
    assert tag["resourceArn"] == untag["resourceArn"] == arn and not arn.endswith(":*")
    held = logs.list_tags_for_resource(resourceArn=arn)["tags"]
    assert held == {**TAGS, "team": "billing", "owner": "ops"}
    assert not replan(_lg_steps(edited), edited).has_changes


def test_log_group_created_without_retention(moto: None, logs: Any) -> None:
    stack = make_stack(services={"api": {"log_retention_days": None}})
    ctx = make_ctx(stack)
    converge(_lg_steps(stack), ctx)
    g = _log_group(logs, "/ecs/demo/api")
    assert g is not None and "retentionInDays" not in g
    assert not any(c.operation == "PutRetentionPolicy" for c in ctx.aws.writes())
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
    assert ctx.aws.writes() == []
    destroy_ctx = make_ctx(stack)
    converge(_lg_steps(stack), destroy_ctx, destroy=True)
    assert destroy_ctx.aws.writes() == []
    assert _log_group(logs, "/ecs/demo/api") is not None


def test_log_group_not_listed_yet_right_after_its_create_is_waited_for(
    moto: None, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    ctx = make_ctx(stack)
    real = ctx.paginate
    unlisted: list[str] = []

    def paginate(intent: str, service: str, operation: str, key: str, **kw: Any) -> list[Any]:
        if operation == "describe_log_groups" and _log_group(logs, "/ecs/demo/api") and not unlisted:
            unlisted.append(intent)  # created a moment ago: this describe does not list it yet
            return []
        return real(intent, service, operation, key, **kw)

    monkeypatch.setattr(ctx, "paginate", paginate)
    converge(_lg_steps(stack), ctx)
    assert unlisted and ctx.outputs["log-group:api"]["arn"].endswith(":log-group:/ecs/demo/api")


def test_ownership_comes_from_the_stack_s_tagging_read_and_a_group_missing_there_is_asked(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    converge(_lg_steps(stack), make_ctx(stack))
    (group,) = _lg_steps(stack)
    ctx = make_ctx(stack)
    with ctx.aws.reading():
        current = group.read(ctx)
    assert current is not None and current["_owned"] and current["retention_days"] == 30
    assert sent(ctx, "ListTagsLogGroup") == [] and len(sent(ctx, "GetResources")) == 1

    # The tagging API has not indexed the group yet: asked directly, still the stack's.
    monkeypatch.setattr(base, "stack_tagged", lambda ctx: {})
    ctx = make_ctx(stack)
    with ctx.aws.reading():
        current = group.read(ctx)
    assert current is not None and current["_owned"]
    assert sent(ctx, "ListTagsLogGroup") == [{"logGroupName": "/ecs/demo/api"}]


def test_a_group_of_the_stack_s_name_but_another_stack_s_tags_is_not_owned(moto: None, logs: Any) -> None:
    logs.create_log_group(logGroupName="/ecs/demo/api", tags={"spotecs:stack": "demo-api", "spotecs:managed": "true"})
    stack = make_stack()
    ctx = make_ctx(stack)
    with ctx.aws.reading():
        current = _lg_steps(stack)[0].read(ctx)
    assert current is not None and current["_owned"] is False
