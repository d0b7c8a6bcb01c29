"""One target group per routed service: instance targets, health-checked on the traffic port,
since ECS registers each task on its own dynamic host port."""

from __future__ import annotations

from typing import Any

from spotecs import names
from spotecs.aws import tag_list
from spotecs.engine.model import Change
from spotecs.errors import AwsError
from spotecs.steps.base import Context, Step
from spotecs.steps.load_balancer import attributes_and_tags, elb_tags, stack_target_groups
from spotecs.steps.load_balancer import full_name as lb_name
from spotecs.steps.tagging import desired_tags, held_tags, retag

# Only a default for targets registered without a port; ECS always passes the task's host port.
NOMINAL_PORT = 80


def full_name(tg_arn: str) -> str:
    """`targetgroup/<name>/<id>`: the second half of an ALB request-count resource label."""
    return tg_arn.rsplit(":", 1)[-1]


def describe_target_group(ctx: Context, name: str, *, arn: str | None = None) -> dict[str, Any] | None:
    """The target group of that name (by its ARN when known), or None. While a plan shares its
    reads, found in the listing of the stack's target groups."""
    if arn is None and ctx.aws.sharing_reads:
        return next((g for g in stack_target_groups(ctx) if g["TargetGroupName"] == name), None)
    found = ctx.call(
        f"describe target group {name}",
        ctx.client("elbv2").describe_target_groups,
        missing=("TargetGroupNotFound",),
        **({"TargetGroupArns": [arn]} if arn else {"Names": [name]}),
    )
    groups = (found or {}).get("TargetGroups", [])
    return groups[0] if groups else None


