"""What `status` warns about, each with what to do. Severity "error" makes `status` exit 1
(something is unhealthy, stuck or missing); "warning" is shown and does not."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

DRAINING_TOO_LONG_S = 600
IDLE_PROTECTED_S = 3600
DEPLOYMENT_STUCK_S = 1800
FAILED = ("Failed", "Cancelled", "Unfulfilled")


def _w(severity: str, subject: str, message: str, action: str) -> dict[str, Any]:
    return {"severity": severity, "subject": subject, "message": message, "action": action}


def find(doc: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    out += _resources(doc["resources"])
    out += _fleet(doc, now)
    for svc in doc["services"]:
        out += _service(svc)
    out += _activities(doc.get("scaling", {}).get("activities", []))
    out += [
        _w("warning", "status", p, "check the permissions of these credentials; the rest is shown")
        for p in doc.get("problems", [])
    ]
    out.sort(key=lambda w: w["severity"] != "error")
    return out


def _resources(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    missing = [f"{r['kind']} {r['name']}" for r in rows if r["state"] == "missing"]
    if missing:
        out.append(
            _w("error", "resources", f"missing: {', '.join(missing)}", "run `spotecs up` to create what is missing")
        )
    for r in rows:
        if r["state"] == "drifted":
            out.append(
                _w(
                    "warning",
                    f"{r['kind']} {r['name']}",
                    f"differs from the stack file: {', '.join(r['drift']) or 'replaced'}",
                    "run `spotecs up` to put it back as the file says (or change the file)",
                )
            )
    orphans = [f"{r['kind']} {r['name']}" for r in rows if r["state"] == "orphan"]
    if orphans:
        out.append(
            _w(
                "warning",
                "resources",
                f"no longer in the stack file: {', '.join(orphans)}",
                "run `spotecs up` to delete them",
            )
        )
    return out


def _drain_started(activities: list[dict[str, Any]], instance_id: str) -> datetime | None:
    """When the group began terminating the instance (its activity's start), if it did."""
    for a in activities:
        what = str(a.get("description"))
        if a["scaler"] == "group" and instance_id in what and what.startswith("Terminating"):
            return a["start"] if isinstance(a.get("start"), datetime) else None
    return None


def _fleet(doc: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    out = []
    activities = doc.get("scaling", {}).get("activities", [])
    rows = doc["fleet"]["instances"]
    for r in rows:
        subject = f"instance {r['id']}"
        if r["ecs_status"] == "DRAINING":
            since = _drain_started(activities, r["id"])
            if since is not None and (now - since).total_seconds() > DRAINING_TOO_LONG_S:
                minutes = int((now - since).total_seconds() // 60)
                out.append(
                    _w(
                        "error",
                        subject,
                        f"draining for {minutes} min (tasks: {_tasks(r)})",
                        "look at the services' events for tasks that cannot be placed elsewhere; "
                        "add capacity (raise the group's max) or stop the stuck tasks",
                    )
                )
        if r["agent_connected"] is False:
            out.append(
                _w(
                    "error",
                    subject,
                    "the ECS agent is disconnected: no task is placed on it and its tasks are not watched",
                    "check the instance (SSM Session Manager, the agent's log), or terminate it: the group replaces it",
                )
            )
        if r["health"] and r["health"] != "Healthy":
            out.append(
                _w(
                    "error",
                    subject,
                    f"the group reports it {r['health']}",
                    "the group replaces it; if it keeps happening, look at the instance's system log",
                )
            )
        if r["protected"] and not r["tasks"] and (r["uptime_s"] or 0) > IDLE_PROTECTED_S and r["ecs_status"]:
            out.append(
                _w(
                    "warning",
                    subject,
                    "protected from scale-in with no task, up for more than an hour",
                    "the capacity provider lifts protection when it scales in; if it does not, check its "
                    "target capacity, or remove the protection by hand",
                )
            )
    outdated = [r["id"] for r in rows if r["ami_outdated"]]
    if outdated:
        out.append(
            _w(
                "warning",
                "fleet",
                f"{len(outdated)} instance(s) run an older AMI than the recommended "
                f"ECS-optimized one ({doc['fleet']['latest_ami']}): {', '.join(outdated[:5])}",
                "run `spotecs up` (a new launch template version), then replace the instances (`spotecs refresh-ami`)",
            )
        )
    t = doc["fleet"]["totals"]
    n = t["instances"]
    if n and abs(t["on_demand"] - t["expected_on_demand"]) >= max(2, math.ceil(0.2 * n)):
        out.append(
            _w(
                "warning",
                "fleet",
                f"{t['spot']} of {n} instances are spot; the configured mix (on-demand base "
                f"{t['configured']['on_demand_base']}, {t['configured']['on_demand_percent']} % above it) "
                f"expects {n - t['expected_on_demand']}",
                "spot capacity may be short in these zones: add instance types to instances.types",
            )
        )
    return out


def _tasks(r: dict[str, Any]) -> str:
    return ", ".join(f"{n} {s}" for s, n in r["tasks"].items()) or "none"


def _service(svc: dict[str, Any]) -> list[dict[str, Any]]:
    subject = f"service {svc['service']}"
    if not svc["exists"]:
        return []  # reported with the missing resources
    out = []
    if svc["running"] != svc["desired"]:
        out.append(
            _w(
                "error",
                subject,
                f"{svc['running']} of {svc['desired']} tasks running ({svc['pending']} pending)",
                "read the service's events below; `no container instance met all of its requirements` "
                "means the group needs more room (the capacity provider adds it within minutes)",
            )
        )
    for d in svc["deployments"]:
        if d["rollout_state"] == "FAILED":
            out.append(
                _w(
                    "error",
                    subject,
                    f"deployment {d['task_definition']} failed: {d['rollout_reason']}",
                    "fix the image or its health check, then `spotecs up` again",
                )
            )
        elif d["rollout_state"] == "IN_PROGRESS" and (d["age_s"] or 0) > DEPLOYMENT_STUCK_S:
            out.append(
                _w(
                    "error",
                    subject,
                    f"deployment {d['task_definition']} in progress for {d['age_s'] // 60} min",
                    "read the service's events; tasks that keep stopping show why in `spotecs logs`",
                )
            )
    targets = svc["targets"]
    if targets is not None:
        healthy = sum(1 for t in targets if t["state"] == "healthy")
        bad = [t for t in targets if t["state"] not in ("healthy", "draining", "initial")]
        if bad or healthy < (svc["desired"] or 0):
            reasons = sorted({str(t["reason"] or t["state"]) for t in bad})
            out.append(
                _w(
                    "error",
                    subject,
                    f"{healthy} of {svc['desired']} targets healthy" + (f" ({', '.join(reasons)})" if reasons else ""),
                    "check the health check path and the success codes against what the container answers",
                )
            )
    return out


def _activities(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        _w(
            "warning",
            f"{a['scaler']} scaling",
            f"{a['status']}: {a['description']}" + (f" — {a['message']}" if a.get("message") else ""),
            "for spot capacity errors add instance types or zones; for quota errors ask AWS for a higher "
            "limit (Service Quotas)",
        )
        for a in activities
        if a["status"] in FAILED
    ]
