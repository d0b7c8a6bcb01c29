"""`spotecs logs`: the services' container log lines and their stopped tasks' reasons.

Lines come from each service's log group (FilterLogEvents, interleaved by time); the awslogs
stream name `<prefix>/<container>/<task id>` gives the task and container of each line. Stopped
tasks (ECS keeps them about an hour) are merged in as lines of their own, at the time they
stopped, because "why does my task keep dying" is the first question logs must answer.

`--follow` uses CloudWatch Logs live tail (StartLiveTail) when the endpoint offers it, and polls
FilterLogEvents otherwise: the choice is made by trying, and any refusal or failure to start a
session (no such operation, no permission, no streaming endpoint) falls back to polling.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spotecs import config, names
from spotecs.aws import Aws, AwsOptions, call, paginate
from spotecs.errors import AwsError, UsageError
from spotecs.render import Env, json_document

POLL_SECONDS = 2.0
# Stopped tasks are looked up again at most this often while following (they change slowly).
STOPPED_EVERY_SECONDS = 10.0
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LIVE_TAIL_MAX_GROUPS = 10  # StartLiveTail's limit on logGroupIdentifiers


@dataclass(frozen=True)
class LogOptions:
    service: str | None = None
    since: str = "1h"
    filter: str | None = None
    task: str | None = None
    follow: bool = False
    output: str = "text"


@dataclass(frozen=True)
class Line:
    """One log line, or a stopped task's reason (`kind` "stopped")."""

    timestamp: int  # milliseconds since the epoch
    service: str
    task: str
    container: str = ""
    message: str = ""
    kind: str = "log"

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.timestamp / 1000, UTC).isoformat(timespec="milliseconds")

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "time": self.time}

    def sort_key(self) -> tuple[Any, ...]:
        # In the same millisecond, a task's own last words come before the news of its stop.
        return (self.timestamp, self.kind == "stopped", self.service, self.task, self.container, self.message)


def parse_since(text: str) -> int:
    """Seconds in `30s`, `10m`, `2h`, `1d`."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"--since: '{text}' is not a duration like 30s, 10m, 2h or 1d")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class Target:
    """What is read for one service."""

    service: str
    log_group: str
    ecs_service: str
    stream_names: list[str] | None = None  # only these streams (--task); None: all
    arn: str = ""


@dataclass
class Reader:
    """Reads lines from the services' log groups and stopped tasks, remembering what it gave."""

    aws: Aws
    cluster: str
    targets: list[Target]
    pattern: str | None
    task: str | None
    seen: set[tuple[Any, ...]] = field(default_factory=set)

    def events(self, since_ms: int) -> list[Line]:
        lines = []
        for t in self.targets:
            if t.stream_names == []:
                continue  # --task matched no stream of this service
            kwargs: dict[str, Any] = {"logGroupName": t.log_group, "startTime": since_ms}
            if self.pattern:
                kwargs["filterPattern"] = self.pattern
            if t.stream_names:
                kwargs["logStreamNames"] = t.stream_names[:100]
            found = paginate(
                f"read log group {t.log_group}", self.aws.client("logs"), "filter_log_events", "events", **kwargs
            )
            lines += [line_of(t.service, e["logStreamName"], e["timestamp"], e["message"]) for e in found]
        return self.fresh(lines)

    def stopped(self, since_ms: int) -> list[Line]:
        lines = []
        ecs = self.aws.client("ecs")
        for t in self.targets:
            arns = list(
                paginate(
                    f"list stopped tasks of service {t.ecs_service}",
                    ecs,
                    "list_tasks",
                    "taskArns",
                    cluster=self.cluster,
                    serviceName=t.ecs_service,
                    desiredStatus="STOPPED",
                )
            )
            for i in range(0, len(arns), 100):
                tasks = call(
                    f"describe stopped tasks of service {t.ecs_service}",
                    ecs.describe_tasks,
                    cluster=self.cluster,
                    tasks=arns[i : i + 100],
                )["tasks"]
                lines += [stopped_line(t.service, task) for task in tasks]
        return self.fresh(
            [
                line
                for line in lines
                if line.timestamp >= since_ms and (not self.task or line.task.startswith(self.task))
            ]
        )

    def fresh(self, lines: Iterable[Line]) -> list[Line]:
        """Lines not given before (polls overlap on purpose: events can arrive late)."""
        out = []
        for line in lines:
            key = (line.timestamp, line.service, line.task, line.container, line.message, line.kind)
            if key not in self.seen:
                self.seen.add(key)
                out.append(line)
        return sorted(out, key=Line.sort_key)


