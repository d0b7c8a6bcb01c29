"""The internet-facing Application Load Balancer in the stack's subnets, and (when asked) the S3
bucket for its access logs, with an expiry rule as the article advises. Exists only when at
least one service has a container_port."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from spotecs import names
from spotecs.aws import caused_by, tag_list, tags_from_list
from spotecs.engine.model import Change
from spotecs.errors import AwsError
from spotecs.steps.base import Context, Step, stack_tagged

# Regions opened before August 2022 deliver access logs from a regional ELB account; newer
# regions use the log-delivery service principal instead (AWS "Enable access logs" guide).
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584",
    "us-gov-east-1": "190560391635",
    "cn-north-1": "638102146993",
    "cn-northwest-1": "037604701340",
}
# ELB's answer while it cannot yet write to the bucket (a policy put seconds ago).
BUCKET_POLICY_NOT_YET = ("InvalidConfigurationRequest", "Access Denied for bucket")
LOG_DELIVERY_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"
EXPIRY_RULE = "spotecs-expire-access-logs"

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
    from the stack's tagging-API read (steps.base.stack_tagged); for what it lacks, those of
    the stack's load balancer and target groups come in one call (up to 20 per call)."""
    batch = [arn]
    if ctx.aws.sharing_reads:
        tagged = stack_tagged(ctx).get(arn)
        if tagged is not None:  # the stack's tagging-API read has them already
            return tagged
        lb = find_load_balancer(ctx, names.load_balancer(ctx.name))
        known = sorted([lb["LoadBalancerArn"]] if lb else []) + sorted(
            g["TargetGroupArn"] for g in stack_target_groups(ctx)
        )
        batch = next((chunk for i in range(0, len(known), 20) if arn in (chunk := known[i : i + 20])), batch)
    found = ctx.read(f"list tags of {what}", "elbv2", "describe_tags", ResourceArns=batch)
    described: list[dict[str, Any]] = found.get("TagDescriptions", [])
    return tags_from_list(next((d.get("Tags") for d in described if d.get("ResourceArn") == arn), None))


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


# --------------------------------------------------------------------------- access-log bucket


