"""Pre-flight checks that need AWS facts (instance types, the AMI) or span several sections of
the stack file. Pure functions over the config and facts the data steps read; the steps call
them from `check()`, so every problem is reported at plan time, before any write (exit 2).

Checks that need only one section of the file live in `spotecs.config` (ranges, min <= desired
<= max, on-demand base <= max, the 2-minute stop timeout).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from spotecs.config import Stack

# What the ECS agent registers is less than the instance's nominal memory: the kernel, the
# agent and Docker keep some (ECS' "Container instance memory management"; e.g. a 4 GiB
# t3.medium registers about 3.8 GiB). We assume the larger of 256 MiB and 6%, plus any
# ECS_RESERVED_MEMORY the stack sets: on the safe side, so a task we accept can be placed.
AGENT_RESERVE_MIB = 256
AGENT_RESERVE_FRACTION = 0.06
CPU_UNITS_PER_VCPU = 1024

# Facts about one instance type, as the "instance-types" data step reads them.
TypeFacts = Mapping[str, Any]  # vcpus, memory_mib, architectures, burstable, ebs_optimized


def usable_memory_mib(total_mib: int, reserved_mib: int = 0) -> int:
    """Memory ECS can place tasks in on an instance with `total_mib` of RAM."""
    reserve = max(AGENT_RESERVE_MIB, math.ceil(total_mib * AGENT_RESERVE_FRACTION))
    return max(0, total_mib - reserve - reserved_mib)


def cpu_units(vcpus: int) -> int:
    return vcpus * CPU_UNITS_PER_VCPU


def instance_type_problems(
    types: list[str], facts: Mapping[str, TypeFacts], architecture: str | None, ami: str
) -> list[str]:
    """Every configured type exists, and runs the AMI's architecture."""
    problems: list[str] = []
    for i, name in enumerate(types):
        fact = facts.get(name)
        if fact is None:
            problems.append(f"instances.types[{i}]: {name} is not an EC2 instance type offered in this region")
            continue
        archs = list(fact["architectures"])
        if architecture and architecture not in archs:
            problems.append(
                f"instances.types[{i}]: {name} runs {'/'.join(archs)} but the AMI ({ami}) is {architecture}: "
                f"{_arch_hint(architecture, ami)}"
            )
    return problems


def _arch_hint(ami_arch: str, ami: str) -> str:
    if ami.startswith("ami-"):
        return f"use {ami_arch} instance types or an AMI built for them"
    alias = ami.removesuffix("-arm64") if ami_arch == "arm64" else f"{ami}-arm64"
    return f"use {ami_arch} instance types, or set instances.ami: {alias}"


def agent_reserved_memory(stack: Stack) -> int:
    raw = stack.instances.ecs_agent.get("ECS_RESERVED_MEMORY", "0").strip()
    return int(raw) if raw.isdigit() else 0


def task_fit_problems(stack: Stack, facts: Mapping[str, TypeFacts]) -> list[str]:
    """Each service's task fits on every configured type (the group may launch any of them):
    one line per service, naming the types it does not fit on."""
    reserved = agent_reserved_memory(stack)
    known = [(t, facts[t]) for t in stack.instances.types if t in facts]
    problems: list[str] = []
    for name, svc in stack.services.items():
        memory = svc.memory_for_placement
        too_small = []
        for type_name, fact in known:
            cpu, mem = cpu_units(int(fact["vcpus"])), usable_memory_mib(int(fact["memory_mib"]), reserved)
            if svc.cpu > cpu or memory > mem:
                too_small.append(f"{type_name} ({cpu} CPU units, {mem} MiB usable)")
        if too_small:
            problems.append(
                f"services.{name}: the task needs {svc.cpu} CPU units and {memory} MiB but does not fit on "
                f"{', '.join(too_small)}; remove the smaller types from instances.types or shrink "
                f"services.{name}.cpu/memory (ECS keeps max({AGENT_RESERVE_MIB} MiB, "
                f"{AGENT_RESERVE_FRACTION:.0%}) of each instance's memory)"
            )
    return problems


def certificate_problems(arn: str, region: str, status: str | None) -> list[str]:
    """A load balancer takes only an ISSUED ACM certificate of its own region
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/https-listener-certificates.html).
    `status` is what ACM says in `region` (None: not found there)."""
    where = arn.split(":")[3] if arn.count(":") >= 5 else ""
    field = "load_balancer.certificate_arn"
    if where != region:
        return [
            f"{field}: the certificate is in {where or 'no region'} but the stack is in {region}; "
            f"a load balancer takes only a certificate of its own region (request or import one in {region})"
        ]
    if status is None:
        return [f"{field}: no ACM certificate {arn} in {region}"]
    if status != "ISSUED":
        return [f"{field}: the certificate is {status}, not ISSUED (finish its validation in ACM first)"]
    return []


def cluster_rename_problems(registered: str | None, wanted: str) -> list[str]:
    """A running stack's instances are registered to the cluster their launch template names.
    ECS cannot move a registered instance to another cluster, and a new template version reaches
    only instances launched later: renaming the cluster would leave the new cluster with no
    capacity and its services waiting for tasks that can never start. Refused before any write."""
    if registered is None or registered == wanted:
        return []
    return [
        f"cluster.name: the stack's instances are registered to cluster {registered} and cannot move "
        f"to {wanted} in one run; keep cluster.name: {registered}, or run `spotecs teardown` then "
        "`spotecs up` to rebuild the stack under the new name"
    ]
