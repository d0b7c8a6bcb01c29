"""A CloudWatch log group per service, with a retention (the console's default keeps logs
forever, which the article advises against)."""

from __future__ import annotations

from typing import Any

from spotecs import names
from spotecs.aws import tags_from_list
from spotecs.engine.model import Change
from spotecs.steps.base import Context, Step, arn_resource, stack_read_tags
from spotecs.steps.cluster import describe_clusters
from spotecs.steps.tagging import confirmed, desired_tags, held_tags, retag


def stack_log_groups(ctx: Context) -> list[dict[str, Any]]:
    """Every log group under the stack's prefix: one listing serves each service's log group and
    the orphan search."""
    return ctx.read_pages(
        "list the stack's log groups",
        "logs",
        "describe_log_groups",
        "logGroups",
        logGroupNamePrefix=names.log_group_prefix(ctx.name),
    )


class LogGroup(Step):
    kind = "log group"

    def __init__(self, stack: str, service: str) -> None:
        super().__init__(f"log-group:{service}", names.log_group(stack, service))
        self.service = service

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"retention_days": ctx.stack.services[self.service].log_retention_days, "tags": desired_tags(ctx)}

    def describe(self, ctx: Context) -> dict[str, Any] | None:
        return next((g for g in stack_log_groups(ctx) if g["logGroupName"] == self.name), None)

    def read(self, ctx: Context) -> dict[str, Any] | None:
        group = self.describe(ctx)
        if group is None:
            return None
        arn = group["arn"].removesuffix(":*")
        # From the stack's tagging-API read; a group missing there, or whose tags there are not
        # the file's (tagging.confirmed), is asked directly.
        tags = (
            confirmed(
                ctx,
                {arn: stack_read_tags(ctx, arn_resource(arn))},
                lambda _: {arn: self._own_tags(ctx)},
            )[arn]
            or {}
        )
        return {
            "retention_days": group.get("retentionInDays"),
            "tags": held_tags(tags),
            "arn": arn,
            "log_group": self.name,
            "_owned": ctx.owned(tags),
        }

    def _own_tags(self, ctx: Context) -> dict[str, str]:
        logs = ctx.client("logs")
        return dict(
            ctx.call(f"list tags of log group {self.name}", logs.list_tags_log_group, logGroupName=self.name).get(
                "tags", {}
            )
        )

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        logs = ctx.client("logs")
        ctx.call(f"create log group {self.name}", logs.create_log_group, logGroupName=self.name, tags=desired["tags"])
        self._retention(ctx, desired["retention_days"])
        # Dependants need the ARN too, and create_log_group does not return it; the describe that
        # follows a create may not list the group yet.
        found: dict[str, Any] = {}

        def listed() -> tuple[bool, str]:
            groups = ctx.paginate(
                f"describe log group {self.name}",
                "logs",
                "describe_log_groups",
                "logGroups",
                logGroupNamePrefix=self.name,
            )
            found.update(next((g for g in groups if g["logGroupName"] == self.name), {}))
            return bool(found), "" if found else "not listed yet"

        ctx.poll(f"log group {self.name} to be listed", listed, timeout=ctx.timeouts.budget("eventual consistency"))
        return {"log_group": self.name, "arn": str(found["arn"]).removesuffix(":*")}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        if "retention_days" in change.changed_fields():
            self._retention(ctx, desired["retention_days"])
        retag(ctx, "logs", f"log group {self.name}", current["arn"], desired["tags"], current.get("tags"))
        return {}

    def _retention(self, ctx: Context, days: int | None) -> None:
        logs = ctx.client("logs")
        if days is None:
            ctx.call(f"remove retention of log group {self.name}", logs.delete_retention_policy, logGroupName=self.name)
        else:
            ctx.call(
                f"set retention of log group {self.name}",
                logs.put_retention_policy,
                logGroupName=self.name,
                retentionInDays=days,
            )

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        ctx.call(
            f"delete log group {self.name}",
            ctx.client("logs").delete_log_group,
            missing=("ResourceNotFoundException",),
            logGroupName=self.name,
        )


class ContainerInsightsLogGroup(LogGroup):
    """The log group Container Insights creates for the cluster on its own (untagged, so it is the
    stack's when the cluster of that name is, even INACTIVE: ECS keeps a deleted cluster's record
    for a while). Only `teardown` plans it, and deletes it after the cluster, so no performance
    event arrives after it is gone. `up` never creates it: AWS does."""

    kind = "log group"

    def __init__(self, cluster: str) -> None:
        Step.__init__(self, "log-group:container-insights", names.container_insights_log_group(cluster))
        self.cluster = cluster

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    def read(self, ctx: Context) -> dict[str, Any] | None:
        groups = ctx.paginate(
            f"describe log group {self.name}", "logs", "describe_log_groups", "logGroups", logGroupNamePrefix=self.name
        )
        if not any(g["logGroupName"] == self.name for g in groups):
            return None
        # Deleted (INACTIVE) or not, the cluster tells whose the group is.
        owned = any(ctx.owned(tags_from_list(c.get("tags"))) for c in describe_clusters(ctx, self.cluster))
        return {"log_group": self.name, "_owned": owned}