class AccessLogBucket(Step):
    """Created only when access logs are on and no bucket is named."""

    kind = "S3 bucket"

    def __init__(self, stack: str) -> None:
        super().__init__("access-log-bucket", names.access_log_bucket_display(stack))

    def bucket(self, ctx: Context) -> str:
        return names.access_log_bucket(ctx.name, ctx.account_id)

    def planned_name(self, ctx: Context) -> str:
        """The real name in the plan, before the bucket exists: the account id is the run's one
        STS lookup, which the read has made already."""
        return self.bucket(ctx)

    def desired(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.stack.load_balancer.access_logs
        assert cfg is not None
        bucket, prefix, partition = self.bucket(ctx), cfg.prefix.strip("/"), _partition(ctx.region)
        folder = f"{prefix}/" if prefix else ""
        resource = f"arn:{partition}:s3:::{bucket}/{folder}AWSLogs/{ctx.account_id}/*"
        account = ELB_LOG_ACCOUNTS.get(ctx.region)
        principal = {"AWS": f"arn:{partition}:iam::{account}:root"} if account else {"Service": LOG_DELIVERY_PRINCIPAL}
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ElbAccessLogs",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": "s3:PutObject",
                    "Resource": resource,
                }
            ],
        }
        return {"expire_days": cfg.expire_days, "prefix": prefix, "policy": policy}

    def read(self, ctx: Context) -> dict[str, Any] | None:
        s3, bucket = ctx.client("s3"), self.bucket(ctx)
        gone = ("NoSuchBucket", "404")
        tagging = ctx.call(
            f"list tags of bucket {bucket}", s3.get_bucket_tagging, missing=(*gone, "NoSuchTagSet"), Bucket=bucket
        )
        if (
            tagging is None
            and ctx.call(f"look up bucket {bucket}", s3.head_bucket, missing=gone, Bucket=bucket) is None
        ):
            return None
        rules = (
            ctx.call(
                f"read lifecycle of bucket {bucket}",
                s3.get_bucket_lifecycle_configuration,
                missing=("NoSuchLifecycleConfiguration",),
                Bucket=bucket,
            )
            or {}
        )
        rule: dict[str, Any] = next((r for r in rules.get("Rules", []) if r.get("ID") == EXPIRY_RULE), {})
        policy = ctx.call(
            f"read policy of bucket {bucket}", s3.get_bucket_policy, missing=("NoSuchBucketPolicy",), Bucket=bucket
        )
        return {
            "expire_days": rule.get("Expiration", {}).get("Days"),
            "prefix": rule.get("Filter", {}).get("Prefix", "").strip("/"),
            "policy": json.loads(policy["Policy"]) if policy else None,
            "bucket": bucket,
            "_owned": ctx.owned(tags_from_list((tagging or {}).get("TagSet"))),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        s3, bucket = ctx.client("s3"), self.bucket(ctx)
        extra = {} if ctx.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": ctx.region}}
        ctx.call(f"create bucket {bucket}", s3.create_bucket, Bucket=bucket, **extra)
        ctx.call(
            f"block public access to bucket {bucket}",
            s3.put_public_access_block,
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
            },
        )
        ctx.call(f"tag bucket {bucket}", s3.put_bucket_tagging, Bucket=bucket, Tagging={"TagSet": tag_list(ctx.tags())})
        self._converge(ctx, desired)
        return {"bucket": bucket}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        self._converge(ctx, desired)
        return {"bucket": self.bucket(ctx)}

    def _converge(self, ctx: Context, desired: dict[str, Any]) -> None:
        s3, bucket = ctx.client("s3"), self.bucket(ctx)
        prefix = f"{desired['prefix']}/" if desired["prefix"] else ""
        ctx.call(
            f"set lifecycle of bucket {bucket}",
            s3.put_bucket_lifecycle_configuration,
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": EXPIRY_RULE,
                        "Status": "Enabled",
                        "Filter": {"Prefix": prefix},
                        "Expiration": {"Days": desired["expire_days"]},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        )
        ctx.call(
            f"set policy of bucket {bucket}", s3.put_bucket_policy, Bucket=bucket, Policy=json.dumps(desired["policy"])
        )

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        s3, bucket = ctx.client("s3"), current.get("bucket") or self.bucket(ctx)
        # A bucket must be empty to be deleted: remove every object version and delete marker.
        try:
            objects = [
                {"Key": o["Key"], "VersionId": o["VersionId"]}
                for key in ("Versions", "DeleteMarkers")
                for o in ctx.paginate(
                    f"list objects of bucket {bucket}", "s3", "list_object_versions", key, Bucket=bucket
                )
            ]
        except AwsError as e:
            if e.code == "NoSuchBucket":
                return
            raise
        for i in range(0, len(objects), 1000):  # delete_objects takes at most 1000 keys
            ctx.call(
                f"empty bucket {bucket}",
                s3.delete_objects,
                Bucket=bucket,
                Delete={"Objects": objects[i : i + 1000], "Quiet": True},
            )
        ctx.call(f"delete bucket {bucket}", s3.delete_bucket, missing=("NoSuchBucket",), Bucket=bucket)


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


# --------------------------------------------------------------------------- load balancer


class LoadBalancer(Step):
    kind = "load balancer"
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
        return problems

    def read(self, ctx: Context) -> dict[str, Any] | None:
        elbv2 = ctx.client("elbv2")
        lb = find_load_balancer(ctx, self.name)
        if lb is None:
            return None
        arn = lb["LoadBalancerArn"]
        attrs = ctx.call(
            f"read attributes of load balancer {self.name}",
            elbv2.describe_load_balancer_attributes,
            LoadBalancerArn=arn,
        )["Attributes"]
        live = {a["Key"]: a["Value"] for a in attrs}
        https = bool(ctx.stack.load_balancer.certificate_arn)
        return {
            "scheme": lb["Scheme"],
            "subnets": sorted(z["SubnetId"] for z in lb.get("AvailabilityZones", [])),
            "security_groups": sorted(lb.get("SecurityGroups", [])),
            # AWS omits some attributes it has never been told; "" reads as unset.
            "attributes": {k: live.get(k, "") for k in ATTRIBUTES},
            "arn": arn,
            "dns_name": lb["DNSName"],
            "full_name": full_name(arn),
            "url": f"{'https' if https else 'http'}://{lb['DNSName']}",
            "_owned": ctx.owned(elb_tags(ctx, arn, f"load balancer {self.name}")),
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
            Tags=tag_list(ctx.tags()),
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
