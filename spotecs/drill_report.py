"""How `spotecs drill` shows its plan and its report (text, or the JSON document)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from spotecs.drill_watch import PHASES

if TYPE_CHECKING:
    from spotecs.drill import DrillOutcome, DrillPlan


def plan_doc(plan: DrillPlan) -> dict[str, Any]:
    services = plan.fleet.services.values()
    return {
        "instances": [
            {
                "id": i.id,
                "type": i.type,
                "zone": i.zone,
                "tasks": {s.name: s.tasks_by_instance.get(i.id, 0) for s in services if s.tasks_by_instance.get(i.id)},
            }
            for i in plan.chosen
        ],
        "services": {
            s.name: {"desired": s.desired, "running": s.running, "min_healthy": s.min_healthy} for s in services
        },
        "probe": plan.probe_url,
        "notes": plan.notes,
    }


def print_plan(console: Console, stack: str, plan: DrillPlan) -> None:
    console.print(f"spotecs will send a spot interruption to stack [bold]{escape(stack)}[/]:\n")
    for i in plan.chosen:
        tasks = [f"{n} {s.name}" for s in plan.fleet.services.values() if (n := s.tasks_by_instance.get(i.id))]
        console.print(
            f"  [bold]{i.id}[/] ({escape(i.type)}, {escape(i.zone)}, spot): "
            f"{escape(', '.join(tasks)) if tasks else 'no service tasks'}"
        )
    console.print(
        "\nExpected: AWS FIS sends the 2-minute interruption notice; the ECS agent sets the instance(s) "
        "DRAINING; their tasks start on other instances before they stop (minimum healthy share kept), their "
        "targets drain for the deregistration delay; the instance(s) are terminated after 2 minutes and the "
        "group's replacement(s) register; every service returns to its desired count with healthy targets."
    )
    for s in sorted(plan.fleet.services.values(), key=lambda s: s.name):
        console.print(
            f"  service {escape(s.name)}: {s.running}/{s.desired} running, minimum healthy {s.min_healthy} "
            f"({s.min_healthy_percent}%)"
        )
    if plan.probe_url:
        console.print(f"Probe: GET {escape(plan.probe_url)} every 200 ms while the drill runs.")
    for note in plan.notes:
        console.print(f"[yellow]Note:[/] {escape(note)}")


def report_doc(outcome: DrillOutcome) -> dict[str, Any]:
    times = outcome.watch.times
    return {
        "experiment": {"id": outcome.experiment_id, "status": outcome.status, "reason": outcome.reason},
        "timeline": [
            {"phase": p, "what": text, "seconds": times.get(p), "applies": outcome.watch.applies(p)}
            for p, text in PHASES.items()
        ],
        "drain_seconds": _span(times, "notice", "targets_deregistered"),
        "recovery_seconds": _span(times, "notice", "recovered"),
        "budget_seconds": outcome.budget,
        "services": {
            name: {"min_running": seen, "min_healthy": floor} for name, (seen, floor) in outcome.services.items()
        },
        "probe": outcome.probe.as_json() if outcome.probe else None,
        "problems": outcome.problems,
        "ok": not outcome.problems,
        "interrupted": outcome.interrupted,
    }


def _span(times: dict[str, float], start: str, end: str) -> float | None:
    if start not in times or end not in times:
        return None
    return round(times[end] - times[start], 1)


def print_report(console: Console, outcome: DrillOutcome) -> None:
    doc = report_doc(outcome)
    console.print(f"\nFIS experiment {outcome.experiment_id}: {escape(outcome.status)}")
    console.print("Timeline (seconds after the experiment started):")
    for row in doc["timeline"]:
        if not row["applies"]:
            console.print(f"      n/a  {escape(row['what'])} (no task ran there)")
            continue
        when = f"{row['seconds']:7.1f}s" if row["seconds"] is not None else "  never "
        console.print(f"  {when}  {escape(row['what'])}")
    drain, recovery = doc["drain_seconds"], doc["recovery_seconds"]
    console.print(
        f"Drain: {'-' if drain is None else f'{drain}s'} (notice to targets deregistered); "
        f"recovery: {'-' if recovery is None else f'{recovery}s'} (notice to every service healthy; "
        f"budget {outcome.budget}s)."
    )
    for name, (seen, floor) in sorted(outcome.services.items()):
        mark = "[green]ok[/]" if seen >= floor else "[red]below[/]"
        console.print(
            f"  service {escape(name)}: at least {seen} task(s) running throughout, minimum healthy {floor}  {mark}"
        )
    if outcome.probe:
        p = outcome.probe
        classes = ", ".join(f"{k} {v}" for k, v in sorted(p.by_class.items()))
        console.print(
            f"Probe {escape(p.url)}: {p.requests} request(s) ({escape(classes) or 'none'}), {p.failures} failed, "
            f"longest failure streak {p.longest_failure_streak}."
        )
    if outcome.problems:
        console.print("\n[bold red]Drill failed:[/]")
        for problem in outcome.problems:
            console.print(f"  - {escape(problem)}")
    else:
        console.print("\n[bold green]Drill passed:[/] no request failed and every service recovered within budget.")
