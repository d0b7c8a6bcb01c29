"""One module per resource kind; `build(stack)` lists the steps of a stack (the DAG)."""

from __future__ import annotations

from spotecs.config import Stack
from spotecs.steps import compute, workload
from spotecs.steps.base import Node
from spotecs.steps.iam import ExecutionRole, TaskRole, instance_role
from spotecs.steps.log_group import LogGroup
from spotecs.steps.network import Network
from spotecs.steps.security_groups import InstanceGroup, LoadBalancerGroup
from spotecs.steps.service_linked_roles import ServiceLinkedRoles, needed


def build(stack: Stack, region: str) -> list[Node]:
    name = stack.stack
    with_lb = bool(stack.web_services())
    steps: list[Node] = [Network(), ServiceLinkedRoles(needed(stack))]
    if with_lb:
        steps.append(LoadBalancerGroup(name))
    steps += [InstanceGroup(name, with_lb), instance_role(name, region), ExecutionRole(name, region)]
    steps += [TaskRole(name, region, svc) for svc, cfg in stack.services.items() if cfg.task_role]
    steps += [LogGroup(name, svc) for svc in stack.services]
    steps += compute.steps(stack, region)
    steps += workload.steps(stack, region)
    return steps
