"""Fakes and helpers the test modules share, one name and one signature each.

- engine fakes, no Stack and no AWS: `FakeContext`, `Cloud`, `Thing`, `Data`, `run`, `actions`
- a stack on moto: `make_stack`, `make_ctx`, `fresh`, `steps_for`, `up`, `converge`, `replan`,
  `step`, and what a run sent: `writes` (the writing operations), `sent` (the requests of one)
- the workload's stand-ins for the compute layer: `StandIn`, `workload_steps`
- the CLI with recorded sessions and injected faults: `Runs`, `cmd`, `spotecs_cmd`, `leftovers`;
  `up` on the core steps only: `CORE`, `core_only`, `core_sessions`
- faults on one context: `short_waits`, `patch_client`, `refuse`, `with_status`
"""

from __future__ import annotations

import copy
import io
import itertools
import re
import threading
from collections.abc import Callable, Collection, Sequence
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
from spotecs.aws import Aws, AwsOptions, Call
from spotecs.cli import cli
from spotecs.config import Stack
from spotecs.engine.apply import Event, Result, apply
from spotecs.engine.contract import Node
from spotecs.engine.model import Action, Change, Outputs, Plan, has_unknown
from spotecs.engine.plan import plan
from spotecs.render import Env
from spotecs.steps import build, workload
from spotecs.steps.base import Context, DataSource, Timeouts

# ----------------------------------------------------------------------------- engine fakes


class FakeContext(Outputs):
    """What the engine needs of a context, and nothing of spotecs: outputs in and out."""

    def __init__(self) -> None:
        self.outputs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def for_step(self, key: str) -> FakeContext:
        return self


