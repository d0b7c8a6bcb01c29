"""`up` deletes the logs the stack file no longer has, as teardown does, and says so before the
question: the log groups of dropped services, the stack's own access-log bucket once access logs
are off, and access-log buckets tagged as the stack's under another name. `up --keep-logs` keeps
every one of them (kept, not a change); the next plan without it deletes them again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from spotecs.aws import tag_list
from tests.helpers import ACCOUNT, MINIMAL, REGION, STACK_TAG, Runs, cmd, deep_merge, stack_file

OWN = f"demo-alb-logs-{ACCOUNT}"
LOGS_ON = deep_merge(MINIMAL, {"load_balancer": {"access_logs": {"expire_days": 9}}})
OLD = {"image": "bitnami/node-example:0.0.1", "container_port": 3000, "routing": {"paths": ["/old/*"]}}
OWNED = {STACK_TAG: "demo", "spotecs:managed": "true"}
THEIRS = {STACK_TAG: "demo-api", "spotecs:managed": "true"}  # another stack's, named alike


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def buckets() -> list[str]:
    return sorted(b["Name"] for b in s3().list_buckets()["Buckets"])


def access_logs_enabled() -> str:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    arn = elbv2.describe_load_balancers(Names=["demo"])["LoadBalancers"][0]["LoadBalancerArn"]
    attrs = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    return next(a["Value"] for a in attrs if a["Key"] == "access_logs.s3.enabled")


def log_groups() -> list[str]:
    logs = boto3.client("logs", region_name=REGION)
    return sorted(g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/ecs/demo/")["logGroups"])


def bucket_calls(runs: Runs) -> list[str]:
    """The last run's S3 and STS calls, sorted."""
    return sorted(f"{c.service}.{c.operation}" for c in runs.sessions[-1].calls if c.service in ("s3", "sts"))


def plant_buckets() -> None:
    """Access-log buckets (each holding a log) an earlier file may have left: one tagged as stack
    demo's, one as stack demo-api's, one untagged."""
    for tags, who in ((OWNED, "earlier"), (THEIRS, "theirs"), ({}, "untagged")):
        bucket = f"{who}-alb-logs-7"
        s3().create_bucket(Bucket=bucket)
        s3().put_object(Bucket=bucket, Key="AWSLogs/1/log.gz", Body=b"GET / 200")
        if tags:
            s3().put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list(tags)})


