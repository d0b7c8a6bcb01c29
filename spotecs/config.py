"""The stack file: pydantic models and `load()`, which turns YAML into a `Stack` or raises
`ConfigError` naming the file, line, field path and what is wrong. Nothing here calls AWS.

Every check that needs only the file lives here (ranges, cross-field rules, the article's
deployment-percent and spot-timing traps). Checks that need AWS facts (instance sizes, AMI
architecture) are in `spotecs.checks`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import types
import typing
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from spotecs.errors import ConfigError

# The spot interruption notice: AWS reclaims the instance two minutes after it.
SPOT_NOTICE_SECONDS = 120

LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

AMI_ALIASES = {
    "al2023": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
    "al2023-arm64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
    "al2": "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id",
    "al2-arm64": "/aws/service/ecs/optimized-ami/amazon-linux-2/arm64/recommended/image_id",
}

# ecs.config keys spotecs writes itself, and keys that would put registry credentials in
# plain text into user data (readable by anyone who can describe the launch template).
MANAGED_AGENT_KEYS = {"ECS_CLUSTER", "ECS_ENABLE_SPOT_INSTANCE_DRAINING", "ECS_CONTAINER_STOP_TIMEOUT"}
CREDENTIAL_AGENT_KEYS = {"ECS_ENGINE_AUTH_DATA", "ECS_ENGINE_AUTH_TYPE"}
CREDENTIALS_HINT = (
    "registry credentials must not go into user data; store them in Secrets "
    "Manager and set services.<name>.repository_credentials to the secret's ARN"
)

_DURATION = re.compile(r"^\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def parse_duration(value: Any) -> Any:
    """`90`, `"90s"`, `"1m"`, `"1m30s"` -> seconds. Anything else is left for pydantic to reject."""
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return int(text)
        m = _DURATION.match(text)
        if m and (m.group(1) or m.group(2)):
            return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
        raise ValueError(f"'{value}' is not a duration: use seconds (90) or e.g. '1m', '90s', '1m30s'")
    return value


Seconds = Annotated[int, BeforeValidator(parse_duration), Field(ge=0)]


def _stringify(value: Any) -> Any:
    """Environment values: YAML reads `PORT: 3000` as an int; the container gets a string."""
    if isinstance(value, dict):
        return {
            k: (str(v).lower() if isinstance(v, bool) else str(v)) if isinstance(v, int | float | bool) else v
            for k, v in value.items()
        }
    return value


def _split_command(value: Any) -> Any:
    """The article's console takes `npm,start`; a YAML list is the natural form."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- network


class Network(Model):
    vpc_id: str | None = Field(
        None, pattern=r"^vpc-[0-9a-f]+$", description="VPC to use; default: the account's default VPC."
    )
    subnets: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]] = Field(
        default_factory=list,
        description="Subnets for instances and the load balancer; default: every subnet of the VPC.",
    )

    @model_validator(mode="after")
    def _subnets_need_vpc(self) -> Network:
        if self.subnets and not self.vpc_id:
            raise ValueError("subnets: set network.vpc_id too when naming subnets")
        return self


# --------------------------------------------------------------------------- compute

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


