"""The load balancer's access logs: the S3 bucket spotecs makes for them (private, encrypted,
written only by ELB, objects expired as the article advises), and the checks a bucket the file
names must pass (private and encrypted, unless `opt_outs.access_log_bucket_not_private` says why)."""

from __future__ import annotations

import json
from typing import Any

from spotecs import names
from spotecs.aws import tag_list, tags_from_list
from spotecs.engine.model import Change
from spotecs.errors import AwsError
from spotecs.steps.base import Context, Step, stack_tagged
from spotecs.steps.tagging import delta, desired_tags, held_tags

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
LOG_DELIVERY_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"
EXPIRY_RULE = "spotecs-expire-access-logs"
# All four S3 Block Public Access settings: nothing in the bucket can be made public.
PUBLIC_ACCESS_BLOCKS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
# SSE-S3: the only default encryption ELB can write access logs under, not SSE-KMS (Elastic Load
# Balancing User Guide, "Access logs for your Application Load Balancer", Bucket requirements).
SSE_S3 = "AES256"
OPT_OUT = "opt_outs.access_log_bucket_not_private"


class AccessLogBucket(Step):
    """Created only when access logs are on and no bucket is named."""

    kind = "S3 bucket"
    # Its read is two round trips (the account id, then the bucket): asked first (engine.plan.read_all).
    chained = True

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
        return {
            "expire_days": cfg.expire_days,
            "prefix": prefix,
            "policy": policy,
            "public_access_blocked": True,
            "encryption": SSE_S3,
            "tags": desired_tags(ctx),
        }

    def read(self, ctx: Context) -> dict[str, Any] | None:
        s3 = ctx.client("s3")
        # The bucket's name (the account id) and, while a plan shares its reads, whether the
        # stack's tagging-API read names it: both in the first round.
        bucket, indexed = ctx.at_once(
            lambda: self.bucket(ctx),
            lambda: ctx.aws.sharing_reads and _arn(ctx, self.bucket(ctx)) in stack_tagged(ctx),
        )
        gone = ("NoSuchBucket", "404")

        def tagging_of() -> Any:
            return ctx.call(
                f"list tags of bucket {bucket}", s3.get_bucket_tagging, missing=(*gone, "NoSuchTagSet"), Bucket=bucket
            )

        # Its four settings at once, one round trip instead of four.
        def settings() -> list[Any]:
            return ctx.at_once(
                lambda: ctx.call(
                    f"read lifecycle of bucket {bucket}",
                    s3.get_bucket_lifecycle_configuration,
                    missing=("NoSuchLifecycleConfiguration",),
                    Bucket=bucket,
                ),
                lambda: ctx.call(
                    f"read policy of bucket {bucket}",
                    s3.get_bucket_policy,
                    missing=("NoSuchBucketPolicy",),
                    Bucket=bucket,
                ),
                lambda: public_access_blocked(ctx, bucket),
                lambda: encryption(ctx, bucket),
            )

        def unless_gone() -> list[Any] | None:
            try:
                return settings()
            except AwsError as e:
                if e.code in gone:
                    return None
                raise

        # A bucket the tagging API's index names has its settings asked beside its tags: two round
        # trips, not three. That index is eventually consistent: a bucket it lacks is asked as
        # before (its tags, then the settings of a bucket that exists), one it names that is gone
        # answers NoSuchBucket and reads as gone.
        tagging, known = ctx.at_once(tagging_of, unless_gone) if indexed else (tagging_of(), None)
        if (
            tagging is None
            and ctx.call(f"look up bucket {bucket}", s3.head_bucket, missing=gone, Bucket=bucket) is None
        ):
            return None
        lifecycle, policy, blocked, algorithm = known if known is not None else settings()
        rules = lifecycle or {}
        rule: dict[str, Any] = next((r for r in rules.get("Rules", []) if r.get("ID") == EXPIRY_RULE), {})
        tags = tags_from_list((tagging or {}).get("TagSet"))
        return {
            "expire_days": rule.get("Expiration", {}).get("Days"),
            "prefix": rule.get("Filter", {}).get("Prefix", "").strip("/"),
            "policy": json.loads(policy["Policy"]) if policy else None,
            "public_access_blocked": blocked,
            "encryption": algorithm,
            "tags": held_tags(tags),
            "bucket": bucket,
            "_owned": ctx.owned(tags),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        s3, bucket = ctx.client("s3"), self.bucket(ctx)
        extra = {} if ctx.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": ctx.region}}
        ctx.call(f"create bucket {bucket}", s3.create_bucket, Bucket=bucket, **extra)
        self._tag(ctx, desired["tags"])
        self._converge(ctx, desired, {})
        return {"bucket": bucket}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        put, drop = delta(desired["tags"], current.get("tags"))
        if put or drop:
            self._tag(ctx, desired["tags"])
        self._converge(ctx, desired, current)
        return {"bucket": self.bucket(ctx)}

    def _tag(self, ctx: Context, tags: dict[str, str]) -> None:
        """PutBucketTagging replaces the bucket's whole set: the file's set is written, which drops
        what the file dropped. AWS's own `aws:` tags are never in it (S3 refuses to write them)."""
        bucket = self.bucket(ctx)
        ctx.call(
            f"tag bucket {bucket}",
            ctx.client("s3").put_bucket_tagging,
            Bucket=bucket,
            Tagging={"TagSet": tag_list(tags)},
        )

    def _converge(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any]) -> None:
        """Set what differs: privacy first, so the bucket is never public, not even for a call."""
        s3, bucket = ctx.client("s3"), self.bucket(ctx)
        if current.get("public_access_blocked") is not True:
            ctx.call(
                f"block public access to bucket {bucket}",
                s3.put_public_access_block,
                Bucket=bucket,
                PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_BLOCKS, True),
            )
        if current.get("encryption") != desired["encryption"]:
            ctx.call(
                f"encrypt bucket {bucket}",
                s3.put_bucket_encryption,
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": desired["encryption"]}}]
                },
            )
        if (current.get("expire_days"), current.get("prefix")) != (desired["expire_days"], desired["prefix"]):
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
        if current.get("policy") != desired["policy"]:
            ctx.call(
                f"set policy of bucket {bucket}",
                s3.put_bucket_policy,
                Bucket=bucket,
                Policy=json.dumps(desired["policy"]),
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


def _arn(ctx: Context, bucket: str) -> str:
    return f"arn:{_partition(ctx.region)}:s3:::{bucket}"


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def public_access_blocked(ctx: Context, bucket: str) -> bool:
    """All four Block Public Access settings are on for the bucket."""
    found = ctx.call(
        f"read the public access block of bucket {bucket}",
        ctx.client("s3").get_public_access_block,
        missing=("NoSuchPublicAccessBlockConfiguration",),
        Bucket=bucket,
    )
    settings = (found or {}).get("PublicAccessBlockConfiguration", {})
    return all(settings.get(k) for k in PUBLIC_ACCESS_BLOCKS)


def encryption(ctx: Context, bucket: str) -> str | None:
    """The bucket's default encryption algorithm (AES256, aws:kms...), or None."""
    found = ctx.call(
        f"read the encryption of bucket {bucket}",
        ctx.client("s3").get_bucket_encryption,
        missing=("ServerSideEncryptionConfigurationNotFoundError",),
        Bucket=bucket,
    )
    rules = (found or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    algorithm = rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") if rules else None
    return str(algorithm) if algorithm else None


def named_bucket_problems(ctx: Context, bucket: str) -> list[str]:
    """A bucket the file names (not spotecs's): it must exist, and be private (all four public
    access blocks) and encrypted unless the file opts out with a reason."""
    field = "load_balancer.access_logs.bucket"
    if ctx.stack.opt_outs.access_log_bucket_not_private:
        return []
    why_not = f"or state why not under {OPT_OUT}"
    try:
        blocked, algorithm = ctx.at_once(lambda: public_access_blocked(ctx, bucket), lambda: encryption(ctx, bucket))
    except AwsError as e:
        if e.code == "NoSuchBucket":
            return [f"{field}: bucket {bucket} does not exist; create it, or leave bucket out for spotecs to make one"]
        if e.code in ("AccessDenied", "AllAccessDisabled"):
            return [
                f"{field}: cannot check that bucket {bucket} is private and encrypted ({e.code}); allow "
                f"s3:GetBucketPublicAccessBlock and s3:GetEncryptionConfiguration on it, {why_not}"
            ]
        raise
    problems = []
    if not blocked:
        problems.append(f"{field}: bucket {bucket} does not block all public access; block it, {why_not}")
    if algorithm is None:
        problems.append(f"{field}: bucket {bucket} has no default encryption; turn on SSE-S3, {why_not}")
    elif algorithm != SSE_S3:
        problems.append(
            f"{field}: bucket {bucket} is encrypted with {algorithm}, under which ELB cannot write access "
            "logs; its default encryption must be SSE-S3 (AES256)"
        )
    return problems
