"""The plan as text and as the JSON document's part: values whole, structured changes field by
field (Terraform's way), a created resource's settings with the user's tags only, notes of what
the plan leaves alone; and the warm-up of rich that the plan's first print would pay."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from spotecs.engine.model import Action, Change, Plan, Unknown
from spotecs.render import COLORS


def fmt(value: Any) -> str:
    """A value whole (ARNs keep their revision, documents their last field): the console wraps
    long lines on a terminal and keeps them whole elsewhere."""
    if isinstance(value, Unknown):
        return "(known after apply)"
    return json.dumps(value, default=repr, sort_keys=True) if not isinstance(value, str) else json.dumps(value)


def leaf_diffs(path: str, old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """A structured change field by field, like Terraform: dicts key by key, lists of the same
    length element by element; what differs in shape (or is unknown) is shown whole."""
    if isinstance(old, dict) and isinstance(new, dict) and not isinstance(new, Unknown):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(old) | set(new), key=str):
            if not str(key).startswith("_") and old.get(key) != new.get(key):
                out += leaf_diffs(f"{path}.{key}", old.get(key), new.get(key))
        return out or [(path, old, new)]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and old != new:
        out = []
        for i, (o, n) in enumerate(zip(old, new, strict=True)):
            if isinstance(n, Unknown) or o != n:
                out += leaf_diffs(f"{path}[{i}]", o, n)
        return out
    return [(path, old, new)]


def warm_up() -> None:
    """A process's first print pays once for what rich caches: each style's parse and ANSI codes,
    markup's tags, the cell widths of the text. Paid here, on a console set as the commands' are
    (no emoji codes, no highlighting: the emoji table is never loaded), with the plan's styles,
    where nothing keeps the line, while a plan waits on AWS."""
    console = Console(file=io.StringIO(), highlight=False, emoji=False, force_terminal=True, color_system="truecolor")
    for style in (*COLORS.values(), "bold"):
        console.print(f"  [{style}]  +[/] log group [bold]/ecs/demo/api[/] (replace: x)")


def plan_text(console: Console, plan: Plan, stack: str, region: str) -> None:
    for w in plan.warnings:
        hanging(console, Text.assemble(("Warning:", "yellow"), f" {w}"), indent=0, rest=len("Warning: "))
    if not plan.has_changes:
        notes(console, plan)
        console.print(f"[green]No changes.[/] Stack {stack} in {region} matches the stack file.")
        return
    console.print(f"spotecs will make these changes to stack [bold]{stack}[/] in {region}:\n")
    for ch in plan.changes:
        if not ch.is_change:
            notes(console, Plan([ch]), indent="    ")
            continue
        color = COLORS[ch.action]
        label = "" if ch.action in (Action.CREATE, Action.DELETE, Action.UPDATE) else f" ({ch.action.verb})"
        if ch.reason:
            label = f" ({ch.action.verb}: {escape(ch.reason)})"
        console.print(f"  [{color}]{ch.action.symbol:>3}[/] {escape(ch.kind)} [bold]{escape(ch.name)}[/]{label}")
        for line in change_lines(ch):
            hanging(console, line)
        for note in ch.notes:
            hanging(console, f"# note: {note}", style="dim")
    console.print(f"\n[bold]{plan.summary()}[/]")


def hanging(console: Console, line: str | Text, indent: int = 8, style: str = "", rest: int | None = None) -> None:
    """A value's line at `indent`; on a terminal its continuation lines wrap under it, at `rest`
    (four columns further in by default), not back at the margin where they would read as lines
    of their own. Off a terminal (soft wrap) the line stays whole, for logs and grep."""
    text = Text(line, style=style) if isinstance(line, str) else line
    if console.soft_wrap or indent + len(text) <= console.width:
        console.print(Text(" " * indent) + text)
        return
    under = indent + 4 if rest is None else rest
    # The first line takes the whole width; the rest wrap in the narrower room under it.
    first = text.wrap(console, console.width - indent)[0]
    more = text[len(first.plain) :]
    more = more[len(more.plain) - len(more.plain.lstrip(" ")) :]
    console.print(Text(" " * indent) + first)
    for part in more.wrap(console, max(console.width - under, 20)):
        console.print(Text(" " * under) + part)


def notes(console: Console, plan: Plan, indent: str = "  ") -> None:
    """What the plan leaves alone and why (not owned by this stack, kept by --keep-logs), and
    values the file sets that AWS owns (a desired count under auto scaling)."""
    for ch in plan.changes:
        if ch.note:
            hanging(console, f"{ch.kind} {ch.name}: {ch.note}", len(indent), style="dim")
        for note in ch.notes:
            hanging(console, f"{ch.kind} {ch.name}: note: {note}", len(indent), style="dim")


def _tags_field(key: Any) -> bool:
    return key == "tags" or str(key).endswith("_tags")


def _as_created(v: Any) -> Any:
    """A created resource's settings with the user's tags only: the file's `tags:` and a Name.
    spotecs's own (spotecs:stack, spotecs:managed: the file cannot set a spotecs: key) go on
    every resource alike, so a plan listing them would say nothing about this one; a tag map
    left empty is not shown."""
    if isinstance(v, dict) and not isinstance(v, Unknown):
        out = {}
        for k, x in v.items():
            if str(k).startswith("_"):  # the step's own, as in a diff
                continue
            if _tags_field(k) and isinstance(x, dict):
                x = {t: value for t, value in x.items() if not str(t).startswith("spotecs:")}
                if not x:
                    continue
            out[k] = _as_created(x)
        return out
    if isinstance(v, list):
        return [_as_created(x) for x in v]
    return v


def change_lines(ch: Change) -> list[str]:
    if ch.action is Action.CREATE and ch.desired:
        shown = _as_created(ch.desired)
        return [f"{k} = {fmt(v)}" for k, v in shown.items()]
    lines = []
    for d in ch.diffs:
        suffix = "  # forces replacement" if d.forces_replace else ""
        for path, old, new in leaf_diffs(d.path, d.old, d.new):
            lines.append(f"{path}: {fmt(old)} → {fmt(new)}{suffix}")
    return lines


def _clean(v: Any) -> Any:
    if isinstance(v, Unknown):
        return "(known after apply)"
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if not str(k).startswith("_")}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def plan_doc(plan: Plan) -> dict[str, Any]:
    """The plan's part of the JSON document (README, "Machine output")."""
    return {
        "changes": [
            {
                "key": c.key,
                "kind": c.kind,
                "name": c.name,
                "action": c.action.verb,
                "diffs": [
                    {"path": d.path, "old": _clean(d.old), "new": _clean(d.new), "forces_replacement": d.forces_replace}
                    for d in c.diffs
                ],
                **({"note": c.note} if c.note else {}),
                **({"reason": c.reason} if c.reason else {}),
                **({"notes": c.notes} if c.notes else {}),
            }
            for c in plan.changes
        ],
        "summary": plan.counts(),
        "warnings": plan.warnings,
    }


def plan_json(plan: Plan) -> str:
    return json.dumps(plan_doc(plan), indent=2, default=repr)