def test_up_deletes_the_stack_s_own_bucket_once_access_logs_are_off_and_says_so_before_the_question(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    path = stack_file(tmp_path, LOGS_ON)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    assert OWN in buckets() and access_logs_enabled() == "true"
    # Found from the plan's tagging-API read: a plan keeping the bucket asks only the bucket
    # step's reads (and the account id it is named after), none for the orphan search.
    assert "No changes." in cmd("up", "-f", str(path), "--dry-run").text
    assert bucket_calls(runs) == [
        "s3.GetBucketEncryption",
        "s3.GetBucketLifecycleConfiguration",
        "s3.GetBucketPolicy",
        "s3.GetBucketTagging",
        "s3.GetPublicAccessBlock",
        "sts.GetCallerIdentity",
    ]
    s3().put_object(Bucket=OWN, Key="alb/AWSLogs/x.log.gz", Body=b"GET / 200")  # delivered by ELB

    stack_file(tmp_path, MINIMAL)  # access logs off
    plan = cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert plan.code == 2, plan.text
    # Why, in the file's terms: the user never named this bucket, spotecs did.
    assert f"- S3 bucket {OWN} (delete: access logs are off in the file)" in plan.text
    assert "~ load balancer demo" in plan.text
    assert "Plan: 0 to add, 1 to change, 0 to replace, 1 to destroy." in plan.text
    warning = f"The logs in S3 bucket {OWN} will be deleted (--keep-logs keeps them)."
    assert warning in plan.text
    assert runs.writes() == []

    # Said before the question: a refusal leaves the warning printed and nothing written.
    asked = cmd("up", "-f", str(path), tty=True, answer=False)
    assert asked.questions == ["\nApply these changes?"]
    assert warning in asked.stdout and runs.writes() == []
    assert OWN in buckets()

    out = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert out.code == 0, out.text
    assert warning in out.text
    assert OWN not in buckets()  # emptied, then deleted
    assert access_logs_enabled() == "false"  # turned off before the bucket went (the forward walk)
    again = cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert again.code == 0, again.text
    assert "will be deleted" not in again.text
    assert bucket_calls(runs) == []  # no bucket, no access logs: nothing asked


def test_up_deletes_a_bucket_tagged_as_the_stack_s_under_another_name_but_never_the_file_s(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    plant_buckets()
    # The file's own bucket for its access logs is the load balancer's, whatever its tags.
    s3().put_public_access_block(
        Bucket="earlier-alb-logs-7",
        PublicAccessBlockConfiguration=dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        ),
    )
    s3().put_bucket_encryption(
        Bucket="earlier-alb-logs-7",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    named = deep_merge(MINIMAL, {"load_balancer": {"access_logs": {"bucket": "earlier-alb-logs-7"}}})
    path = stack_file(tmp_path, named)
    first = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert first.code == 0, first.text
    assert "S3 bucket" not in first.text and "will be deleted" not in first.text
    assert cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode").code == 0

    stack_file(tmp_path, MINIMAL)  # the file no longer names it: an orphan of the stack's
    plan = cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert plan.code == 2, plan.text
    assert "- S3 bucket earlier-alb-logs-7 (delete: tagged as the stack's, no longer in its file)" in plan.text
    assert "The logs in S3 bucket earlier-alb-logs-7 will be deleted (--keep-logs keeps them)." in plan.text
    assert "theirs" not in plan.text and "untagged" not in plan.text
    out = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert out.code == 0, out.text
    assert buckets() == ["theirs-alb-logs-7", "untagged-alb-logs-7"]
    assert cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode").code == 0


def test_up_keep_logs_keeps_log_groups_and_buckets_and_the_next_plan_without_it_deletes_them(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    path = stack_file(tmp_path, deep_merge(LOGS_ON, {"services": {"old": OLD}}))
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    plant_buckets()
    stack_file(tmp_path, MINIMAL)  # service `old` dropped, access logs off

    kept = cmd("up", "-f", str(path), "--yes", "--no-wait", "--keep-logs")
    assert kept.code == 0, kept.text
    for line in (
        "log group /ecs/demo/old: kept (--keep-logs)",
        f"S3 bucket {OWN}: kept (--keep-logs)",
        "S3 bucket earlier-alb-logs-7: kept (--keep-logs)",
        "- ECS service demo-old",
        "~ load balancer demo",
    ):
        assert line in kept.text, line
    assert "will be deleted" not in kept.text
    assert "Plan: 0 to add, 2 to change, 0 to replace, 3 to destroy." in kept.text, kept.text
    assert log_groups() == ["/ecs/demo/api", "/ecs/demo/old"]
    assert buckets() == sorted([OWN, "earlier-alb-logs-7", "theirs-alb-logs-7", "untagged-alb-logs-7"])
    assert [o["Key"] for o in s3().list_objects_v2(Bucket="earlier-alb-logs-7")["Contents"]] == ["AWSLogs/1/log.gz"]

    # Kept is not a change: nothing to do with the flag, all three to delete without it.
    with_flag = cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode", "--keep-logs")
    assert with_flag.code == 0, with_flag.text
    assert "No changes." in with_flag.text and f"S3 bucket {OWN}: kept (--keep-logs)" in with_flag.text
    without = cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert without.code == 2, without.text
    assert "Plan: 0 to add, 0 to change, 0 to replace, 3 to destroy." in without.text, without.text
    assert (
        f"The logs in log group /ecs/demo/old, S3 bucket {OWN}, S3 bucket earlier-alb-logs-7 will be deleted "
        "(--keep-logs keeps them)." in without.text
    ), without.text

    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    assert log_groups() == ["/ecs/demo/api"]
    assert buckets() == ["theirs-alb-logs-7", "untagged-alb-logs-7"]
    assert cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode").code == 0


def test_up_help_names_keep_logs(moto: None) -> None:
    text = " ".join(cmd("up", "--help").text.split())
    assert "--keep-logs Keep the logs the plan would delete" in text and "access-log buckets" in text
