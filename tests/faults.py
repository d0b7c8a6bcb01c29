"""Fault injection into AWS calls by a seeded schedule, through botocore events on the run's
clients (tests and bench/soak.py share it).

A schedule numbers a run's API calls (one per call, retries included in it) and gives some of
them a fault:
- transient (botocore retries the call, as it would in AWS): `throttle` and `5xx` answered
  instead of AWS, `connection` (refused before AWS saw it), `lost` (AWS did it, the answer timed
  out: the same request is sent again, which only client tokens make safe);
- final (the call fails, as when botocore's retries run out): the same four kinds, raised to the
  caller; a final `lost` is a call AWS did whose answer never came;
- `crash`: the process dies at call k, before it is sent or after AWS did it: `Crash` (a
  BaseException, so nothing in spotecs catches it) is raised there and at every later call.

Transient faults skip botocore's backoff (the retry is immediate) so a schedule runs fast."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

import spotecs.up
from spotecs.aws import Aws, AwsOptions

KINDS = ("throttle", "5xx", "connection", "lost")


class Crash(BaseException):
    """The process died between two AWS calls."""


@dataclass(frozen=True)
class Fault:
    kind: str  # one of KINDS, or "crash"
    final: bool = False  # raised to the caller instead of retried by botocore
    after: bool = False  # crash only: after AWS did the call


@dataclass
class Schedule:
    seed: int
    faults: dict[int, Fault]

    @classmethod
    def seeded(cls, seed: int, calls: int, *, count: int = 3, crash: float = 0.5) -> Schedule:
        """`count` faults among the first `calls` calls, and with probability `crash` a crash."""
        rng = random.Random(seed)
        at = rng.sample(range(calls), min(count + 1, calls))
        faults = {k: Fault(rng.choice(KINDS), final=rng.random() < 0.4) for k in at[:count]}
        if len(at) > count and rng.random() < crash:
            faults[at[count]] = Fault("crash", after=rng.random() < 0.5)
        return cls(seed, faults)

    def __str__(self) -> str:
        parts = [
            f"{k}:{f.kind}{'!' if f.final else ''}{'+' if f.after else ''}" for k, f in sorted(self.faults.items())
        ]
        return f"seed {self.seed} [{' '.join(parts)}]"


@dataclass
class Injector:
    """Numbers the calls of every client of one run and applies the schedule's faults."""

    schedule: Schedule
    calls: int = 0
    injected: list[tuple[int, str, str]] = field(default_factory=list)
    crashed: bool = False
    sessions: list[Aws] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)

    def created(self, operation: str, param: str) -> list[str]:
        """What the runs' `operation` calls asked for by `param` (e.g. the capacity providers'
        names: ECS lists none, only describes those it is told)."""
        return [
            str(c.params[param])
            for a in self.sessions
            for c in a.calls
            if c.operation == operation and param in c.params
        ]

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register_first("before-call", self._before_call)
        events.register_first("needs-retry", self._needs_retry)
        events.register_first("after-call", self._after_call)

    def _before_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            if self.crashed:
                raise Crash(f"call after the crash: {model.name}")
            k = self.calls
            self.calls += 1
            fault = self.schedule.faults.get(k)
        self._local.pending = None
        self._local.after = None
        self._local.protocol = model.service_model.protocol
        if fault is None:
            return
        self.injected.append((k, fault.kind, model.name))
        if fault.kind == "crash":
            if fault.after:
                self._local.after = fault
                return
            with self._lock:
                self.crashed = True
            raise Crash(f"crash before call {k}: {model.name}")
        if not fault.final:
            self._local.pending = fault
        elif fault.kind == "lost":
            self._local.after = fault
        elif fault.kind == "connection":
            raise EndpointConnectionError(endpoint_url="https://injected")
        else:
            code, status = ("Throttling", 400) if fault.kind == "throttle" else ("ServiceUnavailable", 503)
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": f"{code} (injected)"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                model.name,
            )

    def send(self, request: Any, aws: Callable[[], Any]) -> Any:
        """Send a request to moto (`aws`), or not, as this call's pending fault says."""
        fault: Fault | None = getattr(self._local, "pending", None)
        if fault is None:
            return aws()
        self._local.pending = None
        self._local.retry = True
        if fault.kind == "lost":
            aws()  # AWS does it...
            raise ReadTimeoutError(endpoint_url=request.url)  # ...and the answer is lost
        protocol = self._local.protocol
        if fault.kind == "connection" or protocol not in ("json", "query", "ec2"):
            raise EndpointConnectionError(endpoint_url=request.url)
        return _error_response(request.url, protocol, fault.kind)

    def _needs_retry(self, **_: Any) -> int | None:
        if getattr(self._local, "retry", False):
            self._local.retry = False
            return 0  # retried at once; botocore's own handler (and backoff) is skipped
        return None

    def _after_call(self, model: Any, **_: Any) -> None:
        fault: Fault | None = getattr(self._local, "after", None)
        if fault is None:
            return
        self._local.after = None
        if fault.kind == "crash":
            with self._lock:
                self.crashed = True
            raise Crash(f"crash after {model.name}")
        raise ReadTimeoutError(endpoint_url="https://injected")


