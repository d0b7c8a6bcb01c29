"""`status` output, drawn from the one status document: rich tables on a terminal, plain
columns otherwise (NO_COLOR is honoured by rich), and the watch loop (rich Live, redrawn in
place until Ctrl-C). The document itself goes out through render.json_document."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.table import Table
from rich.text import Text

from spotecs.errors import ExitCode
from spotecs.render import GAP, Env, Indented, fit_columns

BARS = "▁▂▃▄▅▆▇█"
STATE_STYLE = {"in sync": "green", "drifted": "yellow", "missing": "red", "not owned": "dim", "orphan": "magenta"}


def _table(title: str, *columns: str, interactive: bool) -> Table:
    t = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD if interactive else None,
        show_edge=False,
        pad_edge=False,
        header_style="bold" if interactive else "",
    )
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


def money(v: float | None, digits: int = 4) -> str:
    return "unknown" if v is None else f"${v:,.{digits}f}"


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def sparkline(values: list[float | None]) -> str:
    """The shape of a price over time, lowest to highest bar (a flat line when it never moved)."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, span = min(known), max(known) - min(known)
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        else:
            level = (v - low) / span if span > 0 else 0.0
            out.append(BARS[round(level * (len(BARS) - 1))])
    return "".join(out)


def under(values: list[float | None], on_demand: float | None) -> str:
    """The range of a spot price against the on-demand line it stays under."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    text = f"{money(min(known))} to {money(max(known))}"
    if on_demand:
        text += f" = {min(known) / on_demand * 100:.0f}-{max(known) / on_demand * 100:.0f} % of on-demand"
    return text


def screen(doc: dict[str, Any], interactive: bool) -> RenderableType:
    status = "[green]healthy[/]" if doc["healthy"] else "[red]needs attention[/]"
    head = Text.from_markup(f"Stack [bold]{doc['stack']}[/] in {doc['region']}: {status}")
    parts: list[RenderableType] = [head]
    parts += [
        resources(doc, interactive),
        fleet(doc, interactive),
        services(doc, interactive),
        scaling(doc, interactive),
        cost(doc, interactive),
        warnings(doc, interactive),
    ]
    return Group(*parts)


def resources(doc: dict[str, Any], interactive: bool) -> RenderableType:
    t = _table("Resources", "resource", "name", "id / ARN", "state", interactive=interactive)
    for r in doc["resources"]:
        style = STATE_STYLE.get(r["state"], "")
        state = r["state"] + (f" ({', '.join(r['drift'])})" if r["drift"] else "")
        t.add_row(r["kind"], r["name"], r["id"] or "-", Text(state, style=style))
    return t


NARROW = 110  # below this many columns, an instance's type and zone go under its id


class _Fleet:
    """The Fleet table, laid out for the width rich gives it when it draws (a Live redraw too):
    ids never fold, secondary facts wrap at spaces, and below NARROW columns an instance's type
    and zone share its id's cell. A template version and AMI the whole fleet shares are said
    once, under the table (per row only while a refresh mixes them)."""

    def __init__(self, doc: dict[str, Any], interactive: bool) -> None:
        self.doc, self.interactive = doc, interactive

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield _fleet_table(self.doc, self.interactive, options.max_width)


def fleet(doc: dict[str, Any], interactive: bool) -> RenderableType:
    return _Fleet(doc, interactive)


def _fleet_table(doc: dict[str, Any], interactive: bool, room: int) -> Table:
    images = sorted({(r["launch_template_version"] or "?", r["ami"] or "?") for r in doc["fleet"]["instances"]})
    wide = _fleet_cells(doc, wide=True, mixed=len(images) > 1)
    longest = sum(max(len(line) for c in col for line in c.split("\n")) for col in zip(*wide, strict=True))
    # Wide while that costs a few wrapped cells at most; else the narrow layout wraps less.
    if room >= NARROW and longest + GAP * (len(wide[0]) - 1) <= room + 15:
        return _fleet_layout(doc, interactive, room, wide, {0, 1, 2}, images)
    return _fleet_layout(doc, interactive, room, _fleet_cells(doc, wide=False, mixed=len(images) > 1), {0}, images)


def _fleet_cells(doc: dict[str, Any], *, wide: bool, mixed: bool) -> list[list[str]]:
    """The header and a row per instance, as text; narrow, the type, zone and (while a refresh
    mixes them) template version go under the id."""
    price = {i["id"]: i for i in doc["cost"]["instances"]}
    headers = [
        "instance",
        *(("type", "zone") if wide else ()),
        "lifecycle $/h",
        *(("template",) if wide and mixed else ()),
        *("health", "ECS", "tasks", "free CPU/MiB", "up"),
    ]
    cells: list[list[str]] = [headers]
    for r in doc["fleet"]["instances"]:
        ecs = r["ecs_status"] or "not registered"
        if r["agent_connected"] is False:
            ecs += ", agent disconnected"
        template = f"v{r['launch_template_version'] or '?'}" + (" (old AMI)" if r["ami_outdated"] else "")
        where = [r["id"], r["type"], r["zone"], *((template,) if mixed else ())]
        if not wide:  # under the id, on one line if it is no wider
            sep = " " if len(r["type"]) + len(r["zone"]) < len(r["id"]) else "\n"
            where = ["\n".join((r["id"], f"{r['type']}{sep}{r['zone']}", *((template,) if mixed else ())))]
        cells.append(
            [
                *where[:3],
                f"{r['lifecycle']} {money(price.get(r['id'], {}).get('hourly'))}",
                *where[3:],
                (r["health"] or "?") + (", protected" if r["protected"] else ""),
                ecs,
                ", ".join(f"{n} {s}" for s, n in r["tasks"].items()) or "-",
                "-" if r["free_cpu"] is None else f"{r['free_cpu']}/{r['free_memory_mib']}",
                duration(r["uptime_s"]),
            ]
        )
    return cells


def _fleet_layout(
    doc: dict[str, Any],
    interactive: bool,
    room: int,
    cells: list[list[str]],
    no_wrap: set[int],
    images: list[tuple[str, str]],
) -> Table:
    f = doc["fleet"]
    rows, headers, mixed = f["instances"], cells[0], len(images) > 1
    t = _table("Fleet", interactive=interactive)
    t.padding = (0, GAP - 1 if interactive else GAP, 0, 0)  # a box draws a space between columns
    for i, (header, width) in enumerate(zip(headers, fit_columns(cells, no_wrap, room), strict=True)):
        t.add_column(header, no_wrap=i in no_wrap, width=width, overflow="fold")
    lifecycle_at, ecs_at = headers.index("lifecycle $/h"), headers.index("ECS")
    for r, row in zip(rows, cells[1:], strict=True):
        shown: list[str | Text] = list(row)
        life, _, cost = row[lifecycle_at].partition(" ")
        shown[lifecycle_at] = Text(life, style="cyan" if r["lifecycle"] == "spot" else "").append(f" {cost}")
        ecs_style = "red" if r["agent_connected"] is False else "yellow" if r["ecs_status"] == "DRAINING" else ""
        shown[ecs_at] = Text(row[ecs_at], style=ecs_style)
        t.add_row(*shown)
    tot = f["totals"]
    if tot["instances"]:
        t.caption = (
            f"{tot['spot']} spot, {tot['on_demand']} on-demand of {tot['instances']} "
            f"({_pct(tot['spot_share'])} spot); configured: on-demand base {tot['configured']['on_demand_base']} "
            f"+ {tot['configured']['on_demand_percent']} % above it, i.e. {_pct(tot['expected_spot_share'])} spot"
        )
        launched = ", ".join(f"v{version} {ami}" for version, ami in images)
        t.caption += f"; launch template {launched}" if mixed else f"; every instance from launch template {launched}"
        if not mixed and rows[0]["ami_outdated"]:
            t.caption += " (a newer AMI is out)"
        t.caption_justify = "left"
    return t


def _pct(v: float | None) -> str:
    return "?" if v is None else f"{v * 100:.0f} %"


class _Services:
    """The Services table at the width rich draws it: task definitions and targets whole while
    the room holds every word (render.fit_columns), as the Fleet table's ids."""

    def __init__(self, doc: dict[str, Any], interactive: bool) -> None:
        self.doc, self.interactive = doc, interactive

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        headers = ("service", "tasks", "deployments", "targets", "last events")
        rows = [_service_row(s) for s in self.doc["services"]]
        t = _table("Services", *headers, interactive=self.interactive)
        t.padding = (0, GAP - 1 if self.interactive else GAP, 0, 0)  # as the Fleet table's
        cells = [list(headers), *[[str(c) for c in r] for r in rows]]
        # The events are prose: kept 30 wide where the room allows, not squeezed to their longest word.
        words = max(len(w) for c in cells for w in c[-1].split())
        extra = max(0, min(max(len(line) for c in cells for line in c[-1].split("\n")), 30) - words)
        widths = fit_columns(cells, set(), options.max_width - extra)
        if widths[-1] is None:
            widths = fit_columns(cells, set(), options.max_width)
        else:
            widths[-1] += extra
        for column, width in zip(t.columns, widths, strict=True):
            column.width = width
        for r in rows:
            t.add_row(*r)
        yield t


