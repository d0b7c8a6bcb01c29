"""`spotecs teardown`, end to end through the CLI on moto in-process (and once over HTTP, against
the sandbox with its simulated ECS agent): the article's stack and the production one go up, then
teardown leaves nothing of them, proved through the resource-tagging API and each service's own
list calls (`leftovers`); a half-failed `up` and a half-failed teardown are both finished by one
more teardown; what the stack does not own, and logs with --keep-logs, are left alone. Each
resource's deletion cases are in its own test module; orphans in test_orphans.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest

import spotecs.up
from spotecs import config
from spotecs.engine.plan import graph
from spotecs.steps import build
from spotecs.steps.base import Timeouts
from tests.helpers import (
    MINIMAL,
    REGION,
    Runs,
    article,
    cluster_of,
    cmd,
    leftovers,
    production,
    providers_of,
    stack_file,
)


def test_article_stack_up_then_teardown_leaves_nothing_and_again_is_a_noop(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    path = article(tmp_path)
    up = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert up.code == 0, up.text
    cluster, providers = cluster_of(path), providers_of(cluster_of(path))
    assert providers and leftovers("article", cluster, providers), "up must have created the stack"

    dry = cmd("teardown", "-f", str(path), "--dry-run")
    assert dry.code == 0, dry.text
    assert runs.writes() == []
    assert "Plan: 0 to add, 0 to change, 0 to replace, 15 to destroy." in dry.text
    assert "The logs in log group /ecs/article/demo-api will be deleted (--keep-logs keeps them)." in dry.text

    done = cmd("teardown", "-f", str(path), "--yes")
    assert done.code == 0, done.text
    # Deletes only: no "0 added, 0 changed, 0 replaced" beside them (Terraform's destroy says the same).
    assert "\nTeardown complete! 15 destroyed.\n" in done.text
    assert leftovers("article", cluster, providers) == []

    again = cmd("teardown", "-f", str(path), "--yes")
    assert again.code == 0, again.text
    assert "Nothing to delete: stack article has no resources of its own" in again.text
    assert runs.writes() == []


def test_the_plan_lists_deletions_in_the_up_order_reversed(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = article(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    out = cmd("teardown", "-f", str(path), "--dry-run", "--output", "json")
    keys = [c["key"] for c in json.loads(out.stdout)["changes"]]
    assert all(c["action"] == "delete" for c in json.loads(out.stdout)["changes"])
    dag = graph(build(config.load(path), REGION))
    for key in keys:  # every resource is listed after everything that depends on it
        assert all(keys.index(key) < keys.index(up) for up in dag[key] if up in keys), key
    assert keys[0] == "scaling:demo-api" and keys[-1].startswith("iam:")


def test_production_stack_teardown_leaves_nothing(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = production(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    providers = providers_of("shop")
    before = leftovers("shop", "shop", providers)
    assert any(x.startswith("bucket shop-alb-logs-") for x in before)
    assert any(x.startswith("alarm shop-worker-step-") for x in before)
    assert sum(x.startswith("scalable target") for x in before) == 2

    done = cmd("teardown", "-f", str(path), "--yes")
    assert done.code == 0, done.text
    assert "20 destroyed" in done.text
    assert leftovers("shop", "shop", providers) == []
    # 3. scaling (policies, scheduled actions, alarms, targets) goes before its service
    calls = runs.calls()
    for svc in ("shop-api", "shop-worker"):
        target = next(
            i
            for i, c in enumerate(runs.sessions[-1].calls)
            if c.operation == "DeregisterScalableTarget" and c.params["ResourceId"].endswith(f"/{svc}")
        )
        delete = next(
            i
            for i, c in enumerate(runs.sessions[-1].calls)
            if c.operation == "DeleteService" and c.params["service"] == svc
        )
        assert target < delete
    assert calls.count("DeleteScheduledAction") == 2
    sent = [(c.operation, c.params) for c in runs.sessions[-1].calls]
    (alarm,) = [i for i, (op, p) in enumerate(sent) if op == "DeleteAlarms"]
    policy = next(
        i
        for i, (op, p) in enumerate(sent)
        if op == "DeleteScalingPolicy" and p["PolicyName"] == sent[alarm][1]["AlarmNames"][0]
    )
    assert alarm < policy  # the alarm first: it would fire into a deleted policy


def test_over_http_with_the_simulated_agent_running_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox: moto's server plus an ECS agent that registers the instances and runs the
    tasks, so the teardown meets running tasks, registered container instances and an agent
    that deregisters terminated instances on its own."""
    from spotecs.sandbox import Sandbox

    monkeypatch.setattr(spotecs.up, "Timeouts", lambda: Timeouts(default=120, delay=0.1))
    path = article(tmp_path, "overhttp")
    # AWS's delays 20 times faster; an agent slower than the teardown's steps, as on AWS, where a
    # deleted service's tasks take a while to stop (the service is DRAINING meanwhile).
    with Sandbox(agent_interval=1.5, clock_factor=20) as box:
        url = box.endpoint_url
        up = cmd("up", "-f", str(path), "--yes", "--endpoint-url", url)
        assert up.code == 0, up.text
        assert "running 2/2, targets healthy 2/2" in up.text
        ecs = boto3.client("ecs", region_name=REGION, endpoint_url=url)
        assert ecs.list_container_instances(cluster="DemoApiClusterProd")["containerInstanceArns"]
        providers = providers_of_at("DemoApiClusterProd", url)
        done = cmd("teardown", "-f", str(path), "--yes", "--endpoint-url", url)
        assert done.code == 0, done.text
        assert "ECS service overhttp-demo-api: draining" in done.text
        assert leftovers("overhttp", "DemoApiClusterProd", providers, endpoint=url) == []
        assert "Nothing to delete" in cmd("teardown", "-f", str(path), "--yes", "--endpoint-url", url).text


