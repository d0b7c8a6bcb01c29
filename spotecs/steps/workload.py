"""Workload layer: load balancer, target groups, listeners, task definitions, services,
service auto scaling. (Being written: see issue 4.)"""

from __future__ import annotations

from spotecs.config import Stack
from spotecs.steps.base import Step


def steps(stack: Stack, region: str) -> list[Step]:
    return []