def _error_response(url: str, protocol: str, kind: str) -> AWSResponse:
    code, status = ("Throttling", 400) if kind == "throttle" else ("ServiceUnavailable", 503)
    if protocol == "json":
        body = json.dumps({"__type": code, "message": "injected"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1"}
    elif protocol == "ec2":
        code = "RequestLimitExceeded" if kind == "throttle" else "Unavailable"
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>injected</Message></Error></Errors>"
            "<RequestID>injected</RequestID></Response>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message></Error>"
            "<RequestId>injected</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    return AWSResponse(url, status, headers, Raw())


@contextmanager
def injected(schedule: Schedule, monkeypatch: pytest.MonkeyPatch) -> Iterator[Injector]:
    """Every run started inside (spotecs.up.prepare) gets its clients from an Aws whose clients
    carry the schedule's faults; one Injector counts the calls of all of them."""
    injector = Injector(schedule)

    class Faulty(Aws):
        def client(self, service: str) -> Any:
            fresh = service not in self._clients
            client = super().client(service)
            if fresh:
                injector.attach(client)
            return client

    def opened(options: AwsOptions) -> Aws:
        aws = Faulty(options)
        injector.sessions.append(aws)
        return aws

    from moto.core.botocore_stubber import BotocoreStubber

    moto_answer = BotocoreStubber.__call__

    # moto answers from a before-send handler that runs ahead of any a client registers: the
    # faults of the send itself are applied in it, around moto's answer.
    def faulty_moto(self: BotocoreStubber, event_name: str, request: Any, **kw: Any) -> Any:
        return injector.send(request, lambda: moto_answer(self, event_name, request, **kw))

    with monkeypatch.context() as mp:
        mp.setattr(spotecs.up, "Aws", opened)
        mp.setattr(BotocoreStubber, "__call__", faulty_moto)
        yield injector


# ----------------------------------------------------------------------------- the property

# Smaller than the article's stack (one instance type, one web service, one step-scaling alarm)
# so a schedule runs in about a second, yet it has one of every resource the property counts.
PROPERTY_STACK: dict[str, Any] = {
    "stack": "faults",
    "region": "us-east-1",
    "instances": {"types": ["t3.small"], "min": 1, "max": 3, "desired": 1},
    "load_balancer": {},
    "services": {
        "api": {
            "image": "bitnami/node-example:0.0.1",
            "container_port": 3000,
            "desired_count": 1,
            "scaling": {
                "min": 1,
                "max": 5,
                "step_scaling": [
                    {
                        "name": "busy",
                        "alarm": {"namespace": "AWS/ECS", "metric": "CPUUtilization", "threshold": 70},
                        "steps": [{"lower": 0, "change": 1}],
                    }
                ],
            },
        }
    },
}


@dataclass
class Outcome:
    schedule: str
    converged: bool = False
    duplicates: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    problem: str = ""
    injected: int = 0
    unlocks: int = 0

    @property
    def ok(self) -> bool:
        return self.converged and not self.duplicates and not self.leaked and not self.problem


def lock_held(stack: str) -> bool:
    import boto3

    from spotecs import names

    ssm = boto3.client("ssm", region_name=PROPERTY_STACK["region"])
    try:
        ssm.get_parameter(Name=names.lock_parameter(stack))
    except ssm.exceptions.ParameterNotFound:
        return False
    return True


def inventory(stack: str, cluster: str, providers: Any = ()) -> dict[str, int]:
    """How many of each resource the stack has, by each service's own list/describe calls."""
    import boto3

    clients: dict[str, Any] = {}

    def c(service: str) -> Any:
        if service not in clients:
            clients[service] = boto3.client(service, region_name=PROPERTY_STACK["region"])
        return clients[service]

    ecs, ec2 = c("ecs"), c("ec2")
    templates = [
        t for t in ec2.describe_launch_templates()["LaunchTemplates"] if t["LaunchTemplateName"].startswith(f"{stack}-")
    ]
    versions = sum(
        len(ec2.describe_launch_template_versions(LaunchTemplateId=t["LaunchTemplateId"])["LaunchTemplateVersions"])
        for t in templates
    )
    live = [x for x in ecs.describe_clusters(clusters=[cluster])["clusters"] if x["status"] == "ACTIVE"]
    arns = ecs.list_services(cluster=cluster)["serviceArns"] if live else []
    services = [
        s
        for s in (ecs.describe_services(cluster=cluster, services=arns)["services"] if arns else [])
        if s["status"] == "ACTIVE"
    ]
    elbv2 = c("elbv2")
    lbs = [lb for lb in elbv2.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerName"] == stack]
    return {
        "load balancer": len(lbs),
        "listener": sum(
            len(elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]) for lb in lbs
        ),
        "target group": sum(
            1 for g in elbv2.describe_target_groups()["TargetGroups"] if g["TargetGroupName"].startswith(f"{stack}-")
        ),
        "security group": sum(
            1 for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"].startswith(f"{stack}-")
        ),
        "launch template": len(templates),
        "launch template version": versions,
        "auto scaling group": sum(
            1
            for g in c("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
            if g["AutoScalingGroupName"].startswith(f"{stack}-")
        ),
        "cluster": len(live),
        "capacity provider": sum(
            1
            for p in (
                ecs.describe_capacity_providers(capacityProviders=sorted(providers))["capacityProviders"]
                if providers
                else []
            )
            if p["status"] == "ACTIVE"
        ),
        "service": len(services),
        "task definition revision": sum(
            1
            for a in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
            if a.rsplit("/", 1)[-1].startswith(f"{stack}-")
        ),
        "scalable target": sum(
            1
            for t in c("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
            if t["ResourceId"].startswith(f"service/{cluster}/")
        ),
        "scaling policy": len(
            c("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
        ),
        "alarm": sum(
            1 for a in c("cloudwatch").describe_alarms()["MetricAlarms"] if a["AlarmName"].startswith(f"{stack}-")
        ),
        "log group": len(c("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{stack}/")["logGroups"]),
    }


def check_schedule(
    seed: int, path: Any, monkeypatch: pytest.MonkeyPatch, clean: dict[str, int], calls: tuple[int, int]
) -> Outcome:
    """up (with faults; may fail) → up → the clean run's inventory → teardown (with faults; may
    fail) → teardown → nothing left. Run it inside a fresh moto."""
    from tests.helpers import cmd, leftovers

    stack = PROPERTY_STACK["stack"]
    up_schedule = Schedule.seeded(seed, calls[0])
    down_schedule = Schedule.seeded(seed + 1_000_003, calls[1])
    out = Outcome(f"up {up_schedule} / teardown {down_schedule}")
    providers: set[str] = set()

    def run(schedule: Schedule, *args: str) -> int | None:
        """The exit code, or None when the run crashed."""
        with injected(schedule, monkeypatch) as inj:
            try:
                code = cmd(*args, "-f", str(path), "--yes").code
            except Crash:
                code = None
        out.injected += len(inj.injected)
        providers.update(inj.created("CreateCapacityProvider", "name"))
        if lock_held(stack):
            # A crashed run (or one whose release failed) leaves its lock, as a killed process
            # does: the user breaks it with force-unlock, then runs again.
            out.unlocks += 1
            cmd("force-unlock", "-f", str(path), "--yes")
        return code

    run(up_schedule, "up", "--no-wait")
    if (code := run(Schedule(-1, {}), "up", "--no-wait")) != 0:
        out.problem = f"the second up exited {code}"
        return out
    got = inventory(stack, stack, providers)
    out.duplicates = [f"{k}: {got.get(k)} (clean run: {v})" for k, v in clean.items() if got.get(k) != v]
    out.converged = not out.duplicates
    run(down_schedule, "teardown")
    if (code := run(Schedule(-1, {}), "teardown")) != 0:
        out.problem = f"the second teardown exited {code}"
    left = inventory(stack, stack, providers)
    out.leaked = leftovers(stack, stack, sorted(providers)) + [f"{k}: {n}" for k, n in left.items() if n]
    if lock_held(stack):
        out.leaked.append("the stack's lock")
    return out


def clean_run(path: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, int], tuple[int, int]]:
    """A fault-free up and teardown: the inventory to compare with and the calls each makes."""
    from tests.helpers import cmd

    with injected(Schedule(-1, {}), monkeypatch) as up_calls:
        up = cmd("up", "-f", str(path), "--yes", "--no-wait")
        assert up.code == 0, up.text
    stack = PROPERTY_STACK["stack"]
    got = inventory(stack, stack, up_calls.created("CreateCapacityProvider", "name"))
    with injected(Schedule(-1, {}), monkeypatch) as down_calls:
        down = cmd("teardown", "-f", str(path), "--yes")
        assert down.code == 0, down.text
    return got, (up_calls.calls, down_calls.calls)
