"""What `spotecs drill` reads of the stack (the fleet: instances, tasks, targets, services), the
phases it times while an interruption runs, and the HTTP probe. Read-only; never prints."""

from __future__ import annotations

import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from spotecs import fleet
from spotecs.steps.base import Context

GONE_STATES = ("shutting-down", "terminated")

# The phases in the order they are expected, with how the report names them.
PHASES = {
    "notice": "interruption notice sent (experiment running)",
    "draining": "container instance(s) DRAINING",
    "targets_draining": "their targets draining",
    "tasks_moved": "tasks stopped there and running elsewhere",
    "targets_deregistered": "their targets deregistered",
    "terminated": "instance(s) terminated",
    "replacement": "replacement instance(s) registered",
    "recovered": "every service at its desired count with healthy targets",
}
# Phases about the chosen instances' tasks: there are none to see when no task ran there.
TASK_PHASES = ("targets_draining", "tasks_moved", "targets_deregistered")


@dataclass(frozen=True)
class ServiceView:
    name: str  # as in the stack file
    ecs_name: str
    desired: int
    running: int
    min_healthy_percent: int
    target_group_arn: str | None
    healthy_targets: int
    tasks_by_instance: dict[str, int]  # EC2 instance id -> RUNNING tasks of this service
    cpu: int
    memory: int

    @property
    def min_healthy(self) -> int:
        return math.ceil(self.desired * self.min_healthy_percent / 100)


@dataclass(frozen=True)
class InstanceView:
    id: str
    arn: str
    type: str
    zone: str
    state: str
    spot: bool
    container_status: str | None  # ACTIVE, DRAINING; None when not registered
    free_cpu: int
    free_memory: int


@dataclass(frozen=True)
class Fleet:
    instances: dict[str, InstanceView]
    services: dict[str, ServiceView]
    targets: dict[str, dict[str, str]]  # EC2 instance id -> {target group arn: state}


