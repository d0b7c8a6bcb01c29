"""`instances:`, `capacity_provider:` and `cluster:`: the auto scaling group's fleet (spot and
on-demand mix, AMI, ECS agent settings) and the ECS cluster that places tasks on it."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from spotecs.config.base import (
    CREDENTIAL_KEYS,
    CREDENTIALS_HINT,
    SPOT_NOTICE_SECONDS,
    Model,
    Problem,
    Problems,
    Seconds,
    enforce,
)

AMI_ALIASES = {
    "al2023": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
    "al2023-arm64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
    "al2": "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id",
    "al2-arm64": "/aws/service/ecs/optimized-ami/amazon-linux-2/arm64/recommended/image_id",
}

# ecs.config keys spotecs writes itself.
MANAGED_AGENT_KEYS = {"ECS_CLUSTER", "ECS_ENABLE_SPOT_INSTANCE_DRAINING", "ECS_CONTAINER_STOP_TIMEOUT"}

SpotStrategy = Literal[
    "price-capacity-optimized", "capacity-optimized", "capacity-optimized-prioritized", "lowest-price"
]
TerminationPolicy = Literal[
    "OldestLaunchTemplate",
    "ClosestToNextInstanceHour",
    "OldestInstance",
    "NewestInstance",
    "OldestLaunchConfiguration",
    "AllocationStrategy",
    "Default",
]
_DEFAULT_TERMINATION_POLICIES: tuple[TerminationPolicy, ...] = (
    "OldestLaunchTemplate",
    "ClosestToNextInstanceHour",
    "OldestInstance",
)


class Ingress(Model):
    """Traffic the instances take from elsewhere than the load balancer: refused unless
    `opt_outs.instance_ingress` says why (config/safety.py)."""

    port: int = Field(ge=0, le=65535, description="The port, or the first of a range.")
    to_port: int | None = Field(None, ge=0, le=65535, description="The last port of a range; default: port.")
    protocol: Literal["tcp", "udp"] = "tcp"
    source: str = Field(
        description="Where from: a CIDR block (10.0.0.0/16, 2001:db8::/32) or a security group id (sg-...)."
    )

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if re.fullmatch(r"sg-[0-9a-f]{8,17}", v):
            return v
        try:
            network = ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ValueError(
                f"'{v}' is neither a CIDR block (e.g. 10.0.0.0/16) nor a security group id (sg-...)"
            ) from None
        if "/" not in v or str(network) != v:
            raise ValueError(f"'{v}' is not a CIDR block as AWS writes it (did you mean {network}?)")
        return v

    @model_validator(mode="after")
    def _range(self) -> Ingress:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        if self.to_port is not None and self.to_port < self.port:
            yield "to_port", f"must not be below port ({self.port})"

    @property
    def last_port(self) -> int:
        return self.port if self.to_port is None else self.to_port


class Instances(Model):
    types: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")]] = Field(
        default_factory=lambda: ["t3.medium", "t3a.medium", "m5.large"],
        min_length=1,
        description="Instance types the group may launch; several types make spot capacity easier to get.",
    )
    ami: str = Field(
        "al2023",
        description="ECS-optimized AMI alias (al2023, al2023-arm64, al2, al2-arm64): a new stack "
        "starts on the latest release (from SSM) and keeps it until `spotecs refresh-ami`; or an "
        "explicit ami-... id, applied by `up`.",
    )
    disk_gib: int = Field(
        30, ge=30, le=16384, description="Root volume (gp3, encrypted); the ECS-optimized AMI needs 30 GiB."
    )
    key_pair: str | None = Field(None, description="EC2 key pair for SSH; default none.")
    on_demand_base: int = Field(0, ge=0, description="On-demand instances always kept, before the percentage applies.")
    on_demand_percent: int = Field(
        20, ge=0, le=100, description="Percent of on-demand instances above the base; the rest is spot."
    )
    spot_allocation_strategy: SpotStrategy = "price-capacity-optimized"
    min: int = Field(1, ge=0)
    max: int = Field(4, ge=1)
    desired: int | None = Field(
        None, ge=0, description="Instances at creation only (default: min); later the capacity provider decides."
    )
    container_stop_timeout: Seconds = Field(
        60,
        description="ECS_CONTAINER_STOP_TIMEOUT: time between SIGTERM and SIGKILL when a task stops; "
        "must fit in the 2-minute spot notice.",
    )
    termination_policies: list[TerminationPolicy] = Field(
        default_factory=lambda: list(_DEFAULT_TERMINATION_POLICIES), min_length=1
    )
    capacity_rebalance: bool = Field(
        True, description="Launch a replacement when AWS signals a spot instance is at risk."
    )
    scale_in_protection: bool = Field(
        True,
        description="New instances are protected from scale-in; the capacity provider lifts it when an "
        "instance is empty.",
    )
    ecs_agent: dict[str, str] = Field(
        default_factory=dict, description="Extra ECS agent settings written to /etc/ecs/ecs.config."
    )
    ingress: list[Ingress] = Field(
        default_factory=list,
        description="More traffic the instances take (e.g. SSH from a bastion); by default they take traffic "
        "only from the load balancer's security group. Needs opt_outs.instance_ingress.",
    )

    @field_validator("ami")
    @classmethod
    def _ami(cls, v: str) -> str:
        if v in AMI_ALIASES or re.fullmatch(r"ami-[0-9a-f]{8,17}", v):
            return v
        close = difflib.get_close_matches(v, list(AMI_ALIASES), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"'{v}' is neither an AMI id (ami-...) nor one of {', '.join(AMI_ALIASES)}{hint}")

    @field_validator("container_stop_timeout")
    @classmethod
    def _stop_timeout(cls, v: int) -> int:
        if v > SPOT_NOTICE_SECONDS:
            raise ValueError(
                f"{v}s is longer than the 2-minute spot notice: the instance is gone "
                f"before the task is stopped; use at most {SPOT_NOTICE_SECONDS}s"
            )
        return v

    @field_validator("ecs_agent")
    @classmethod
    def _agent(cls, v: dict[str, str]) -> dict[str, str]:
        problems: list[Problem] = []
        for key, value in v.items():
            if key in CREDENTIAL_KEYS:
                problems.append(("", f"{key}: {CREDENTIALS_HINT}"))
            elif key in MANAGED_AGENT_KEYS:
                set_by = "cluster.name and instances.container_stop_timeout"
                problems.append(("", f"{key} is set by spotecs (from {set_by}); remove it here"))
            elif not re.fullmatch(r"ECS_[A-Z0-9_]+", key):
                problems.append(("", f"'{key}' is not an ECS agent setting (ECS_...)"))
            # ecs.config is one KEY=VALUE per line: a line break in a value would write another setting.
            elif "\n" in value or "\r" in value:
                problems.append(("", f"{key}: the value must be a single line"))
        if problems:
            raise Problems(problems)
        return v

    @field_validator("types")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = sorted({t for t in v if v.count(t) > 1})
        if dup:
            raise ValueError(f"listed twice: {', '.join(dup)}")
        return v

    @model_validator(mode="after")
    def _rules(self) -> Instances:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        if self.min > self.max:
            yield "min", f"must not exceed max ({self.max})"
        if self.desired is not None and not self.min <= self.desired <= self.max:
            yield "desired", f"must be between min ({self.min}) and max ({self.max})"
        if self.on_demand_base > self.max:
            yield "on_demand_base", f"must not exceed max ({self.max})"

    @property
    def uses_spot(self) -> bool:
        return self.on_demand_percent < 100 and self.on_demand_base < self.max

    @property
    def initial_desired(self) -> int:
        return self.min if self.desired is None else self.desired


class CapacityProvider(Model):
    target_capacity: int = Field(
        100,
        ge=1,
        le=100,
        description="Percent of instance capacity tasks should use; below 100 keeps spare instances warm for bursts.",
    )
    managed_termination_protection: bool = Field(
        True, description="Let ECS lift scale-in protection only from instances without tasks."
    )
    managed_draining: bool = True
    instance_warmup: Seconds = Field(300, description="Seconds a new instance needs before it counts.")
    minimum_scaling_step: int = Field(1, ge=1, le=10000)
    maximum_scaling_step: int = Field(10, ge=1, le=10000)


class Cluster(Model):
    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,255}$", description="ECS cluster name; default: the stack name."
    )
    container_insights: bool = True
