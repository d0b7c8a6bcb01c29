"""What a container writes to CloudWatch Logs through the `awslogs` driver, for simulated tasks.

ECS's awslogs driver sends each container's output to the stream
`<awslogs-stream-prefix>/<container name>/<task id>` of `awslogs-group`
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html). moto runs no
container, so the simulated agent writes a few plausible lines when a task starts and one when
it is stopped (the SIGTERM a graceful app logs), straight into moto's logs backend. A missing
log group is skipped (real ECS would fail the task; that is not what these lines are for).
"""

from __future__ import annotations

import time
from typing import Any

from spotecs.sandbox.backends import backend_for


def _streams(ecs: Any, task: Any) -> list[tuple[Any, str, dict[str, Any]]]:
    """(moto log group, stream name, container definition) for each awslogs container."""
    logs = backend_for("logs", ecs.account_id, ecs.region_name)
    if logs is None:
        return []
    td = ecs.describe_task_definition(task.task_definition_arn)
    task_id = task.task_arn.rsplit("/", 1)[-1]
    found = []
    for container in td.container_definitions:
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        group = logs.groups.get(options.get("awslogs-group", ""))
        if config.get("logDriver") != "awslogs" or group is None:
            continue
        prefix = options.get("awslogs-stream-prefix")
        name = f"{prefix}/{container['name']}/{task_id}" if prefix else task_id
        found.append((group, name, container))
    return found


def _put(group: Any, stream: str, messages: list[str], *, earlier_ms: int = 0) -> None:
    if stream not in group.streams:
        group.create_log_stream(stream)
    now = int(time.time() * 1000) - earlier_ms
    # One millisecond apart so their order survives an interleaved, time-sorted read.
    group.put_log_events(stream, [{"timestamp": now + i, "message": m} for i, m in enumerate(messages)])


def write_started(ecs: Any, task: Any) -> None:
    for group, stream, container in _streams(ecs, task):
        ports = [str(m.get("containerPort")) for m in container.get("portMappings") or []]
        lines = [f"Starting {container.get('image', 'the container')}"]
        if ports:
            lines.append(f"Server listening on port {', '.join(ports)}")
        lines.append("Ready to accept requests")
        _put(group, stream, lines)


def write_stopped(ecs: Any, task: Any, reason: str) -> None:
    for group, stream, _ in _streams(ecs, task):
        # Logged before the task is marked stopped (in the same instant here): 1 ms earlier.
        _put(group, stream, [f"Received SIGTERM ({reason}), shutting down"], earlier_ms=1)