def read_fleet(
    ctx: Context, group_name: str, cluster: str, services: dict[str, str], sizes: dict[str, tuple[int, int]]
) -> Fleet:
    """One look at the stack, through status's batched readers (fleet.py): `services` maps
    stack-file names to ECS service names; `sizes` caches each task definition's reservation
    across looks (a revision never changes)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        container_f = pool.submit(fleet.container_instances, ctx, pool, cluster)
        tasks_f = pool.submit(fleet.tasks, ctx, pool, cluster)
        ec2 = fleet.ec2_instances(ctx, group_name)
        described = (
            ctx.call(
                f"describe the services of {cluster}",
                ctx.client("ecs").describe_services,
                cluster=cluster,
                services=list(services.values()),
            )["services"]
            if services
            else []
        )
        container = {ci["ec2InstanceId"]: ci for ci in container_f.result()}
        all_tasks = tasks_f.result()
        if any(t.get("desiredStatus") == "STOPPED" and t.get("lastStatus") != "STOPPED" for t in all_tasks):
            # Tasks began stopping between the list and the describe: their replacements may have
            # started after the list. Without a second look the drill would count neither.
            seen = {t["taskArn"] for t in all_tasks}
            all_tasks += [t for t in fleet.tasks(ctx, pool, cluster) if t["taskArn"] not in seen]
    instances: dict[str, InstanceView] = {}
    for iid, inst in ec2.items():
        ci = container.get(iid, {})
        free = {x["name"]: x.get("integerValue", 0) for x in ci.get("remainingResources", [])}
        instances[iid] = InstanceView(
            id=iid,
            arn=f"arn:aws:ec2:{ctx.aws.region}:{ctx.account_id}:instance/{iid}",
            type=inst.get("InstanceType", ""),
            zone=inst.get("Placement", {}).get("AvailabilityZone", ""),
            state=inst.get("State", {}).get("Name", ""),
            spot=inst.get("InstanceLifecycle") == "spot",
            container_status=ci.get("status"),
            free_cpu=int(free.get("CPU", 0)),
            free_memory=int(free.get("MEMORY", 0)),
        )
    ci_to_instance = {ci["containerInstanceArn"]: iid for iid, ci in container.items()}
    running: dict[str, dict[str, int]] = {}  # "service:<ecs name>" -> instance id -> RUNNING tasks
    for task in all_tasks:
        if task.get("lastStatus") == "RUNNING":
            per_instance = running.setdefault(task.get("group", ""), {})
            iid = ci_to_instance.get(task.get("containerInstanceArn", ""), "?")
            per_instance[iid] = per_instance.get(iid, 0) + 1
    views: dict[str, ServiceView] = {}
    targets: dict[str, dict[str, str]] = {}
    by_name = {s["serviceName"]: s for s in described}
    for name, ecs_name in services.items():
        svc = by_name.get(ecs_name)
        if svc is None or svc.get("status") != "ACTIVE":
            continue
        per_instance = running.get(f"service:{ecs_name}", {})
        tg_arn = next(
            (lb.get("targetGroupArn") for lb in svc.get("loadBalancers", []) if lb.get("targetGroupArn")), None
        )
        healthy = 0
        for t in fleet.target_health(ctx, tg_arn) if tg_arn else []:
            healthy += t["state"] == "healthy"
            targets.setdefault(t["id"], {})[str(tg_arn)] = t["state"]
        if svc["taskDefinition"] not in sizes:
            sizes[svc["taskDefinition"]] = task_size(ctx, svc["taskDefinition"])
        cpu, memory = sizes[svc["taskDefinition"]]
        config = svc.get("deploymentConfiguration") or {}
        views[name] = ServiceView(
            name=name,
            ecs_name=ecs_name,
            desired=int(svc.get("desiredCount", 0)),
            running=sum(per_instance.values()),
            min_healthy_percent=int(config.get("minimumHealthyPercent", 100)),
            target_group_arn=tg_arn,
            healthy_targets=healthy,
            tasks_by_instance=per_instance,
            cpu=cpu,
            memory=memory,
        )
    return Fleet(instances, views, targets)


def task_size(ctx: Context, task_definition: str) -> tuple[int, int]:
    """(CPU units, MiB) a task reserves on its instance, as ECS places it."""
    td = ctx.call(
        f"describe task definition {task_definition}",
        ctx.client("ecs").describe_task_definition,
        taskDefinition=task_definition,
    )["taskDefinition"]
    containers = td.get("containerDefinitions", [])
    cpu = int(td.get("cpu") or sum(int(c.get("cpu") or 0) for c in containers))
    memory = int(td.get("memory") or sum(int(c.get("memoryReservation") or c.get("memory") or 0) for c in containers))
    return cpu, memory


# --- phases -------------------------------------------------------------------------------


@dataclass
class Watch:
    """The phases seen so far (seconds after the experiment started) and what went wrong."""

    chosen: list[str]
    initial_instances: set[str]
    idle: bool = False  # no service task ran on the chosen instances
    min_running: dict[str, int] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    _ever_draining: set[str] = field(default_factory=set)
    _in_service: dict[str, bool] = field(default_factory=dict)  # at the last look before it went

    def see(self, elapsed: float, fleet: Fleet, experiment_status: str) -> None:
        def mark(phase: str, reached: bool) -> None:
            if reached and phase not in self.times:
                self.times[phase] = elapsed

        mine = [fleet.instances.get(i) for i in self.chosen]
        alive = [i for i in mine if i is not None and i.state not in GONE_STATES]
        for inst in alive:
            if inst.container_status == "DRAINING":
                self._ever_draining.add(inst.id)
            self._in_service[inst.id] = "healthy" in fleet.targets.get(inst.id, {}).values()
        chosen_targets = [s for i in self.chosen for s in fleet.targets.get(i, {}).values()]
        on_chosen = sum(s.tasks_by_instance.get(i, 0) for s in fleet.services.values() for i in self.chosen)
        terminated = not alive

        mark("notice", experiment_status in ("running", "completed"))
        mark("draining", all(i.container_status == "DRAINING" for i in alive) and not terminated)
        if not self.idle:
            mark("targets_draining", "draining" in chosen_targets)
            mark("tasks_moved", on_chosen == 0 and all(s.running >= s.min_healthy for s in fleet.services.values()))
            mark("targets_deregistered", not chosen_targets and "notice" in self.times)
        if terminated and "terminated" not in self.times:
            self._judge_termination()
        mark("terminated", terminated)
        new = [
            i
            for i in fleet.instances.values()
            if i.id not in self.initial_instances and i.container_status == "ACTIVE" and i.state == "running"
        ]
        mark("replacement", len(new) >= len(self.chosen))
        for s in fleet.services.values():
            self.min_running[s.name] = min(self.min_running.get(s.name, s.running), s.running)
        healthy = all(
            s.running >= s.desired and (s.target_group_arn is None or s.healthy_targets >= s.desired)
            for s in fleet.services.values()
        )
        mark("recovered", healthy and not chosen_targets and {"terminated", "replacement"} <= set(self.times))

    def _judge_termination(self) -> None:
        for iid in self.chosen:
            if iid not in self._ever_draining:
                self.problems.append(
                    f"{iid} was never set DRAINING: spot instance draining is off "
                    "(ECS_ENABLE_SPOT_INSTANCE_DRAINING in the instances' user data), so its tasks were killed"
                )
            elif self._in_service.get(iid):
                self.problems.append(
                    f"{iid} was terminated while its targets still received traffic: draining did not finish "
                    "within the 2-minute notice (the deregistration delay plus the stop timeout are too long)"
                )

    def applies(self, phase: str) -> bool:
        return not (self.idle and phase in TASK_PHASES)

    @property
    def done(self) -> bool:
        return "recovered" in self.times


# --- the probe ------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer to count, not to follow


@dataclass
class ProbeResult:
    url: str
    requests: int = 0
    by_class: dict[str, int] = field(default_factory=dict)  # "2xx".."5xx", "timeout", "error"
    failures: int = 0
    longest_failure_streak: int = 0
    first_failure: float | None = None  # seconds after the probe started
    last_failure: float | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Probe:
    """GET `url` every `interval` s on a thread until stopped; 2xx and 3xx succeed."""

    def __init__(self, url: str, interval: float = 0.2, timeout: float = 2.0) -> None:
        self.result = ProbeResult(url)
        self.interval = interval
        self.timeout = timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spotecs-drill-probe", daemon=True)
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._streak = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> ProbeResult:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 1)
        return self.result

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            began = time.monotonic()
            outcome = self.once()
            self.record(outcome, began - start)
            self._stop.wait(max(self.interval - (time.monotonic() - began), 0))

    def once(self) -> str:
        try:
            with self._opener.open(self.result.url, timeout=self.timeout) as response:
                return f"{response.status // 100}xx"
        except urllib.error.HTTPError as e:
            return f"{e.code // 100}xx"
        except TimeoutError:
            return "timeout"
        except urllib.error.URLError as e:
            return "timeout" if isinstance(e.reason, TimeoutError) else "error"
        except OSError:
            return "error"

    def record(self, outcome: str, at: float) -> None:
        r = self.result
        r.requests += 1
        r.by_class[outcome] = r.by_class.get(outcome, 0) + 1
        if outcome in ("2xx", "3xx"):
            self._streak = 0
            return
        r.failures += 1
        self._streak += 1
        r.longest_failure_streak = max(r.longest_failure_streak, self._streak)
        r.first_failure = at if r.first_failure is None else r.first_failure
        r.last_failure = at


Clock = Callable[[], float]
