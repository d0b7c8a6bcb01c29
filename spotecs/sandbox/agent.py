"""A simulated ECS agent and scheduler: fills in what moto does not do by itself.

Each ``tick()`` works directly on moto's in-process backends, in every account and region
that has state: mark ASG instances spot, register/deregister container instances, and drive
ECS services to their desired count (tasks, deployments, load-balancer targets).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from spotecs.sandbox import draining, instances, interruptions, lb_front, refresh, services
from spotecs.sandbox import tasks as task_ops
from spotecs.sandbox.backends import backend_for, regions_with_state, require_moto

log = logging.getLogger(__name__)


@dataclass
class TickSummary:
    """What one tick changed; errors are per-resource and never raised."""

    registered: list[str] = field(default_factory=list)  # EC2 instance ids
    deregistered: list[str] = field(default_factory=list)  # EC2 instance ids
    marked_spot: list[str] = field(default_factory=list)  # EC2 instance ids
    tasks_started: list[str] = field(default_factory=list)  # task ARNs
    tasks_stopped: list[str] = field(default_factory=list)  # task ARNs
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any((self.registered, self.deregistered, self.marked_spot, self.tasks_started, self.tasks_stopped))


class SimulatedAgent:
    """Call ``tick()`` for one pass, or ``start()`` a daemon thread that ticks periodically."""

    def __init__(self) -> None:
        require_moto()
        # Held for a whole tick; the Sandbox also holds it around each HTTP request so
        # clients never see a half-applied tick (and moto's dicts are not mutated under them).
        self.lock = threading.RLock()
        self.last_summary = TickSummary()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged: set[str] = set()

    def tick(self) -> TickSummary:
        summary = TickSummary()
        with self.lock:
            try:
                self._tick(summary)
            except Exception as exc:  # never let the thread die
                self._report(summary, "tick", exc)
        self.last_summary = summary
        return summary

    def _tick(self, summary: TickSummary) -> None:
        def report(what: str, exc: BaseException) -> None:
            self._report(summary, what, exc)

        for _, _, asg in regions_with_state("autoscaling"):
            summary.marked_spot += instances.mark_spot(asg, report)
        interruptions.advance(report)
        lb_front.expired(lb_front.CLOCK.now())
        for account_id, region, ecs in regions_with_state("ecs"):
            ec2 = backend_for("ec2", account_id, region)
            elbv2 = backend_for("elbv2", account_id, region)
            if ec2 is not None:
                summary.registered += instances.register_new(ec2, ecs, report)

                def stop_on(cluster: str, ci: Any, ecs: Any = ecs, elbv2: Any = elbv2) -> None:
                    for task in list(ecs.tasks.get(cluster, {}).values()):
                        if (
                            task.container_instance_arn == ci.container_instance_arn
                            and task.desired_status == "RUNNING"
                        ):
                            lb_front.mark_dead_task(elbv2, task)  # the load balancer has not noticed yet
                            task_ops.stop_task(ecs, elbv2, task, "Host EC2 instance terminated.")
                            summary.tasks_stopped.append(task.task_arn)

                summary.deregistered += instances.sync_registered(ec2, ecs, stop_on, report)
            for key, service in list(ecs.services.items()):
                try:
                    result = services.reconcile(ecs, elbv2, service)
                except Exception as exc:
                    report(f"service {key}", exc)
                    continue
                summary.tasks_started += result.started
                summary.tasks_stopped += result.stopped
            try:
                summary.tasks_stopped += draining.finish_stops(ecs, elbv2)
            except Exception as exc:
                report("draining", exc)
            for cluster in list(ecs.clusters.values()):
                try:
                    services.recount_cluster(ecs, cluster)
                except Exception as exc:
                    report(f"cluster {cluster.name}", exc)
        for account_id, region, asg in regions_with_state("autoscaling"):
            refresh.advance(asg, backend_for("ecs", account_id, region), report)

    def _report(self, summary: TickSummary, what: str, exc: BaseException) -> None:
        message = f"{what}: {type(exc).__name__}: {exc}"
        summary.errors.append(message)
        if message not in self._logged:  # a stuck resource would otherwise log twice a second
            self._logged.add(message)
            log.warning("sandbox agent: %s", message, exc_info=exc)

    def start(self, interval: float = 0.5) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                self.tick()

        self._thread = threading.Thread(target=loop, name="spotecs-sandbox-agent", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