def providers_of_at(cluster: str, endpoint: str) -> list[str]:
    got = boto3.client("ecs", region_name=REGION, endpoint_url=endpoint).describe_clusters(clusters=[cluster])[
        "clusters"
    ]
    return list(got[0].get("capacityProviders", [])) if got else []


def test_without_yes_and_no_tty_teardown_refuses_and_changes_nothing(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = article(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    out = cmd("teardown", "-f", str(path))
    assert out.code == 2
    assert "pass --yes to delete" in out.text
    assert runs.writes() == []
    declined = cmd("teardown", "-f", str(path), tty=True, answer=False)
    assert declined.code == 1 and declined.questions == ["\nDelete stack article in us-east-1?"]
    assert "Teardown cancelled." in declined.text
    assert runs.writes() == []
    assert cmd("teardown", "-f", str(path), tty=True, answer=True).code == 0
    assert leftovers("article", cluster_of(path)) == []


def test_output_json_needs_dry_run_or_yes(tmp_path: Path) -> None:
    out = cmd("teardown", "-f", str(stack_file(tmp_path, MINIMAL)), "--output", "json")
    assert out.code == 2 and "--output json needs --dry-run or --yes" in out.text


@pytest.mark.parametrize(
    ("service", "method"),
    [
        ("ecs", "create_capacity_provider"),  # a group with instances, and nothing on it
        ("ecs", "put_cluster_capacity_providers"),  # a provider the cluster does not list
        ("elbv2", "create_listener"),  # a load balancer and a target group, no service
        ("application-autoscaling", "put_scaling_policy"),  # a scalable target without a policy
        ("iam", "add_role_to_instance_profile"),  # an empty instance profile
    ],
)
def test_teardown_after_a_half_failed_up_removes_everything(
    moto: None, runs: Runs, tmp_path: Path, service: str, method: str
) -> None:
    path = article(tmp_path)
    fault = runs.fail(service, method, times=99)
    up = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert up.code == 1 and fault.seen, up.text
    assert "Apply failed." in up.text
    cluster = cluster_of(path)
    providers = providers_of(cluster) or [
        c.params["name"] for a in runs.sessions for c in a.calls if c.operation == "CreateCapacityProvider"
    ]
    assert leftovers("article", cluster, providers)
    runs.faults.clear()
    done = cmd("teardown", "-f", str(path), "--yes")
    assert done.code == 0, done.text
    assert leftovers("article", cluster, providers) == []


@pytest.mark.parametrize(
    ("service", "method", "blocked", "gone"),
    [
        ("elbv2", "delete_load_balancer", "security group article-lb", "auto scaling group"),
        ("autoscaling", "delete_auto_scaling_group", "launch template article-instances", "load balancer"),
        ("ecs", "delete_service", "capacity provider", None),  # everything else is upstream of the service
    ],
)
def test_a_half_failed_teardown_is_finished_by_the_next_one(
    moto: None, runs: Runs, tmp_path: Path, service: str, method: str, blocked: str, gone: str | None
) -> None:
    path = article(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    cluster, providers = cluster_of(path), providers_of(cluster_of(path))
    runs.fail(service, method, times=99)
    first = cmd("teardown", "-f", str(path), "--yes")
    assert first.code == 1, first.text
    assert "Teardown failed." in first.text and "run the same command again" in first.text
    left = leftovers("article", cluster, providers)
    assert any(x.startswith(blocked) for x in left), left  # what depends on the failed step stays
    if gone:  # independent branches went on
        assert not any(x.startswith(gone) for x in left), left
    runs.faults.clear()
    second = cmd("teardown", "-f", str(path), "--yes")
    assert second.code == 0, second.text
    assert leftovers("article", cluster, providers) == []


def test_resources_without_our_tags_are_reported_and_left_alone(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = article(tmp_path)
    iam, ecs = boto3.client("iam", region_name=REGION), boto3.client("ecs", region_name=REGION)
    role = f"article-{REGION}-ecs-execution"
    iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    ecs.create_cluster(clusterName="DemoApiClusterProd")  # a cluster someone else made
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    out = cmd("teardown", "-f", str(path), "--yes")
    assert out.code == 0, out.text
    assert f"IAM role {role}: exists without this stack's spotecs tags" in out.text
    assert "ECS cluster DemoApiClusterProd: exists without this stack's spotecs tags" in out.text
    iam.get_role(RoleName=role)  # still there
    assert ecs.describe_clusters(clusters=["DemoApiClusterProd"])["clusters"][0]["status"] == "ACTIVE"
    left = leftovers("article", "DemoApiClusterProd")
    assert left == ["ECS cluster DemoApiClusterProd", f"IAM role {role}"]
    assert not any(
        w
        for w in runs.sessions[-1].writes()
        if w.params.get("RoleName") == role
        or (w.params.get("cluster") == "DemoApiClusterProd" and w.operation == "DeleteCluster")
    )


def test_keep_logs_keeps_every_log_and_says_so(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = production(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    out = cmd("teardown", "-f", str(path), "--yes", "--keep-logs")
    assert out.code == 0, out.text
    for kept in ("log group /ecs/shop/api", "log group /ecs/shop/worker", "S3 bucket shop-alb-logs-"):
        assert re.search(rf"{re.escape(kept)}\S*: kept \(--keep-logs\)", out.text), kept
    assert "will be deleted" not in out.text
    assert sorted(x for x in leftovers("shop", "shop") if not x.startswith("tagged")) == [
        "bucket shop-alb-logs-123456789012",
        "log group /ecs/shop/api",
        "log group /ecs/shop/worker",
    ]
    assert sorted(x for x in leftovers("shop", "shop") if x.startswith("tagged")) == [
        f"tagged arn:aws:logs:{REGION}:123456789012:log-group:/ecs/shop/{svc}" for svc in ("api", "worker")
    ] + ["tagged arn:aws:s3:::shop-alb-logs-123456789012"]
    # Kept logs are not "something to delete": a second --keep-logs run has nothing to do.
    again = cmd("teardown", "-f", str(path), "--yes", "--keep-logs")
    assert again.code == 0 and runs.writes() == []
    # Not "has no resources of its own" right under the three it keeps.
    assert f"Nothing to delete: stack shop has nothing of its own in {REGION} but the logs kept above." in again.text
    # Without the flag, the plan names each log it deletes.
    last = cmd("teardown", "-f", str(path), "--yes")
    assert (
        "The logs in S3 bucket shop-alb-logs-123456789012, log group /ecs/shop/worker, log group /ecs/shop/api "
        "will be deleted" in last.text
    )
    assert leftovers("shop", "shop") == []


def _up_with_insights(runs: Runs, tmp_path: Path) -> tuple[Path, str, str]:
    path = article(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    cluster = cluster_of(path)
    insights = f"/aws/ecs/containerinsights/{cluster}/performance"
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=insights)  # as AWS does, untagged
    return path, cluster, insights


def test_container_insights_log_group_goes_after_the_cluster(moto: None, runs: Runs, tmp_path: Path) -> None:
    path, cluster, insights = _up_with_insights(runs, tmp_path)
    done = cmd("teardown", "-f", str(path), "--yes")
    assert done.code == 0, done.text
    assert leftovers("article", cluster) == []
    # Deleted once the cluster is, so Container Insights has nothing left to write from.
    order = [
        (c.operation, c.params.get("logGroupName"))
        for c in runs.sessions[-1].writes()
        if c.operation == "DeleteCluster" or c.params.get("logGroupName") == insights
    ]
    assert order == [("DeleteCluster", None), ("DeleteLogGroup", insights)]


def test_the_insights_log_group_of_a_cluster_the_file_renamed_goes_after_that_cluster(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    path, cluster, insights = _up_with_insights(runs, tmp_path)
    path.write_text(path.read_text().replace(f"name: {cluster}", "name: renamed-cluster"))
    done = cmd("teardown", "-f", str(path), "--yes")
    assert done.code == 0, done.text
    assert f"- log group {insights}" in done.text
    order = [
        (c.operation, c.params.get("cluster") or c.params.get("logGroupName"))
        for c in runs.sessions[-1].writes()
        if c.operation == "DeleteCluster" or c.params.get("logGroupName") == insights
    ]
    assert order == [("DeleteCluster", cluster), ("DeleteLogGroup", insights)]
    assert leftovers("article", cluster) == []


def test_keep_logs_keeps_the_container_insights_log_group(moto: None, runs: Runs, tmp_path: Path) -> None:
    path, cluster, insights = _up_with_insights(runs, tmp_path)
    kept = cmd("teardown", "-f", str(path), "--yes", "--keep-logs")
    assert kept.code == 0, kept.text
    assert f"log group {insights}: kept (--keep-logs)" in kept.text
    assert f"log group {insights}" in leftovers("article", cluster)
    # Still the stack's (its cluster, though deleted, carries the stack's tags): the next
    # teardown without the flag removes it.
    done = cmd("teardown", "-f", str(path), "--yes")
    assert done.code == 0, done.text
    assert leftovers("article", cluster) == []


def test_an_insights_log_group_of_a_cluster_not_ours_is_left_alone(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = article(tmp_path)
    cluster = cluster_of(path)
    boto3.client("ecs", region_name=REGION).create_cluster(clusterName=cluster)  # no spotecs tags
    insights = f"/aws/ecs/containerinsights/{cluster}/performance"
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=insights)
    out = cmd("teardown", "-f", str(path), "--yes")
    assert out.code == 0, out.text
    assert boto3.client("logs", region_name=REGION).describe_log_groups(logGroupNamePrefix=insights)["logGroups"]
    assert not any(c.operation == "DeleteLogGroup" for c in runs.sessions[-1].writes())
