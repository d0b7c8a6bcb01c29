"""`spotecs teardown` (issue 5) and orphans, on moto in-process (and once over HTTP, against the
sandbox with its simulated ECS agent).

End to end through the CLI: the article's stack and the production one go up, then teardown
leaves nothing of them, proved through the resource-tagging API and each service's own list
calls (`leftovers`); a half-failed `up` and a half-failed teardown are both finished by one more
teardown. Then each deletion case of the issue, on the steps themselves (requests as sent, since
moto lets through much that AWS refuses), every wait's timeout message, and orphans: what the
stack owns but its file no longer names is deleted by `up` and by `teardown`, and only that."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from click.testing import CliRunner
from rich.console import Console

import spotecs.up
from spotecs import config
from spotecs.aws import Aws, AwsOptions, tag_list
from spotecs.cli import cli
from spotecs.config import Stack
from spotecs.engine.plan import graph
from spotecs.errors import AwsError, WaitTimeout
from spotecs.render import Env
from spotecs.steps import build
from spotecs.steps.base import Context, Step, Timeouts
from spotecs.steps.iam import instance_role
from spotecs.steps.orphans import find
from spotecs.steps.service import delete_service
from tests.conftest import MINIMAL, REGION, converge, deep_merge, make_ctx, make_stack, steps_for

ROOT = Path(__file__).resolve().parent.parent
STACK_TAG = "spotecs:stack"


# ----------------------------------------------------------------------------- harness


@pytest.fixture(autouse=True)
def moto_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the sandbox fills in moto (spotecs/sandbox/fills.py): services keep the fields real
    ECS keeps, and groups launch their whole capacity, so a re-plan compares what AWS would hold
    and the teardown has real instances to terminate."""
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.ecs.responses import EC2ContainerServiceResponse

    from spotecs.sandbox import fills

    for owner, name, make in (
        (EC2ContainerServiceResponse, "create_service", fills.ecs_create_service_keeping_fields),
        (FakeAutoScalingGroup, "set_desired_capacity", fills.asg_mixed_instances_full_capacity),
        (AutoScalingResponse, "update_auto_scaling_group", fills.asg_update_changing_only_what_is_sent),
    ):
        monkeypatch.setattr(owner, name, make(getattr(owner, name)))


@dataclass
class Fault:
    service: str
    method: str  # the boto3 method name, e.g. "create_listener"
    times: int = 1
    code: str = "InternalFailure"
    seen: int = 0


@dataclass
class Runs:
    """Every Aws session the CLI opens, and faults injected into their clients."""

    sessions: list[Aws] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def fail(self, service: str, method: str, *, times: int = 1, code: str = "InternalFailure") -> Fault:
        fault = Fault(service, method, times, code)
        self.faults.append(fault)
        return fault

    def writes(self, index: int = -1) -> list[str]:
        return [c.operation for c in self.sessions[index].writes()]

    def calls(self, index: int = -1) -> list[str]:
        return [c.operation for c in self.sessions[index].calls]


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    recorded = Runs()

    class Faulty(Aws):
        def client(self, service: str) -> Any:
            fresh = service not in self._clients
            client = super().client(service)
            if fresh:
                for fault in recorded.faults:
                    if fault.service == service:
                        _inject(client, fault)
            return client

    def opened(options: AwsOptions) -> Aws:
        aws = Faulty(options)
        recorded.sessions.append(aws)
        return aws

    monkeypatch.setattr(spotecs.up, "Aws", opened)
    # Real waits, without the sleeping: every wait is still bounded (5 polls or 5 s).
    monkeypatch.setattr(spotecs.up, "Timeouts", lambda: Timeouts(default=5, delay=0))
    return recorded


def _inject(client: Any, fault: Fault) -> None:
    real = getattr(client, fault.method)

    def failing(**kwargs: Any) -> Any:
        if fault.seen < fault.times:
            fault.seen += 1
            raise ClientError(
                {"Error": {"Code": fault.code, "Message": f"injected {fault.method} failure"}}, fault.method
            )
        return real(**kwargs)

    setattr(client, fault.method, failing)


@dataclass
class Out:
    code: int
    text: str
    questions: list[str]


