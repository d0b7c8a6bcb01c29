"""`spotecs status`: what runs, where, how healthy, and what it saves. Read-only.

Drift comes from the engine's own plan (the same steps, reads and diff as `up`, orphans
included; planning never writes); the live facts (fleet, tasks, targets, scaling, prices) are
read beside it, batched and in parallel (fleet.py, scaling_status.py, prices.py). The result is
one document: `-o json` prints it, the tables (render_status.py) are drawn from it."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from spotecs import fleet, names, prices, scaling_status, status_warnings
from spotecs.aws import AwsOptions
from spotecs.engine.model import Action, Change, Plan
from spotecs.engine.plan import NOT_OWNED, plan
from spotecs.errors import AwsError, ExitCode, SpotecsError
from spotecs.render import Env, json_document
from spotecs.steps import build
from spotecs.steps.base import Context
from spotecs.steps.orphans import PREFIX as ORPHAN_PREFIX
from spotecs.up import Run, RunOptions, prepare, with_orphans

EVENTS_SHOWN = 5
WORKERS = 8
T = TypeVar("T")


@dataclass(frozen=True)
class StatusOptions:
    file: Path
    aws: AwsOptions
    output: str = "text"
    watch: float | None = None  # seconds between redraws; None: once


class StackMissing(SpotecsError):
    exit_code = ExitCode.FAILURE


def resource_rows(the_plan: Plan) -> list[dict[str, Any]]:
    """Each step's change read as a state: in sync, drifted, missing, not owned, or orphan."""
    return [_resource(c) for c in the_plan.changes]


def _resource(c: Change) -> dict[str, Any]:
    cur = c.current or {}
    ident = next((cur[k] for k in ("arn", "id", "group_id", "name") if isinstance(cur.get(k), str)), None)
    if c.key.startswith(ORPHAN_PREFIX) or c.action is Action.DELETE:
        state = "orphan"
    elif c.note == NOT_OWNED:
        state = "not owned"
    elif c.action is Action.CREATE:
        state = "missing"
    elif c.action is Action.NOOP:
        state = "in sync"
    else:
        state = "drifted"
    return {
        "key": c.key,
        "kind": c.kind,
        "name": c.name,
        "id": ident,
        "state": state,
        "action": c.action.verb,
        "drift": [d.path for d in c.diffs],
    }


def _get(f: Future[T] | None, problems: list[str], default: T) -> T:
    if f is None:
        return default
    try:
        return f.result()
    except AwsError as e:
        problems.append(str(e))
        return default


def collect(run: Run, now: datetime | None = None) -> dict[str, Any]:
    """Plan (drift) and live reads, at once where one does not need the other."""
    now = now or datetime.now(UTC)
    ctx, stack = run.ctx, run.stack
    cluster = stack.cluster_name
    types = list(stack.instances.types)
    problems: list[str] = []
    with ThreadPoolExecutor(WORKERS, "status") as outer, ThreadPoolExecutor(WORKERS, "status-batch") as pool:
        # What needs only the stack file's names starts with the plan, not after it.
        ecs_job = outer.submit(fleet.container_instances, ctx, pool, cluster)
        tasks_job = outer.submit(fleet.tasks, ctx, pool, cluster)
        prices_job = outer.submit(prices.read, ctx, types, now, pool)
        ec2_job = outer.submit(fleet.ec2_instances, ctx, names.auto_scaling_group(stack.stack))
        with run.aws.reading():
            with_orphans(run)
            the_plan = plan(run.steps, ctx)
        resources = resource_rows(the_plan)
        if not any(r["state"] != "missing" for r in resources):
            for f in (ecs_job, tasks_job, prices_job, ec2_job):
                f.cancel()
            raise StackMissing(f"stack {stack.stack} does not exist in {run.region} (spotecs up creates it)")
        out = ctx.outputs
        group = out.get("auto-scaling-group", {})
        scaling_job = outer.submit(scaling_status.read, ctx, pool, now)
        target_jobs = {
            svc: pool.submit(fleet.target_health, ctx, out[f"target-group:{svc}"]["arn"])
            for svc in stack.services
            if out.get(f"target-group:{svc}", {}).get("arn")
        }
        ecs_instances = _get(ecs_job, problems, [])
        task_list = _get(tasks_job, problems, [])
        ec2 = _get(ec2_job, problems, {})
        type_prices = _get(prices_job, problems, {})
        scaling = _get(scaling_job, problems, {})
        targets = {svc: _get(f, problems, []) for svc, f in target_jobs.items()}
    problems += scaling.pop("problems", [])
    latest_ami = out.get("ami", {}).get("image_id")
    by_name = {names.service(stack.stack, svc): svc for svc in stack.services}
    rows = fleet.instance_rows(group.get("instances", []), ec2, ecs_instances, task_list, latest_ami, now, by_name)
    cfg = stack.instances
    doc: dict[str, Any] = {
        "stack": stack.stack,
        "region": run.region,
        "time": now,
        "resources": resources,
        "fleet": {
            "instances": rows,
            "totals": fleet.mix(rows, cfg.on_demand_base, cfg.on_demand_percent),
            "latest_ami": latest_ami,
        },
        "services": [_service(ctx, svc, targets.get(svc), now) for svc in stack.services],
        "scaling": scaling,
        "cost": cost(rows, type_prices),
        "problems": problems,
    }
    doc["warnings"] = status_warnings.find(doc, now)
    doc["healthy"] = not any(w["severity"] == "error" for w in doc["warnings"])
    return doc


