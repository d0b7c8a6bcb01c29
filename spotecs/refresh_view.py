"""What `refresh-ami` prints: the report (`--check`), the plan, and the live progress of an
instance refresh beside the services' counts. Rich on a terminal, plain lines otherwise (at
least one every 10 s, so a scheduler's log shows the run is alive)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from spotecs.config import Stack
from spotecs.fleet_images import Fleet, age
from spotecs.render import Env

QUIET_LINE_EVERY = 10.0  # seconds, off a terminal


@dataclass(frozen=True)
class ServiceCount:
    name: str
    running: int
    desired: int
    healthy_targets: int | None  # None for a worker (no load balancer)

    def text(self) -> str:
        targets = "" if self.healthy_targets is None else f", {self.healthy_targets} healthy target(s)"
        return f"{self.name} {self.running}/{self.desired} running{targets}"


def _image(facts: Fleet, image_id: str | None) -> str:
    release = facts.images.get(image_id or "")
    if release is None:
        return image_id or "(none)"
    when = age(release.created)
    return f"{image_id} ({release.name}{', ' + when if when else ''})"


def report_doc(stack: Stack, facts: Fleet) -> dict[str, Any]:
    """The `--check` report as one JSON document."""

    def image(image_id: str | None) -> dict[str, Any] | None:
        release = facts.images.get(image_id or "")
        return release.as_dict() if release else ({"image_id": image_id} if image_id else None)

    latest = facts.latest.image_id if facts.latest else None
    return {
        "stack": stack.stack,
        "alias": stack.instances.ami,
        "launch_template": {"name": facts.template, "version": facts.version, "image": image(facts.template_image)},
        "latest": image(latest),
        "instances": {
            "total": len(facts.instances),
            "on_older_image": len(facts.outdated),
            "by_image": {i.instance_id: i.image_id for i in facts.instances},
        },
        "up_to_date": facts.up_to_date,
    }


def report_text(console: Console, stack: Stack, region: str, facts: Fleet, file: Path) -> None:
    latest = facts.latest.image_id if facts.latest else None
    if latest is None:
        console.print(f"No ECS-optimized image for {stack.instances.ami} in {region}.", markup=False)
    console.print(f"Stack {stack.stack} in {region}, AMI alias {stack.instances.ami}:", markup=False)
    console.print(
        f"  in use:    {_image(facts, facts.template_image)}, launch template {facts.template} version {facts.version}",
        markup=False,
    )
    console.print(f"  latest:    {_image(facts, latest)}", markup=False)
    console.print(
        f"  instances: {len(facts.outdated)} of {len(facts.instances)} run an older image",
        markup=False,
    )
    if facts.up_to_date:
        console.print("Up to date.", markup=False)
    else:
        console.print(
            f"A newer AMI is available: `spotecs refresh-ami -f {file}` moves the fleet to it (exit code 3).",
            markup=False,
        )


def describe_plan(
    console: Console,
    stack: Stack,
    region: str,
    facts: Fleet,
    min_healthy: int,
    max_healthy: int,
    warmup: int,
    provider: str,
) -> None:
    assert facts.latest is not None
    console.print(f"spotecs will move stack {stack.stack} in {region} to the latest {stack.instances.ami} AMI:\n")
    if facts.template_image != facts.latest.image_id:
        console.print(
            f"  ~ launch template {facts.template}: version {facts.version} runs "
            f"{_image(facts, facts.template_image)}\n"
            f"        new version with {_image(facts, facts.latest.image_id)}, made the default",
            markup=False,
        )
    protected = sum(1 for i in facts.outdated if i.protected)
    console.print(
        f"  ~ auto scaling group {facts.group}: instance refresh of {len(facts.outdated)} of "
        f"{len(facts.instances)} instance(s) on an older image"
        + (f" ({protected} protected from scale-in: refreshed too)" if protected else "")
        + f"\n        min healthy {min_healthy}%, max healthy {max_healthy}% (new instances start before old ones"
        f" stop), warm-up {warmup}s, instances already on the new version skipped;"
        f"\n        capacity provider {provider} drains each instance (its tasks move) before it stops",
        markup=False,
    )


class RefreshView:
    """The refresh's percentage and instances left, with the services' counts beside it."""

    def __init__(self, env: Env) -> None:
        self.console = env.err
        self.live = env.err.is_terminal
        self._progress = Progress(
            TextColumn("instance refresh"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=not self.live,
        )
        self._task: TaskID | None = None
        self._last = ""
        self._last_at = 0.0
        self._started = time.monotonic()

    @contextmanager
    def running(self) -> Iterator[RefreshView]:
        with self._progress:
            self._task = self._progress.add_task("refresh", total=100, status="")
            yield self

    def update(self, refresh: dict[str, Any], services: list[ServiceCount]) -> None:
        percent = int(refresh.get("PercentageComplete") or 0)
        left = refresh.get("InstancesToUpdate")
        status = f"{refresh.get('Status')}, {left if left is not None else '?'} instance(s) to replace"
        line = " · ".join([status, *(s.text() for s in services)])
        if self.live and self._task is not None:
            self._progress.update(self._task, completed=percent, status=line)
            return
        now = time.monotonic()
        if line != self._last or now - self._last_at >= QUIET_LINE_EVERY:
            self.console.print(f"instance refresh {percent}%: {line} ({now - self._started:.0f}s)", markup=False)
            self._last, self._last_at = line, now
