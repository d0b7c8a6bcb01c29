"""All output: the consoles, live progress and results (the plan itself: render_plan.py). Rich
on a terminal, plain lines otherwise; NO_COLOR is honoured by rich itself. Steps and the engine
never print."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from spotecs.engine.apply import Event, Result
from spotecs.engine.model import Action, Plan

COLORS = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.NEW_VERSION: "yellow",
    Action.REPLACE: "magenta",
    Action.DELETE: "red",
    Action.NOOP: "dim",
}
PRESENT = {
    Action.CREATE: "creating",
    Action.UPDATE: "updating",
    Action.NEW_VERSION: "versioning",
    Action.REPLACE: "replacing",
    Action.DELETE: "deleting",
    Action.NOOP: "checking",
}


def _console(*, stderr: bool) -> Console:
    """Off a terminal lines are never wrapped (a CI log keeps them whole). NO_COLOR removes every
    style, bold and dim included (rich's own no_color keeps those): no-color.org. No emoji codes:
    every Secrets Manager ARN holds ":secret:", which rich would print as an emoji."""
    stream = sys.stderr if stderr else sys.stdout
    plain = bool(os.environ.get("NO_COLOR"))
    return Console(
        stderr=stderr,
        highlight=False,
        emoji=False,
        soft_wrap=not stream.isatty(),
        color_system=None if plain else "auto",
        no_color=plain,
    )


GAP = 2  # between two columns


def fit_columns(cells: list[list[str]], no_wrap: set[int], room: int) -> list[int | None]:
    """Column widths that fold no word when `room` holds every column's longest word (the whole
    line where `no_wrap`): each column starts there and the room left is handed out
    to the columns still short of their longest line, the shortest need first. rich alone would
    level the widest columns down to the same width, folding "on-demand" or an id long before it
    must. None for every column when they fit as they are, or when nothing can save a fold.
    `cells`: the header and the rows, as text; columns GAP characters apart."""
    columns = list(zip(*cells, strict=True))
    longest = [max(len(line) for c in col for line in c.split("\n")) for col in columns]
    words = [
        longest[i] if i in no_wrap else max(len(w) for c in col for w in c.replace("\n", " ").split(" "))
        for i, col in enumerate(columns)
    ]
    room -= GAP * (len(columns) - 1)
    if sum(longest) <= room or sum(words) > room:
        return [None] * len(columns)
    widths, spare = list(words), room - sum(words)
    # The columns closest to one line each get it first; the others share what is left.
    for i in sorted(range(len(widths)), key=lambda i: longest[i] - widths[i]):
        if longest[i] - widths[i] <= spare:
            spare -= longest[i] - widths[i]
            widths[i] = longest[i]
    while spare:
        for i in range(len(widths)):
            if spare and widths[i] < longest[i]:
                widths[i] += 1
                spare -= 1
    return list(widths)


class Indented:
    """Lines whose continuation, on a terminal, wraps under the line's own indent (an alarm's
    name is longer than 80 columns) rather than back at the margin; off a terminal (soft wrap)
    each line is kept whole."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines:
            indent = len(line) - len(line.lstrip(" "))
            if options.no_wrap or len(line) <= options.max_width or options.max_width - indent < 20:
                yield Text(line)
                continue
            for part in Text(line[indent:]).wrap(console, options.max_width - indent):
                yield Text(" " * indent) + part


@dataclass
class Env:
    """The I/O a command uses; tests pass their own (httpie's Environment)."""

    console: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))
    stdin_isatty: bool = field(default_factory=lambda: sys.stdin.isatty())
    confirm: Callable[[str], bool] | None = None

    def human(self, output: str) -> Console:
        """Where messages and progress go: stdout, or stderr when stdout carries JSON."""
        return self.err if output == "json" else self.console

    def ask(self, question: str) -> bool:
        if self.confirm is not None:
            return self.confirm(question)
        answer = self.console.input(f"{question} Only 'yes' will be accepted: ")
        return answer.strip() == "yes"


# The result's buckets, by the action each applied step took.
RESULT_BUCKETS = {
    Action.CREATE: "created",
    Action.UPDATE: "changed",
    Action.NEW_VERSION: "changed",
    Action.REPLACE: "replaced",
    Action.DELETE: "deleted",
}


