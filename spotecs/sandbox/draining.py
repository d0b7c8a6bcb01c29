"""Container instance draining, as the ECS scheduler does it.

"Service tasks on the draining container instance that are in the RUNNING state are stopped and
replaced according to the service's deployment configuration parameters, minimumHealthyPercent
and maximumPercent" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html):
replacements start on ACTIVE instances while the total stays within maximumPercent, and a
draining instance's task is stopped only while the service keeps minimumHealthyPercent of its
desired count running. A stopped task's targets are deregistered first; the task stops once the
target group's deregistration delay has passed (lb_front.py keeps them `draining` meanwhile).
Delays follow the sandbox clock.
"""

from __future__ import annotations

import math
from typing import Any

from spotecs.sandbox import lb_front
from spotecs.sandbox import tasks as task_ops
from spotecs.sandbox.clock import CLOCK

# Set on moto's Task while its targets drain: (real monotonic stop time, reason).
STOPPING_ATTR = "_spotecs_stopping"


def on_draining_host(ecs: Any, task: Any) -> bool:
    instance_id = (task.container_instance_arn or "").split("/")[-1]
    ci = ecs.container_instances.get(task.cluster_name, {}).get(instance_id)
    return ci is not None and ci.status == "DRAINING" and ci.agent_connected


def percents(service: Any) -> tuple[int, int]:
    """(minimumHealthyPercent, maximumPercent), with ECS's defaults for a rolling update."""
    config = getattr(service, "deployment_configuration", None) or {}
    return int(config.get("minimumHealthyPercent", 100)), int(config.get("maximumPercent", 200))


def max_total(service: Any, desired: int) -> int:
    return desired * percents(service)[1] // 100


def retire(ecs: Any, elbv2: Any, service: Any, leaving: list[Any], others: int, desired: int) -> list[str]:
    """Begin stopping the leaving tasks the service can spare; returns their ARNs."""
    min_healthy = math.ceil(desired * percents(service)[0] / 100)
    count = others + len(leaving)
    stopped = []
    for task in leaving:
        if count - 1 < min_healthy:
            break
        begin_stop(elbv2, task, "Task stopped because the container instance is draining.")
        count -= 1
        stopped.append(task.task_arn)
    return stopped


def begin_stop(elbv2: Any, task: Any, reason: str) -> None:
    """Deregister the task's targets (they drain) and stop the task when the longest delay ends."""
    delay = 0.0
    for tg_arn, target_id, port in getattr(task, task_ops.TARGETS_ATTR, []):
        tg = elbv2.target_groups.get(tg_arn) if elbv2 is not None else None
        if tg is not None:
            lb_front.begin_draining(tg_arn, tg, target_id, port)
            delay = max(delay, lb_front.deregistration_delay(tg))
    task_ops.sync_targets(elbv2, task, [])
    task.desired_status = "STOPPED"
    task.last_status = "DEACTIVATING"
    setattr(task, STOPPING_ATTR, (CLOCK.after(delay), reason))


def finish_stops(ecs: Any, elbv2: Any) -> list[str]:
    """Stop the tasks whose targets have drained; returns their ARNs."""
    now = CLOCK.now()
    done = []
    for tasks in list(ecs.tasks.values()):
        for task in list(tasks.values()):
            stopping = getattr(task, STOPPING_ATTR, None)
            if stopping is None or stopping[0] > now:
                continue
            delattr(task, STOPPING_ATTR)
            if task.last_status != "STOPPED":
                task_ops.stop_task(ecs, elbv2, task, stopping[1])
                done.append(task.task_arn)
    return done