class Instances(Model):
    types: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")]] = Field(
        default_factory=lambda: ["t3.medium", "t3a.medium", "m5.large"],
        min_length=1,
        description="Instance types the group may launch; several types make spot capacity easier to get.",
    )
    ami: str = Field(
        "al2023",
        description="ECS-optimized AMI alias (al2023, al2023-arm64, al2, "
        "al2-arm64), resolved through SSM at every run, or an explicit ami-... id.",
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
        for key in v:
            if key in CREDENTIAL_AGENT_KEYS:
                raise ValueError(f"{key}: {CREDENTIALS_HINT}")
            if key in MANAGED_AGENT_KEYS:
                raise ValueError(
                    f"{key} is set by spotecs (from cluster.name and instances.container_stop_timeout); remove it here"
                )
            if not re.fullmatch(r"ECS_[A-Z0-9_]+", key):
                raise ValueError(f"'{key}' is not an ECS agent setting (ECS_...)")
        return v

    @field_validator("types")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = sorted({t for t in v if v.count(t) > 1})
        if dup:
            raise ValueError(f"listed twice: {', '.join(dup)}")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> Instances:
        if self.min > self.max:
            raise ValueError(f"min: must not exceed max ({self.max})")
        if self.desired is not None and not self.min <= self.desired <= self.max:
            raise ValueError(f"desired: must be between min ({self.min}) and max ({self.max})")
        if self.on_demand_base > self.max:
            raise ValueError(f"on_demand_base: must not exceed max ({self.max})")
        return self

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


# --------------------------------------------------------------------------- load balancer


class AccessLogs(Model):
    bucket: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="Existing bucket; default: spotecs creates <stack>-alb-logs-<account>.",
    )
    prefix: str = "alb"
    expire_days: int = Field(30, ge=1, description="Delete log objects after this many days.")


class LoadBalancer(Model):
    certificate_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+$",
        description="ACM certificate: HTTPS on 443 and a 301 redirect from 80.",
    )
    ssl_policy: str = Field(
        "ELBSecurityPolicy-TLS13-1-2-2021-06", description="TLS 1.2+ policy for the HTTPS listener."
    )
    redirect_http: bool = Field(True, description="With a certificate, answer HTTP with 301 to HTTPS.")
    idle_timeout: Seconds = Field(60, le=4000)
    internal: bool = False
    access_logs: AccessLogs | None = None


class HealthCheck(Model):
    path: str = Field("/", pattern=r"^/")
    interval: Seconds = Field(30, ge=5, le=300)
    timeout: Seconds = Field(5, ge=2, le=120)
    healthy_threshold: int = Field(3, ge=2, le=10)
    unhealthy_threshold: int = Field(2, ge=2, le=10)
    success_codes: str = Field(
        "200-399",
        pattern=r"^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$",
        description="The article's image answers 304, hence 200-399.",
    )

    @model_validator(mode="after")
    def _timeout(self) -> HealthCheck:
        if self.timeout >= self.interval:
            raise ValueError(f"timeout: must be shorter than interval ({self.interval}s)")
        return self


class ContainerHealthCheck(Model):
    command: list[str] = Field(
        min_length=1, description='e.g. ["CMD-SHELL", "curl -f http://localhost:3000/ || exit 1"]'
    )
    interval: Seconds = Field(30, ge=5, le=300)
    timeout: Seconds = Field(5, ge=2, le=60)
    retries: int = Field(3, ge=1, le=10)
    start_period: Seconds = Field(0, le=300)


class Routing(Model):
    paths: list[str] = Field(default_factory=list, description="Path patterns, e.g. /api/*")
    hosts: list[str] = Field(default_factory=list, description="Host headers, e.g. api.example.com")
    priority: int | None = Field(
        None, ge=1, le=50000, description="Listener rule priority; default by order in the file."
    )


# --------------------------------------------------------------------------- services


class Deployment(Model):
    min_healthy_percent: int = Field(100, ge=0, le=100)
    max_percent: int = Field(200, ge=100, le=200)
    circuit_breaker: bool = True
    rollback: bool = True


class Placement(Model):
    type: Literal["binpack", "spread", "random"]
    field: str | None = None

    @model_validator(mode="after")
    def _field(self) -> Placement:
        if self.type == "random" and self.field:
            raise ValueError("field: random placement takes no field")
        if self.type != "random" and not self.field:
            raise ValueError(
                f"field: {self.type} placement needs a field (e.g. cpu, memory, attribute:ecs.availability-zone)"
            )
        if self.type == "binpack" and self.field not in ("cpu", "memory"):
            raise ValueError("field: binpack field must be cpu or memory")
        return self


DEFAULT_PLACEMENT = [
    Placement(type="binpack", field="cpu"),
    Placement(type="spread", field="attribute:ecs.availability-zone"),
]