def cmd(*args: str, tty: bool = False, answer: bool = False) -> Out:
    buf = io.StringIO()
    questions: list[str] = []

    def confirm(q: str) -> bool:
        questions.append(q)
        return answer

    console = Console(file=buf, width=250, no_color=True, highlight=False)
    env = Env(console=console, err=console, stdin_isatty=tty, confirm=confirm)
    result = CliRunner().invoke(cli, list(args), obj=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Out(result.exit_code, buf.getvalue() + result.output, questions)


def article(tmp_path: Path, name: str = "article") -> Path:
    path = tmp_path / "article.yaml"
    path.write_text((ROOT / "examples" / "article.yaml").read_text().replace("stack: demo-api", f"stack: {name}"))
    return path


def production(tmp_path: Path) -> Path:
    """The production example in us-east-1, with a certificate that exists (in moto's ACM)."""
    cert = boto3.client("acm", region_name=REGION).request_certificate(DomainName="shop.example.com")
    text = (ROOT / "examples" / "production.yaml").read_text().replace("region: eu-west-1", f"region: {REGION}")
    text = re.sub(r"certificate_arn: \S+", f"certificate_arn: {cert['CertificateArn']}", text)
    path = tmp_path / "production.yaml"
    path.write_text(text)
    return path


def stack_file(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "spotecs.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cluster_of(path: Path) -> str:
    doc = yaml.safe_load(path.read_text())
    return str((doc.get("cluster") or {}).get("name") or doc["stack"])


def providers_of(cluster: str) -> list[str]:
    got = boto3.client("ecs", region_name=REGION).describe_clusters(clusters=[cluster])["clusters"]
    return list(got[0].get("capacityProviders", [])) if got else []


# ----------------------------------------------------------------------------- what is left


def leftovers(stack: str, cluster: str, providers: Sequence[str] = (), endpoint: str | None = None) -> list[str]:
    """Everything of the stack still in AWS, by the tagging API (what it covers) and by each
    service's own list calls (what it does not: launch templates, groups, listeners, capacity
    providers, IAM, scalable targets). Gone includes ECS's INACTIVE (deregistered, deleted)."""

    def c(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=endpoint)

    ecs, left = c("ecs"), []
    for m in c("resourcegroupstaggingapi").get_resources(TagFilters=[{"Key": STACK_TAG, "Values": [stack]}])[
        "ResourceTagMappingList"
    ]:
        arn = m["ResourceARN"]
        if (
            ":task-definition/" in arn
            and ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == "INACTIVE"
        ):
            continue
        if (
            ":instance/" in arn
            and c("ec2").describe_instances(InstanceIds=[arn.rsplit("/", 1)[-1]])["Reservations"][0]["Instances"][0][
                "State"
            ]["Name"]
            == "terminated"
        ):
            continue
        if ":cluster/" in arn and all(
            x["status"] == "INACTIVE" for x in ecs.describe_clusters(clusters=[arn])["clusters"]
        ):
            continue
        if ":task/" in arn and all(
            t["lastStatus"] == "STOPPED" for t in ecs.describe_tasks(cluster=arn.split("/")[-2], tasks=[arn])["tasks"]
        ):
            continue
        if ":service/" in arn and all(
            x["status"] == "INACTIVE"
            for x in ecs.describe_services(cluster=arn.split("/")[-2], services=[arn])["services"]
        ):
            continue
        left.append(f"tagged {arn}")
    ec2 = c("ec2")
    left += [
        f"launch template {t['LaunchTemplateName']}"
        for t in ec2.describe_launch_templates()["LaunchTemplates"]
        if t["LaunchTemplateName"].startswith(f"{stack}-")
    ]
    left += [
        f"security group {g['GroupName']}"
        for g in ec2.describe_security_groups()["SecurityGroups"]
        if g["GroupName"].startswith(f"{stack}-")
    ]
    left += [
        f"auto scaling group {g['AutoScalingGroupName']}"
        for g in c("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        if g["AutoScalingGroupName"].startswith(f"{stack}-")
    ]
    live = [x for x in ecs.describe_clusters(clusters=[cluster])["clusters"] if x["status"] == "ACTIVE"]
    left += [f"ECS cluster {x['clusterName']}" for x in live]
    if live:
        services = ecs.list_services(cluster=cluster)["serviceArns"]
        left += [
            f"ECS service {s['serviceName']}"
            for s in (ecs.describe_services(cluster=cluster, services=services)["services"] if services else [])
            if s["status"] != "INACTIVE"
        ]
    if providers:
        left += [
            f"capacity provider {p['name']}"
            for p in ecs.describe_capacity_providers(capacityProviders=list(providers))["capacityProviders"]
            if p["status"] == "ACTIVE"
        ]
    # moto's list_task_definition_families ignores `status`, and familyPrefix is a whole family name
    # in ECS: list every ACTIVE revision.
    left += [
        f"task definition {a.rsplit('/', 1)[-1]}"
        for a in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
        if a.rsplit("/", 1)[-1].startswith(f"{stack}-")
    ]
    iam = c("iam")
    for role in (f"{stack}-{REGION}-ecs-instance", f"{stack}-{REGION}-ecs-execution"):
        for what, get, kw in (
            ("IAM role", iam.get_role, {"RoleName": role}),
            ("instance profile", iam.get_instance_profile, {"InstanceProfileName": role}),
        ):
            try:
                get(**kw)
                left.append(f"{what} {role}")
            except iam.exceptions.NoSuchEntityException:
                pass
    left += [
        f"log group {g['logGroupName']}"
        for g in c("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{stack}/")["logGroups"]
    ]
    elbv2 = c("elbv2")
    for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
        if lb["LoadBalancerName"] == stack:
            left.append(f"load balancer {stack}")
            left += [
                f"listener :{x['Port']}"
                for x in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
            ]
    left += [
        f"target group {g['TargetGroupName']}"
        for g in elbv2.describe_target_groups()["TargetGroups"]
        if g["TargetGroupName"].startswith(f"{stack}-")
    ]
    left += [
        f"scalable target {t['ResourceId']}"
        for t in c("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
        if t["ResourceId"].startswith(f"service/{cluster}/")
    ]
    left += [
        f"alarm {a['AlarmName']}"
        for a in c("cloudwatch").describe_alarms()["MetricAlarms"]
        if a["AlarmName"].startswith(f"{stack}-") or f"service/{cluster}/" in a["AlarmName"]
    ]
    left += [
        f"bucket {b['Name']}" for b in c("s3").list_buckets().get("Buckets", []) if b["Name"].startswith(f"{stack}-")
    ]
    return left


# ----------------------------------------------------------------------------- end to end


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
    assert "Teardown complete! 0 added, 0 changed, 0 replaced, 15 destroyed." in done.text
    assert leftovers("article", cluster, providers) == []

    again = cmd("teardown", "-f", str(path), "--yes")
    assert again.code == 0, again.text
    assert "Nothing to delete: stack article has no resources of its own" in again.text
    assert runs.writes() == []


def test_the_plan_lists_deletions_in_the_up_order_reversed(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = article(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    out = cmd("teardown", "-f", str(path), "--dry-run", "--output", "json")
    keys = [c["key"] for c in json.loads(out.text)["changes"]]
    assert all(c["action"] == "delete" for c in json.loads(out.text)["changes"])
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
    with Sandbox(agent_interval=0.2) as box:
        url = box.endpoint_url
        up = cmd("up", "-f", str(path), "--yes", "--endpoint-url", url)
        assert up.code == 0, up.text
        assert "running 2/2, targets healthy 2/2" in up.text
        ecs = boto3.client("ecs", region_name=REGION, endpoint_url=url)
        assert ecs.list_container_instances(cluster="DemoApiClusterProd")["containerInstanceArns"]
        providers = providers_of_at("DemoApiClusterProd", url)
        done = cmd("teardown", "-f", str(path), "--yes", "--endpoint-url", url)
        assert done.code == 0, done.text
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
    assert "pass --yes" in out.text
    assert runs.writes() == []
    declined = cmd("teardown", "-f", str(path), tty=True, answer=False)
    assert declined.code == 2 and declined.questions == ["\nDelete stack article in us-east-1?"]
    assert runs.writes() == []
    assert cmd("teardown", "-f", str(path), tty=True, answer=True).code == 0
    assert leftovers("article", cluster_of(path)) == []


def test_output_json_needs_dry_run_or_yes(tmp_path: Path) -> None:
    out = cmd("teardown", "-f", str(stack_file(tmp_path, MINIMAL)), "--output", "json")
    assert out.code == 2 and "--output json needs --dry-run or --yes" in out.text


# ----------------------------------------------------------------------------- resumable


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


# ----------------------------------------------------------------------------- owned only, data


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
    assert again.code == 0 and "Nothing to delete" in again.text and runs.writes() == []
    # Without the flag, the plan names each log it deletes.
    last = cmd("teardown", "-f", str(path), "--yes")
    assert (
        "The logs in S3 bucket shop-alb-logs-<account>, log group /ecs/shop/worker, log group /ecs/shop/api "
        "will be deleted" in last.text
    )
    assert leftovers("shop", "shop") == []


# ----------------------------------------------------------------------------- each deletion case


def _up(stack: Stack, keep: Callable[[Step], bool] = lambda s: True) -> tuple[list[Step], Context]:
    steps = steps_for(stack, keep)
    ctx = make_ctx(stack)
    ctx.wait_for_services = False
    converge(steps, ctx)
    return steps, ctx


def _step(steps: list[Step], key: str) -> Step:
    return next(s for s in steps if s.key == key)


def _sent(ctx: Context, operation: str) -> list[dict[str, Any]]:
    return [c.params for c in ctx.aws.calls if c.operation == operation]


def _short_waits(ctx: Context) -> Context:
    """Bounded waits that give up after a second (ten polls): for the tests of timeout messages."""
    ctx.timeouts = Timeouts(default=1, delay=0.1)
    return ctx


def _fresh(stack: Stack) -> Context:
    ctx = make_ctx(stack)
    ctx.wait_for_services = False
    return ctx


def _patch(monkeypatch: pytest.MonkeyPatch, ctx: Context, service: str, method: str, fn: Callable[..., Any]) -> None:
    client = ctx.client(service)
    real = getattr(client, method)
    monkeypatch.setattr(client, method, lambda **kw: fn(real, **kw))


def _refuse(code: str) -> Callable[..., Any]:
    def refuse(real: Callable[..., Any], **kw: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": f"{code} (injected)"}}, "op")

    return refuse


def _with_status(status: str, running: int = 0) -> Callable[..., Any]:
    """describe_services as ECS answers while a deleted service drains."""

    def describe(real: Callable[..., Any], **kw: Any) -> Any:
        got = real(**kw)
        for s in got["services"]:
            s["status"], s["runningCount"] = status, running
        return got

    return describe


def test_1_service_scales_to_zero_deletes_with_force_and_waits_until_inactive(moto: None) -> None:
    stack = make_stack()
    steps, ctx = _up(stack, lambda s: s.key == "service:api")
    svc = _step(steps, "service:api")
    current = svc.read(ctx)
    assert current is not None
    svc.delete(ctx, current)
    assert [c.operation for c in ctx.aws.calls if c.is_write][-2:] == ["UpdateService", "DeleteService"]
    assert _sent(ctx, "UpdateService")[-1]["desiredCount"] == 0
    assert _sent(ctx, "DeleteService")[-1]["force"] is True
    assert ctx.aws.calls[-1].operation == "DescribeServices"  # the wait saw it INACTIVE
    assert svc.read(ctx) is None
    n = len(ctx.aws.writes())
    svc.delete(ctx, current)  # twice: nothing to do
    assert len(ctx.aws.writes()) == n


def test_1_a_draining_service_counts_as_gone_and_is_only_waited_for(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    steps, _ = _up(stack, lambda s: s.key == "service:api")
    again = _fresh(stack)
    answers = iter(["DRAINING", "DRAINING", "DRAINING", "INACTIVE"])
    _patch(
        monkeypatch,
        again,
        "ecs",
        "describe_services",
        lambda real, **kw: _with_status(next(answers, "INACTIVE"))(real, **kw),
    )
    assert _step(steps, "service:api").read(again) is None  # planned as gone: not deleted again
    delete_service(again, "demo", "demo-api")
    assert again.aws.writes() == []
    assert next(answers, "done") == "done"  # it polled until ECS said INACTIVE


def test_1_service_wait_is_bounded_and_says_what_is_left(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    _, ctx = _up(stack, lambda s: s.key == "service:api")
    _patch(monkeypatch, ctx, "ecs", "describe_services", _with_status("DRAINING", running=2))
    _short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        delete_service(ctx, "demo", "demo-api")
    assert str(e.value) == (
        "Timed out after 1s waiting for ECS service demo-api to be deleted (draining, 2 task(s) still running). "
        "ECS is still stopping its tasks (each gets its stop timeout and the target group's deregistration "
        "delay). Run the same command again to keep waiting, or stop the tasks in the ECS console."
    )


def test_2_every_active_revision_of_the_family_is_deregistered(moto: None) -> None:
    stack = make_stack()
    steps, ctx = _up(stack, lambda s: s.key == "task-definition:api")
    changed = make_stack(services={"api": {"image": "bitnami/node-example:0.0.2"}})
    converge(steps, _fresh(changed))
    ecs = ctx.client("ecs")
    assert len(ecs.list_task_definitions(familyPrefix="demo-api", status="ACTIVE")["taskDefinitionArns"]) == 2
    converge(steps, _fresh(changed), destroy=True)
    assert ecs.list_task_definitions(familyPrefix="demo-api", status="ACTIVE")["taskDefinitionArns"] == []


SCALED = {
    "services": {
        "api": {
            "scaling": {
                "min": 1,
                "max": 4,
                "target_tracking": [{"metric": "cpu", "target": 85}],
                "step_scaling": [
                    {
                        "name": "queue",
                        "alarm": {"namespace": "AWS/SQS", "metric": "Depth", "threshold": 10},
                        "steps": [{"lower": 0, "change": 1}],
                    }
                ],
                "scheduled": [{"name": "morning", "schedule": "cron(0 8 * * ? *)", "min": 2}],
            }
        }
    }
}


def test_3_scaling_goes_first_policies_alarms_actions_target(moto: None) -> None:
    stack = make_stack(**SCALED)
    steps, ctx = _up(stack, lambda s: s.key == "scaling:api")
    cw, aas = ctx.client("cloudwatch"), ctx.client("application-autoscaling")
    # An alarm of a step policy that was removed by hand: Application Auto Scaling leaves it.
    cw.put_metric_alarm(
        AlarmName="demo-api-step-old",
        Namespace="AWS/SQS",
        MetricName="Depth",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        Tags=tag_list({STACK_TAG: "demo", "spotecs:managed": "true"}),
    )
    cw.put_metric_alarm(
        AlarmName="demo-api-step-theirs",
        Namespace="AWS/SQS",
        MetricName="Depth",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    destroy = _fresh(stack)
    converge(steps, destroy, destroy=True)
    ops = [c.operation for c in destroy.aws.writes()]
    assert ops.index("DeleteScheduledAction") < ops.index("DeregisterScalableTarget")
    assert ops.index("DeleteAlarms") < ops.index("DeleteScalingPolicy") < ops.index("DeregisterScalableTarget")
    assert ops.index("DeregisterScalableTarget") < ops.index("DeleteService")
    assert aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []
    assert aas.describe_scheduled_actions(ServiceNamespace="ecs")["ScheduledActions"] == []
    assert [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]] == ["demo-api-step-theirs"]


def test_4_capacity_provider_leaves_the_cluster_then_is_deleted_and_waited_for(moto: None) -> None:
    stack = make_stack()
    steps, _ = _up(stack)
    destroy = _fresh(stack)
    converge(steps, destroy, destroy=True)
    calls = [c for c in destroy.aws.calls]
    ops = [c.operation for c in calls]
    put = max(i for i, o in enumerate(ops) if o == "PutClusterCapacityProviders")
    assert calls[put].params["capacityProviders"] == [] and calls[put].params["defaultCapacityProviderStrategy"] == []
    assert ops.index("DeleteService") < put < ops.index("DeleteCapacityProvider") < ops.index("DeleteAutoScalingGroup")
    deleted = ops.index("DeleteCapacityProvider")
    assert "DescribeCapacityProviders" in ops[deleted + 1 :]  # the wait


def test_4_a_service_outside_the_stack_on_the_provider_is_named_not_waited_for(moto: None) -> None:
    stack = make_stack()
    steps, ctx = _up(stack, lambda s: s.key.startswith(("capacity-provider", "task-definition")))
    ecs = ctx.client("ecs")
    name = ctx.outputs["capacity-provider"]["name"]
    td = ctx.outputs["task-definition:api"]["arn"]
    ecs.create_service(
        cluster="demo",
        serviceName="theirs",
        taskDefinition=td,
        desiredCount=0,
        capacityProviderStrategy=[{"capacityProvider": name, "weight": 1}],
    )
    cp = _step(steps, "capacity-provider")
    current = cp.read(ctx)
    assert current is not None
    with pytest.raises(AwsError) as e:
        cp.delete(ctx, current)
    assert str(e.value) == (
        f"Failed to delete capacity provider {name}: ECS service(s) theirs in cluster demo still "
        "use it; move them to another capacity provider or delete them, then run the same "
        "command again"
    )
    assert "DeleteCapacityProvider" not in [c.operation for c in ctx.aws.writes()]
    # The cluster says the same about it, at once, instead of retrying until the timeout.
    cluster = _step(steps, "cluster")
    with pytest.raises(AwsError, match="still runs service\\(s\\) theirs that this stack does not delete"):
        cluster.delete(ctx, cluster.read(ctx) or {})


def test_4_capacity_provider_wait_is_bounded_and_says_what_is_left(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    steps, ctx = _up(stack, lambda s: s.key == "capacity-provider")
    cp = _step(steps, "capacity-provider")
    current = cp.read(ctx)
    assert current is not None

    def stuck(real: Callable[..., Any], **kw: Any) -> Any:
        got = real(**kw)
        for p in got["capacityProviders"]:
            p.update(status="ACTIVE", updateStatus="DELETE_IN_PROGRESS", updateStatusReason="tasks still running")
        return got

    _patch(monkeypatch, ctx, "ecs", "describe_capacity_providers", stuck)
    _short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        cp.delete(ctx, current)
    assert str(e.value).startswith(
        f"Timed out after 1s waiting for capacity provider {current['name']} to be "
        "deleted (ACTIVE, DELETE_IN_PROGRESS: tasks still running). ECS still holds"
    )
    assert "run the same command again" in str(e.value)


def test_5_group_unprotects_force_deletes_and_waits_for_its_instances(moto: None) -> None:
    stack = make_stack(instances={"desired": 2})
    steps, ctx = _up(stack, lambda s: s.key == "auto-scaling-group")
    asg = _step(steps, "auto-scaling-group")
    current = asg.read(ctx)
    assert current is not None
    ids = sorted(
        i["InstanceId"]
        for i in ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["demo-instances"])[
            "AutoScalingGroups"
        ][0]["Instances"]
    )
    assert len(ids) == 2
    asg.delete(ctx, current)
    (unprotect,) = _sent(ctx, "SetInstanceProtection")
    assert sorted(unprotect["InstanceIds"]) == ids and unprotect["ProtectedFromScaleIn"] is False
    (delete,) = _sent(ctx, "DeleteAutoScalingGroup")
    assert delete["ForceDelete"] is True
    states = ctx.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    assert {i["State"]["Name"] for r in states for i in r["Instances"]} == {"terminated"}


def test_5_group_wait_is_bounded_and_names_the_instances_left(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack(instances={"desired": 2})
    steps, ctx = _up(stack, lambda s: s.key == "auto-scaling-group")
    asg = _step(steps, "auto-scaling-group")
    current = asg.read(ctx)
    assert current is not None
    real = ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["demo-instances"])
    ids = sorted(i["InstanceId"] for i in real["AutoScalingGroups"][0]["Instances"])

    def lingering(_: Callable[..., Any], **kw: Any) -> Any:
        group = dict(
            real["AutoScalingGroups"][0],
            Status="Delete in progress",
            Instances=[{"InstanceId": i, "LifecycleState": "Terminating:Wait"} for i in ids],
        )
        return {"AutoScalingGroups": [group]}

    _patch(monkeypatch, ctx, "autoscaling", "describe_auto_scaling_groups", lingering)
    _short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        asg.delete(ctx, current)
    left = ", ".join(f"{i} (Terminating:Wait)" for i in ids)
    assert str(e.value) == (
        f"Timed out after 1s waiting for auto scaling group demo-instances to terminate its instances and go "
        f"(2 instance(s) left: {left}). AWS is still terminating them (lifecycle hooks or a slow shutdown can hold "
        "an instance). Run the same command again to keep waiting; the group is already being deleted."
    )
    assert _sent(ctx, "DeleteAutoScalingGroup") == []  # already being deleted: not asked again


def test_6_cluster_retries_while_ecs_catches_up_then_says_what_is_left(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    steps, ctx = _up(stack, lambda s: s.key == "cluster")
    cluster = _step(steps, "cluster")
    current = cluster.read(ctx)
    assert current is not None
    _patch(monkeypatch, ctx, "ecs", "delete_cluster", _refuse("ClusterContainsContainerInstancesException"))

    def one_instance(real: Callable[..., Any], **kw: Any) -> Any:
        got = real(**kw)
        for c in got["clusters"]:
            c["registeredContainerInstancesCount"] = 1
        return got

    _patch(monkeypatch, ctx, "ecs", "describe_clusters", one_instance)
    _short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        cluster.delete(ctx, current)
    assert str(e.value).startswith(
        "Timed out after 1s waiting for ECS cluster demo to be empty "
        "(1 container instance(s) registered). ECS has not caught up"
    )
    assert len(_sent(ctx, "ListContainerInstances")) > 1  # retried, deregistering what is left each time


@pytest.mark.parametrize("deregistered_meanwhile", [True, False])
def test_6_an_instance_ecs_deregisters_meanwhile_is_not_a_failure(
    moto: None, monkeypatch: pytest.MonkeyPatch, deregistered_meanwhile: bool
) -> None:
    stack = make_stack(instances={"desired": 1, "on_demand_percent": 100})
    steps, ctx = _up(stack, lambda s: s.key in ("cluster", "auto-scaling-group"))
    ecs = ctx.client("ecs")
    (instance,) = ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["demo-instances"])[
        "AutoScalingGroups"
    ][0]["Instances"]
    ecs.register_container_instance(
        cluster="demo", instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"], "region": REGION})
    )

    def racing(real: Callable[..., Any], **kw: Any) -> Any:
        if deregistered_meanwhile:
            real(**kw)  # ECS got there first
        raise ClientError({"Error": {"Code": "ServerException", "Message": "try again"}}, "DeregisterContainerInstance")

    _patch(monkeypatch, ctx, "ecs", "deregister_container_instance", racing)
    cluster = _step(steps, "cluster")
    if deregistered_meanwhile:
        cluster.delete(ctx, cluster.read(ctx) or {})
        assert cluster.read(ctx) is None
    else:
        with pytest.raises(AwsError, match=r"^Failed to deregister container instance .*: try again"):
            cluster.delete(ctx, cluster.read(ctx) or {})


def test_7_listeners_target_groups_load_balancer_then_security_groups(moto: None) -> None:
    stack = make_stack()
    steps, _ = _up(stack)
    destroy = _fresh(stack)
    converge(steps, destroy, destroy=True)
    ops = [c.operation for c in destroy.aws.writes()]
    assert ops.index("DeleteListener") < ops.index("DeleteTargetGroup")
    assert ops.index("DeleteListener") < ops.index("DeleteLoadBalancer")
    groups = [c.params["GroupId"] for c in destroy.aws.writes() if c.operation == "DeleteSecurityGroup"]
    assert len(groups) == 2 and ops.index("DeleteLoadBalancer") < ops.index("DeleteSecurityGroup")
    (revoke,) = _sent(destroy, "RevokeSecurityGroupIngress")  # the instances' rule naming the lb group
    assert revoke["IpPermissions"][0]["UserIdGroupPairs"]
    assert ops.index("RevokeSecurityGroupIngress") < ops.index("DeleteSecurityGroup")


def test_7_security_group_retries_dependency_violation_then_names_what_holds_it(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    steps, ctx = _up(stack, lambda s: s.key.startswith("security-group:"))
    ec2 = ctx.client("ec2")
    lb_group = _step(steps, "security-group:lb")
    current = lb_group.read(ctx)
    assert current is not None
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    eni = ec2.create_network_interface(
        SubnetId=subnet, Groups=[current["group_id"]], Description="ELB app/demo/0123456789"
    )["NetworkInterface"]
    tries: list[dict[str, Any]] = []

    def in_use(real: Callable[..., Any], **kw: Any) -> Any:
        tries.append(kw)
        return _refuse("DependencyViolation")(real, **kw)

    _patch(monkeypatch, ctx, "ec2", "delete_security_group", in_use)
    _short_waits(ctx)
    with pytest.raises(WaitTimeout) as e:
        lb_group.delete(ctx, current)
    message = str(e.value)
    assert message.startswith(
        "Timed out after 1s waiting for security group demo-lb to be free (still used by "
        f"network interface {eni['NetworkInterfaceId']} (ELB app/demo/0123456789))"
    )
    assert "run the same command again" in message
    assert len(tries) > 1  # retried within the bound
    # Revoked first: the instances' group (ours) no longer names the load balancer's.
    instances = _step(steps, "security-group:instances").read(ctx)
    assert instances is not None and instances["ingress"] == []


def test_7_security_group_gone_after_a_few_dependency_violations(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    steps, _ = _up(stack, lambda s: s.key.startswith("security-group:"))
    refusals = ["DependencyViolation"] * 3

    def eventually(real: Callable[..., Any], **kw: Any) -> Any:
        if refusals:
            raise ClientError({"Error": {"Code": refusals.pop(), "Message": "in use"}}, "DeleteSecurityGroup")
        return real(**kw)

    destroy = _fresh(stack)
    _patch(monkeypatch, destroy, "ec2", "delete_security_group", eventually)
    converge(steps, destroy, destroy=True)
    assert refusals == []
    assert not [x for x in leftovers("demo", "demo") if x.startswith("security group")]


def test_8_instance_profile_made_outside_spotecs_only_loses_our_role(moto: None) -> None:
    stack = make_stack()
    iam = boto3.client("iam", region_name=REGION)
    role = instance_role("demo", REGION)
    iam.create_instance_profile(InstanceProfileName=role.name)  # untagged: not ours
    steps, _ = _up(stack, lambda s: s.key == "iam:instance-role")
    assert [
        r["RoleName"] for r in iam.get_instance_profile(InstanceProfileName=role.name)["InstanceProfile"]["Roles"]
    ] == [role.name]
    converge(steps, _fresh(stack), destroy=True)
    assert iam.get_instance_profile(InstanceProfileName=role.name)["InstanceProfile"]["Roles"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role.name)


def test_8_launch_template_roles_profile_and_log_groups_go_when_ours(moto: None) -> None:
    stack = make_stack()
    steps, _ = _up(stack)
    destroy = _fresh(stack)
    converge(steps, destroy, destroy=True)
    ops = [c.operation for c in destroy.aws.writes()]
    for op in ("DeleteLaunchTemplate", "DeleteLogGroup", "RemoveRoleFromInstanceProfile", "DeleteInstanceProfile"):
        assert op in ops
    assert ops.count("DeleteRole") == 2
    assert ops.index("DeleteAutoScalingGroup") < ops.index("DeleteLaunchTemplate") < ops.index("DeleteCluster")
    assert leftovers("demo", "demo") == []


# ----------------------------------------------------------------------------- orphans

TWO = deep_merge(
    MINIMAL,
    {
        "services": {
            "old": {
                "image": "bitnami/node-example:0.0.1",
                "container_port": 3000,
                "routing": {"paths": ["/old/*"]},
                "scaling": {"min": 1, "max": 3, "target_tracking": [{"metric": "cpu", "target": 70}]},
            }
        }
    },
)


def old_left() -> list[str]:
    """What of service `old` (stack demo) is still there."""
    return [x for x in leftovers("demo", "demo") if "old" in x]


def rules() -> list[str]:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    lb = elbv2.describe_load_balancers(Names=["demo"])["LoadBalancers"][0]["LoadBalancerArn"]
    return [
        a.get("TargetGroupArn", "").split("/")[-2]
        for x in elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]
        for r in elbv2.describe_rules(ListenerArn=x["ListenerArn"])["Rules"]
        if not r["IsDefault"]
        for a in r["Actions"]
    ]


def test_up_deletes_what_a_service_removed_from_the_file_left(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = stack_file(tmp_path, TWO)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    assert rules() == ["demo-old"]
    before = old_left()
    assert {
        "ECS service demo-old",
        "target group demo-old",
        "task definition demo-old:1",
        "log group /ecs/demo/old",
        "scalable target service/demo/demo-old",
    } <= set(before)

    stack_file(tmp_path, MINIMAL)  # `old` removed from the file
    out = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert out.code == 0, out.text
    for line in (
        "- ECS service demo-old",
        "- target group demo-old",
        "- task definition demo-old",
        "- log group /ecs/demo/old",
        "- service auto scaling service/demo/demo-old",
        "~ listeners demo :80",
    ):
        assert line in out.text, line
    assert "Plan: 0 to add, 1 to change, 0 to replace, 5 to destroy." in out.text
    assert old_left() == [] and rules() == []
    assert "ECS service demo-api" in leftovers("demo", "demo")  # the one still named is untouched
    again = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert "No changes." in again.text and runs.writes() == []


def test_teardown_removes_the_resources_of_a_service_the_file_lost(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = stack_file(tmp_path, TWO)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    providers = providers_of("demo")
    stack_file(tmp_path, MINIMAL)
    out = cmd("teardown", "-f", str(path), "--yes")
    assert out.code == 0, out.text
    assert "- ECS service demo-old" in out.text and "- target group demo-old" in out.text
    assert leftovers("demo", "demo", providers) == []


def test_a_stack_no_longer_routing_any_service_drops_its_load_balancer(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = stack_file(tmp_path, MINIMAL)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    worker = deep_merge(MINIMAL, {})
    worker["services"]["api"] = {"image": "bitnami/node-example:0.0.1"}  # no container_port: a worker
    stack_file(tmp_path, worker)
    out = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert out.code == 0, out.text
    for line in ("- load balancer demo", "- listeners demo :80", "- security group demo-lb", "- target group demo-api"):
        assert line in out.text, line
    left = leftovers("demo", "demo")
    assert not any(
        x.startswith(("load balancer", "listener", "target group", "security group demo-lb")) for x in left
    ), left
    # Nothing more to do on the next run: no deletion left, and the worker's service settled.
    assert "No changes." in cmd("up", "-f", str(path), "--dry-run").text


def test_only_what_carries_the_stack_tags_is_an_orphan(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = stack_file(tmp_path, MINIMAL)
    elbv2, logs = boto3.client("elbv2", region_name=REGION), boto3.client("logs", region_name=REGION)
    ecs = boto3.client("ecs", region_name=REGION)
    vpc = boto3.client("ec2", region_name=REGION).describe_vpcs()["Vpcs"][0]["VpcId"]
    elbv2.create_target_group(Name="demo-theirs", Protocol="HTTP", Port=80, VpcId=vpc)  # untagged
    elbv2.create_target_group(
        Name="demo-api-web",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,  # stack demo-api's
        Tags=tag_list({STACK_TAG: "demo-api", "spotecs:managed": "true"}),
    )
    logs.create_log_group(logGroupName="/ecs/demo/theirs")
    ecs.register_task_definition(
        family="demo-api-web",
        containerDefinitions=[{"name": "x", "image": "y", "memory": 8}],
        tags=tag_list({STACK_TAG: "demo-api", "spotecs:managed": "true"}, "key", "value"),
    )
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    ecs.create_service(
        cluster="demo", serviceName="theirs", desiredCount=0, taskDefinition="demo-api-web"
    )  # untagged, in our cluster
    plan = cmd("up", "-f", str(path), "--dry-run")
    assert "No changes." in plan.text and "theirs" not in plan.text and "demo-api-web" not in plan.text
    out = cmd("teardown", "-f", str(path), "--yes")
    assert out.code == 1  # the cluster still runs `theirs`: said, not deleted
    assert "still runs service(s) theirs that this stack does not delete" in out.text
    assert sorted(g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]) == [
        "demo-api-web",
        "demo-theirs",
    ]
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["/ecs/demo/theirs"]
    assert [a.rsplit("/", 1)[-1] for a in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]] == [
        "demo-api-web:1"
    ]


def test_find_returns_nothing_for_a_stack_that_matches_its_file(moto: None) -> None:
    stack = make_stack(**{"services": TWO["services"]})
    steps, ctx = _up(stack)
    assert find(_fresh(stack), steps) == []
    assert find(_fresh(stack), steps, destroy=True) == []
    # A filtered step list does not turn what the file names into orphans.
    assert find(_fresh(stack), steps[:3]) == []
    one = make_stack()
    keys = {s.key: s for s in find(_fresh(one), build(one, REGION))}
    assert sorted(keys) == [
        "orphan:log-group:old",
        "orphan:scaling:demo-old",
        "orphan:service:demo-old",
        "orphan:target-group:old",
        "orphan:task-definition:old",
    ]
    assert keys["orphan:service:demo-old"].depends_on == (
        "cluster",
        "capacity-provider",
        "listeners",
        "orphan:task-definition:old",
        "orphan:target-group:old",
    )
    assert keys["orphan:scaling:demo-old"].depends_on == ("orphan:service:demo-old",)
    assert keys["orphan:task-definition:old"].depends_on == ("iam:execution-role", "orphan:log-group:old")
    assert all(s.desired(ctx) is None for s in keys.values())


def test_a_service_that_loses_its_scaling_loses_its_scalable_target(moto: None) -> None:
    stack = make_stack(
        **{"services": {"api": {"scaling": {"min": 1, "max": 2, "target_tracking": [{"metric": "cpu", "target": 80}]}}}}
    )
    _up(stack)
    plain = make_stack()
    (orphan,) = find(_fresh(plain), build(plain, REGION))
    assert orphan.key == "orphan:scaling:demo-api" and orphan.depends_on == ("service:api",)
    steps = [*build(plain, REGION), orphan]
    plan_ctx = _fresh(plain)
    _, result = converge(steps, plan_ctx)
    assert "orphan:scaling:demo-api" in result.applied
    aas = plan_ctx.client("application-autoscaling")
    assert aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    assert result.applied[-1] == "orphan:scaling:demo-api"  # deletions run after the forward walk
