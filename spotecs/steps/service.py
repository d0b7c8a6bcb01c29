"""The ECS service per stack service: capacity-provider strategy on the stack's spot provider,
rolling deployments with the circuit breaker and rollback, binpack-then-spread placement, the
load balancer wiring, and ECS-managed tags. After a create or update, `up` waits until the
deployment is complete and its targets are healthy (unless --no-wait)."""

from __future__ import annotations

from typing import Any

from spotecs import names
from spotecs.aws import caused_by, tag_list, tags_from_list
from spotecs.engine.model import Change
from spotecs.errors import AwsError
from spotecs.steps import fleet_tags
from spotecs.steps.base import Context, Step
from spotecs.steps.cluster import listed_service
from spotecs.steps.service_linked_roles import NOT_USABLE_YET
from spotecs.steps.tagging import desired_tags, held_tags, retag

# A change of either leaves the running tasks with other tags than the service would give them.
RETAGS_TASKS = frozenset({"tags", "propagate_tags"})
GONE = ("ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException")
MAX_EVENTS = 5
EVENTS_KEPT = 10  # the newest service events `status` shows (ECS keeps 100)
# Right after its listener (or rule) is created, ECS may not yet see the target group as
# behind a load balancer.
TARGET_GROUP_NOT_YET = ("InvalidParameterException", "does not have an associated load balancer")