class TargetGroup(Step):
    kind = "target group"
    # Its read is two round trips (the stack's target groups, then this one's attributes):
    # asked first (engine.plan.read_all).
    chained = True
    replace_on = frozenset({"vpc_id", "protocol", "port", "target_type"})

    def __init__(self, stack: str, service: str) -> None:
        super().__init__(f"target-group:{service}", names.target_group(stack, service), ("network",))
        self.service = service

    def desired(self, ctx: Context) -> dict[str, Any]:
        hc = ctx.stack.services[self.service].health_check
        return {
            "vpc_id": ctx.output("network", "vpc_id"),
            "protocol": "HTTP",
            "port": NOMINAL_PORT,
            "target_type": "instance",
            "health_check": {
                "path": hc.path,
                "interval": hc.interval,
                "timeout": hc.timeout,
                "healthy_threshold": hc.healthy_threshold,
                "unhealthy_threshold": hc.unhealthy_threshold,
                "success_codes": hc.success_codes,
            },
            "deregistration_delay": ctx.stack.services[self.service].deregistration_delay,
            "tags": desired_tags(ctx),
        }

    def describe(self, ctx: Context) -> dict[str, Any] | None:
        return describe_target_group(ctx, self.name)

    def read(self, ctx: Context) -> dict[str, Any] | None:
        tg = self.describe(ctx)
        if tg is None:
            return None
        arn = tg["TargetGroupArn"]
        attrs, tags = attributes_and_tags(ctx, arn, f"target group {self.name}", "target_group")
        delay = next((a["Value"] for a in attrs if a["Key"] == "deregistration_delay.timeout_seconds"), None)
        return {
            "vpc_id": tg.get("VpcId"),
            "protocol": tg.get("Protocol"),
            "port": tg.get("Port"),
            "target_type": tg.get("TargetType"),
            "health_check": {
                "path": tg.get("HealthCheckPath"),
                "interval": tg.get("HealthCheckIntervalSeconds"),
                "timeout": tg.get("HealthCheckTimeoutSeconds"),
                "healthy_threshold": tg.get("HealthyThresholdCount"),
                "unhealthy_threshold": tg.get("UnhealthyThresholdCount"),
                "success_codes": tg.get("Matcher", {}).get("HttpCode"),
            },
            "deregistration_delay": int(delay) if delay is not None else None,
            "tags": held_tags(tags),
            "arn": arn,
            "name": self.name,
            "full_name": full_name(arn),
            "_owned": ctx.owned(tags),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        tg = ctx.call(
            f"create target group {self.name}",
            ctx.client("elbv2").create_target_group,
            Name=self.name,
            Protocol=desired["protocol"],
            Port=desired["port"],
            VpcId=desired["vpc_id"],
            TargetType=desired["target_type"],
            HealthCheckProtocol="HTTP",
            HealthCheckPort="traffic-port",
            HealthCheckEnabled=True,
            **_health_check(desired["health_check"]),
            Tags=tag_list(desired["tags"]),
        )["TargetGroups"][0]
        arn = tg["TargetGroupArn"]
        self._delay(ctx, arn, desired["deregistration_delay"])
        return {"arn": arn, "name": self.name, "full_name": full_name(arn)}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        arn = current["arn"]
        if desired["health_check"] != current["health_check"]:
            ctx.call(
                f"update health check of target group {self.name}",
                ctx.client("elbv2").modify_target_group,
                TargetGroupArn=arn,
                **_health_check(desired["health_check"]),
            )
        if desired["deregistration_delay"] != current["deregistration_delay"]:
            self._delay(ctx, arn, desired["deregistration_delay"])
        retag(ctx, "elbv2", f"target group {self.name}", arn, desired["tags"], current.get("tags"))
        return {}

    def _delay(self, ctx: Context, arn: str, seconds: int) -> None:
        ctx.call(
            f"set deregistration delay of target group {self.name}",
            ctx.client("elbv2").modify_target_group_attributes,
            TargetGroupArn=arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(seconds)}],
        )

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        elbv2, arn = ctx.client("elbv2"), current["arn"]
        self._delete_rules_to(ctx, arn)
        # Right after its listener is deleted, AWS may still see the group as in use for a moment.
        ctx.until(
            f"target group {self.name} to be free",
            lambda budget: ctx.retry(
                f"delete target group {self.name}",
                elbv2.delete_target_group,
                codes=("ResourceInUse",),
                missing=("TargetGroupNotFound",),
                timeout=budget,
                TargetGroupArn=arn,
            ),
            status=lambda: f"a listener of {', '.join(self._users(ctx, arn))} still forwards to it",
            budget=ctx.timeouts.budget("target group released"),
            hint="Run the same command again; if a listener outside this stack forwards to it, "
            "point that listener elsewhere first.",
        )

    def _users(self, ctx: Context, arn: str) -> list[str]:
        tg = describe_target_group(ctx, self.name, arn=arn) or {}
        return [lb_name(lb) for lb in tg.get("LoadBalancerArns", [])] or ["a load balancer"]

    def _delete_rules_to(self, ctx: Context, arn: str) -> None:
        """Listener rules of the stack's load balancer that forward here (a service removed from
        the stack file leaves its rule behind): ELB refuses to delete a group a rule uses.
        A listener's default action is the listeners step's business, not this one's."""
        tg = describe_target_group(ctx, self.name, arn=arn) or {}
        for lb in tg.get("LoadBalancerArns", []):
            try:
                self._delete_rules_on(ctx, lb, arn)
            except AwsError as e:
                # A teardown deletes the load balancer and its listeners in parallel: gone is fine.
                if e.code not in ("LoadBalancerNotFound", "ListenerNotFound"):
                    raise

    def _delete_rules_on(self, ctx: Context, lb: str, arn: str) -> None:
        elbv2 = ctx.client("elbv2")
        listeners = ctx.paginate(
            f"list listeners of load balancer {lb_name(lb)}",
            "elbv2",
            "describe_listeners",
            "Listeners",
            LoadBalancerArn=lb,
        )
        if not listeners or not ctx.owned(elb_tags(ctx, lb, f"load balancer {lb_name(lb)}")):
            return
        for listener in listeners:
            rules = ctx.paginate(
                f"list rules of listener :{listener['Port']}",
                "elbv2",
                "describe_rules",
                "Rules",
                ListenerArn=listener["ListenerArn"],
            )
            for r in rules:
                if not r.get("IsDefault") and _forwards_to(r, arn):
                    ctx.call(
                        f"delete rule {r['Priority']} of listener :{listener['Port']} (to {self.name})",
                        elbv2.delete_rule,
                        missing=("RuleNotFound",),
                        RuleArn=r["RuleArn"],
                    )


def _forwards_to(rule: dict[str, Any], arn: str) -> bool:
    for a in rule.get("Actions", []):
        groups = [g.get("TargetGroupArn") for g in a.get("ForwardConfig", {}).get("TargetGroups", [])]
        if a.get("TargetGroupArn") == arn or arn in groups:
            return True
    return False


def _health_check(hc: dict[str, Any]) -> dict[str, Any]:
    return {
        "HealthCheckPath": hc["path"],
        "HealthCheckIntervalSeconds": hc["interval"],
        "HealthCheckTimeoutSeconds": hc["timeout"],
        "HealthyThresholdCount": hc["healthy_threshold"],
        "UnhealthyThresholdCount": hc["unhealthy_threshold"],
        "Matcher": {"HttpCode": hc["success_codes"]},
    }