def _service(ctx: Context, svc: str, targets: list[dict[str, Any]] | None, now: datetime) -> dict[str, Any]:
    s = ctx.outputs.get(f"service:{svc}") or {}
    deployments = [
        {
            "id": d.get("id"),
            "status": d.get("status"),
            "rollout_state": d.get("rolloutState"),
            "rollout_reason": d.get("rolloutStateReason"),
            "task_definition": str(d.get("taskDefinition", "")).rsplit("/", 1)[-1],
            "desired": d.get("desiredCount"),
            "running": d.get("runningCount"),
            "pending": d.get("pendingCount"),
            "failed_tasks": d.get("failedTasks", 0),
            "age_s": _age(d.get("createdAt"), now),
        }
        for d in s.get("deployments", [])
    ]
    return {
        "service": svc,
        "name": s.get("name"),
        "exists": bool(s),
        "desired": s.get("desired_count"),
        "running": s.get("running_count"),
        "pending": s.get("pending_count"),
        "deployments": deployments,
        "events": [{"at": e.get("createdAt"), "message": e.get("message")} for e in s.get("events", [])[:EVENTS_SHOWN]],
        "targets": targets,  # None: not behind the load balancer
    }


def _age(at: Any, now: datetime) -> int | None:
    return int((now - at).total_seconds()) if isinstance(at, datetime) else None


def cost(rows: list[dict[str, Any]], type_prices: dict[str, prices.TypePrices]) -> dict[str, Any]:
    """Each instance's price now, the fleet's per hour and month, the same fleet all on-demand,
    and the savings ratio (all on-demand / actual). Unknown prices make the totals unknown."""
    instances = []
    for r in rows:
        price, source = prices.hourly(type_prices, r["type"], r["zone"], r["lifecycle"] == "spot")
        od = type_prices.get(r["type"])
        instances.append(
            {
                "id": r["id"],
                "type": r["type"],
                "zone": r["zone"],
                "lifecycle": r["lifecycle"],
                "hourly": price,
                "source": source,
                "on_demand_hourly": od.on_demand if od else None,
            }
        )
    known = all(i["hourly"] is not None for i in instances)
    known_od = all(i["on_demand_hourly"] is not None for i in instances)
    fleet_h = sum(i["hourly"] for i in instances) if known and instances else None
    od_h = sum(i["on_demand_hourly"] for i in instances) if known_od and instances else None
    used = {(r["type"], r["zone"]) for r in rows}
    types = [
        {
            "type": t,
            "on_demand": p.on_demand,
            "on_demand_source": p.on_demand_source,
            "on_demand_problem": p.on_demand_problem,
            "spot_source": p.spot_source,
            "spot_problem": p.spot_problem,
            "zones": [
                {"zone": z, "spot_now": s.now, "history": s.history, "in_use": (t, z) in used}
                for z, s in sorted(p.spot.items())
            ],
        }
        for t, p in type_prices.items()
    ]
    sources = sorted({str(i["source"]) for i in instances} | {str(t["on_demand_source"]) for t in types})
    return {
        "instances": instances,
        "fleet_hourly": _round(fleet_h),
        "fleet_monthly": _round(fleet_h * prices.HOURS_PER_MONTH if fleet_h is not None else None),
        "on_demand_hourly": _round(od_h),
        "on_demand_monthly": _round(od_h * prices.HOURS_PER_MONTH if od_h is not None else None),
        "savings_ratio": round(od_h / fleet_h, 2) if od_h and fleet_h else None,
        "types": types,
        "sources": sources,
        "sample": prices.SAMPLE_SOURCE in sources,
        "history_days": prices.HISTORY_DAYS,
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def exit_code(doc: dict[str, Any]) -> ExitCode:
    return ExitCode.OK if doc["healthy"] else ExitCode.FAILURE


def fresh_run(opts: StatusOptions, previous: Run | None = None) -> Run:
    """A run for one look: the stack file loaded once, a new context (the plan fills its
    outputs) and new steps each time, the same AWS session and clients."""
    if previous is None:
        return prepare(RunOptions(file=opts.file, aws=opts.aws, output=opts.output))
    ctx = Context(stack=previous.stack, aws=previous.aws, timeouts=previous.ctx.timeouts)
    return Run(previous.stack, previous.aws, ctx, build(previous.stack, previous.aws.region))


def status(env: Env, opts: StatusOptions, *, sleep: Callable[[float], None] = time.sleep) -> ExitCode:
    from spotecs import render_status

    if opts.watch is None:
        with json_document(env, opts.output == "json", command="status") as doc:
            run = fresh_run(opts)
            doc.update(stack=run.stack.stack, region=run.region)
            doc.update(collect(run))
            if opts.output != "json":
                render_status.show(env, doc)
            return exit_code(doc)
    run = fresh_run(opts)
    return render_status.watch(env, lambda: collect(fresh_run(opts, run)), opts.watch, sleep)