class Cloud:
    """An in-memory provider: resources by step key, and a log of every operation."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    def record(self, op: str, key: str) -> None:
        with self.lock:
            self.log.append((op, key))

    def ops(self, *kinds: str) -> list[tuple[str, str]]:
        return [e for e in self.log if e[0] in kinds]

    def new_id(self, key: str) -> str:
        return f"id-{key}-{next(self._ids)}"


class Thing:
    """A fake resource. `settings` are its desired fields; `uses` are upstream keys whose `id`
    output goes into desired as `<upstream>_id`; hooks let a test block or fail an operation."""

    kind = "thing"
    binds_to: frozenset[str] = frozenset()

    def __init__(
        self,
        key: str,
        cloud: Cloud,
        *,
        depends_on: Collection[str] = (),
        settings: dict[str, Any] | None = None,
        uses: Collection[str] = (),
        replace_on: Collection[str] = (),
        versioned: bool = False,
        hooks: dict[str, Callable[[], None]] | None = None,
        problems: list[str] | None = None,
    ) -> None:
        self.key = key
        self.name = f"demo-{key}"
        self.depends_on = (*depends_on, *(u for u in uses if u not in depends_on))
        self.cloud = cloud
        self.settings = dict(settings or {"size": 1})
        self.uses = tuple(uses)
        self.replace_on = frozenset(replace_on)
        self.versioned = versioned
        self.version_outputs = frozenset({"revision"})
        self.hooks = hooks or {}
        self.problems = problems or []
        self.seen_desired: list[dict[str, Any]] = []

    def _hook(self, op: str) -> None:
        if op in self.hooks:
            self.hooks[op]()

    def desired(self, ctx: FakeContext) -> dict[str, Any] | None:
        return {**self.settings, **{f"{u}_id": ctx.output(u, "id") for u in self.uses}}

    def read(self, ctx: FakeContext) -> dict[str, Any] | None:
        self.cloud.record("read", self.key)
        self._hook("read")
        with self.cloud.lock:
            r = self.cloud.resources.get(self.key)
            return None if r is None else dict(r)

    def create(self, ctx: FakeContext, desired: dict[str, Any]) -> dict[str, Any]:
        assert not has_unknown(desired), f"{self.key} created with unresolved values: {desired}"
        self.seen_desired.append(desired)
        self.cloud.record("create", self.key)
        self._hook("create")
        rid = self.cloud.new_id(self.key)
        with self.cloud.lock:
            self.cloud.resources[self.key] = {**desired, "id": rid, "revision": 1, "_owned": True}
        return {"id": rid, "revision": 1}

    def update(
        self, ctx: FakeContext, desired: dict[str, Any], current: dict[str, Any], change: Change
    ) -> dict[str, Any]:
        assert not has_unknown(desired), f"{self.key} updated with unresolved values: {desired}"
        self.seen_desired.append(desired)
        self.cloud.record("update", self.key)
        self._hook("update")
        with self.cloud.lock:
            r = self.cloud.resources[self.key]
            r.update(desired)
            if self.versioned:
                r["revision"] += 1
                return {"revision": r["revision"]}
            return {}

    def delete(self, ctx: FakeContext, current: dict[str, Any]) -> None:
        self.cloud.record("delete", self.key)
        self._hook("delete")
        with self.cloud.lock:
            self.cloud.resources.pop(self.key, None)

    def replace(self, ctx: FakeContext, desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        self.delete(ctx, current)
        return self.create(ctx, desired)

    def check(self, ctx: FakeContext, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        return list(self.problems)

    def notes(self, ctx: FakeContext, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        return []


class Data:
    """A fake data source: `facts` are what its read returns; `problems` what its check says."""

    kind = "data"

    def __init__(self, key: str, facts: dict[str, Any], *, problems: list[str] | None = None) -> None:
        self.key = key
        self.name = key
        self.depends_on: tuple[str, ...] = ()
        self.facts = facts
        self.problems = problems or []
        self.reads = 0

    def read(self, ctx: FakeContext) -> dict[str, Any] | None:
        self.reads += 1
        return dict(self.facts)

    def check(self, ctx: FakeContext, current: dict[str, Any] | None) -> list[str]:
        return list(self.problems)


def run(steps: list[Node], *, destroy: bool = False, events: list[Event] | None = None) -> tuple[Plan, Result]:
    """Plan then apply on a fresh fake context."""
    c = FakeContext()
    p = plan(steps, c, destroy=destroy)
    return p, apply(p, steps, c, on_event=(events.append if events is not None else lambda e: None))


def actions(p: Plan) -> dict[str, Any]:
    return {c.key: c.action for c in p.changes}


# ----------------------------------------------------------------------------- a stack on moto


REGION = "us-east-1"

MINIMAL: dict[str, Any] = {
    "stack": "demo",
    "region": REGION,
    "instances": {"types": ["t3.small"]},
    "services": {"api": {"image": "bitnami/node-example:0.0.1", "container_port": 3000}},
}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_stack(**overrides: Any) -> Stack:
    """The minimal stack, with nested overrides merged in: make_stack(instances={"min": 2})."""
    return Stack.model_validate(deep_merge(MINIMAL, overrides))


def make_ctx(stack: Stack | None = None) -> Context:
    """A context on moto (start it with the `moto` fixture first); waits never sleep."""
    return Context(
        stack=stack or make_stack(), aws=Aws(AwsOptions(region=REGION)), timeouts=Timeouts(default=5, delay=0)
    )


def fresh(stack: Stack) -> Context:
    """A new run's context (nothing cached, no calls recorded) that does not wait for services:
    plain moto never starts their tasks."""
    ctx = make_ctx(stack)
    ctx.wait_for_services = False
    return ctx


def converge(steps: Sequence[Node], ctx: Context, *, destroy: bool = False) -> tuple[Plan, Result]:
    """Plan then apply (like `up --yes`); returns both. Fails the test on an apply failure."""
    ctx.outputs.clear()
    the_plan = plan(steps, ctx, destroy=destroy)
    result = apply(the_plan, steps, ctx)
    assert not result.failed, {k: repr(e) for k, e in result.failed.items()}
    assert not result.skipped
    return the_plan, result


def replan(steps: Sequence[Node], stack: Stack) -> Plan:
    """A new run's plan."""
    return plan(steps, fresh(stack))


def with_upstreams(steps: dict[str, Node], keys: Sequence[str]) -> list[Node]:
    """The steps named by `keys` plus every upstream they need, in the order of `steps`."""
    wanted: set[str] = set()
    todo = list(keys)
    while todo:
        k = todo.pop()
        if k not in wanted:
            wanted.add(k)
            todo.extend(steps[k].depends_on)
    return [s for k, s in steps.items() if k in wanted]


def steps_for(stack: Stack, keep: Callable[[Node], bool] = lambda s: True) -> list[Node]:
    """The stack's steps, filtered, plus every upstream the kept ones need."""
    all_steps = {s.key: s for s in build(stack, REGION)}
    return with_upstreams(all_steps, [k for k, s in all_steps.items() if keep(s)])