def services(doc: dict[str, Any], interactive: bool) -> RenderableType:
    return _Services(doc, interactive)


# ECS starts a service's events with "(service <name>) ": the row already says which service.
_OF_SERVICE = re.compile(r"^\(service [^)]*\) ")


def _service_row(s: dict[str, Any]) -> tuple[str | Text, ...]:
    if not s["exists"]:
        return (s["service"], Text("missing", style="red"), "", "", "")
    deps = "\n".join(
        f"{d['status']} {d['task_definition']} {d['rollout_state'] or ''} "
        f"{d['running']}/{d['desired']} ({duration(d['age_s'])} ago)"
        for d in s["deployments"]
    )
    if s["targets"] is None:
        targets = "(no load balancer)"
    else:
        lines = [
            f"{tg['id']}:{tg['port']} {tg['state']}" + (f" ({tg['reason']})" if tg["reason"] else "")
            for tg in s["targets"]
        ]
        targets = "\n".join(lines) or "none"
    events = "\n".join(f"{_clock(e['at'])} {_OF_SERVICE.sub('', e['message'])}" for e in s["events"]) or "-"
    tasks = f"{s['running']}/{s['desired']} running" + (f", {s['pending']} pending" if s["pending"] else "")
    return (s["service"], tasks, deps or "-", targets, events)