def line_of(service: str, stream: str, timestamp: int, message: str) -> Line:
    parts = stream.split("/")
    task = parts[-1]
    container = parts[-2] if len(parts) >= 3 else ""
    return Line(int(timestamp), service, task, container, message.rstrip("\n"))


def stopped_line(service: str, task: dict[str, Any]) -> Line:
    when = task.get("stoppedAt") or task.get("stoppingAt") or task.get("createdAt")
    ms = int(when.timestamp() * 1000) if isinstance(when, datetime) else 0
    reason = task.get("stoppedReason") or "no reason given"
    exits = [
        f"{c['name']} exit {c['exitCode']}" + (f" ({c['reason']})" if c.get("reason") else "")
        for c in task.get("containers", [])
        if c.get("exitCode") is not None
    ]
    message = f"task stopped: {reason}" + (f"; {', '.join(exits)}" if exits else "")
    return Line(ms, service, task["taskArn"].rsplit("/", 1)[-1], "", message, "stopped")


def format_line(line: Line, *, prefix_service: bool) -> str:
    who = f"{line.service} " if prefix_service else ""
    where = f"{line.task[:8]}" + (f"/{line.container}" if line.container else "")
    return f"{line.time} {who}{where} {line.message}"


def reader_for(
    opts: LogOptions, file: Any, aws_options: AwsOptions, doc: dict[str, Any] | None = None
) -> tuple[Reader, bool]:
    """The stack's services to read (all, or the one named); bad input (the file, SERVICE,
    --task, the AWS options) fails before AWS. `doc`, the JSON document, gets the stack and region."""
    stack = config.load(file)
    if doc is not None:
        doc["stack"] = stack.stack
    if opts.service is not None and opts.service not in stack.services:
        known = ", ".join(sorted(stack.services)) or "none"
        raise UsageError(f"SERVICE: '{opts.service}' is not a service of stack {stack.stack} (services: {known})")
    if opts.task is not None and not re.fullmatch(r"[0-9a-f-]{1,36}", opts.task):
        raise UsageError(f"--task: '{opts.task}' is not an ECS task id (hexadecimal, as in the task ARN)")
    if aws_options.region is None and stack.region:
        aws_options = AwsOptions(aws_options.profile, stack.region, aws_options.endpoint_url, aws_options.max_attempts)
    chosen = [opts.service] if opts.service else sorted(stack.services)
    targets = [Target(s, names.log_group(stack.stack, s), names.service(stack.stack, s)) for s in chosen]
    aws = Aws(aws_options)
    aws.check_options()
    if doc is not None:
        doc["region"] = aws.region
    reader = Reader(aws, stack.cluster_name, targets, opts.filter, opts.task)
    return reader, opts.service is None


def find_groups(reader: Reader) -> None:
    """Keep the services whose log group exists (with its ARN); restrict to --task's streams."""
    client = reader.aws.client("logs")
    present = []
    for t in reader.targets:
        groups = paginate(
            f"describe log group {t.log_group}",
            client,
            "describe_log_groups",
            "logGroups",
            logGroupNamePrefix=t.log_group,
        )
        group = next((g for g in groups if g["logGroupName"] == t.log_group), None)
        if group is None:
            continue
        t.arn = group["arn"].removesuffix(":*")
        if reader.task:
            streams = paginate(
                f"list log streams of {t.log_group}",
                client,
                "describe_log_streams",
                "logStreams",
                logGroupName=t.log_group,
            )
            t.stream_names = [
                s["logStreamName"] for s in streams if s["logStreamName"].split("/")[-1].startswith(reader.task)
            ]
        present.append(t)
    if not present:
        what = ", ".join(t.log_group for t in reader.targets)
        raise AwsError(f"read the logs of {what}", "no such log group: is the stack up? (spotecs up)")
    reader.targets = present


def read(reader: Reader, since_ms: int) -> list[Line]:
    """Every line since `since_ms` (log lines and stopped tasks), in time order."""
    return sorted([*reader.events(since_ms), *reader.stopped(since_ms)], key=Line.sort_key)


# --- following ----------------------------------------------------------------------------