def result_doc(plan: Plan, result: Result) -> dict[str, Any]:
    """What an apply did: created, changed, replaced, deleted, failed (with the error) and
    skipped (an upstream step failed or the run was interrupted); each entry names the resource."""

    def ref(key: str) -> dict[str, str]:
        c = plan.get(key)
        return {"key": key, "kind": c.kind, "name": result.names.get(key, c.name)}

    doc: dict[str, Any] = {bucket: [] for bucket in dict.fromkeys(RESULT_BUCKETS.values())}
    for key in result.applied:
        bucket = RESULT_BUCKETS.get(plan.get(key).action)
        if bucket:
            doc[bucket].append(ref(key))
    doc["failed"] = [{**ref(key), "error": str(err)} for key, err in result.failed.items()]
    doc["skipped"] = [ref(key) for key in result.skipped]
    doc["stopped"] = [ref(key) for key in result.stopped]
    doc["interrupted"] = result.interrupted
    return doc


@contextmanager
def json_document(env: Env, enabled: bool, **head: Any) -> Iterator[dict[str, Any]]:
    """With `-o json`: exactly one JSON document on stdout, written once when the command ends,
    whatever happens; the command fills it in (plan, result), and an error becomes its
    "error". Everything meant for people goes to stderr meanwhile (`Env.human`)."""
    doc: dict[str, Any] = {**head, "error": None}
    try:
        yield doc
    except BaseException as e:  # whatever ends the command, the document says so
        doc["error"] = str(e) or ("interrupted" if isinstance(e, KeyboardInterrupt) else type(e).__name__)
        if notes := getattr(e, "__notes__", None):  # e.g. the stack's lock left held
            doc["error"] = " ".join([doc["error"], *notes])
        raise
    finally:
        if enabled:
            env.console.out(json.dumps(doc, indent=2, default=json_value), highlight=False)


def json_value(value: Any) -> Any:
    """What JSON cannot carry as it is: times as ISO 8601 text, anything else as its repr."""
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


# Off a terminal, a step that has printed nothing for this long gets a "still ..." line, so a
# CI log never goes silent while AWS works (as Terraform does).
HEARTBEAT_SECONDS = 10.0


