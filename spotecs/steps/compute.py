"""Compute layer: the machines the services run on (the article's launch template, auto scaling
group, ECS cluster and capacity provider), plus the facts they are checked against.

    ami, instance-types (data) ─┐
    iam:instance-role ──────────┤
    security-group:instances ───┼─► launch-template ─► auto-scaling-group ─┐
    cluster ────────────────────┘                                          ├─► capacity-provider
    cluster ───────────────────────────────────────────────────────────────┘

The template depends on the cluster although it only needs its name: instances must not boot
(and their agent try to register) before the cluster exists, and a teardown must terminate them
before it deletes the cluster.
"""

from __future__ import annotations

from spotecs import names
from spotecs.config import Stack
from spotecs.steps.ami import Ami, InstanceTypes
from spotecs.steps.auto_scaling_group import AutoScalingGroup
from spotecs.steps.base import Node
from spotecs.steps.capacity_provider import CapacityProvider
from spotecs.steps.cluster import Cluster
from spotecs.steps.launch_template import LaunchTemplate


def steps(stack: Stack, region: str) -> list[Node]:
    return [
        Ami(stack.instances.ami, names.launch_template(stack.stack)),
        InstanceTypes(stack.instances.types),
        Cluster(stack.cluster_name),
        LaunchTemplate(stack.stack),
        AutoScalingGroup(stack.stack),
        CapacityProvider(stack.stack, stack.cluster_name),
    ]