class TargetTracking(Model):
    metric: Literal["cpu", "memory", "requests"]
    target: float = Field(gt=0, description="Percent for cpu/memory; requests per target per minute for requests.")
    scale_in_cooldown: Seconds = 300
    scale_out_cooldown: Seconds = 60
    disable_scale_in: bool = False


class Alarm(Model):
    namespace: str
    metric: str
    dimensions: dict[str, str] = Field(default_factory=dict)
    statistic: Literal["Average", "Sum", "Minimum", "Maximum", "SampleCount"] = "Average"
    period: Seconds = Field(60, ge=10)
    evaluation_periods: int = Field(1, ge=1)
    threshold: float
    comparison: Literal[
        "GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"
    ] = "GreaterThanOrEqualToThreshold"


class StepAdjustment(Model):
    lower: float | None = Field(None, description="Lower bound, relative to the alarm threshold.")
    upper: float | None = None
    change: int


class StepScaling(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    alarm: Alarm
    adjustment_type: Literal["ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity"] = "ChangeInCapacity"
    steps: list[StepAdjustment] = Field(min_length=1)
    cooldown: Seconds = 120

    @model_validator(mode="after")
    def _steps(self) -> StepScaling:
        for a, b in zip(self.steps, self.steps[1:], strict=False):
            if a.upper is None or b.lower is None or a.upper != b.lower:
                raise ValueError("steps: must be contiguous: each step's upper equals the next one's lower")
        return self


class Scheduled(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    schedule: str = Field(
        pattern=r"^(cron\(.+\)|at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\)|rate\(.+\))$",
        description="cron(...), at(yyyy-mm-ddThh:mm:ss) or rate(...)",
    )
    timezone: str = "UTC"
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> Scheduled:
        if self.min is None and self.max is None:
            raise ValueError("min: set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min: must not exceed max ({self.max})")
        return self


class Scaling(Model):
    min: int = Field(ge=0)
    max: int = Field(ge=1)
    target_tracking: list[TargetTracking] = Field(default_factory=list)
    step_scaling: list[StepScaling] = Field(default_factory=list)
    scheduled: list[Scheduled] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.min > self.max:
            raise ValueError(f"min: must not exceed max ({self.max})")
        for name, items in (("step_scaling", self.step_scaling), ("scheduled", self.scheduled)):
            names = [i.name for i in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{name}: names must be unique ({', '.join(dup)})")
        return self


class Service(Model):
    image: str = Field(min_length=1, description="Container image, e.g. bitnami/node-example:0.0.1")
    container_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port the app listens on; none for a worker (no load balancer). The host port is always dynamic.",
    )
    cpu: int = Field(256, ge=0, le=10240 * 4, description="CPU units; 1024 = one vCPU.")
    memory_soft: int | None = Field(256, ge=6, description="MiB reserved for placement (memoryReservation).")
    memory_hard: int | None = Field(512, ge=6, description="MiB at which the container is killed (memory).")
    command: Annotated[list[str] | None, BeforeValidator(_split_command)] = None
    environment: Annotated[dict[str, str], BeforeValidator(_stringify)] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(
        default_factory=dict, description="Env var -> ARN of a Secrets Manager secret or SSM parameter."
    )
    repository_credentials: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:secretsmanager:",
        description="Secrets Manager ARN with the private registry's username/password.",
    )
    desired_count: int = Field(2, ge=0)
    deployment: Deployment = Field(default_factory=Deployment)
    placement: list[Placement] = Field(default_factory=lambda: list(DEFAULT_PLACEMENT), max_length=5)
    health_check_grace_period: Seconds = Field(60, le=2147483647)
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    container_health_check: ContainerHealthCheck | None = None
    deregistration_delay: Seconds = Field(
        30,
        le=3600,
        description="Seconds the load balancer drains a target; plus the stop timeout, must fit in the spot notice.",
    )
    stop_timeout: Seconds | None = Field(
        None, le=SPOT_NOTICE_SECONDS, description="Container stopTimeout; default: instances.container_stop_timeout."
    )
    log_retention_days: int | None = Field(30, description="CloudWatch Logs retention; null keeps logs forever.")
    routing: Routing = Field(default_factory=Routing)
    scaling: Scaling | None = None

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: dict[str, str]) -> dict[str, str]:
        for name, arn in v.items():
            if not re.match(r"^arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:(secret:|parameter/)", arn):
                raise ValueError(f"{name}: '{arn}' is not the ARN of a Secrets Manager secret or SSM parameter")
        return v

    @field_validator("environment")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if key in CREDENTIAL_AGENT_KEYS:
                raise ValueError(f"{key}: {CREDENTIALS_HINT}")
        return v

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, v: int | None) -> int | None:
        if v is not None and v not in LOG_RETENTION_DAYS:
            near = min(LOG_RETENTION_DAYS, key=lambda d: abs(d - v))
            raise ValueError(
                f"{v} is not a CloudWatch Logs retention (nearest: {near}; "
                f"allowed: {', '.join(map(str, LOG_RETENTION_DAYS))})"
            )
        return v

    @model_validator(mode="after")
    def _memory(self) -> Service:
        if self.memory_soft is None and self.memory_hard is None:
            raise ValueError("memory_soft: set memory_soft, memory_hard or both")
        if self.memory_soft is not None and self.memory_hard is not None and self.memory_soft > self.memory_hard:
            raise ValueError(f"memory_soft: must not exceed memory_hard ({self.memory_hard})")
        if self.container_port is None and (self.routing.paths or self.routing.hosts):
            raise ValueError("routing: a service without container_port is a worker and gets no load balancer routing")
        if (
            self.scaling
            and self.scaling.target_tracking
            and self.container_port is None
            and any(t.metric == "requests" for t in self.scaling.target_tracking)
        ):
            raise ValueError("scaling.target_tracking: 'requests' needs a load balancer (set container_port)")
        return self

    @property
    def is_web(self) -> bool:
        return self.container_port is not None

    @property
    def memory_for_placement(self) -> int:
        """What ECS reserves on the instance: the soft limit if set, else the hard one."""
        return self.memory_soft if self.memory_soft is not None else int(self.memory_hard or 0)

    def count_range(self) -> range:
        if self.scaling:
            lo = min(self.scaling.min, self.desired_count)
            return range(lo, max(self.scaling.max, self.desired_count) + 1)
        return range(self.desired_count, self.desired_count + 1)


