"""The sandbox's load balancers answer HTTP on loopback, from their targets' health.

moto's load balancers are records only: nothing listens, and every registered target is
"healthy" at once and gone at once. To make a drill's probe mean something offline:

- **Draining.** A target deregistered gracefully (a task stopped by ECS) stays listed as
  `draining` (`Target.DeregistrationInProgress`) for the group's
  `deregistration_delay.timeout_seconds`, receiving no new requests, then disappears
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#deregistration-delay).
- **Sudden death.** A target whose task dies without being deregistered first (its instance
  terminated while the task ran) keeps receiving requests, which fail, until health checks
  notice: `HealthCheckIntervalSeconds x UnhealthyThresholdCount`
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html).
- **The front.** With the front enabled (the Sandbox enables it), each load balancer gets its own
  HTTP server on 127.0.0.1 and its DNSName becomes `127.0.0.1:<port>`, so `http://<DNSName>/`
  reaches it. A request follows the HTTP listener's rules (path and host patterns, in priority
  order; forward, redirect, fixed response), then goes round-robin to a target of the group that
  is registered and not draining: 200 when that target's task is alive, 502 when it is a dead
  one not yet found unhealthy, 503 when the group has no such target.

Delays follow the sandbox clock (clock.py).
"""

from __future__ import annotations

import fnmatch
import itertools
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spotecs.sandbox.clock import CLOCK

# (target group ARN, target id, port) -> real monotonic time the state ends.
DRAINING: dict[tuple[str, str, int], float] = {}
DEAD: dict[tuple[str, str, int], float] = {}
_STATE_LOCK = threading.RLock()
_round_robin = itertools.count()


def _key(tg_arn: str, target_id: str, port: Any) -> tuple[str, str, int]:
    return (tg_arn, str(target_id), int(port))


def deregistration_delay(tg: Any) -> float:
    """The group's deregistration delay in (simulated) seconds; ELB's default is 300."""
    try:
        return float(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
    except (TypeError, ValueError):
        return 300.0


def begin_draining(tg_arn: str, tg: Any, target_id: str, port: int) -> None:
    """The target leaves the rotation now and the group after the deregistration delay."""
    with _STATE_LOCK:
        DRAINING[_key(tg_arn, target_id, port)] = CLOCK.after(deregistration_delay(tg))


def mark_dead(tg_arn: str, tg: Any, target_id: str, port: int) -> None:
    """The target's task died; the load balancer finds out after its unhealthy threshold."""
    interval = float(getattr(tg, "health_check_interval_seconds", 30) or 30)
    threshold = float(getattr(tg, "unhealthy_threshold_count", 2) or 2)
    with _STATE_LOCK:
        DEAD[_key(tg_arn, target_id, port)] = CLOCK.after(interval * threshold)


def mark_dead_task(elbv2: Any, task: Any) -> None:
    """Every target of a task that dies while registered (its instance was terminated)."""
    from spotecs.sandbox.tasks import TARGETS_ATTR

    for tg_arn, target_id, port in getattr(task, TARGETS_ATTR, []):
        tg = elbv2.target_groups.get(tg_arn) if elbv2 is not None else None
        if tg is not None and target_id is not None:
            mark_dead(tg_arn, tg, target_id, port)


def is_draining(tg_arn: str, target_id: str, port: Any) -> bool:
    with _STATE_LOCK:
        return _key(tg_arn, target_id, port) in DRAINING


def draining_targets(tg_arn: str) -> list[tuple[str, str, int]]:
    with _STATE_LOCK:
        return [k for k in DRAINING if k[0] == tg_arn]


def dead_targets(tg_arn: str) -> list[tuple[str, str, int]]:
    """Dead targets the load balancer still believes healthy (and still lists and routes to)."""
    with _STATE_LOCK:
        return [k for k in DEAD if k[0] == tg_arn]


def expired(now: float) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """Pop the draining and dead targets whose time is up: (drained, found unhealthy)."""
    with _STATE_LOCK:
        drained = [k for k, until in DRAINING.items() if until <= now]
        found = [k for k, until in DEAD.items() if until <= now]
        for k in drained:
            del DRAINING[k]
        for k in found:
            del DEAD[k]
    return drained, found


# --- the HTTP front --------------------------------------------------------------------------


@dataclass
class _Front:
    server: ThreadingHTTPServer
    lb_arn: str
    backend: Any


_FRONTS: dict[str, _Front] = {}
_ENABLED: list[threading.RLock] = []  # the sandbox's lock while the front is enabled


def enable(lock: threading.RLock) -> None:
    _ENABLED[:] = [lock]


def disable() -> None:
    _ENABLED.clear()
    for front in list(_FRONTS.values()):
        front.server.shutdown()
        front.server.server_close()
    _FRONTS.clear()


def serve(elbv2: Any, lb: Any) -> None:
    """Give `lb` a loopback HTTP server and point its DNSName at it (no-op when disabled)."""
    if not _ENABLED or lb.arn in _FRONTS:
        return
    lock = _ENABLED[0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                status, headers = answer(elbv2, lb.arn, self.path, self.headers.get("Host", ""))
            body = f"{status}\n".encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, format: str, *args: Any) -> None:  # quiet, like the sandbox
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"spotecs-lb-{lb.name}", daemon=True).start()
    _FRONTS[lb.arn] = _Front(server, lb.arn, elbv2)
    lb.dns_name = f"127.0.0.1:{server.server_address[1]}"


