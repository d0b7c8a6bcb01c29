"""steps/listeners.py: listeners and rules, HTTP and HTTPS with the redirect."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from tests.helpers import (
    REGION,
    StandIn,
    changes,
    converge,
    deep_merge,
    fresh,
    issued_certificate,
    make_stack,
    replan,
    sent,
    target_group_arn,
    workload_steps,
    writes,
)
from tests.tag_edits import AFTER, BEFORE, holds_the_edit, planned_as_tags_only

ROUTED: dict[str, Any] = {
    "services": {
        "api": {"image": "a", "container_port": 3000},
        "admin": {"image": "b", "container_port": 8080, "routing": {"paths": ["/admin/*"]}},
        "docs": {
            "image": "c",
            "container_port": 80,
            "routing": {"hosts": ["docs.example.com"], "paths": ["/v1/*"], "priority": 5},
        },
    }
}


def _listeners(lb: str = "demo") -> dict[int, dict[str, Any]]:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    arn = elbv2.describe_load_balancers(Names=[lb])["LoadBalancers"][0]["LoadBalancerArn"]
    out = {}
    for listener in elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
        rules = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
        listener["rules"] = {r["Priority"]: r for r in rules}
        out[listener["Port"]] = listener
    return out


def test_listener_routes_by_path_and_host_with_the_first_service_as_default(compute: dict[str, StandIn]) -> None:
    stack = make_stack(**ROUTED)
    steps = workload_steps(stack, compute, lambda s: s.key == "listeners")
    converge(steps, fresh(stack))

    listeners = _listeners()
    assert list(listeners) == [80]
    http = listeners[80]
    assert http["Protocol"] == "HTTP"
    assert http["DefaultActions"][0]["TargetGroupArn"] == target_group_arn("demo-api")
    rules = http["rules"]
    assert sorted(rules) == ["20", "5", "default"]
    admin, docs = rules["20"], rules["5"]  # admin by its place in the file (2nd), docs by its own priority
    assert admin["Conditions"] == [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/admin/*"]}}]
    assert admin["Actions"][0]["TargetGroupArn"] == target_group_arn("demo-admin")
    assert {c["Field"]: c for c in docs["Conditions"]}["host-header"]["HostHeaderConfig"]["Values"] == [
        "docs.example.com"
    ]
    assert {c["Field"]: c for c in docs["Conditions"]}["path-pattern"]["PathPatternConfig"]["Values"] == ["/v1/*"]
    assert docs["Actions"][0]["TargetGroupArn"] == target_group_arn("demo-docs")

    # A route removed from the file is removed from the listener; the others stay untouched.
    fewer = make_stack(**deep_merge(ROUTED, {"services": {"docs": {"routing": {"hosts": []}}}}))
    ctx = fresh(fewer)
    converge(workload_steps(fewer, compute, lambda s: s.key == "listeners"), ctx)
    assert [c["Field"] for c in _listeners()[80]["rules"]["5"]["Conditions"]] == ["path-pattern"]
    assert [w["RuleArn"] for w in sent(ctx, "ModifyRule")] == [docs["RuleArn"]]
    assert sent(ctx, "CreateRule") == sent(ctx, "DeleteRule") == sent(ctx, "ModifyListener") == []


def _certificate() -> str:
    return issued_certificate("example.com")


def test_https_listener_with_tls12_policy_and_http_redirecting_301(compute: dict[str, StandIn]) -> None:
    stack = make_stack(**deep_merge(ROUTED, {"load_balancer": {"certificate_arn": _certificate()}}))
    steps = workload_steps(stack, compute, lambda s: s.key == "listeners")
    ctx = fresh(stack)
    converge(steps, ctx)

    listeners = _listeners()
    https, http = listeners[443], listeners[80]
    assert https["Protocol"] == "HTTPS"
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["Certificates"][0]["CertificateArn"] == stack.load_balancer.certificate_arn
    assert https["DefaultActions"][0]["TargetGroupArn"] == target_group_arn("demo-api")
    assert sorted(https["rules"]) == ["20", "5", "default"]
    redirect = http["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    assert list(http["rules"]) == ["default"]  # the rules live on HTTPS only
    assert ctx.outputs["load-balancer"]["url"].startswith("https://")
    assert changes(replan(steps, stack)) == {}


def test_https_without_redirect_serves_both_ports(compute: dict[str, StandIn]) -> None:
    stack = make_stack(
        load_balancer={"certificate_arn": _certificate(), "redirect_http": False},
        opt_outs={"http_not_redirected": "a health probe that cannot follow redirects"},
    )
    converge(workload_steps(stack, compute, lambda s: s.key == "listeners"), fresh(stack))
    listeners = _listeners()
    assert {p: listener["DefaultActions"][0]["Type"] for p, listener in listeners.items()} == {
        80: "forward",
        443: "forward",
    }


def test_adding_a_certificate_adds_https_and_turns_http_into_a_redirect(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    converge(workload_steps(stack, compute, lambda s: s.key == "listeners"), fresh(stack))
    secure = make_stack(load_balancer={"certificate_arn": _certificate()})
    steps = workload_steps(secure, compute, lambda s: s.key == "listeners")
    p = replan(steps, secure)
    assert p.get("listeners").action is Action.UPDATE
    assert {d.path for d in p.get("listeners").diffs} >= {"https", "http.default.type"}
    ctx = fresh(secure)
    converge(steps, ctx)
    assert len(sent(ctx, "CreateListener")) == 1 and len(sent(ctx, "ModifyListener")) == 1
    assert _listeners()[80]["DefaultActions"][0]["Type"] == "redirect"
    assert changes(replan(steps, secure)) == {}


def _tags(arn: str) -> dict[str, str]:
    described = boto3.client("elbv2", region_name=REGION).describe_tags(ResourceArns=[arn])["TagDescriptions"]
    return {t["Key"]: t["Value"] for t in described[0]["Tags"]}


def _ours(listeners: dict[int, dict[str, Any]]) -> list[str]:
    """The ARNs of the listeners and of the rules spotecs made (a default rule is no resource)."""
    rules = [r["RuleArn"] for listener in listeners.values() for p, r in listener["rules"].items() if p != "default"]
    return sorted([listener["ListenerArn"] for listener in listeners.values()] + rules)


def test_listener_and_rule_tag_edit_converges_with_tag_calls_only(compute: dict[str, StandIn]) -> None:
    https = {"load_balancer": {"certificate_arn": _certificate()}}
    stack = make_stack(**deep_merge(ROUTED, {**https, "tags": BEFORE}))
    converge(workload_steps(stack, compute, lambda s: s.key == "listeners"), fresh(stack))
    arns = _ours(_listeners())
    assert len(arns) == 4  # :80 and :443, the two rules on :443
    edited = make_stack(**deep_merge(ROUTED, {**https, "tags": AFTER}))
    steps = workload_steps(edited, compute, lambda s: s.key == "listeners")
    planned_as_tags_only(replan(steps, edited), "listeners")

    ctx = fresh(edited)
    converge(steps, ctx)
    assert set(writes(ctx, "elbv2")) == {"AddTags", "RemoveTags"}  # the load balancer's and groups' too
    (add,) = [c for c in sent(ctx, "AddTags") if ":listener" in c["ResourceArns"][0]]
    (remove,) = [c for c in sent(ctx, "RemoveTags") if ":listener" in c["ResourceArns"][0]]
    assert sorted(add["ResourceArns"]) == sorted(remove["ResourceArns"]) == arns  # one call for all
    assert add["Tags"] == [{"Key": "owner", "Value": "ops"}, {"Key": "team", "Value": "billing"}]
    assert remove["TagKeys"] == ["cost-center"]
    assert _ours(_listeners()) == arns  # tagged in place: nothing made again
    for arn in arns:
        holds_the_edit(_tags(arn))
    assert not replan(steps, edited).get("listeners").is_change

    # One rule's tags changed by hand: the plan shows it, and only that rule is tagged again.
    odd = arns[-1]
    boto3.client("elbv2", region_name=REGION).remove_tags(ResourceArns=[odd], TagKeys=["team"])
    change = replan(steps, edited).get("listeners")
    assert change.action is Action.UPDATE and change.changed_fields() == {"tags"}
    ctx = fresh(edited)
    converge(steps, ctx)
    assert [(c["ResourceArns"], c["Tags"]) for c in sent(ctx, "AddTags")] == [
        ([odd], [{"Key": "team", "Value": "billing"}])
    ]
    holds_the_edit(_tags(odd))
    assert not replan(steps, edited).get("listeners").is_change


def test_listener_tags_the_tagging_read_lacks_are_asked_in_one_call(
    compute: dict[str, StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where AWS's tagging index has no listener or rule yet, one DescribeTags asks for them all."""
    from spotecs.steps import load_balancer

    stack = make_stack(**deep_merge(ROUTED, {"tags": AFTER}))
    steps = workload_steps(stack, compute, lambda s: s.key == "listeners")
    converge(steps, fresh(stack))
    read = load_balancer.stack_tagged
    monkeypatch.setattr(
        load_balancer, "stack_tagged", lambda ctx: {a: t for a, t in read(ctx).items() if ":listener" not in a}
    )
    ctx = fresh(stack)
    with ctx.aws.reading():
        assert not plan(steps, ctx).get("listeners").is_change
    (asked,) = [c.params["ResourceArns"] for c in ctx.aws.calls if c.operation == "DescribeTags"]
    assert sorted(asked) == _ours(_listeners())  # the listener and its two rules, at once