class Service(Step):
    kind = "ECS service"
    # Its read is two round trips (the cluster's services, then their descriptions): asked first (engine.plan.read_all).
    chained = True
    replace_on = frozenset({"cluster"})
    binds_to = frozenset({"cluster"})  # a service lives and dies in its cluster
    in_cluster: str | None = None  # None: the stack's cluster (an orphan may be in an older one)

    def __init__(self, stack: str, service: str, *, web: bool, name: str | None = None) -> None:
        """`name`: the AWS name when it is not derived (a tagged service found in the cluster),
        which then keys the step too."""
        super().__init__(
            f"service:{name or service}",
            name or names.service(stack, service),
            (
                "cluster",
                "capacity-provider",
                f"task-definition:{service}",
                *((f"target-group:{service}", "listeners") if web else ()),
            ),
        )
        self.service = service

    def desired(self, ctx: Context) -> dict[str, Any]:
        svc = ctx.stack.services[self.service]
        d = svc.deployment
        out: dict[str, Any] = {
            "cluster": ctx.stack.cluster_name,
            "task_definition": ctx.output(f"task-definition:{self.service}", "arn"),
            "capacity_provider_strategy": [
                {"capacityProvider": ctx.output("capacity-provider", "name"), "weight": 1, "base": 0}
            ],
            "deployment": {
                "minimumHealthyPercent": d.min_healthy_percent,
                "maximumPercent": d.max_percent,
                "deploymentCircuitBreaker": {"enable": d.circuit_breaker, "rollback": d.rollback},
            },
            "placement_strategy": [{"type": p.type, "field": p.field} for p in svc.placement],
            "load_balancers": [
                {
                    "targetGroupArn": ctx.output(f"target-group:{self.service}", "arn"),
                    "containerName": self.service,
                    "containerPort": svc.container_port,
                }
            ]
            if svc.is_web
            else [],
            "health_check_grace_period": svc.health_check_grace_period if svc.is_web else 0,
            "ecs_managed_tags": True,
            "propagate_tags": "SERVICE",
            "tags": desired_tags(ctx),
        }
        # With auto scaling, the desired count belongs to it: set once, at creation.
        if svc.scaling is None:
            out["desired_count"] = svc.desired_count
        return out

    def notes(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        out = fleet_tags.tasks_note(current) if _retags_tasks(desired, current) else []
        svc = ctx.stack.services[self.service]
        live = (current or {}).get("desired_count")
        if svc.scaling is None or current is None or live == svc.desired_count:
            return out
        return [
            *out,
            f"desired_count: {svc.desired_count} in the file, {live} on the service: service auto scaling "
            f"(min {svc.scaling.min}, max {svc.scaling.max}) sets it; the file's value only starts a new service",
        ]

    def read(self, ctx: Context) -> dict[str, Any] | None:
        s = listed_service(ctx, self.in_cluster or ctx.stack.cluster_name, self.name)
        # DRAINING is a deleted service on its way out: gone, for planning purposes.
        if s is None or s.get("status") != "ACTIVE":
            return None
        dc = s.get("deploymentConfiguration", {})
        cb = dc.get("deploymentCircuitBreaker", {})
        tags = tags_from_list(s.get("tags"))
        return {
            "cluster": s["clusterArn"].rsplit("/", 1)[-1],
            "task_definition": s.get("taskDefinition"),
            "capacity_provider_strategy": [
                {"capacityProvider": c["capacityProvider"], "weight": c.get("weight", 0), "base": c.get("base", 0)}
                for c in s.get("capacityProviderStrategy", [])
            ],
            "deployment": {
                "minimumHealthyPercent": dc.get("minimumHealthyPercent"),
                "maximumPercent": dc.get("maximumPercent"),
                "deploymentCircuitBreaker": {"enable": cb.get("enable", False), "rollback": cb.get("rollback", False)},
            },
            "placement_strategy": [_placement_of(p) for p in s.get("placementStrategy", [])],
            "load_balancers": sorted(
                (
                    {
                        "targetGroupArn": lb.get("targetGroupArn"),
                        "containerName": lb.get("containerName"),
                        "containerPort": lb.get("containerPort"),
                    }
                    for lb in s.get("loadBalancers", [])
                ),
                key=lambda lb: str(lb),
            ),
            # Only meaningful behind a load balancer; ECS keeps a stale value after unwiring.
            "health_check_grace_period": (s.get("healthCheckGracePeriodSeconds") or 0) if s.get("loadBalancers") else 0,
            "ecs_managed_tags": s.get("enableECSManagedTags", False),
            "propagate_tags": s.get("propagateTags", "NONE"),
            "tags": held_tags(tags),
            "desired_count": s.get("desiredCount"),
            # Live facts, never diffed: `status` shows them from this same read.
            "running_count": s.get("runningCount", 0),
            "pending_count": s.get("pendingCount", 0),
            "deployments": s.get("deployments", []),
            "events": s.get("events", [])[:EVENTS_KEPT],
            "arn": s["serviceArn"],
            "name": self.name,
            "_owned": ctx.owned(tags),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        svc = ctx.stack.services[self.service]
        count = svc.desired_count
        if svc.scaling:
            count = min(max(count, svc.scaling.min), svc.scaling.max)
        request: dict[str, Any] = {
            "cluster": desired["cluster"],
            "serviceName": self.name,
            "desiredCount": count,
            "schedulingStrategy": "REPLICA",
            "deploymentController": {"type": "ECS"},
            "tags": tag_list(desired["tags"], "key", "value"),
            **_settings(desired, svc.is_web),
        }
        # Without a token, a create retried after a lost response is refused ("Creation of service
        # was not idempotent") although the service it made is there.
        s = ctx.retry(
            f"create ECS service {self.name}",
            ctx.client("ecs").create_service,
            codes=(),
            when=caused_by(*NOT_USABLE_YET, TARGET_GROUP_NOT_YET),
            timeout=ctx.timeouts.budget("service-linked role"),
            clientToken=ctx.client_token(self.key, request),
            **request,
        )["service"]
        self._wait(ctx, desired)
        return {"arn": s["serviceArn"], "name": self.name, "desired_count": count}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        changed = change.changed_fields()
        if changed & RETAGS_TASKS:
            # The running tasks first: until the service holds its new tags, every plan shows
            # them changing, so a failure here is retried by the next `up` (fleet_tags).
            fleet_tags.retag_tasks(ctx, current["cluster"], self.name, desired["tags"], current.get("tags"))
        retag(ctx, "ecs", f"ECS service {self.name}", current["arn"], desired["tags"], current.get("tags"))
        if changed == {"tags"}:
            # Tags are not a deployment: the running tasks were re-tagged above.
            return {}
        svc = ctx.stack.services[self.service]
        settings = _settings(desired, svc.is_web)
        # Sent only when changed (this also unwires a service that lost its container_port).
        settings.pop("loadBalancers", None)
        if desired["load_balancers"] != current["load_balancers"]:
            settings["loadBalancers"] = desired["load_balancers"]
        if "desired_count" in desired:
            settings["desiredCount"] = desired["desired_count"]
        # Tasks keep the provider they were placed with: only a new deployment moves them.
        moved = desired["capacity_provider_strategy"] != current["capacity_provider_strategy"]
        ctx.call(
            f"update ECS service {self.name}",
            ctx.client("ecs").update_service,
            cluster=desired["cluster"],
            service=self.name,
            forceNewDeployment=moved,
            **settings,
        )
        self._wait(ctx, desired)
        return {"desired_count": desired.get("desired_count", current.get("desired_count"))}

    def _wait(self, ctx: Context, desired: dict[str, Any]) -> None:
        if not ctx.wait_for_services:
            return
        lbs = desired["load_balancers"]
        wait_until_healthy(
            ctx, desired["cluster"], self.name, desired["task_definition"], lbs[0]["targetGroupArn"] if lbs else None
        )

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        delete_service(ctx, current.get("cluster") or ctx.stack.cluster_name, self.name)


def delete_service(ctx: Context, cluster: str, name: str) -> None:
    """Scale to 0, delete with force, and wait until ECS calls it INACTIVE. A service already
    DRAINING (deleted by an earlier run) is only waited for; one already INACTIVE or gone is done."""
    ecs = ctx.client("ecs")
    s = describe_service(ctx, cluster, name)
    if s is None or s.get("status") == "INACTIVE":
        return
    if s.get("status") == "ACTIVE":
        # Scale to zero first so tasks drain from the load balancer instead of being cut.
        ctx.call(
            f"scale ECS service {name} to 0",
            ecs.update_service,
            missing=GONE,
            cluster=cluster,
            service=name,
            desiredCount=0,
        )
        ctx.call(
            f"delete ECS service {name}", ecs.delete_service, missing=GONE, cluster=cluster, service=name, force=True
        )

    def inactive() -> tuple[bool, str]:
        s = describe_service(ctx, cluster, name)
        if s is None or s.get("status") == "INACTIVE":
            return True, "inactive"
        return False, f"{s.get('status', '').lower()}, {s.get('runningCount', 0)} task(s) still running"

    ctx.poll(
        f"ECS service {name} to be deleted",
        inactive,
        hint="ECS is still stopping its tasks (each gets its stop timeout and the target group's "
        "deregistration delay). Run the same command again to keep waiting, or stop the "
        "tasks in the ECS console.",
        timeout=ctx.timeouts.budget("service deleted"),
    )


def describe_service(ctx: Context, cluster: str, name: str) -> dict[str, Any] | None:
    got = ctx.call(
        f"describe ECS service {name}",
        ctx.client("ecs").describe_services,
        missing=("ClusterNotFoundException",),
        cluster=cluster,
        services=[name],
        include=["TAGS"],
    )
    services = (got or {}).get("services", [])
    return services[0] if services else None


def wait_until_healthy(ctx: Context, cluster: str, name: str, task_definition: str, target_group: str | None) -> None:
    """Until the deployment of `task_definition` is COMPLETED, running = desired and (for a web
    service) that many targets are healthy. A failed or rolled-back deployment, or a timeout,
    raises with the service's last events; the next `up` picks up from whatever state is left.

    Right after a create or update, ECS may not show the new service or deployment yet: not
    found, or the previous deployment still PRIMARY, means "not yet", never "deleted" or
    "rolled back". Those verdicts need the service, and then our deployment, seen first."""
    last = {"status": ""}
    seen = {"service": False, "deployment": False}

    def check() -> tuple[bool, str]:
        s = describe_service(ctx, cluster, name)
        if s is None or s.get("status") != "ACTIVE":
            if not seen["service"] and (s is None or s.get("status") != "DRAINING"):
                return False, "not visible yet"
            raise AwsError(f"deploy ECS service {name}", "the service was deleted while deploying")
        seen["service"] = True
        deployments = s.get("deployments", [])
        primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        ours = [d for d in deployments if d.get("taskDefinition") == task_definition]
        failed = next((d for d in ours if d.get("rolloutState") == "FAILED"), None)
        if failed is not None:
            reason = failed.get("rolloutStateReason") or "the deployment failed"
            raise AwsError(f"deploy ECS service {name}", f"deployment failed: {reason}{_events(s)}")
        seen["deployment"] = seen["deployment"] or bool(ours)  # ours listed, even if no longer PRIMARY
        if primary.get("taskDefinition") != task_definition:
            if not seen["deployment"]:
                return False, "deployment starting"
            reason = f"ECS rolled back to {str(primary.get('taskDefinition', '?')).rsplit('/', 1)[-1]}"
            raise AwsError(f"deploy ECS service {name}", f"deployment failed: {reason}{_events(s)}")
        desired = s.get("desiredCount", primary.get("desiredCount", 0))
        running = primary.get("runningCount", 0)
        status = f"running {running}/{desired}"
        done = running == desired and primary.get("rolloutState", "COMPLETED") == "COMPLETED"
        if target_group:
            health = ctx.call(
                f"read target health of {name}", ctx.client("elbv2").describe_target_health, TargetGroupArn=target_group
            )["TargetHealthDescriptions"]
            healthy = sum(1 for h in health if h.get("TargetHealth", {}).get("State") == "healthy")
            status += f", targets healthy {healthy}/{desired}"
            done = done and healthy >= desired
        last["status"] = status
        return done, status

    ctx.until(
        f"ECS service {name} to become healthy",
        lambda budget: ctx.poll(f"ECS service {name} to become healthy", check, timeout=budget),
        status=lambda: last["status"],
        budget=ctx.timeouts.budget("service stable"),
        hint=lambda: f"Run `spotecs up` again to keep waiting.{_events(describe_service(ctx, cluster, name) or {})}",
    )


def _events(service: dict[str, Any]) -> str:
    """The service's last events (newest first): they say why tasks do not start or stay up."""
    events = [e.get("message", "") for e in service.get("events", [])[:MAX_EVENTS]]
    return "\nLast service events:" + "".join(f"\n  - {m}" for m in events) if events else ""


def _settings(desired: dict[str, Any], web: bool) -> dict[str, Any]:
    """The fields create_service and update_service share."""
    out: dict[str, Any] = {
        "taskDefinition": desired["task_definition"],
        "capacityProviderStrategy": desired["capacity_provider_strategy"],
        "deploymentConfiguration": desired["deployment"],
        "placementStrategy": [{k: v for k, v in p.items() if v is not None} for p in desired["placement_strategy"]],
        "enableECSManagedTags": desired["ecs_managed_tags"],
        "propagateTags": desired["propagate_tags"],
    }
    if web:
        out["loadBalancers"] = desired["load_balancers"]
        out["healthCheckGracePeriodSeconds"] = desired["health_check_grace_period"]
    return out


def _placement_of(p: dict[str, Any]) -> dict[str, Any]:
    field = p.get("field")
    # ECS reads binpack fields back upper-case (CPU, MEMORY); other fields keep their case.
    if p.get("type") == "binpack" and field:
        field = field.lower()
    return {"type": p.get("type"), "field": field}


def _retags_tasks(desired: dict[str, Any], current: dict[str, Any] | None) -> bool:
    """Whether an update of the service in place re-tags its running tasks."""
    return (
        current is not None
        and current.get("cluster") == desired["cluster"]
        and any(desired[k] != current.get(k) for k in RETAGS_TASKS)
    )
