"""steps/access_log_bucket.py: the bucket spotecs makes for access logs (private, encrypted, named
with the account id before apply), and the checks a bucket the file names must pass."""

from __future__ import annotations

import boto3
import pytest

from spotecs.engine.model import Action
from spotecs.engine.plan import plan
from spotecs.errors import CheckError
from tests.helpers import ACCOUNT, REGION, StandIn, converge, fresh, make_stack, replan, sent, workload_steps, writes
from tests.tag_edits import AFTER, BEFORE, holds_the_edit, planned_as_tags_only

BLOCKS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
OWN = f"demo-alb-logs-{ACCOUNT}"


def private_bucket(name: str, *, private: bool = True, encryption: str | None = "AES256") -> None:
    """A bucket of the user's (not spotecs's), private and SSE-S3 unless told otherwise."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    if private:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict.fromkeys(BLOCKS, True))
    if encryption:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": encryption}}]
            },
        )


def named(bucket: str, **opt_outs: str) -> list[str]:
    """The plan-time problems of a stack writing its access logs to `bucket`."""
    stack = make_stack(load_balancer={"access_logs": {"bucket": bucket}}, opt_outs=opt_outs)
    steps = workload_steps(stack, {}, lambda s: s.key == "load-balancer")
    try:
        plan(steps, fresh(stack))
    except CheckError as e:
        return e.problems
    return []


def test_the_plan_names_the_access_log_bucket_with_the_account_id_from_one_sts_call(
    compute: dict[str, StandIn],
) -> None:
    stack = make_stack(load_balancer={"access_logs": {}})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    ctx = fresh(stack)
    for destroy in (False, True):  # before the bucket exists, and when it is to be deleted
        the_plan = plan(steps, ctx, destroy=destroy)
        names = {c.key: c.name for c in the_plan.changes}
        assert names["access-log-bucket"] == f"demo-alb-logs-{ACCOUNT}"
        if not destroy:
            converge(steps, ctx)
    assert [c.operation for c in ctx.aws.calls if c.service == "sts"] == ["GetCallerIdentity"]


def test_the_bucket_spotecs_makes_is_private_and_encrypted_and_kept_so(compute: dict[str, StandIn]) -> None:
    stack = make_stack(load_balancer={"access_logs": {}})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    converge(steps, fresh(stack))
    s3 = boto3.client("s3", region_name=REGION)

    def private_and_encrypted() -> tuple[dict[str, bool], str]:
        block = s3.get_public_access_block(Bucket=OWN)["PublicAccessBlockConfiguration"]
        rules = s3.get_bucket_encryption(Bucket=OWN)["ServerSideEncryptionConfiguration"]["Rules"]
        return block, rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]

    assert private_and_encrypted() == (dict.fromkeys(BLOCKS, True), "AES256")
    # Loosened by hand: the next plan says so and `up` closes it again.
    s3.delete_public_access_block(Bucket=OWN)
    s3.delete_bucket_encryption(Bucket=OWN)
    ctx = fresh(stack)
    the_plan, _ = converge(steps, ctx)
    change = next(c for c in the_plan.changes if c.key == "access-log-bucket")
    assert change.action is Action.UPDATE
    assert sorted(d.path for d in change.diffs) == ["encryption", "public_access_blocked"]
    assert [c.operation for c in ctx.aws.writes()] == ["PutPublicAccessBlock", "PutBucketEncryption"]
    assert private_and_encrypted() == (dict.fromkeys(BLOCKS, True), "AES256")


def test_a_named_bucket_that_is_public_or_unencrypted_is_refused_unless_the_file_says_why(moto: None) -> None:
    private_bucket("open-logs", private=False, encryption=None)
    problems = "\n".join(named("open-logs"))
    assert "load_balancer.access_logs.bucket: bucket open-logs does not block all public access" in problems
    assert "load_balancer.access_logs.bucket: bucket open-logs has no default encryption" in problems
    assert problems.count("state why not under opt_outs.access_log_bucket_not_private") == 2
    assert named("open-logs", access_log_bucket_not_private="the SIEM reads it with its own controls") == []
    private_bucket("half-logs", encryption=None)
    assert [p.split(": ", 1)[1][:40] for p in named("half-logs")] == ["bucket half-logs has no default encrypti"]
    private_bucket("good-logs")
    assert named("good-logs") == []


def test_a_named_bucket_elb_could_not_write_to_is_refused(moto: None) -> None:
    assert named("absent-logs") == [
        "load_balancer.access_logs.bucket: bucket absent-logs does not exist; create it, or leave bucket out "
        "for spotecs to make one"
    ]
    private_bucket("kms-logs", encryption="aws:kms")
    (problem,) = named("kms-logs")
    assert "encrypted with aws:kms, under which ELB cannot write access logs" in problem


def test_bucket_tag_edit_writes_the_file_s_whole_set_once(compute: dict[str, StandIn]) -> None:
    logs = {"load_balancer": {"access_logs": {}}}
    stack = make_stack(**logs, tags=BEFORE)
    converge(workload_steps(stack, compute, lambda s: s.key == "access-log-bucket"), fresh(stack))
    edited = make_stack(**logs, tags=AFTER)
    steps = workload_steps(edited, compute, lambda s: s.key == "access-log-bucket")
    planned_as_tags_only(replan(steps, edited), "access-log-bucket")

    ctx = fresh(edited)
    converge(steps, ctx)
    assert writes(ctx, "s3") == ["PutBucketTagging"]  # nothing else of the bucket is written again
    (put,) = sent(ctx, "PutBucketTagging")
    assert {t["Key"] for t in put["Tagging"]["TagSet"]} == {"owner", "team", "spotecs:stack", "spotecs:managed"}
    held = boto3.client("s3", region_name=REGION).get_bucket_tagging(Bucket=OWN)["TagSet"]
    holds_the_edit({t["Key"]: t["Value"] for t in held})
    assert not replan(steps, edited).get("access-log-bucket").is_change


def test_a_plan_asks_the_settings_of_a_bucket_the_tagging_index_names_beside_its_tags(
    compute: dict[str, StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two round trips, not three (the account id, then the bucket's tags and settings at once)
    when the stack's tagging-API read names the bucket. That index only says where to look: a
    bucket it lacks is read as before (tags, then settings), one it names that is gone reads as gone."""
    from spotecs.steps import access_log_bucket

    stack = make_stack(load_balancer={"access_logs": {}})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    converge(steps, fresh(stack))
    settings = ["GetBucketLifecycleConfiguration", "GetBucketPolicy", "GetPublicAccessBlock", "GetBucketEncryption"]

    def depths() -> dict[str, int]:
        ctx = fresh(stack)
        with ctx.aws.reading():
            assert not plan(steps, ctx).get("access-log-bucket").is_change
        return {c.operation: c.depth for c in ctx.aws.calls if c.service in ("s3", "sts")}

    assert depths() == {"GetCallerIdentity": 1, "GetBucketTagging": 2, **dict.fromkeys(settings, 2)}
    read = access_log_bucket.stack_tagged
    monkeypatch.setattr(access_log_bucket, "stack_tagged", lambda ctx: {})
    assert depths() == {"GetCallerIdentity": 1, "GetBucketTagging": 2, **dict.fromkeys(settings, 3)}

    # Named by the index, deleted meanwhile: the bucket is to be made again, nothing fails.
    monkeypatch.setattr(access_log_bucket, "stack_tagged", lambda ctx: {f"arn:aws:s3:::{OWN}": {}, **read(ctx)})
    s3 = boto3.resource("s3", region_name=REGION).Bucket(OWN)
    s3.objects.all().delete()
    s3.delete()
    ctx = fresh(stack)
    with ctx.aws.reading():
        assert plan(steps, ctx).get("access-log-bucket").action is Action.CREATE
