"""Starting and stopping one service task on moto's ECS model."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spotecs.sandbox import targets, task_logs

# Linux ephemeral range the ECS agent uses for dynamic host ports (hostPort 0).
DYNAMIC_PORTS = range(32768, 61000)
# Extra attribute kept on moto's Task: the (target group, id, port) targets we registered.
TARGETS_ATTR = "_spotecs_targets"


@dataclass
class TaskSize:
    cpu: int
    memory: int
    static_ports: list[int] = field(default_factory=list)


def task_size(td: Any) -> TaskSize:
    """Placement requirements: task-level cpu/memory if set, else the containers' sums."""
    containers = td.container_definitions
    cpu = sum(int(c.get("cpu") or 0) for c in containers)
    memory = sum(int(c.get("memoryReservation") or c.get("memory") or 0) for c in containers)
    static: list[int] = []
    for c in containers:
        for mapping in c.get("portMappings") or []:
            host_port = _host_port(td.network_mode, mapping)
            if host_port:
                static.append(host_port)
    return TaskSize(
        cpu=int(getattr(td, "cpu", None) or cpu),
        memory=int(getattr(td, "memory", None) or memory),
        static_ports=static,
    )


def _host_port(network_mode: str | None, mapping: dict[str, Any]) -> int | None:
    """Fixed host port of a mapping; None means dynamic (bridge) or none (awsvpc)."""
    if network_mode == "host":
        return int(mapping.get("hostPort") or mapping["containerPort"])
    if network_mode in (None, "bridge"):
        return int(mapping.get("hostPort") or 0) or None
    return None


def remaining(container_instance: Any, name: str) -> Any:
    for resource in container_instance.remaining_resources:
        if resource["name"] == name:
            return resource.get("stringSetValue", []) if resource["type"] == "STRINGSET" else resource["integerValue"]
    return [] if name.startswith("PORTS") else 0


def fits(container_instance: Any, size: TaskSize) -> bool:
    used_ports = set(remaining(container_instance, "PORTS"))
    return (
        remaining(container_instance, "CPU") >= size.cpu
        and remaining(container_instance, "MEMORY") >= size.memory
        and not any(str(p) in used_ports for p in size.static_ports)
    )


def _bindings(td: Any, used: set[str]) -> tuple[list[list[dict[str, Any]]], list[int]]:
    """Network bindings per container and every host port taken, dynamic ones included."""
    free = (p for p in DYNAMIC_PORTS if str(p) not in used)
    per_container: list[list[dict[str, Any]]] = []
    ports: list[int] = []
    for c in td.container_definitions:
        bindings = []
        for mapping in c.get("portMappings") or []:
            if td.network_mode == "awsvpc":
                continue  # the ENI owns the port; there is no host binding
            host_port = _host_port(td.network_mode, mapping) or next(free)
            ports.append(host_port)
            bindings.append(
                {
                    "bindIP": "0.0.0.0",
                    "containerPort": int(mapping["containerPort"]),
                    "hostPort": host_port,
                    "protocol": mapping.get("protocol", "tcp"),
                }
            )
        per_container.append(bindings)
    return per_container, ports


def start_task(ecs: Any, service: Any, td: Any, container_instance: Any, deployment_id: str) -> Any:
    """Create a RUNNING task for ``service`` on ``container_instance``."""
    # Typed as Any: we set attributes moto's classes do not declare (network_bindings...).
    ecs_models: Any = importlib.import_module("moto.ecs.models")

    cluster = ecs.clusters[service.cluster_name]
    size = task_size(td)
    per_container, ports = _bindings(td, set(remaining(container_instance, "PORTS")))
    requirements = {"CPU": size.cpu, "MEMORY": size.memory, "PORTS": ports, "PORTS_UDP": []}
    task = ecs_models.Task(
        cluster,
        td,
        container_instance.container_instance_arn,
        requirements,
        backend=ecs,
        group=f"service:{service.name}",
        launch_type=service.launch_type or "EC2",
        started_by=deployment_id,  # what ECS puts there: the deployment id
        networking_configuration=service.network_configuration or None,
        tags=list(service.tags) if service.propagate_tags == "SERVICE" else [],
    )
    # moto's Task walks RUNNING -> STOPPED each time it is described; a service task is
    # long-running, so give this one no transitions.
    task._transitions = []
    task.containers = []
    for definition, bindings in zip(td.container_definitions, per_container, strict=True):
        container = ecs_models.Container(td)
        container.name = definition.get("name")
        container.image = definition.get("image")
        container.cpu = definition.get("cpu", 0)
        container.memory = definition.get("memory")
        container.last_status = "RUNNING"
        container.network_bindings = bindings  # serialised as networkBindings
        task.containers.append(container)
    now = datetime.now(UTC)
    task.created_at = task.started_at = now
    ecs.update_container_instance_resources(container_instance, requirements)
    ecs.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    setattr(task, TARGETS_ATTR, [])
    task_logs.write_started(ecs, task)
    return task


def wanted_targets(service: Any, task: Any, ec2_instance_id: str | None) -> list[tuple]:
    """(target group arn, target id, port) for each load balancer entry of the service."""
    wanted = []
    for lb in service.load_balancers:
        tg_arn = lb.get("targetGroupArn")
        if not tg_arn:
            continue  # classic ELB: nothing to register in elbv2
        for container in task.containers:
            if container.name != lb.get("containerName"):
                continue
            for binding in getattr(container, "network_bindings", []):
                if binding["containerPort"] == int(lb.get("containerPort", -1)):
                    wanted.append((tg_arn, ec2_instance_id, binding["hostPort"]))
            ip = _task_ip(task)
            if ip and not getattr(container, "network_bindings", []):
                wanted.append((tg_arn, ip, int(lb["containerPort"])))
    return [t for t in wanted if t[1]]


def _task_ip(task: Any) -> str | None:
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail["name"] == "privateIPv4Address":
                return str(detail["value"])
    return None


def sync_targets(elbv2: Any, task: Any, wanted: list[tuple]) -> None:
    """Register/deregister so the task's targets are exactly ``wanted``."""
    current = getattr(task, TARGETS_ATTR, [])
    if elbv2 is not None:
        for tg_arn, target_id, port in [t for t in current if t not in wanted]:
            targets.deregister(elbv2, tg_arn, [(target_id, port)])
        for tg_arn, target_id, port in [t for t in wanted if t not in current]:
            targets.register(elbv2, tg_arn, [(target_id, port)])
    setattr(task, TARGETS_ATTR, list(wanted))


def stop_task(ecs: Any, elbv2: Any, task: Any, reason: str) -> None:
    """Deregister the task's targets, free its resources and mark it STOPPED."""
    sync_targets(elbv2, task, [])
    instance_id = (task.container_instance_arn or "").split("/")[-1]
    if instance_id in ecs.container_instances.get(task.cluster_name, {}):
        ecs.stop_task(task.cluster_name, task.task_arn, reason)  # frees CPU/MEMORY/PORTS
    task.last_status = task.desired_status = "STOPPED"
    task.stopped_reason = reason
    task.stopped_at = datetime.now(UTC)
    for container in task.containers:
        container.last_status = "STOPPED"
    task_logs.write_stopped(ecs, task, reason)
