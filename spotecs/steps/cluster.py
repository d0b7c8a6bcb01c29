"""The ECS cluster (the article's `DemoApiClusterProd`): named as configured, container insights
switchable. Deleting it waits until ECS agrees it is empty."""

from __future__ import annotations

from typing import Any

from spotecs.aws import tag_list, tags_from_list
from spotecs.engine.model import Change
from spotecs.steps.base import Context, Step

# ECS answers these while services, tasks or instances are still being wound down.
NOT_EMPTY_YET = ("ClusterContainsContainerInstancesException", "ClusterContainsServicesException",
                 "ClusterContainsTasksException", "UpdateInProgressException")
GONE = ("ClusterNotFoundException",)


def describe_cluster(ctx: Context, name: str) -> dict[str, Any] | None:
    """The ACTIVE cluster of that name, with settings and tags; None if absent or deleted
    (ECS keeps a deleted cluster INACTIVE for a while)."""
    got = ctx.call(f"describe ECS cluster {name}", ctx.client("ecs").describe_clusters, missing=GONE,
                   clusters=[name], include=["SETTINGS", "TAGS"])
    clusters = [c for c in (got or {}).get("clusters", []) if c.get("status") == "ACTIVE"]
    return clusters[0] if clusters else None


class Cluster(Step):
    """Outputs: name, arn."""

    kind = "ECS cluster"

    def __init__(self, name: str) -> None:
        super().__init__("cluster", name)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"container_insights": "enabled" if ctx.stack.cluster.container_insights else "disabled"}

    def _settings(self, desired: dict[str, Any]) -> list[dict[str, str]]:
        return [{"name": "containerInsights", "value": desired["container_insights"]}]

    def read(self, ctx: Context) -> dict[str, Any] | None:
        c = describe_cluster(ctx, self.name)
        if c is None:
            return None
        settings = {s["name"]: s["value"] for s in c.get("settings", [])}
        return {"container_insights": settings.get("containerInsights", "disabled"), "name": self.name,
                "arn": c["clusterArn"], "_owned": ctx.owned(tags_from_list(c.get("tags")))}

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        c = ctx.call(f"create ECS cluster {self.name}", ctx.client("ecs").create_cluster, clusterName=self.name,
                     settings=self._settings(desired), tags=tag_list(ctx.tags(), "key", "value"))["cluster"]
        return {"name": self.name, "arn": c["clusterArn"]}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any],
               change: Change) -> dict[str, Any]:
        ctx.call(f"update settings of ECS cluster {self.name}", ctx.client("ecs").update_cluster,
                 cluster=self.name, settings=self._settings(desired))
        return {"name": self.name, "arn": current["arn"]}

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        ecs = ctx.client("ecs")

        def deregister_then_delete() -> Any:
            # Instances of a deleted group may still be registered: ECS forgets them slowly.
            arns = ctx.paginate(f"list container instances of {self.name}", "ecs", "list_container_instances",
                                "containerInstanceArns", cluster=self.name)
            for arn in arns:
                ctx.call(f"deregister container instance {arn.rsplit('/', 1)[-1]}",
                         ecs.deregister_container_instance, missing=(*GONE, "InvalidParameterException"),
                         cluster=self.name, containerInstance=arn, force=True)
            return ctx.call(f"delete ECS cluster {self.name}", ecs.delete_cluster, missing=GONE, cluster=self.name)

        if describe_cluster(ctx, self.name) is None:
            return
        ctx.retry(f"delete ECS cluster {self.name}", deregister_then_delete, codes=NOT_EMPTY_YET, missing=GONE)