def _clock(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if isinstance(at, datetime) else "?"


def scaling(doc: dict[str, Any], interactive: bool) -> RenderableType:
    sc = doc["scaling"]
    if not sc:
        return Text("")
    g, cp = sc["group"], sc["capacity_provider"]
    cur = cp["current_capacity"]
    lines = [
        f"group {g['name']}: min {g['min']}, desired {g['desired']}, max {g['max']}, {g['in_service']} in service",
        f"capacity provider {cp['name']}: target {cp['target_capacity']} %, current "
        + ("unknown (no datapoint yet)" if cur is None else f"{cur:.0f} %"),
    ]
    for s in sc["services"]:
        how = f" (set by {s['set_by']})" if s["set_by"] else ""
        lines.append(f"service {s['service']}: min {s['min']}, max {s['max']}{how}")
        for p in s["policies"]:
            alarms = [f"{a['name']} {a['state'] or '?'}" for a in p["alarms"]]
            if len(alarms) > 1:  # target tracking's two, whose names are about 110 characters
                lines += [f"  policy {p['name']}:", *(f"    {a}" for a in alarms)]
            else:
                lines.append(f"  policy {p['name']}: {alarms[0] if alarms else 'no alarm'}")
        for a in s["scheduled"]:
            when = a["next_run"].strftime("%a %Y-%m-%d %H:%M %Z") if a["next_run"] else "not computed"
            size = ", ".join(f"{k} {a[k]}" for k in ("min", "max") if a[k] is not None)
            lines.append(f"  scheduled {a['name']} {a['schedule']} → {size}; next {when}")
    t = _table("Scaling", "scaler", "status", "activity", "when", interactive=interactive)
    for a in sc["activities"]:
        style = "red" if a["status"] in ("Failed", "Cancelled", "Unfulfilled") else ""
        what = str(a["description"]) + (f" — {a['message']}" if a.get("message") else "")
        t.add_row(a["scaler"], Text(str(a["status"]), style=style), what, _clock(a["start"]))
    body: list[RenderableType] = [Text("Scaling", style="bold"), Indented(lines)]
    if sc["activities"]:
        t.title = "Recent scaling activities (failed first)"
        body.append(t)
    return Group(*body)


def cost(doc: dict[str, Any], interactive: bool) -> RenderableType:
    c = doc["cost"]
    title = f"Cost (prices from: {', '.join(c['sources'])})"
    if c["sample"]:
        title += "  [sample prices: not AWS's]"
    t = _table(
        title,
        "type",
        "zone",
        "spot now",
        f"spot, last {c['history_days']} days",
        "range",
        "on-demand",
        interactive=interactive,
    )
    for tp in c["types"]:
        # The zones the fleet runs in; for a type it does not run yet, its cheapest zone now.
        zones = [z for z in tp["zones"] if z["in_use"]] or sorted(tp["zones"], key=lambda z: z["spot_now"])[:1]
        od = tp["on_demand"]
        od_text = money(od) if od is not None else f"unknown ({tp['on_demand_problem']})"
        if not zones:
            t.add_row(tp["type"], "-", f"unknown ({tp['spot_problem']})", "", "", od_text)
        for z in zones:
            t.add_row(
                tp["type"], z["zone"], money(z["spot_now"]), sparkline(z["history"]), under(z["history"], od), od_text
            )
    ratio = c["savings_ratio"]
    t.caption = (
        f"fleet now {money(c['fleet_hourly'])}/h, {money(c['fleet_monthly'], 2)}/month; all on-demand "
        f"{money(c['on_demand_hourly'])}/h, {money(c['on_demand_monthly'], 2)}/month; savings "
        + ("unknown" if ratio is None else f"{ratio:.1f}x")
    )
    t.caption_justify = "left"
    return t


def warnings(doc: dict[str, Any], interactive: bool) -> RenderableType:
    if not doc["warnings"]:
        return Text("No warnings.", style="green")
    lines = [Text("Warnings", style="bold")]
    for w in doc["warnings"]:
        style = "red" if w["severity"] == "error" else "yellow"
        line = Text(f"{w['severity']}: ", style=style)
        line.append(f"{w['subject']}: {w['message']}\n    → {w['action']}")
        lines.append(line)
    return Group(*lines)


# Off a terminal: a row is one line however long its names and ARNs (a long stack and cluster
# name took an auto scaling group's ARN past 200 columns, which folded it); a pipe has no width.
PLAIN_WIDTH = 1000


def show(env: Env, doc: dict[str, Any]) -> None:
    # A pipe has no width but the one COLUMNS gives, when given (rich reads it).
    if not env.console.is_terminal and not os.environ.get("COLUMNS"):
        env.console.width = max(env.console.width, PLAIN_WIDTH)
    if env.console.is_terminal:
        env.console.print(screen(doc, True))
        return
    # Off a terminal, without the tables' padding after each line's last word.
    with env.console.capture() as drawn:
        env.console.print(screen(doc, False))
    for line in drawn.get().splitlines():
        env.console.out(line.rstrip(), highlight=False)


def watch(env: Env, look: Callable[[], dict[str, Any]], seconds: float, sleep: Callable[[float], None]) -> ExitCode:
    """Redraw in place every `seconds` until Ctrl-C (exit 0); off a terminal, print each look
    after the other (a log keeps them all)."""
    try:
        if not env.console.is_terminal:
            while True:
                show(env, look())
                env.console.print()
                sleep(seconds)
        with Live(console=env.console, auto_refresh=False, screen=False) as live:
            while True:
                live.update(screen(look(), True), refresh=True)
                sleep(seconds)
    except KeyboardInterrupt:
        return ExitCode.OK
