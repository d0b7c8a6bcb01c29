"""The internet-facing Application Load Balancer in the stack's subnets, writing its access logs
(when asked) to the bucket of steps/access_log_bucket.py or one the file names. Exists only when
at least one service has a container_port."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from spotecs import names
from spotecs.aws import caused_by, tag_list, tags_from_list
from spotecs.engine.model import Change
from spotecs.errors import AwsError
from spotecs.steps.access_log_bucket import named_bucket_problems
from spotecs.steps.base import Context, Step, stack_tagged
from spotecs.steps.tagging import confirmed, desired_tags, held_tags, retag, suspected

# ELB's answer while it cannot yet write to the bucket (a policy put seconds ago).
BUCKET_POLICY_NOT_YET = ("InvalidConfigurationRequest", "Access Denied for bucket")

# The load balancer attributes spotecs manages; others keep AWS's defaults and are not diffed.
ATTRIBUTES = (
    "idle_timeout.timeout_seconds",
    "access_logs.s3.enabled",
    "access_logs.s3.bucket",
    "access_logs.s3.prefix",
    "routing.http.drop_invalid_header_fields.enabled",
)


def elb_tags(ctx: Context, arn: str, what: str) -> dict[str, str]:
    """Tags of one ELBv2 resource (load balancer, target group). While a plan shares its reads,
    from the stack's tagging-API read (steps.base.stack_tagged) when they are the file's; the
    others (missing there, or differing: tagging.confirmed) of the stack's load balancer and
    target groups come in one call (up to 20 per call) that their steps share."""
    indexed = stack_tagged(ctx).get(arn) if ctx.aws.sharing_reads else None
    return confirmed(ctx, {arn: indexed}, lambda _: _described_with_the_stack_s(ctx, arn, what))[arn] or {}


def attributes_and_tags(ctx: Context, arn: str, what: str, kind: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The attributes (`kind`: load_balancer or target_group) and tags of one ELBv2 resource, asked
    at once: the tags' reads never wait for the attributes' answer."""
    elbv2 = ctx.client("elbv2")
    describe = getattr(elbv2, f"describe_{kind}_attributes")
    arn_field = "LoadBalancerArn" if kind == "load_balancer" else "TargetGroupArn"
    attrs, tags = ctx.at_once(
        lambda: ctx.call(f"read attributes of {what}", describe, **{arn_field: arn})["Attributes"],
        lambda: elb_tags(ctx, arn, what),
    )
    return attrs, tags


def _described_with_the_stack_s(ctx: Context, arn: str, what: str) -> dict[str, dict[str, str] | None]:
    batch = [arn]
    if ctx.aws.sharing_reads:
        tagged = stack_tagged(ctx)
        lb = find_load_balancer(ctx, names.load_balancer(ctx.name))
        known = sorted([lb["LoadBalancerArn"]] if lb else []) + sorted(
            g["TargetGroupArn"] for g in stack_target_groups(ctx)
        )
        # Every step asks for the same list: the read layer makes it one call.
        asked = suspected(ctx, {a: tagged.get(a) for a in known})
        batch = next((chunk for i in range(0, len(asked), 20) if arn in (chunk := asked[i : i + 20])), batch)
    return _describe_tags(ctx, batch, what)


def _describe_tags(ctx: Context, arns: list[str], what: str) -> dict[str, dict[str, str] | None]:
    found = ctx.read(f"list tags of {what}", "elbv2", "describe_tags", ResourceArns=arns)
    return {d["ResourceArn"]: tags_from_list(d.get("Tags")) for d in found.get("TagDescriptions", [])}


def elb_tags_of(ctx: Context, arns: list[str], what: str) -> dict[str, dict[str, str]]:
    """ARN -> tags of several ELBv2 resources (a load balancer's listeners and rules). While a
    plan shares its reads, from the stack's tagging-API read when they are the file's; the
    others (missing there, or differing: tagging.confirmed) in one call per 20."""
    tagged = stack_tagged(ctx) if ctx.aws.sharing_reads else {}

    def ask(rest: list[str]) -> dict[str, dict[str, str] | None]:
        out: dict[str, dict[str, str] | None] = {}
        for i in range(0, len(rest), 20):
            out.update(_describe_tags(ctx, rest[i : i + 20], what))
        return out

    found = confirmed(ctx, {arn: tagged.get(arn) for arn in arns}, ask)
    return {arn: tags for arn, tags in found.items() if tags is not None}