def only(*keys: str) -> Callable[[Node], bool]:
    """For `steps_for` and `up`: the steps with these keys."""
    return lambda s: s.key in keys


def up(stack: Stack, keep: Callable[[Node], bool] = lambda s: True) -> tuple[list[Node], Context]:
    """The kept steps and their upstreams, applied on moto; returns them and the run's context."""
    steps = steps_for(stack, keep)
    ctx = fresh(stack)
    converge(steps, ctx)
    return steps, ctx


def step(steps: Sequence[Node], key: str) -> Any:
    return next(s for s in steps if s.key == key)


def sent(ctx: Context, operation: str) -> list[dict[str, Any]]:
    """The requests of one operation, as spotecs sent them."""
    return [c.params for c in ctx.aws.calls if c.operation == operation]


def writes(ctx: Context, service: str | None = None) -> list[str]:
    """The operations that changed AWS, in order (of one service, if given)."""
    return [c.operation for c in ctx.aws.writes() if service is None or c.service == service]


def target_group_arn(name: str) -> str:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    return str(elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"])


def changes(p: Plan) -> dict[str, Action]:
    """The plan's changes only (no-ops left out)."""
    return {c.key: c.action for c in p.changes if c.is_change}


def touching(calls: list[Call], **match: str) -> list[Call]:
    return [c for c in calls if all(c.params.get(k) == v for k, v in match.items())]


COMPUTE = {"ami", "instance-types", "cluster", "launch-template", "auto-scaling-group", "capacity-provider"}


def compute_steps(stack: Stack) -> list[Node]:
    """The compute steps and their upstreams (network, IAM, security groups)."""
    return steps_for(stack, only(*COMPUTE))


def group(ctx: Context, name: str = "demo-instances") -> dict[str, Any] | None:
    groups = ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return groups["AutoScalingGroups"][0] if groups["AutoScalingGroups"] else None


def cluster(ctx: Context, name: str = "demo") -> dict[str, Any]:
    return ctx.client("ecs").describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]


# ----------------------------------------------------------------------------- the workload's stand-ins


CLUSTER = "demo"
PROVIDER = "demo-spot"
ACCOUNT = "123456789012"  # moto's


class StandIn(DataSource):
    """A compute-layer step (cluster, capacity provider) whose resource the fixture created."""

    kind = "stand-in"

    def __init__(self, key: str, outputs: dict[str, Any]) -> None:
        super().__init__(key, outputs["name"])
        self.outputs = outputs

    def read(self, ctx: Context) -> dict[str, Any]:
        return dict(self.outputs)


def workload_steps(
    stack: Stack, compute: dict[str, StandIn], keep: Callable[[Node], bool] = lambda s: True
) -> list[Node]:
    """This layer's steps (filtered by `keep`) and every upstream they need, compute stood in."""
    everything = {s.key: s for s in build(stack, REGION)}
    everything.update(compute)
    return with_upstreams(everything, [s.key for s in workload.steps(stack, REGION) if keep(s)])


WEB: dict[str, Any] = {"services": {"api": {"image": "bitnami/node-example:0.0.1", "container_port": 3000}}}
SCALED: dict[str, Any] = {
    "services": {"api": {"scaling": {"min": 1, "max": 4, "target_tracking": [{"metric": "cpu", "target": 85}]}}}
}


# ----------------------------------------------------------------------------- the CLI, its sessions and faults


ROOT = Path(__file__).resolve().parent.parent
STACK_TAG = "spotecs:stack"


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


def inject(client: Any, fault: Fault) -> None:
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
    text: str  # stdout and stderr
    questions: list[str]
    stdout: str = ""
    stderr: str = ""


