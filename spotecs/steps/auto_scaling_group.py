"""The EC2 auto scaling group (the article's "EC2 Auto Scaling Group"): a mixed instances policy
over every configured type, part on-demand and part spot, in every subnet of the VPC.

Two things the group shares with ECS and that a re-run must leave alone: the desired capacity
(the capacity provider's scaling owns it once the group exists, so it is sent on create only)
and the `AmazonECSManaged` tag ECS puts on a group it manages (never diffed, never removed)."""

from __future__ import annotations

from typing import Any

from spotecs import names, waiters
from spotecs.aws import STACK_TAG, tags_from_list
from spotecs.engine.model import Change
from spotecs.errors import AwsError
from spotecs.steps import fleet_tags, tagging
from spotecs.steps.base import Context, Step, retry_iam_propagation
from spotecs.steps.tagging import desired_tags, held_tags

DELETING = "Delete in progress"
# Auto Scaling's "the group is busy" answers, while a scaling activity or deletion runs.
BUSY = ("ScalingActivityInProgress", "ResourceInUse")
PROTECTION_BATCH = 50  # SetInstanceProtection takes at most 50 instance ids


def stack_groups(ctx: Context) -> list[dict[str, Any]]:
    """Every auto scaling group tagged as the stack's (the tagging API covers no group): one read
    serves the group step, the capacity provider and the orphan search."""
    return ctx.read_pages(
        "list the stack's auto scaling groups",
        "autoscaling",
        "describe_auto_scaling_groups",
        "AutoScalingGroups",
        Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [ctx.name]}],
    )


def describe_group(ctx: Context, name: str) -> dict[str, Any] | None:
    """The auto scaling group of that name (also while it is being deleted), or None. While a plan
    shares its reads, found among the stack's groups; one not tagged as the stack's (someone
    else's of that name) is asked by name."""
    if ctx.aws.sharing_reads:
        found = next((g for g in stack_groups(ctx) if g["AutoScalingGroupName"] == name), None)
        if found is not None:
            return found
    groups = ctx.read(
        f"describe auto scaling group {name}",
        "autoscaling",
        "describe_auto_scaling_groups",
        AutoScalingGroupNames=[name],
    )["AutoScalingGroups"]
    return groups[0] if groups else None