# --------------------------------------------------------------------------- the stack

ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]


class Stack(Model):
    stack: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,19}$",
        description="Stack name: lower case, digits and dashes, at most 20 characters; prefixes every resource name.",
    )
    region: str | None = Field(
        None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="Default: --region, AWS_REGION or the profile's region."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags for every resource.")
    network: Network = Field(default_factory=Network)
    instances: Instances = Field(default_factory=Instances)
    capacity_provider: CapacityProvider = Field(default_factory=CapacityProvider)
    cluster: Cluster = Field(default_factory=Cluster)
    load_balancer: LoadBalancer = Field(default_factory=LoadBalancer)
    services: dict[ServiceName, Service] = Field(min_length=1)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if key.startswith(("spotecs:", "aws:")):
                raise ValueError(f"'{key}': tags starting with spotecs: or aws: are reserved")
        return v

    @model_validator(mode="after")
    def _cross(self) -> Stack:
        for name, svc in self.services.items():
            if len(f"{self.stack}-{name}") > 32:
                raise ValueError(
                    f"services.{name}: '{self.stack}-{name}' is longer than the 32 "
                    "characters AWS allows for a target group name; shorten it"
                )
            _check_deployment(name, svc)
            stop = svc.stop_timeout if svc.stop_timeout is not None else self.instances.container_stop_timeout
            if svc.is_web and self.instances.uses_spot and svc.deregistration_delay + stop > SPOT_NOTICE_SECONDS:
                raise ValueError(
                    f"services.{name}.deregistration_delay: {svc.deregistration_delay}s of draining plus a "
                    f"{stop}s stop timeout is more than the 2-minute spot notice: the instance may "
                    "disappear before draining ends; keep their sum at most 120s"
                )
        web = [n for n, s in self.services.items() if s.is_web]
        for name in web[1:]:
            r = self.services[name].routing
            if not (r.paths or r.hosts):
                raise ValueError(
                    f"services.{name}.routing: only the first web service ({web[0]}) is the "
                    "load balancer's default; give this one paths or hosts"
                )
        return self

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or self.stack

    def stop_timeout(self, service: str) -> int:
        s = self.services[service].stop_timeout
        return self.instances.container_stop_timeout if s is None else s

    def web_services(self) -> list[str]:
        return [n for n, s in self.services.items() if s.is_web]

    def warnings(self) -> list[str]:
        """Legal but risky settings; shown with the plan, never blocking."""
        out: list[str] = []
        for name, svc in self.services.items():
            d = svc.deployment
            if d.min_healthy_percent == 100 and self.instances.uses_spot and self.instances.on_demand_percent <= 50:
                out.append(
                    f"services.{name}.deployment.min_healthy_percent: 100 with a spot-heavy mix "
                    f"({100 - self.instances.on_demand_percent}% spot): draining a reclaimed spot "
                    "instance briefly takes the service below its desired count"
                )
            if any(math.ceil(n * d.min_healthy_percent / 100) == 0 for n in svc.count_range() if n > 0):
                out.append(
                    f"services.{name}.deployment.min_healthy_percent: {d.min_healthy_percent} lets a "
                    "deployment stop every task before starting new ones: expect downtime"
                )
        return out


def _check_deployment(name: str, svc: Service) -> None:
    """The article's trap: with 1 task, 50/150 never deploys (it cannot stop half a task or start
    half a one). ECS rounds the healthy floor up and the ceiling down; a deployment can proceed only
    if it may stop an old task (floor < n) or start a new one (ceiling > n)."""
    d = svc.deployment
    for n in svc.count_range():
        if n == 0:
            continue
        floor = math.ceil(n * d.min_healthy_percent / 100)
        ceiling = math.floor(n * d.max_percent / 100)
        if floor >= n and ceiling <= n:
            raise ValueError(
                f"services.{name}.deployment: with {n} task(s), min_healthy_percent "
                f"{d.min_healthy_percent} keeps all {floor} running and max_percent {d.max_percent} allows "
                f"no extra task ({ceiling}), so a deployment can never make progress; raise max_percent "
                f"(e.g. 200) or lower min_healthy_percent"
            )


# --------------------------------------------------------------------------- loading


class _LineLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys (YAML silently keeps the last one)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` merge keys are flattened by construct_mapping below
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            continue  # construct_mapping reports it as "found unhashable key", with its line
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _key_lines(node: yaml.Node, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], int]]:
    """Yield (path, line) for every key in the document, so errors can name a line."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            yield path, key_node.start_mark.line + 1
            yield from _key_lines(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = (*prefix, str(i))
            yield path, item.start_mark.line + 1
            yield from _key_lines(item, path)


def _model_for(path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that owns the field at `path`, to suggest near names for unknown keys."""
    model: Any = Stack
    for part in path[:-1]:
        if model is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            # inside a dict (services.<name>) or list: keep the value type
            continue
        model = _inner_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """Peel Optional/list/dict down to a BaseModel class, if there is one."""
    stack = [annotation]
    while stack:
        t = stack.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
        stack.extend(getattr(t, "__args__", ()))
    return None


def _message(err: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = _model_for(loc)
        names = list(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key{hint}"
    if kind == "missing":
        return "required, but missing"
    msg = str(err["msg"])
    if kind in ("value_error", "assertion_error"):
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    elif kind == "string_pattern_mismatch":
        msg = f"'{err.get('input')}' is not valid here (expected {err['ctx']['pattern']})"
    return msg[:1].lower() + msg[1:] if not msg[:2].isupper() else msg


def parse(text: str, *, file: str = "<stack>") -> Stack:
    """Turn YAML text into a Stack, or raise ConfigError naming the line and field."""
    try:
        root = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"YAML syntax error: {e.problem or e.context}", file=f"{file}{line}") from None
    if data is None:
        raise ConfigError("the file is empty; a stack needs at least 'stack' and 'services'", file=file)
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys (stack, services, ...)", file=file)
    lines = dict(_key_lines(root)) if root is not None else {}
    try:
        return Stack.model_validate(data)
    except ValidationError as e:
        # An unknown key is the likeliest cause of everything else (a typo'd required key
        # also shows as "missing"), so it is reported first.
        errors = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
        err = errors[0]
        # pydantic marks a bad dict key (services.<Name>) with a "[key]" step: the name is the path.
        loc = tuple(p for p in err["loc"] if p != "[key]")
        msg = _message(err, loc)
        # A model-level error from a nested model names the field in its first word.
        m = re.match(r"^([a-z_][a-z0-9_.-]*): (.*)$", msg)  # service names may hold dashes
        if m and not loc and m.group(1).startswith("services."):
            loc, msg = tuple(m.group(1).split(".")), m.group(2)
        elif m:
            loc, msg = (*loc, *m.group(1).split(".")), m.group(2)
        path = ".".join(str(p) for p in loc)
        raise ConfigError(msg, path=path, file=file, line=_line_for(lines, loc)) from None


def _line_for(lines: dict[tuple[str, ...], int], loc: tuple[str | int, ...]) -> int | None:
    keys = tuple(str(p) for p in loc)
    for i in range(len(keys), 0, -1):
        if keys[:i] in lines:
            return lines[keys[:i]]
    return None


def load(path: str | Path) -> Stack:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file; pass the stack file with -f FILE", file=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a stack file", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", file=str(p)) from None
    return parse(text, file=str(p))


def json_schema() -> dict[str, Any]:
    schema = Stack.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "spotecs stack file"
    return schema


def _type_name(annotation: Any) -> str:
    """A short, human name for a field's type: `int`, `duration`, `list of str`, `a \\| b`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        meta = args[1:]
        if any(getattr(m, "func", None) is parse_duration for m in meta):
            return "duration (s, or 1m, 90s)"
        return _type_name(args[0])
    if origin is Literal:
        return " \\| ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} → {_type_name(args[1])}"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def reference_rows(model: type[BaseModel] = Stack, prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(path, type, default, description) for every field of the stack file, depth first."""
    for name, f in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = _inner_model(f.annotation)
        origin = getattr(f.annotation, "__origin__", None)
        if f.is_required():
            default = "required"
        elif f.default_factory is not None:
            made = f.default_factory()  # type: ignore[call-arg]
            default = "" if isinstance(made, BaseModel) else json.dumps(made, default=lambda m: m.model_dump())
        else:
            default = json.dumps(f.default)
        if inner is not None and origin is dict:
            yield path, f"mapping of name → {inner.__name__}", default, f.description or ""
            yield from reference_rows(inner, f"{path}.<name>.")
        elif inner is not None and origin is list:
            yield path, f"list of {inner.__name__}", default, f.description or ""
            yield from reference_rows(inner, f"{path}[].")
        elif inner is not None:
            if default and default not in ("", "null"):
                yield path, inner.__name__, default, f.description or ""
            yield from reference_rows(inner, f"{path}.")
        elif any(getattr(m, "func", None) is parse_duration for m in f.metadata):
            yield path, "duration (s, or 1m, 90s)", default, f.description or ""
        else:
            yield path, _type_name(f.annotation), default, f.description or ""


def reference_markdown() -> str:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for path, kind, default, doc in reference_rows():
        cells = [f"`{path}`", kind, default.replace("|", "\\|"), doc.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