class LiveTail:
    """A StartLiveTail session read on a thread; lines arrive on `queue`. `start()` raises
    AwsError when the endpoint refuses live tail, so the caller can fall back to polling."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.queue: queue.Queue[Line | BaseException | None] = queue.Queue()
        self._stream: Any = None

    def start(self) -> None:
        targets = [t for t in self.reader.targets if t.stream_names != []]
        if len(targets) > _LIVE_TAIL_MAX_GROUPS:
            raise AwsError("start a live tail", f"more than {_LIVE_TAIL_MAX_GROUPS} log groups")
        by_group = {t.arn: t for t in targets}
        kwargs: dict[str, Any] = {"logGroupIdentifiers": list(by_group)}
        if self.reader.pattern:
            kwargs["logEventFilterPattern"] = self.reader.pattern
        if len(targets) == 1 and targets[0].stream_names:
            kwargs["logStreamNames"] = targets[0].stream_names
        client = self.reader.aws.streaming_client("logs")
        operation = getattr(client, "start_live_tail", None)
        if operation is None:  # a botocore that predates live tail
            raise AwsError("start a live tail", "this botocore has no StartLiveTail")
        try:
            self._stream = operation(**kwargs)["responseStream"]
        except (ClientError, BotoCoreError) as e:
            raise AwsError("start a live tail", str(e)) from None
        threading.Thread(target=self._pump, args=(by_group,), name="spotecs-live-tail", daemon=True).start()

    def _pump(self, by_group: dict[str, Target]) -> None:
        try:
            for event in self._stream:
                for e in event.get("sessionUpdate", {}).get("sessionResults", []):
                    t = by_group.get(e.get("logGroupIdentifier", "").removesuffix(":*"))
                    service = t.service if t else e.get("logGroupIdentifier", "")
                    self.queue.put(line_of(service, e["logStreamName"], e["timestamp"], e["message"]))
            self.queue.put(None)  # the session ended (AWS ends them after 3 hours)
        except Exception as e:  # handed to the main thread, which decides
            self.queue.put(e)

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def drain(self, timeout: float) -> tuple[list[Line], bool]:
        """Lines received within `timeout` s, and whether the session is still open."""
        lines: list[Line] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                return lines, True
            if item is None or isinstance(item, BaseException):
                return lines, False
            lines.append(item)


def follow(
    reader: Reader,
    since_ms: int,
    emit: Callable[[list[Line]], None],
    note: Callable[[str], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> None:
    """Emit what exists, then new lines until interrupted (Ctrl-C raises KeyboardInterrupt)."""
    emit(read(reader, since_ms))
    live: LiveTail | None = LiveTail(reader)
    try:
        live.start()  # type: ignore[union-attr]
        note("Following with CloudWatch Logs live tail; Ctrl-C to stop.")
    except AwsError as e:
        live = None
        note(f"Live tail unavailable ({e.detail}); polling every {POLL_SECONDS:.0f}s. Ctrl-C to stop.")
    last_stopped = clock()
    try:
        while True:
            if live is not None:
                lines, open_ = live.drain(POLL_SECONDS)
                emit(reader.fresh(lines))
                if not open_:
                    live = None
                    note(f"Live tail session ended; polling every {POLL_SECONDS:.0f}s.")
            else:
                sleep(POLL_SECONDS)
                # Overlap one poll: an event can be ingested after a later one was read.
                emit(reader.events(since_ms))
            if clock() - last_stopped >= STOPPED_EVERY_SECONDS or live is None:
                emit(reader.stopped(since_ms))
                last_stopped = clock()
            since_ms = max(since_ms, int((clock() - 60) * 1000))
    finally:
        if live is not None:
            live.stop()


def json_lines(lines: Iterable[Line]) -> Iterator[str]:
    for line in lines:
        yield json.dumps(line.as_json())


def logs(env: Env, opts: LogOptions, file: Any, aws_options: AwsOptions) -> list[Line]:
    """Print the lines (then follow them when asked); returns what was printed. With `-o json`,
    one document with the common head (render.json_document) and `lines`; with --follow, JSON
    Lines instead, one object per line as it arrives."""
    with json_document(env, opts.output == "json" and not opts.follow, command="logs") as doc:
        return _logs(env, opts, file, aws_options, doc)


def _logs(env: Env, opts: LogOptions, file: Any, aws_options: AwsOptions, doc: dict[str, Any]) -> list[Line]:
    since_ms = int((time.time() - parse_since(opts.since)) * 1000)
    reader, prefix = reader_for(opts, file, aws_options, doc)
    find_groups(reader)
    printed: list[Line] = []

    def emit(lines: list[Line]) -> None:
        printed.extend(lines)
        if opts.output == "json" and opts.follow:
            for text in json_lines(lines):
                env.console.print(text, markup=False, highlight=False, soft_wrap=True)
        elif opts.output == "text":
            for line in lines:
                style = "yellow" if line.kind == "stopped" else None
                env.console.print(
                    format_line(line, prefix_service=prefix), markup=False, highlight=False, soft_wrap=True, style=style
                )

    def note(text: str) -> None:
        env.err.print(text, markup=False, highlight=False)

    if opts.follow:
        follow(reader, since_ms, emit, note)
    else:
        emit(read(reader, since_ms))
        if opts.output == "json":
            doc["lines"] = [line.as_json() for line in printed]
        elif not printed:
            note(f"No log lines since {opts.since} ago.")
    return printed
