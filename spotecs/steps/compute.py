"""Compute layer: AMI, instance types, launch template, auto scaling group, cluster,
capacity provider. (Being written: see issue 3.)"""

from __future__ import annotations

from spotecs.config import Stack
from spotecs.steps.base import Step


def steps(stack: Stack, region: str) -> list[Step]:
    return []
