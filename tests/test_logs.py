"""`spotecs logs` on the sandbox: a stack with a web service and a worker is brought up once; the
simulated agent's tasks write their awslogs lines (spotecs/sandbox/task_logs.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import spotecs.up
from spotecs import logs as logs_mod
from spotecs.aws import Aws, AwsOptions
from spotecs.cli import cli
from spotecs.render import Env
from spotecs.sandbox import Sandbox
from spotecs.steps.base import Timeouts

STACK = """\
stack: logdemo
region: us-east-1
instances:
  types: [t3.small]
  min: 1
  max: 3
  desired: 2
  on_demand_base: 1
  on_demand_percent: 20
services:
  api:
    image: bitnami/node-example:0.0.1
    container_port: 3000
    cpu: 256
    memory_soft: 256
    desired_count: 2
  worker:
    image: busybox:1.36
    command: [sh, -c, "while true; do sleep 5; done"]
    cpu: 128
    memory_soft: 128
    desired_count: 1
"""
CLUSTER = "logdemo"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(agent_interval=0.2) as box:
        yield box


@pytest.fixture(scope="module")
def stack(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logs") / "spotecs.yaml"
    path.write_text(STACK)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spotecs.up, "Timeouts", lambda: Timeouts(default=120, delay=0.1))
        result = CliRunner().invoke(
            cli, ["up", "-f", str(path), "--endpoint-url", sandbox.endpoint_url, "--yes"], obj=Env(stdin_isatty=False)
        )
    assert result.exit_code == 0, result.output
    return path


def run(sandbox: Sandbox, stack: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["logs", *args, "-f", str(stack), "--endpoint-url", sandbox.endpoint_url], obj=Env(stdin_isatty=False)
    )


def running_task_ids(sandbox: Sandbox, service: str) -> list[str]:
    arns = sandbox.client("ecs").list_tasks(cluster=CLUSTER, serviceName=f"logdemo-{service}", desiredStatus="RUNNING")[
        "taskArns"
    ]
    return [a.rsplit("/", 1)[-1] for a in arns]


def test_all_services_interleaved_by_time_with_service_task_and_timestamp(sandbox: Sandbox, stack: Path) -> None:
    result = run(sandbox, stack)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    api_ids, worker_ids = running_task_ids(sandbox, "api"), running_task_ids(sandbox, "worker")
    assert len(api_ids) == 2 and len(worker_ids) == 1
    for task_id in api_ids:
        assert any(f" api {task_id[:8]}/api Server listening on port 3000" in line for line in lines), lines
    assert any(f" worker {worker_ids[0][:8]}/worker Starting busybox:1.36" in line for line in lines), lines
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps)
    assert all(s.endswith("+00:00") and "T" in s for s in stamps)


def test_one_service_without_prefix_and_json_document(sandbox: Sandbox, stack: Path) -> None:
    result = run(sandbox, stack, "worker", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["command"], doc["stack"], doc["region"], doc["error"]) == ("logs", "logdemo", "us-east-1", None)
    assert {line["service"] for line in doc["lines"]} == {"worker"}
    assert {line["task"] for line in doc["lines"]} == set(running_task_ids(sandbox, "worker"))
    assert [line["message"] for line in doc["lines"]][:2] == ["Starting busybox:1.36", "Ready to accept requests"]

    text = run(sandbox, stack, "worker")
    assert text.exit_code == 0
    assert all(" worker " not in line for line in text.output.splitlines())


def test_filter_and_task(sandbox: Sandbox, stack: Path) -> None:
    first, second = running_task_ids(sandbox, "api")
    result = run(sandbox, stack, "--filter", "listening", "--task", first[:6])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and f"api {first[:8]}/api Server listening on port 3000" in lines[0]
    assert second[:8] not in result.output


def test_stopped_tasks_reasons_among_the_lines(sandbox: Sandbox, stack: Path) -> None:
    [worker] = running_task_ids(sandbox, "worker")
    sandbox.client("ecs").stop_task(cluster=CLUSTER, task=worker, reason="Essential container in task exited")
    deadline = time.monotonic() + 10
    while worker in running_task_ids(sandbox, "worker") or not running_task_ids(sandbox, "worker"):
        assert time.monotonic() < deadline, "the scheduler did not replace the stopped worker"
        time.sleep(0.1)
    result = run(sandbox, stack, "worker", "--since", "10m")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    stopped = [i for i, line in enumerate(lines) if f"{worker[:8]} task stopped: " in line]
    assert len(stopped) == 1, lines
    assert "Essential container in task exited" in lines[stopped[0]]
    # Among the lines by time: after the stopped task's own lines, before its replacement's.
    [replacement] = running_task_ids(sandbox, "worker")
    assert max(i for i, line in enumerate(lines) if f"{worker[:8]}/worker" in line) < stopped[0]
    assert stopped[0] < min(i for i, line in enumerate(lines) if f"{replacement[:8]}/worker" in line)


def test_follow_polls_when_live_tail_is_refused_and_prints_new_lines(sandbox: Sandbox, stack: Path) -> None:
    reader, _ = logs_mod.reader_for(
        logs_mod.LogOptions(service="api"), stack, AwsOptions(region="us-east-1", endpoint_url=sandbox.endpoint_url)
    )
    logs_mod.find_groups(reader)
    [stream] = [
        s["logStreamName"]
        for s in sandbox.client("logs").describe_log_streams(logGroupName="/ecs/logdemo/api")["logStreams"]
    ][:1]
    emitted: list[logs_mod.Line] = []
    notes: list[str] = []
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:
            sandbox.client("logs").put_log_events(
                logGroupName="/ecs/logdemo/api",
                logStreamName=stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": "GET /health 200"}],
            )
        if len(sleeps) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        logs_mod.follow(reader, int((time.time() - 600) * 1000), emitted.extend, notes.append, sleep=sleep)
    operations = [c.operation for c in reader.aws.calls]
    assert operations.count("StartLiveTail") == 1
    assert operations.index("StartLiveTail") < len(operations) - 1 - operations[::-1].index("FilterLogEvents")
    assert "Live tail unavailable" in notes[0] and "polling" in notes[0]
    new = [line for line in emitted if line.message == "GET /health 200"]
    assert len(new) == 1, "printed once, though later polls overlap it"
    assert new[0].task == stream.rsplit("/", 1)[-1] and new[0].container == "api"
    assert len(emitted) == len(set(emitted))


def test_live_tail_lines_are_read_when_the_endpoint_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where StartLiveTail works, its session results become lines (botocore's event stream is
    an iterable of events; this one is the documented shape, ended by the server)."""
    reader = logs_mod.Reader(
        Aws(AwsOptions(region="us-east-1")),
        "c",
        [logs_mod.Target("api", "/ecs/s/api", "s-api", None, "arn:g")],
        None,
        None,
    )
    events = [
        {"sessionStart": {"sessionId": "x"}},
        {
            "sessionUpdate": {
                "sessionResults": [
                    {
                        "logGroupIdentifier": "arn:g",
                        "logStreamName": "api/api/abc123",
                        "timestamp": 5,
                        "message": "hi\n",
                    }
                ]
            }
        },
    ]

    class Client:
        def start_live_tail(self, **kwargs: Any) -> dict[str, Any]:
            assert kwargs == {"logGroupIdentifiers": ["arn:g"]}
            return {"responseStream": iter(events)}

    monkeypatch.setattr(reader.aws, "streaming_client", lambda service: Client())
    live = logs_mod.LiveTail(reader)
    live.start()
    lines, still_open = live.drain(5)
    if still_open:
        more, still_open = live.drain(5)
        lines += more
    assert lines == [logs_mod.Line(5, "api", "abc123", "api", "hi")]
    assert not still_open


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "SERVICE: 'nosuch' is not a service of stack logdemo"),
        (["--since", "ten minutes"], "--since: 'ten minutes' is not a duration"),
        (["--task", "not-a-task!"], "--task: 'not-a-task!' is not an ECS task id"),
    ],
)
def test_bad_input_exits_2_before_any_aws_call(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "spotecs.yaml"
    path.write_text(STACK)
    made: list[Aws] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(logs_mod, "Aws", lambda *a: made.append(Aws(*a)) or made[-1])
        result = CliRunner().invoke(cli, ["logs", *args, "-f", str(path)], obj=Env(stdin_isatty=False))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert all(not a.calls for a in made)