def _depths(ctx: Any, operation: str) -> list[int]:
    return sorted(c.depth for c in ctx.aws.calls if c.operation == operation)


def test_a_plan_asks_the_rules_of_the_listeners_the_tagging_index_names_beside_the_listeners(
    compute: dict[str, StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two round trips, not three: each listener's rules by the ARN the stack's tagging-API read
    gives, at once with DescribeListeners. That index only says where to look: a listener it
    lacks has its rules asked after, one it still names once deleted is left out."""
    from spotecs.steps import listeners

    https = {"load_balancer": {"certificate_arn": _certificate()}}
    stack = make_stack(**deep_merge(ROUTED, https))
    steps = workload_steps(stack, compute, lambda s: s.key == "listeners")
    converge(steps, fresh(stack))
    by_port = {port: listener["ListenerArn"] for port, listener in _listeners().items()}

    ctx = fresh(stack)
    with ctx.aws.reading():
        assert not plan(steps, ctx).get("listeners").is_change
    assert _depths(ctx, "DescribeLoadBalancers") == [1]
    assert _depths(ctx, "DescribeListeners") == _depths(ctx, "DescribeRules")[:1] == [2]
    assert _depths(ctx, "DescribeRules") == [2, 2]

    # The index lacks the :443 listener and still names one deleted: the same plan, the :443
    # listener's rules one round trip later, the deleted one's asked and found gone.
    read = listeners.stack_tagged
    gone = by_port[80].rsplit("/", 1)[0] + "/0123456789abcdef"
    monkeypatch.setattr(
        listeners,
        "stack_tagged",
        lambda ctx: {**{a: t for a, t in read(ctx).items() if a != by_port[443]}, gone: {}},
    )
    ctx = fresh(stack)
    with ctx.aws.reading():
        assert not plan(steps, ctx).get("listeners").is_change
    asked = [(c.depth, c.params["ListenerArn"]) for c in ctx.aws.calls if c.operation == "DescribeRules"]
    assert sorted(asked) == sorted([(2, by_port[80]), (2, gone), (3, by_port[443])])


def test_the_listeners_first_read_asks_both_reads_their_second_round_needs(compute: dict[str, StandIn]) -> None:
    """engine.plan.read_all asks a step's `first_read` before every other read: for the listeners,
    the load balancer (its ARN) and the stack's tagging-API read (their ARNs), nothing else."""
    stack = make_stack(**ROUTED)
    steps = workload_steps(stack, compute, lambda s: s.key == "listeners")
    converge(steps, fresh(stack))
    ctx = fresh(stack)
    with ctx.aws.reading():
        next(s for s in steps if s.key == "listeners").first_read(ctx.for_step("listeners"))
    assert sorted((c.depth, c.operation) for c in ctx.aws.calls) == [(1, "DescribeLoadBalancers"), (1, "GetResources")]