def answer(elbv2: Any, lb_arn: str, path: str, host: str) -> tuple[int, dict[str, str]]:
    lb = elbv2.load_balancers.get(lb_arn)
    if lb is None:
        return 503, {}
    listeners = sorted(lb.listeners.values(), key=lambda li: (li.protocol != "HTTP", int(li.port)))
    if not listeners:
        return 503, {}
    action = _route(listeners[0], path.split("?", 1)[0], host.split(":", 1)[0])
    if action is None:
        return 404, {}
    kind = action.data.get("Type")
    if kind == "redirect":
        config = action.data.get("RedirectConfig", {})
        code = 301 if config.get("StatusCode", "HTTP_301") == "HTTP_301" else 302
        return code, {"Location": f"{config.get('Protocol', 'https').lower()}://{host}{path}"}
    if kind == "fixed-response":
        return int(action.data.get("FixedResponseConfig", {}).get("StatusCode", 503)), {}
    tg_arn = action.data.get("TargetGroupArn") or next(
        (t["TargetGroupArn"] for t in action.data.get("ForwardConfig", {}).get("TargetGroups", [])), None
    )
    return _forward(elbv2, tg_arn), {}


def _route(listener: Any, path: str, host: str) -> Any | None:
    rules = sorted((r for r in getattr(listener, "_non_default_rules", {}).values()), key=lambda r: int(r.priority))
    for rule in rules:
        if all(_matches(c, path, host) for c in rule.conditions):
            return rule.actions[0] if rule.actions else None
    return listener.default_actions[0] if listener.default_actions else None


def _matches(condition: dict[str, Any], path: str, host: str) -> bool:
    field = condition.get("Field")
    if field == "path-pattern":
        values = condition.get("PathPatternConfig", {}).get("Values") or condition.get("Values") or []
        return any(fnmatch.fnmatchcase(path, v) for v in values)
    if field == "host-header":
        values = condition.get("HostHeaderConfig", {}).get("Values") or condition.get("Values") or []
        return any(fnmatch.fnmatch(host.lower(), v.lower()) for v in values)
    return False  # conditions the sandbox does not evaluate never match


def _forward(elbv2: Any, tg_arn: str | None) -> int:
    tg = elbv2.target_groups.get(tg_arn) if tg_arn else None
    if tg is None:
        return 503
    with _STATE_LOCK:
        in_rotation = [
            t for t in tg.targets.values() if _key(tg_arn or "", t["Id"], t.get("Port") or 0) not in DRAINING
        ]
        dead = [k for k in DEAD if k[0] == tg_arn]
    candidates = [(t["Id"], int(t.get("Port") or 0), False) for t in in_rotation]
    candidates += [(k[1], k[2], True) for k in dead]
    if not candidates:
        return 503
    candidates.sort()
    _, _, is_dead = candidates[next(_round_robin) % len(candidates)]
    return 502 if is_dead else 200
