"""EC2 side of the simulated agent: spot marking and container-instance (de)registration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spotecs.sandbox.userdata import decode_user_data, parse_ecs_config

# Called with (what failed, exception); one broken resource must not stop the others.
Report = Callable[[str, BaseException], None]

# The real agent registers what the OS reports, which is a bit less than the nominal size
# (kernel, agent, docker). One flat reserve keeps numbers predictable for tests.
AGENT_RESERVED_MIB = 128
GONE_STATES = ("shutting-down", "terminated")
# Set on moto's Instance once its purchase option is decided, so it never flips later.
_LIFECYCLE_DECIDED = "_spotecs_lifecycle_decided"


def on_demand_wanted(count: int, base: int, percent: int) -> int:
    """How many of ``count`` instances an ASG's InstancesDistribution keeps on-demand."""
    if count <= base:
        return count
    above = count - base
    return base + -(-above * percent // 100)  # ceil without floats


def mark_spot(asg_backend: Any, report: Report) -> list[str]:
    """Mark ASG instances spot per MixedInstancesPolicy; moto launches them all on-demand.

    Decisions are sticky (a launched instance never changes purchase option) and made in
    launch order, so the first ``base`` instances are on-demand, then the percentage split.
    """
    marked: list[str] = []
    for group in list(asg_backend.autoscaling_groups.values()):
        try:
            marked += _mark_group(group)
        except Exception as exc:
            report(f"spot marking of ASG {group.name}", exc)
    return marked


def _mark_group(group: Any) -> list[str]:
    dist = (group.mixed_instances_policy or {}).get("InstancesDistribution")
    if not dist:
        return []
    base = int(dist.get("OnDemandBaseCapacity") or 0)
    percent = dist.get("OnDemandPercentageAboveBaseCapacity")
    percent = 100 if percent is None else int(percent)
    live = [s.instance for s in group.instance_states if s.instance.state not in GONE_STATES]
    decided = [i for i in live if getattr(i, _LIFECYCLE_DECIDED, False)]
    on_demand = sum(1 for i in decided if i.lifecycle != "spot")
    count = len(decided)
    marked: list[str] = []
    for instance in live:  # instance_states is in launch order
        if getattr(instance, _LIFECYCLE_DECIDED, False):
            continue
        count += 1
        wanted = on_demand_wanted(count, base, percent)
        if instance.lifecycle != "spot" and on_demand < wanted:
            on_demand += 1
        else:
            instance.lifecycle = "spot"  # moto serialises it as InstanceLifecycle
            marked.append(instance.id)
        setattr(instance, _LIFECYCLE_DECIDED, True)
    return marked


def launch_as_spot(instance: Any) -> None:
    """Decide an instance spot before the group's split would: Capacity Rebalancing's replacement
    of a spot instance is spot (the split would count the instance it replaces, still running)."""
    instance.lifecycle = "spot"
    setattr(instance, _LIFECYCLE_DECIDED, True)


def ecs_config(instance: Any) -> dict[str, str]:
    """The ECS agent config from the instance's user data (or its ASG's template's)."""
    raw = instance.user_data
    group = getattr(instance, "autoscaling_group", None)
    if raw is None and group is not None:
        # moto copies template user data onto instances; keep a fallback in case it stops.
        raw = group.user_data
    return parse_ecs_config(decode_user_data(raw))


def instance_resources(instance_type: str, config: dict[str, str]) -> tuple[int, int] | None:
    """(CPU units, MEMORY MiB) the agent would register, from moto's instance catalogue."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    info = INSTANCE_TYPES.get(instance_type)
    if not info:
        return None
    cpu = int(info["VCpuInfo"]["DefaultVCpus"]) * 1024
    reserved = AGENT_RESERVED_MIB + int(config.get("ECS_RESERVED_MEMORY", "0") or 0)
    return cpu, max(int(info["MemoryInfo"]["SizeInMiB"]) - reserved, 0)


def _set_resources(container_instance: Any, cpu: int, memory: int) -> None:
    for resources in (container_instance.registered_resources, container_instance.remaining_resources):
        for resource in resources:
            if resource["name"] == "CPU":
                resource["integerValue"] = cpu
            elif resource["name"] == "MEMORY":
                resource["integerValue"] = memory


def registered_by_instance(ecs: Any) -> dict[str, tuple[str, Any]]:
    """EC2 instance id -> (cluster name, ContainerInstance) for every registered instance."""
    found: dict[str, tuple[str, Any]] = {}
    for cluster_name, instances in list(ecs.container_instances.items()):
        if cluster_name not in ecs.clusters:
            continue  # e.g. moto's "orphaned" pseudo-cluster
        for container_instance in list(instances.values()):
            found[container_instance.ec2_instance_id] = (cluster_name, container_instance)
    return found


def register_new(ec2: Any, ecs: Any, report: Report) -> list[str]:
    """Register running instances whose user data names an existing cluster."""
    already = registered_by_instance(ecs)
    registered: list[str] = []
    for instance in ec2.all_instances():
        if instance.state != "running" or instance.id in already:
            continue
        try:
            if _register_one(ecs, instance):
                registered.append(instance.id)
        except Exception as exc:
            report(f"registration of {instance.id}", exc)
    return registered


def _register_one(ecs: Any, instance: Any) -> bool:
    config = ecs_config(instance)
    cluster_name = config.get("ECS_CLUSTER")
    # Broken user data: the real agent never joins, so the cluster stays empty.
    if not cluster_name or cluster_name not in ecs.clusters:
        return False
    container_instance = ecs.register_container_instance(cluster_name, instance.id)
    resources = instance_resources(instance.instance_type, config)
    if resources:
        _set_resources(container_instance, *resources)
    return True


def sync_registered(ec2: Any, ecs: Any, stop_tasks_on: Callable[[str, Any], None], report: Report) -> list[str]:
    """Deregister container instances whose EC2 instance is gone; track agent connection."""
    deregistered: list[str] = []
    for instance_id, (cluster_name, container_instance) in registered_by_instance(ecs).items():
        try:
            instance = ec2.get_instance_by_id(instance_id)
            if instance is not None and instance.state not in GONE_STATES:
                # A stopped instance's agent is disconnected; it reconnects on start.
                container_instance.agent_connected = instance.state == "running"
                continue
            stop_tasks_on(cluster_name, container_instance)
            ecs.deregister_container_instance(cluster_name, container_instance.container_instance_arn, force=True)
            deregistered.append(instance_id)
        except Exception as exc:
            report(f"deregistration of {instance_id}", exc)
    return deregistered