class ProgressView:
    """Live progress of an apply: one spinner line per running step with its status and
    elapsed time on a terminal; plain lines otherwise, with a "still ..." line for every step
    quiet for HEARTBEAT_SECONDS."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.live = console.is_terminal
        self.clock = clock
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("[dim]{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=not self.live,
            # rich's own refresh thread can redraw between a print's cursor move and its write,
            # which loses printed lines and leaves stale spinners: refresh here, under _out.
            auto_refresh=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._last: dict[str, str] = {}
        self._what: dict[str, str] = {}  # a step's kind and name, as the user knows it, by key
        # Off a terminal: the running steps' text, start and last printed line's time.
        self._running: dict[str, tuple[str, float, float]] = {}
        self._lock = threading.Lock()
        self._out = threading.RLock()  # one writer at a time: prints and redraws
        self._done = threading.Event()

    @contextmanager
    def running(self) -> Iterator[ProgressView]:
        beat = threading.Thread(target=self._beat, name="progress", daemon=True)
        with self._progress:
            beat.start()
            try:
                yield self
            finally:
                self._done.set()
                beat.join()

    def _beat(self) -> None:
        while not self._done.wait(0.1 if self.live else 1.0):
            if self.live:
                with self._out:
                    self._progress.refresh()
            else:
                self.heartbeat()

    def heartbeat(self, now: float | None = None) -> None:
        """Print "still creating ECS service X, running 1/2 (40s elapsed)" for each quiet step."""
        now = self.clock() if now is None else now
        lines = []
        with self._lock:
            for key, (text, started, last) in self._running.items():
                if now - last >= HEARTBEAT_SECONDS:
                    status = self._last.get(key)
                    lines.append(f"still {text}{', ' + status if status else ''} ({now - started:.0f}s elapsed)")
                    self._running[key] = (text, started, now)
        with self._out:
            for line in lines:
                self.console.print(line, markup=False, soft_wrap=True)

    def on_event(self, e: Event) -> None:
        with self._out:
            self._on_event(e)

    def _on_event(self, e: Event) -> None:
        what = f"{e.kind} {e.name}"
        with self._lock:
            if e.state == "start":
                self._what[e.key] = what
                text = f"{PRESENT[e.action]} {what}"
                if self.live:
                    self._tasks[e.key] = self._progress.add_task(escape(text), status="")
                    self._progress.refresh()
                else:
                    now = self.clock()
                    self._running[e.key] = (text, now, now)
                    self.console.print(f"{text}…", markup=False, soft_wrap=True)
                return
            task = self._tasks.pop(e.key, None)
            self._running.pop(e.key, None)
        if task is not None:
            self._progress.remove_task(task)
        if e.state == "done":
            self.console.print(f"[green]✓[/] {e.action.past} {escape(what)} [dim]({e.elapsed:.1f}s)[/]")
        elif e.state == "failed":
            self.console.print(
                f"[red]✗[/] {e.action.verb} {escape(what)} failed: {escape(str(e.error))}", soft_wrap=True
            )
        elif e.state == "skipped":
            self.console.print(f"[dim]- skipped {escape(what)} (an upstream step failed)[/]")
        elif e.state == "stopped":
            self.console.print(f"[yellow]■[/] {e.action.verb} {escape(what)} stopped by the interruption")
        if self.live:
            self._progress.refresh()

    def say(self, text: str) -> None:
        """A message while progress is shown (e.g. the Ctrl-C notice), written between redraws."""
        with self._out:
            self.console.print(text, markup=False, soft_wrap=True)

    def on_status(self, key: str, status: str) -> None:
        with self._lock:
            if self._last.get(key) == status:
                return
            self._last[key] = status
            task = self._tasks.get(key)
            if key in self._running:
                text, started, _ = self._running[key]
                self._running[key] = (text, started, self.clock())
        if task is not None:
            self._progress.update(task, status=escape(status))
        elif not self.live:
            with self._out:
                self.console.print(f"  {self._what.get(key, key)}: {status}", markup=False, soft_wrap=True)


def result_text(console: Console, plan: Plan, result: Result, verb: str = "Apply") -> None:
    if result.ok:
        counts = {a: 0 for a in Action}
        for key in result.applied:
            counts[plan.get(key).action] += 1
        if verb == "Teardown":  # deletes only: "0 added, 0 changed, 0 replaced" would say nothing
            console.print(f"\n[bold green]{verb} complete![/] {counts[Action.DELETE]} destroyed.")
            return
        console.print(
            f"\n[bold green]{verb} complete![/] {counts[Action.CREATE]} added, "
            f"{counts[Action.UPDATE] + counts[Action.NEW_VERSION]} changed, "
            f"{counts[Action.REPLACE]} replaced, {counts[Action.DELETE]} destroyed."
        )
        return
    if result.interrupted:
        console.print(
            f"\n[bold yellow]{verb} interrupted.[/] {len(result.applied)} step(s) applied, "
            f"{len(result.stopped)} stopped part-way, {len(result.skipped)} not started."
        )
    else:
        console.print(
            f"\n[bold red]{verb} failed.[/] {len(result.applied)} step(s) applied, "
            f"{len(result.failed)} failed, {len(result.skipped)} skipped."
        )
    for key in result.applied:
        c = plan.get(key)
        console.print(f"  [green]applied[/] {c.action.past} {escape(c.kind)} {escape(result.names.get(key, c.name))}")
    for key, err in result.failed.items():
        console.print(f"  [red]failed[/]  {_what(plan, key)}: {escape(str(err))}", soft_wrap=True)
    for key in result.stopped:
        console.print(f"  [yellow]stopped[/] {_what(plan, key)} (AWS may show it part-way; the next run finishes it)")
    for key in result.skipped:
        console.print(f"  [dim]{'not started' if result.interrupted else 'skipped'} {_what(plan, key)}[/]")


def _what(plan: Plan, key: str) -> str:
    """A step's kind and name, as the plan showed it (its key only if the plan lacks it)."""
    c = next((ch for ch in plan.changes if ch.key == key), None)
    return escape(key if c is None else f"{c.kind} {c.name}")