def stack_target_groups(ctx: Context) -> list[dict[str, Any]]:
    """The target groups named like the stack's (`<stack>-<service>`): one listing serves each
    service's target group and the orphan search."""
    try:
        groups = ctx.read_pages("list target groups", "elbv2", "describe_target_groups", "TargetGroups")
    except AwsError as e:
        if e.code == "TargetGroupNotFound":
            return []
        raise
    return [g for g in groups if g["TargetGroupName"].startswith(names.service_prefix(ctx.name))]


def full_name(lb_arn: str) -> str:
    """`app/<name>/<id>`: how CloudWatch metrics and scaling resource labels name the load balancer."""
    return lb_arn.split(":loadbalancer/", 1)[-1]


# --------------------------------------------------------------------------- load balancer


class LoadBalancer(Step):
    kind = "load balancer"
    # Its read is two round trips (its ARN, then its attributes): asked first (engine.plan.read_all).
    chained = True
    # AWS cannot turn an internet-facing load balancer into an internal one.
    replace_on = frozenset({"scheme"})

    def __init__(self, stack: str, own_bucket: bool) -> None:
        super().__init__(
            "load-balancer",
            names.load_balancer(stack),
            ("network", "security-group:lb", *(("access-log-bucket",) if own_bucket else ())),
        )
        self.own_bucket = own_bucket

    def desired(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.stack.load_balancer
        logs = cfg.access_logs
        bucket: Any = ""
        if logs:
            bucket = logs.bucket or ctx.output("access-log-bucket", "bucket")
        subnets = ctx.output("network", "subnets")
        return {
            "scheme": "internal" if cfg.internal else "internet-facing",
            "subnets": sorted(subnets) if isinstance(subnets, list) else subnets,
            "security_groups": [ctx.output("security-group:lb", "group_id")],
            "attributes": {
                "idle_timeout.timeout_seconds": str(cfg.idle_timeout),
                "access_logs.s3.enabled": "true" if logs else "false",
                "access_logs.s3.bucket": bucket,
                "access_logs.s3.prefix": logs.prefix.strip("/") if logs else "",
                # Requests with malformed headers are dropped, not passed to the app (AWS advice).
                "routing.http.drop_invalid_header_fields.enabled": "true",
            },
            "tags": desired_tags(ctx),
        }

    def check(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        """An ALB needs subnets in two or more zones, and at most one subnet per zone."""
        subnets = desired["subnets"]
        if not isinstance(subnets, list) or not subnets:  # no subnets: the network's check says why
            return []
        # The network's read already knows each subnet's zone.
        zones = ctx.output("network", "subnet_zones")
        if not isinstance(zones, dict) or not set(subnets) <= set(zones):
            found = ctx.call(
                "describe the load balancer's subnets", ctx.client("ec2").describe_subnets, SubnetIds=subnets
            )["Subnets"]
            zones = {s["SubnetId"]: s["AvailabilityZone"] for s in found}
        by_zone: dict[str, list[str]] = defaultdict(list)
        for subnet, zone in zones.items():
            if subnet in subnets:
                by_zone[zone].append(subnet)
        problems = [
            f"network.subnets: the load balancer takes one subnet per Availability Zone, but {zone} "
            f"has {', '.join(sorted(ids))}; list one subnet per zone in network.subnets"
            for zone, ids in sorted(by_zone.items())
            if len(ids) > 1
        ]
        if len(by_zone) < 2:
            problems.append(
                "network.subnets: an Application Load Balancer needs subnets in at least two "
                f"Availability Zones (got {', '.join(sorted(by_zone)) or 'none'})"
            )
        logs = ctx.stack.load_balancer.access_logs
        if logs and logs.bucket:
            problems += named_bucket_problems(ctx, logs.bucket)
        return problems

    def read(self, ctx: Context) -> dict[str, Any] | None:
        lb = find_load_balancer(ctx, self.name)
        if lb is None:
            return None
        arn = lb["LoadBalancerArn"]
        attrs, tags = attributes_and_tags(ctx, arn, f"load balancer {self.name}", "load_balancer")
        live = {a["Key"]: a["Value"] for a in attrs}
        https = bool(ctx.stack.load_balancer.certificate_arn)
        return {
            "scheme": lb["Scheme"],
            "subnets": sorted(z["SubnetId"] for z in lb.get("AvailabilityZones", [])),
            "security_groups": sorted(lb.get("SecurityGroups", [])),
            # AWS omits some attributes it has never been told; "" reads as unset.
            "attributes": {k: live.get(k, "") for k in ATTRIBUTES},
            "tags": held_tags(tags),
            "arn": arn,
            "dns_name": lb["DNSName"],
            "full_name": full_name(arn),
            "url": f"{'https' if https else 'http'}://{lb['DNSName']}",
            "_owned": ctx.owned(tags),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        elbv2 = ctx.client("elbv2")
        lb = ctx.call(
            f"create load balancer {self.name}",
            elbv2.create_load_balancer,
            Name=self.name,
            Type="application",
            Scheme=desired["scheme"],
            IpAddressType="ipv4",
            Subnets=desired["subnets"],
            SecurityGroups=desired["security_groups"],
            Tags=tag_list(desired["tags"]),
        )["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        ctx.wait(
            f"load balancer {self.name} to be active",
            "elbv2",
            "load_balancer_available",
            LoadBalancerArns=[arn],
            timeout=ctx.timeouts.budget("load balancer active"),
        )
        self._attributes(ctx, arn, desired["attributes"])
        https = bool(ctx.stack.load_balancer.certificate_arn)
        return {
            "arn": arn,
            "dns_name": lb["DNSName"],
            "full_name": full_name(arn),
            "url": f"{'https' if https else 'http'}://{lb['DNSName']}",
        }

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        elbv2, arn = ctx.client("elbv2"), current["arn"]
        if desired["subnets"] != current["subnets"]:
            ctx.call(
                f"set subnets of load balancer {self.name}",
                elbv2.set_subnets,
                LoadBalancerArn=arn,
                Subnets=desired["subnets"],
            )
        if desired["security_groups"] != current["security_groups"]:
            ctx.call(
                f"set security groups of load balancer {self.name}",
                elbv2.set_security_groups,
                LoadBalancerArn=arn,
                SecurityGroups=desired["security_groups"],
            )
        changed = {k: v for k, v in desired["attributes"].items() if current["attributes"].get(k) != v}
        self._attributes(ctx, arn, changed)
        retag(ctx, "elbv2", f"load balancer {self.name}", arn, desired["tags"], current.get("tags"))
        return {}

    def _attributes(self, ctx: Context, arn: str, attributes: dict[str, Any]) -> None:
        if not attributes:
            return
        # ELB checks it may write to the access-log bucket; a bucket policy put seconds ago (ours,
        # or the user's) is not yet in force everywhere, so that refusal is waited out, briefly.
        ctx.retry(
            f"set attributes of load balancer {self.name}",
            ctx.client("elbv2").modify_load_balancer_attributes,
            codes=(),
            when=caused_by(BUCKET_POLICY_NOT_YET),
            timeout=ctx.timeouts.budget("access-log bucket policy"),
            LoadBalancerArn=arn,
            Attributes=[{"Key": k, "Value": v} for k, v in sorted(attributes.items())],
        )

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        arn = current["arn"]
        ctx.call(
            f"delete load balancer {self.name}",
            ctx.client("elbv2").delete_load_balancer,
            missing=("LoadBalancerNotFound",),
            LoadBalancerArn=arn,
        )
        # Its security group (deleted next, by the core step) stays in use until it is gone.
        what = f"load balancer {self.name} to be deleted"
        ctx.until(
            what,
            lambda budget: ctx.wait(what, "elbv2", "load_balancers_deleted", timeout=budget, LoadBalancerArns=[arn]),
            status=lambda: "still listed by AWS",
            budget=ctx.timeouts.budget("load balancer deleted"),
            hint="Run the same command again to keep waiting.",
        )


def find_load_balancer(ctx: Context, name: str) -> dict[str, Any] | None:
    """The load balancer of that name, or None."""
    found = ctx.read(
        f"describe load balancer {name}",
        "elbv2",
        "describe_load_balancers",
        missing=("LoadBalancerNotFound",),
        Names=[name],
    )
    return found["LoadBalancers"][0] if found and found["LoadBalancers"] else None