def cmd(*args: str, tty: bool = False, answer: bool = False) -> Out:
    out, err = io.StringIO(), io.StringIO()
    questions: list[str] = []

    def confirm(q: str) -> bool:
        questions.append(q)
        return answer

    env = Env(
        console=Console(file=out, width=250, no_color=True, highlight=False),
        err=Console(file=err, width=250, no_color=True, highlight=False),
        stdin_isatty=tty,
        confirm=confirm,
    )
    result = CliRunner().invoke(cli, list(args), obj=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Out(
        result.exit_code, out.getvalue() + err.getvalue() + result.output, questions, out.getvalue(), err.getvalue()
    )


def spotecs_cmd(*args: str, tty: bool = False, answer: bool = False) -> tuple[int, str, str]:
    """`cmd`, as (exit code, stdout, stderr)."""
    out = cmd(*args, tty=tty, answer=answer)
    return out.code, out.stdout, out.stderr


# The steps a CLI test that needs no compute lets `up` and `teardown` build: enough for the flow.
CORE = ("network", "security-group:", "iam:", "log-group:")


def core_only(monkeypatch: pytest.MonkeyPatch, alter: Sequence[Callable[[Node], None]] = ()) -> None:
    """`up` and `teardown` build only the CORE steps, each passed through `alter` (tests may
    append to it later)."""

    def core_build(stack: Stack, region: str) -> list[Node]:
        steps = [s for s in build(stack, region) if s.key.startswith(CORE)]
        for s in steps:
            for change in alter:
                change(s)
        return steps

    monkeypatch.setattr(spotecs.up, "build", core_build)


def core_sessions(monkeypatch: pytest.MonkeyPatch) -> list[Aws]:
    """`core_only`, and every Aws session the CLI opens, in order."""
    sessions: list[Aws] = []
    real = spotecs.up.Aws

    def recording(options: AwsOptions) -> Aws:
        session = real(options)
        sessions.append(session)
        return session

    monkeypatch.setattr(spotecs.up, "Aws", recording)
    core_only(monkeypatch)
    return sessions


def article(tmp_path: Path, name: str = "article") -> Path:
    path = tmp_path / "article.yaml"
    path.write_text((ROOT / "examples" / "article.yaml").read_text().replace("stack: demo-api", f"stack: {name}"))
    return path


def issued_certificate(domain: str = "api.example.com") -> str:
    """An ISSUED ACM certificate in REGION (an imported one: a requested one stays
    PENDING_VALIDATION, which the pre-write check refuses)."""
    from moto.acm.models import CertBundle

    pem = CertBundle.generate_cert(domain, account_id="123456789012", region=REGION)
    acm = boto3.client("acm", region_name=REGION)
    return str(acm.import_certificate(Certificate=pem.cert, PrivateKey=pem.key)["CertificateArn"])


def production(tmp_path: Path) -> Path:
    """The production example in us-east-1, with an issued certificate (in moto's ACM)."""
    cert = issued_certificate("shop.example.com")
    text = (ROOT / "examples" / "production.yaml").read_text().replace("region: eu-west-1", f"region: {REGION}")
    text = re.sub(r"certificate_arn: \S+", f"certificate_arn: {cert}", text)
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


def leftovers(stack: str, cluster: str, providers: Sequence[str] = (), endpoint: str | None = None) -> list[str]:
    """Everything of the stack still in AWS, by the tagging API (what it covers) and by each
    service's own list calls (what it does not: launch templates, groups, listeners, capacity
    providers, IAM, scalable targets). Gone includes ECS's INACTIVE (deregistered, deleted)."""

    clients: dict[str, Any] = {}

    def c(service: str) -> Any:
        if service not in clients:
            clients[service] = boto3.client(service, region_name=REGION, endpoint_url=endpoint)
        return clients[service]

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
        for prefix in (f"/ecs/{stack}/", f"/aws/ecs/containerinsights/{cluster}/")
        for g in c("logs").describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]
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


# ----------------------------------------------------------------------------- faults on one context


def short_waits(ctx: Context) -> Context:
    """Bounded waits that give up after a second (ten polls): for the tests of timeout messages."""
    ctx.timeouts = Timeouts(default=1, delay=0.1)
    return ctx


def patch_client(
    monkeypatch: pytest.MonkeyPatch, ctx: Context, service: str, method: str, fn: Callable[..., Any]
) -> None:
    client = ctx.client(service)
    real = getattr(client, method)
    monkeypatch.setattr(client, method, lambda **kw: fn(real, **kw))


def refuse(code: str) -> Callable[..., Any]:
    def refuse(real: Callable[..., Any], **kw: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": f"{code} (injected)"}}, "op")

    return refuse


def with_status(status: str, running: int = 0) -> Callable[..., Any]:
    """describe_services as ECS answers while a deleted service drains."""

    def describe(real: Callable[..., Any], **kw: Any) -> Any:
        got = real(**kw)
        for s in got["services"]:
            s["status"], s["runningCount"] = status, running
        return got

    return describe
