"""The ECS cluster (the article's `DemoApiClusterProd`): named as configured, container insights
switchable. Deleting it waits until ECS agrees it is empty."""

from __future__ import annotations

from typing import Any

from spotecs.aws import tag_list, tags_from_list
from spotecs.engine.model import Change
from spotecs.errors import AwsError
from spotecs.steps.base import Context, Step
from spotecs.steps.tagging import desired_tags, held_tags, retag

# ECS answers these while services, tasks or instances are still being wound down.
NOT_EMPTY_YET = (
    "ClusterContainsContainerInstancesException",
    "ClusterContainsServicesException",
    "ClusterContainsTasksException",
    "UpdateInProgressException",
)
GONE = ("ClusterNotFoundException",)


def describe_cluster(ctx: Context, name: str) -> dict[str, Any] | None:
    """The ACTIVE cluster of that name, with settings and tags; None if absent or deleted
    (ECS keeps a deleted cluster INACTIVE for a while)."""
    clusters = [c for c in describe_clusters(ctx, name) if c.get("status") == "ACTIVE"]
    return clusters[0] if clusters else None


def describe_clusters(ctx: Context, name: str) -> list[dict[str, Any]]:
    """The cluster of that name in every status ECS still reports, with settings and tags: one
    read per plan, whichever step asks (the cluster, its capacity provider, the orphan search)."""
    got = ctx.read(
        f"describe ECS cluster {name}",
        "ecs",
        "describe_clusters",
        missing=GONE,
        clusters=[name],
        include=["SETTINGS", "TAGS"],
    )
    return list((got or {}).get("clusters", []))


def cluster_services(ctx: Context, cluster: str) -> list[dict[str, Any]]:
    """Every service ECS still lists in the cluster (ACTIVE or DRAINING), described with tags, 10
    per call: the services' reads and the orphan search share these calls."""
    try:
        arns = ctx.read_pages(
            f"list services of ECS cluster {cluster}", "ecs", "list_services", "serviceArns", cluster=cluster
        )
    except AwsError as e:
        if e.code in GONE:
            return []
        raise
    out: list[dict[str, Any]] = []
    for i in range(0, len(arns), 10):  # describe_services takes at most 10
        got = ctx.read(
            f"describe services of ECS cluster {cluster}",
            "ecs",
            "describe_services",
            missing=GONE,
            cluster=cluster,
            services=arns[i : i + 10],
            include=["TAGS"],
        )
        out += (got or {}).get("services", [])
    return out


def listed_service(ctx: Context, cluster: str, name: str) -> dict[str, Any] | None:
    """The service of that name among those ECS lists in the cluster (ACTIVE or DRAINING), or None
    (absent, or INACTIVE: deleted)."""
    return next((s for s in cluster_services(ctx, cluster) if s.get("serviceName") == name), None)


class Cluster(Step):
    """Outputs: name, arn."""

    kind = "ECS cluster"

    def __init__(self, name: str) -> None:
        super().__init__("cluster", name)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "container_insights": "enabled" if ctx.stack.cluster.container_insights else "disabled",
            "tags": desired_tags(ctx),
        }

    def _settings(self, desired: dict[str, Any]) -> list[dict[str, str]]:
        return [{"name": "containerInsights", "value": desired["container_insights"]}]

    def read(self, ctx: Context) -> dict[str, Any] | None:
        c = describe_cluster(ctx, self.name)
        if c is None:
            return None
        settings = {s["name"]: s["value"] for s in c.get("settings", [])}
        tags = tags_from_list(c.get("tags"))
        return {
            "container_insights": settings.get("containerInsights", "disabled"),
            "tags": held_tags(tags),
            "name": self.name,
            "arn": c["clusterArn"],
            "_owned": ctx.owned(tags),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        c = ctx.call(
            f"create ECS cluster {self.name}",
            ctx.client("ecs").create_cluster,
            clusterName=self.name,
            settings=self._settings(desired),
            tags=tag_list(desired["tags"], "key", "value"),
        )["cluster"]
        return {"name": self.name, "arn": c["clusterArn"]}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        if "container_insights" in change.changed_fields():
            ctx.call(
                f"update settings of ECS cluster {self.name}",
                ctx.client("ecs").update_cluster,
                cluster=self.name,
                settings=self._settings(desired),
            )
        retag(ctx, "ecs", f"ECS cluster {self.name}", current["arn"], desired["tags"], current.get("tags"))
        return {"name": self.name, "arn": current["arn"]}

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        ecs = ctx.client("ecs")

        def registered() -> list[str]:
            try:
                return ctx.paginate(
                    f"list container instances of {self.name}",
                    "ecs",
                    "list_container_instances",
                    "containerInstanceArns",
                    cluster=self.name,
                )
            except AwsError as e:
                if e.code in GONE:  # deleted since the plan read it
                    return []
                raise

        def deregister_then_delete() -> Any:
            # Instances of a deleted group may still be registered: ECS forgets them slowly.
            for arn in registered():
                try:
                    ctx.call(
                        f"deregister container instance {arn.rsplit('/', 1)[-1]}",
                        ecs.deregister_container_instance,
                        missing=(*GONE, "InvalidParameterException", "ClientException"),
                        cluster=self.name,
                        containerInstance=arn,
                        force=True,
                    )
                except AwsError:
                    # ECS deregisters a terminated instance on its own, maybe between the listing
                    # and this call: only an instance still listed is a failure.
                    if arn in registered():
                        raise
            return ctx.call(f"delete ECS cluster {self.name}", ecs.delete_cluster, missing=GONE, cluster=self.name)

        if describe_cluster(ctx, self.name) is None:  # deleted since: nothing to write
            return
        # The stack's own services are deleted before the cluster; any still ACTIVE is someone
        # else's, which spotecs never deletes: say so now rather than retry until the timeout.
        others = sorted(s["serviceName"] for s in cluster_services(ctx, self.name) if s.get("status") == "ACTIVE")
        if others:
            raise AwsError(
                f"delete ECS cluster {self.name}",
                f"it still runs service(s) {', '.join(others)} that this stack does not delete; delete "
                "or move them, then run the same command again",
            )
        ctx.until(
            f"ECS cluster {self.name} to be empty",
            lambda budget: ctx.retry(
                f"delete ECS cluster {self.name}",
                deregister_then_delete,
                codes=NOT_EMPTY_YET,
                missing=GONE,
                timeout=budget,
            ),
            status=lambda: self._contents(ctx),
            budget=ctx.timeouts.budget("cluster empty"),
            hint="ECS has not caught up with the deleted services and instances yet. Run the same "
            "command again to keep waiting; if something else runs in this cluster, stop or "
            "move it first.",
        )

    def _contents(self, ctx: Context) -> str:
        """What still keeps the cluster alive, in ECS's own counts."""
        c = describe_cluster(ctx, self.name) or {}
        counts = {
            "container instance(s) registered": c.get("registeredContainerInstancesCount", 0),
            "service(s)": c.get("activeServicesCount", 0),
            "task(s) running": c.get("runningTasksCount", 0),
            "task(s) pending": c.get("pendingTasksCount", 0),
        }
        left = [f"{n} {what}" for what, n in counts.items() if n]
        return ", ".join(left) or "ECS still reports it in use"