class AutoScalingGroup(Step):
    """Outputs: name, arn."""

    kind = "auto scaling group"

    def __init__(self, stack: str) -> None:
        super().__init__("auto-scaling-group", names.auto_scaling_group(stack), ("launch-template", "network"))

    def desired(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.stack.instances
        subnets = ctx.output("network", "subnets")
        return {
            # $Default: a new template version applies to the instances launched after it.
            "launch_template": {"id": ctx.output("launch-template", "id"), "version": "$Default"},
            "instance_types": list(cfg.types),
            "on_demand_base": cfg.on_demand_base,
            "on_demand_percent": cfg.on_demand_percent,
            "spot_allocation_strategy": cfg.spot_allocation_strategy,
            "subnets": sorted(subnets) if isinstance(subnets, list) else subnets,
            "min": cfg.min,
            "max": cfg.max,
            "new_instances_protected": cfg.scale_in_protection,
            "termination_policies": list(cfg.termination_policies),
            "capacity_rebalance": cfg.capacity_rebalance,
            "tags": desired_tags(ctx, Name=self.name),
            # Every tag propagated, so instances carry the Name (console) and the stack tags
            # (cost allocation): apart from the values, so that the plan shows tags key by key.
            "tags_propagate_at_launch": True,
        }

    def notes(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        return fleet_tags.instances_note(current) if _tags_change(desired, current) else []

    def read(self, ctx: Context) -> dict[str, Any] | None:
        g = describe_group(ctx, self.name)
        if g is None or g.get("Status") == DELETING:
            return None
        policy = g.get("MixedInstancesPolicy", {})
        spec = policy.get("LaunchTemplate", {}).get("LaunchTemplateSpecification", {})
        dist = policy.get("InstancesDistribution", {})
        all_tags = g.get("Tags", [])
        ours = [t for t in all_tags if tagging.ours(t["Key"])]
        return {
            "launch_template": {"id": spec.get("LaunchTemplateId"), "version": spec.get("Version")},
            "instance_types": [o.get("InstanceType") for o in policy.get("LaunchTemplate", {}).get("Overrides", [])],
            "on_demand_base": dist.get("OnDemandBaseCapacity", 0),
            "on_demand_percent": dist.get("OnDemandPercentageAboveBaseCapacity", 100),
            "spot_allocation_strategy": dist.get("SpotAllocationStrategy", "lowest-price"),
            "subnets": sorted(s for s in g.get("VPCZoneIdentifier", "").split(",") if s),
            "min": g["MinSize"],
            "max": g["MaxSize"],
            "new_instances_protected": bool(g.get("NewInstancesProtectedFromScaleIn")),
            "termination_policies": list(g.get("TerminationPolicies", [])),
            "capacity_rebalance": bool(g.get("CapacityRebalance")),
            "tags": held_tags(tags_from_list(ours)),
            "tags_propagate_at_launch": all(t.get("PropagateAtLaunch") for t in ours),
            "name": self.name,
            "arn": g["AutoScalingGroupARN"],
            "desired_capacity": g.get("DesiredCapacity"),
            # Live facts, never diffed: `status` shows them from this same read.
            "instances": [
                {
                    "id": i["InstanceId"],
                    "type": i.get("InstanceType"),
                    "zone": i.get("AvailabilityZone"),
                    "lifecycle_state": i.get("LifecycleState"),
                    "health": i.get("HealthStatus"),
                    "protected": bool(i.get("ProtectedFromScaleIn")),
                    "launch_template_version": i.get("LaunchTemplate", {}).get("Version"),
                }
                for i in g.get("Instances", [])
            ],
            "_owned": ctx.owned(tags_from_list(all_tags)),
        }

    def _settings(self, desired: dict[str, Any]) -> dict[str, Any]:
        """Every setting update_auto_scaling_group takes, DesiredCapacity deliberately excluded."""
        return {
            "MixedInstancesPolicy": {
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {
                        "LaunchTemplateId": desired["launch_template"]["id"],
                        "Version": desired["launch_template"]["version"],
                    },
                    "Overrides": [{"InstanceType": t} for t in desired["instance_types"]],
                },
                "InstancesDistribution": {
                    "OnDemandBaseCapacity": desired["on_demand_base"],
                    "OnDemandPercentageAboveBaseCapacity": desired["on_demand_percent"],
                    "SpotAllocationStrategy": desired["spot_allocation_strategy"],
                },
            },
            "MinSize": desired["min"],
            "MaxSize": desired["max"],
            "VPCZoneIdentifier": ",".join(desired["subnets"]),
            "NewInstancesProtectedFromScaleIn": desired["new_instances_protected"],
            "TerminationPolicies": list(desired["termination_policies"]),
            "CapacityRebalance": desired["capacity_rebalance"],
        }

    def _tag_params(self, tags: dict[str, str]) -> list[dict[str, Any]]:
        return [
            {
                "ResourceId": self.name,
                "ResourceType": "auto-scaling-group",
                "Key": k,
                "Value": v,
                "PropagateAtLaunch": True,
            }
            for k, v in sorted(tags.items())
        ]

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        asg = ctx.client("autoscaling")
        pending = describe_group(ctx, self.name)
        if pending is not None and pending.get("Status") == DELETING:
            # A teardown just before: the name is free only once the old group is gone.
            ctx.wait(
                f"the previous auto scaling group {self.name} to be deleted",
                "autoscaling",
                waiters.auto_scaling_group_deleted(asg),
                AutoScalingGroupNames=[self.name],
                timeout=ctx.timeouts.budget("auto scaling group deleted"),
            )
        retry_iam_propagation(
            ctx,
            f"create auto scaling group {self.name}",
            asg.create_auto_scaling_group,
            AutoScalingGroupName=self.name,
            **self._settings(desired),
            # The only time spotecs sets it: afterwards the capacity provider decides.
            DesiredCapacity=ctx.stack.instances.initial_desired,
            Tags=self._tag_params(desired["tags"]),
        )
        # The describe that follows a create may not list the group yet.
        created: dict[str, Any] = {}

        def listed() -> tuple[bool, str]:
            created.update(describe_group(ctx, self.name) or {})
            return bool(created), "" if created else "not listed yet"

        ctx.poll(
            f"auto scaling group {self.name} to be listed", listed, timeout=ctx.timeouts.budget("eventual consistency")
        )
        return {"name": self.name, "arn": created["AutoScalingGroupARN"]}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        asg = ctx.client("autoscaling")
        changed = change.changed_fields()
        if changed - {"tags", "tags_propagate_at_launch"}:
            retry_iam_propagation(
                ctx,
                f"update auto scaling group {self.name}",
                asg.update_auto_scaling_group,
                AutoScalingGroupName=self.name,
                **self._settings(desired),
            )
        if changed & {"tags", "tags_propagate_at_launch"}:
            want, have = desired["tags"], current["tags"]
            # A tag not propagated is put again, propagated: AWS keeps no other flag per key.
            put = {k: v for k, v in want.items() if have.get(k) != v or not current["tags_propagate_at_launch"]}
            # current["tags"] never holds AmazonECSManaged or aws:* tags: they are never removed.
            drop = {k: v for k, v in have.items() if k not in want}
            # The running instances first: until the group holds its new tags, every plan shows
            # them changing, so a failure here is retried by the next `up` (fleet_tags).
            fleet_tags.retag_instances(ctx, self.name, want, have)
            if put:
                ctx.call(f"tag auto scaling group {self.name}", asg.create_or_update_tags, Tags=self._tag_params(put))
            if drop:
                ctx.call(f"untag auto scaling group {self.name}", asg.delete_tags, Tags=self._tag_params(drop))
        return {"name": self.name, "arn": current["arn"]}

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        asg = ctx.client("autoscaling")
        g = describe_group(ctx, self.name)
        if g is None:
            return
        if g.get("Status") != DELETING:
            # Protection would keep ECS-managed instances alive; a forced delete does not wait for
            # the capacity provider's slow managed scale-in.
            protected = [
                i["InstanceId"]
                for i in g.get("Instances", [])
                if i.get("ProtectedFromScaleIn") and not i.get("LifecycleState", "").startswith("Terminat")
            ]
            for start in range(0, len(protected), PROTECTION_BATCH):
                ctx.call(
                    f"lift scale-in protection from the instances of {self.name}",
                    asg.set_instance_protection,
                    AutoScalingGroupName=self.name,
                    InstanceIds=protected[start : start + PROTECTION_BATCH],
                    ProtectedFromScaleIn=False,
                )
            try:
                ctx.until(
                    f"auto scaling group {self.name} to accept its deletion",
                    lambda budget: ctx.retry(
                        f"delete auto scaling group {self.name}",
                        asg.delete_auto_scaling_group,
                        codes=BUSY,
                        timeout=budget,
                        AutoScalingGroupName=self.name,
                        ForceDelete=True,
                    ),
                    status=lambda: "a scaling activity is still running",
                    budget=ctx.timeouts.budget("auto scaling group deleted"),
                    hint="Run the same command again once the activity ends (see the group's Activity "
                    "tab in the EC2 console).",
                )
            except AwsError as e:
                # Deleted meanwhile (by another run or by hand): "AutoScalingGroup name not found".
                if not (e.code == "ValidationError" and "not found" in e.detail):
                    raise

        def gone() -> tuple[bool, str]:
            g = describe_group(ctx, self.name)
            if g is None:
                return True, "deleted"
            left = [f"{i['InstanceId']} ({i.get('LifecycleState', '?')})" for i in g.get("Instances", [])]
            return False, (
                f"{len(left)} instance(s) left: {', '.join(left[:5])}{', ...' if len(left) > 5 else ''}"
                if left
                else str(g.get("Status") or "deleting")
            )

        ctx.poll(
            f"auto scaling group {self.name} to terminate its instances and go",
            gone,
            hint="AWS is still terminating them (lifecycle hooks or a slow shutdown can hold an instance). "
            "Run the same command again to keep waiting; the group is already being deleted.",
            timeout=ctx.timeouts.budget("auto scaling group deleted"),
        )


def _tags_change(desired: dict[str, Any], current: dict[str, Any] | None) -> bool:
    """Whether the plan changes the group's tags (their values or their propagation)."""
    return current is not None and (
        desired["tags"] != current["tags"] or desired["tags_propagate_at_launch"] != current["tags_propagate_at_launch"]
    )
