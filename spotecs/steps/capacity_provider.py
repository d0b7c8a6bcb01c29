"""The ECS capacity provider over the auto scaling group (the article's "ECS Capacity Provider"):
managed scaling to a target capacity, managed termination protection, managed draining; attached
to the cluster as its default strategy.

Naming: ECS keeps a deleted provider INACTIVE for a while and refuses its name meanwhile, so a
provider is named after its group *and that group's unique id* (the UUID in the group's ARN):
`<group>-<first 8 hex digits>`. A recreated group (a replacement, or `teardown` then `up`) has a
new id, hence a fresh provider name, with no state kept anywhere. Pointing the provider at
another group cannot be done in place: it is planned as a replacement."""

from __future__ import annotations

from typing import Any

from spotecs import names, waiters
from spotecs.aws import caused_by, tag_list, tags_from_list
from spotecs.engine.model import Change, Unknown
from spotecs.errors import AwsError
from spotecs.steps.auto_scaling_group import describe_group
from spotecs.steps.base import Context, Step
from spotecs.steps.cluster import cluster_services, describe_cluster
from spotecs.steps.service_linked_roles import NOT_USABLE_YET
from spotecs.steps.tagging import desired_tags, held_tags, retag

# ECS is still applying a previous change, or a service still uses the provider being removed.
CLUSTER_BUSY = ("UpdateInProgressException", "ResourceInUseException")


def _enabled(flag: bool) -> str:
    return "ENABLED" if flag else "DISABLED"


