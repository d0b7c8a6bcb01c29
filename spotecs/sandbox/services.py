"""Drive ECS services to their desired count, like the ECS scheduler (moto never starts them)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spotecs.sandbox import draining, secrets_access
from spotecs.sandbox import tasks as task_ops

_MAX_EVENTS = 100
_LAST_EVENT = "_spotecs_last_event"


@dataclass
class ServiceResult:
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)


def service_tasks(ecs: Any, service: Any) -> list[Any]:
    """Tasks of ``service`` that are meant to be running."""
    return [
        t
        for t in list(ecs.tasks.get(service.cluster_name, {}).values())
        if t.group == f"service:{service.name}" and t.desired_status == "RUNNING"
    ]


def _healthy_host(ecs: Any, task: Any) -> Any | None:
    """The task's container instance, if it is registered, ACTIVE or DRAINING, and connected
    (tasks on a draining instance keep running until the scheduler has replaced them)."""
    instance_id = (task.container_instance_arn or "").split("/")[-1]
    ci = ecs.container_instances.get(task.cluster_name, {}).get(instance_id)
    if ci is None or ci.status not in ("ACTIVE", "DRAINING") or not ci.agent_connected:
        return None
    return ci


def _place(ecs: Any, service: Any, td: Any, deployment_id: str) -> Any | None:
    """Binpack on memory then CPU: the fitting instance with the least left, or None."""
    size = task_ops.task_size(td)
    candidates = [
        ci
        for ci in list(ecs.container_instances.get(service.cluster_name, {}).values())
        if ci.status == "ACTIVE" and ci.agent_connected and task_ops.fits(ci, size)
    ]
    if not candidates:
        return None
    host = min(
        candidates,
        key=lambda ci: (
            task_ops.remaining(ci, "MEMORY"),
            task_ops.remaining(ci, "CPU"),
            ci.container_instance_arn,
        ),
    )
    return task_ops.start_task(ecs, service, td, host, deployment_id)


def _new_deployment(service: Any, td_arn: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    previous = service.deployments[0] if service.deployments else {}
    deployment_id = f"ecs-svc/{secrets.randbelow(10**19)}"
    return {
        **previous,
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": td_arn,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
    }


def start_deployment(service: Any, td_arn: str) -> dict[str, Any]:
    """A new PRIMARY deployment of ``td_arn``; the previous primary carries on as ACTIVE until
    the new one has replaced its tasks (what ECS does on UpdateService)."""
    if service.deployments:
        service.deployments[0]["status"] = "ACTIVE"
    deployment = _new_deployment(service, td_arn)
    service.deployments.insert(0, deployment)
    return deployment


def _event(service: Any, message: str) -> None:
    """Add a service event, like ECS, only when the situation changes (newest first)."""
    if getattr(service, _LAST_EVENT, None) == message:
        return
    setattr(service, _LAST_EVENT, message)
    service.events.insert(0, {"id": secrets.token_hex(16), "createdAt": datetime.now(UTC), "message": message})
    del service.events[_MAX_EVENTS:]


def _set_counts(deployment: dict[str, Any], desired: int, running: int) -> None:
    pending = max(desired - running, 0)
    state = "COMPLETED" if running == desired else "IN_PROGRESS"
    new: dict[str, Any] = {"desiredCount": desired, "runningCount": running, "pendingCount": pending}
    if deployment.get("status") == "PRIMARY":
        new["rolloutState"] = state
        new["rolloutStateReason"] = (
            f"ECS deployment {deployment['id']} completed."
            if state == "COMPLETED"
            else f"ECS deployment {deployment['id']} in progress."
        )
    if any(deployment.get(k) != v for k, v in new.items()):
        deployment.update(new, updatedAt=datetime.now(UTC))


def _stop(ecs: Any, elbv2: Any, task: Any, reason: str, result: ServiceResult) -> None:
    task_ops.stop_task(ecs, elbv2, task, reason)
    result.stopped.append(task.task_arn)


def _scale_in_order(ecs: Any, tasks: list[Any]) -> list[Any]:
    """Stop tasks on the emptiest hosts first, so the rest stay binpacked."""

    def key(task: Any) -> tuple[int, str]:
        host = _healthy_host(ecs, task)
        free = task_ops.remaining(host, "MEMORY") if host else 1 << 30
        return (-free, task.task_arn)

    return sorted(tasks, key=key)


def reconcile(ecs: Any, elbv2: Any, service: Any) -> ServiceResult:
    """One scheduler pass for one service."""
    result = ServiceResult()
    running = service_tasks(ecs, service)
    if service.status != "ACTIVE":  # deleted: ECS drains every task, then calls it INACTIVE
        for task in running:
            _stop(ecs, elbv2, task, "Service was deleted.", result)
        service.running_count = service.pending_count = 0
        service.status = "INACTIVE"
        return result
    if not service.deployments:
        return result  # CODE_DEPLOY / EXTERNAL controllers: not ECS's job
    # Tasks of a DRAINING instance keep running until replaced (draining.py); the others whose
    # instance is gone or disconnected are lost.
    leaving = [t for t in running if draining.on_draining_host(ecs, t)]
    for task in [t for t in running if t not in leaving and _healthy_host(ecs, t) is None]:
        _stop(ecs, elbv2, task, "Container instance is no longer available.", result)
    running = [t for t in running if t.desired_status == "RUNNING" and t not in leaving]

    td = ecs.describe_task_definition(service.task_definition)
    service.task_definition = td.arn  # moto stores update_service's "family:rev" verbatim
    if service.deployments[0].get("taskDefinition") != td.arn:  # in case UpdateService's fill did not
        start_deployment(service, td.arn)
    primary = service.deployments[0]
    desired = int(service.desired_count or 0)
    mine = [t for t in running if t.started_by == primary["id"]]
    old = [t for t in running if t.started_by != primary["id"]]

    for task in _scale_in_order(ecs, mine)[: max(len(mine) - desired, 0)]:
        _stop(ecs, elbv2, task, "Scaling activity initiated by deployment.", result)
        mine.remove(task)
    _, _, _, region, account, *_ = str(service.arn).split(":")
    denied = secrets_access.refusal(account, region, td) if len(mine) < desired else None
    if denied:  # the task starts, cannot read its secrets, and stops before any container runs
        task = _place(ecs, service, td, primary["id"])
        if task is not None:
            result.started.append(task.task_arn)
            _stop(ecs, elbv2, task, denied, result)
            _event(service, f"(service {service.name}) has started 1 tasks: (task {task.task_arn.rsplit('/', 1)[-1]}).")
    # While an instance drains, maximumPercent bounds the replacements started beside its tasks.
    while (
        not denied
        and len(mine) < desired
        and (not leaving or len(mine) + len(old) + len(leaving) < draining.max_total(service, desired))
    ):
        task = _place(ecs, service, td, primary["id"])
        if task is not None:
            mine.append(task)
            result.started.append(task.task_arn)
        elif old:  # make room for the new revision by retiring an old task
            _stop(ecs, elbv2, old.pop(), "Replaced by a new deployment.", result)
        else:
            break
    result.stopped += draining.retire(ecs, elbv2, service, leaving, len(mine) + len(old), desired)
    leaving = [t for t in leaving if t.desired_status == "RUNNING"]
    if len(mine) == desired:
        for task in old:
            _stop(ecs, elbv2, task, "Replaced by a new deployment.", result)
        old = []
        service.deployments[:] = [primary]

    for task in mine + old:
        host = _healthy_host(ecs, task)
        task_ops.sync_targets(
            elbv2, task, task_ops.wanted_targets(service, task, host.ec2_instance_id if host else None)
        )
    _set_counts(primary, desired, len(mine))
    for deployment in service.deployments[1:]:
        count = sum(1 for t in old if t.started_by == deployment["id"])
        _set_counts(deployment, count, count)
    service.running_count = len(mine) + len(old) + len(leaving)
    service.pending_count = max(desired - len(mine), 0)
    if len(mine) < desired:
        _event(
            service,
            f"(service {service.name}) was unable to place a task because no "
            "container instance met all of its requirements.",
        )
    elif not old:
        _event(service, f"(service {service.name}) has reached a steady state.")
    return result


def recount_cluster(ecs: Any, cluster: Any) -> None:
    """Recompute the cluster's counters from the tasks; moto's own drift (update_service)."""
    cluster_tasks = list(ecs.tasks.get(cluster.name, {}).values())
    cluster.running_tasks_count = sum(1 for t in cluster_tasks if t.desired_status == "RUNNING")
    cluster.pending_tasks_count = sum(
        s.pending_count for s in list(ecs.services.values()) if s.cluster_name == cluster.name and s.status == "ACTIVE"
    )
    cluster.registered_container_instances_count = len(ecs.container_instances.get(cluster.name, {}))
    cluster.active_services_count = sum(
        1 for s in list(ecs.services.values()) if s.cluster_name == cluster.name and s.status == "ACTIVE"
    )