class CapacityProvider(Step):
    """Outputs: name, arn."""

    kind = "capacity provider"
    # Its read is two round trips (its cluster and group, then the provider): asked first (engine.plan.read_all).
    chained = True
    replace_on = frozenset({"name", "auto_scaling_group_arn"})
    binds_to = frozenset({"auto-scaling-group"})  # its group is fixed at creation

    def __init__(self, stack: str, cluster: str) -> None:
        group = names.auto_scaling_group(stack)
        # The real name needs the group's id: the plan shows the one `read()` finds, if any.
        super().__init__("capacity-provider", names.capacity_provider_display(group), ("auto-scaling-group", "cluster"))
        self.group = group
        self.cluster = cluster
        self._pattern = names.capacity_provider_pattern(group)

    def desired(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.stack.capacity_provider
        arn = ctx.output("auto-scaling-group", "arn")
        name = (
            Unknown("capacity-provider.name") if isinstance(arn, Unknown) else names.capacity_provider(self.group, arn)
        )
        return {
            "name": name,
            "auto_scaling_group_arn": arn,
            "managed_scaling": {
                "status": "ENABLED",
                "target_capacity": cfg.target_capacity,
                "minimum_scaling_step_size": cfg.minimum_scaling_step,
                "maximum_scaling_step_size": cfg.maximum_scaling_step,
                "instance_warmup_period": cfg.instance_warmup,
            },
            "managed_termination_protection": _enabled(cfg.managed_termination_protection),
            "managed_draining": _enabled(cfg.managed_draining),
            "cluster": self.cluster,
            # The cluster's default: tasks without a strategy of their own land on these instances.
            "default_strategy": [{"capacity_provider": name, "base": 0, "weight": 1}],
            "tags": desired_tags(ctx),
        }

    def _provider(self, d: dict[str, Any]) -> dict[str, Any]:
        m = d["managed_scaling"]
        return {
            "managedScaling": {
                "status": m["status"],
                "targetCapacity": m["target_capacity"],
                "minimumScalingStepSize": m["minimum_scaling_step_size"],
                "maximumScalingStepSize": m["maximum_scaling_step_size"],
                "instanceWarmupPeriod": m["instance_warmup_period"],
            },
            "managedTerminationProtection": d["managed_termination_protection"],
            "managedDraining": d["managed_draining"],
        }

    def _group(self, ctx: Context) -> dict[str, Any] | None:
        """The group whose provider this is, as `_candidates` takes it."""
        return describe_group(ctx, self.group)

    def _candidates(self, ctx: Context, cluster: dict[str, Any] | None, group: dict[str, Any] | None) -> list[str]:
        """Names ours could have: the current group's, then older ones still attached to the cluster
        (a group recreated out of band). describe_capacity_providers needs names (moto too)."""
        found: list[str] = []
        if group is not None:
            found.append(names.capacity_provider(self.group, group["AutoScalingGroupARN"]))
        attached = (cluster or {}).get("capacityProviders", [])
        found += [n for n in attached if self._pattern.match(n) and n not in found]
        return found

    def read(self, ctx: Context) -> dict[str, Any] | None:
        # Neither needs the other: one round trip before the providers' read, not two.
        cluster, group = ctx.at_once(lambda: describe_cluster(ctx, self.cluster), lambda: self._group(ctx))
        found = self._candidates(ctx, cluster, group)
        if not found:
            return None
        got = ctx.call(
            f"describe capacity providers {', '.join(found)}",
            ctx.client("ecs").describe_capacity_providers,
            capacityProviders=found,
            include=["TAGS"],
        )
        active = {p["name"]: p for p in got.get("capacityProviders", []) if p.get("status") == "ACTIVE"}
        p = next((active[n] for n in found if n in active), None)
        if p is None:
            return None
        asg = p.get("autoScalingGroupProvider", {})
        m = asg.get("managedScaling", {})
        strategy = (cluster or {}).get("defaultCapacityProviderStrategy", [])
        tags = tags_from_list(p.get("tags"))
        return {
            "name": p["name"],
            "auto_scaling_group_arn": asg.get("autoScalingGroupArn"),
            "managed_scaling": {
                "status": m.get("status"),
                "target_capacity": m.get("targetCapacity"),
                "minimum_scaling_step_size": m.get("minimumScalingStepSize"),
                "maximum_scaling_step_size": m.get("maximumScalingStepSize"),
                "instance_warmup_period": m.get("instanceWarmupPeriod"),
            },
            "managed_termination_protection": asg.get("managedTerminationProtection"),
            "managed_draining": asg.get("managedDraining", "ENABLED"),
            "cluster": self.cluster if cluster and p["name"] in cluster.get("capacityProviders", []) else None,
            "default_strategy": [
                {"capacity_provider": s["capacityProvider"], "base": s.get("base", 0), "weight": s.get("weight", 0)}
                for s in strategy
            ],
            "tags": held_tags(tags),
            "arn": p["capacityProviderArn"],
            "_owned": ctx.owned(tags),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        name = desired["name"]
        # In a fresh account the ECS service-linked role is just made (or being made by ECS).
        p = ctx.retry(
            f"create capacity provider {name}",
            ctx.client("ecs").create_capacity_provider,
            codes=(),
            when=caused_by(*NOT_USABLE_YET),
            timeout=ctx.timeouts.budget("service-linked role"),
            name=name,
            autoScalingGroupProvider={
                "autoScalingGroupArn": desired["auto_scaling_group_arn"],
                **self._provider(desired),
            },
            tags=tag_list(desired["tags"], "key", "value"),
        )["capacityProvider"]
        self._attach(ctx, name)
        return {"name": name, "arn": p["capacityProviderArn"]}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        name = current["name"]
        changed = change.changed_fields()
        if changed & {"managed_scaling", "managed_termination_protection", "managed_draining"}:
            ctx.retry(
                f"update capacity provider {name}",
                ctx.client("ecs").update_capacity_provider,
                codes=("UpdateInProgressException",),
                name=name,
                autoScalingGroupProvider=self._provider(desired),
                timeout=ctx.timeouts.budget("capacity provider update"),
            )
        if changed & {"cluster", "default_strategy"}:
            self._attach(ctx, name)
        retag(ctx, "ecs", f"capacity provider {name}", current["arn"], desired["tags"], current.get("tags"))
        return {"name": name, "arn": current["arn"]}

    def _put_cluster_providers(self, ctx: Context, providers: list[str], strategy: list[dict[str, Any]]) -> None:
        ctx.retry(
            f"set the capacity providers of ECS cluster {self.cluster}",
            ctx.client("ecs").put_cluster_capacity_providers,
            codes=CLUSTER_BUSY,
            when=caused_by(*NOT_USABLE_YET),
            cluster=self.cluster,
            capacityProviders=providers,
            defaultCapacityProviderStrategy=strategy,
            timeout=ctx.timeouts.budget("capacity provider update"),
        )

    def _attach(self, ctx: Context, name: str) -> None:
        """Ours becomes the default strategy; other providers on the cluster (a user's, or FARGATE)
        stay attached, since services may use them."""
        cluster = describe_cluster(ctx, self.cluster) or {}
        others = [n for n in cluster.get("capacityProviders", []) if n != name]
        self._put_cluster_providers(ctx, [*others, name], [{"capacityProvider": name, "base": 0, "weight": 1}])

    def _detach(self, ctx: Context, name: str) -> None:
        cluster = describe_cluster(ctx, self.cluster)
        if cluster is None or name not in cluster.get("capacityProviders", []):
            return
        providers = [n for n in cluster["capacityProviders"] if n != name]
        strategy = [s for s in cluster.get("defaultCapacityProviderStrategy", []) if s["capacityProvider"] != name]
        self._put_cluster_providers(ctx, providers, strategy)

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        ecs = ctx.client("ecs")
        name = current["name"]
        # ECS refuses to delete a provider that a service's strategy or the cluster still names.
        # The stack's services are deleted before (they depend on this step); any other service
        # is not spotecs's to change, so say which instead of retrying until the timeout.
        users = services_using(ctx, self.cluster, name)
        if users:
            raise AwsError(
                f"delete capacity provider {name}",
                f"ECS service(s) {', '.join(users)} in cluster {self.cluster} still use it; move them to "
                "another capacity provider or delete them, then run the same command again",
            )
        what = f"capacity provider {name} to be deleted"

        def detach_delete_and_wait(budget: float) -> None:
            self._detach(ctx, name)
            live = _describe(ctx, name)
            if live and live.get("status") == "ACTIVE" and live.get("updateStatus") != "DELETE_IN_PROGRESS":
                ctx.retry(
                    f"delete capacity provider {name}",
                    ecs.delete_capacity_provider,
                    codes=("UpdateInProgressException", "ResourceInUseException"),
                    timeout=budget,
                    capacityProvider=name,
                )
            ctx.wait(what, "ecs", waiters.capacity_provider_deleted(ecs), timeout=budget, capacityProviders=[name])

        ctx.until(
            what,
            detach_delete_and_wait,
            status=lambda: _status(ctx, name),
            budget=ctx.timeouts.budget("capacity provider deleted"),
            hint=f"ECS still holds capacity provider {name}; run the same command again to keep waiting. "
            "If it stays, look in the ECS console for services or tasks that still use it.",
        )


def services_using(ctx: Context, cluster: str, provider: str) -> list[str]:
    """ACTIVE services of the cluster whose capacity provider strategy names `provider`."""
    return sorted(
        s["serviceName"]
        for s in cluster_services(ctx, cluster)
        if s.get("status") == "ACTIVE"
        and any(p.get("capacityProvider") == provider for p in s.get("capacityProviderStrategy") or [])
    )


def _describe(ctx: Context, name: str) -> dict[str, Any] | None:
    got = ctx.call(
        f"describe capacity provider {name}", ctx.client("ecs").describe_capacity_providers, capacityProviders=[name]
    )
    return next(iter(got.get("capacityProviders", [])), None)


def _status(ctx: Context, name: str) -> str:
    p = _describe(ctx, name)
    if p is None:
        return "gone"
    reason = f": {p['updateStatusReason']}" if p.get("updateStatusReason") else ""
    return f"{p.get('status', '?')}, {p.get('updateStatus', 'no update')}{reason}"
