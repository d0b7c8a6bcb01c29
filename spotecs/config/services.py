"""`services.<name>:` one ECS service each: its container, deployment, placement, load balancer
health check and routing (web services), logs and scaling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from spotecs.config import formats
from spotecs.config.base import (
    CREDENTIAL_KEYS,
    CREDENTIALS_HINT,
    SPOT_NOTICE_SECONDS,
    Model,
    Problem,
    Seconds,
    accept,
    enforce,
)
from spotecs.config.safety import Reason
from spotecs.config.scaling import MAX_TASKS, Scaling
from spotecs.config.secrets import SecretRef, check_key, problem

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
    def _rules(self) -> HealthCheck:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        if self.timeout >= self.interval:
            yield "timeout", f"must be shorter than interval ({self.interval}s)"


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

    @field_validator("paths")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        return accept(v, [p for path in v for p in formats.path_problems(path)])

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        return accept(v, [p for host in v for p in formats.host_problems(host)])

    def conditions(self) -> set[tuple[str, str]]:
        """The (path, host) pairs this rule matches, `*` for any."""
        return {(p, h) for p in self.paths or ["*"] for h in self.hosts or ["*"]}


class Deployment(Model):
    # 50/200 rather than ECS's 100/200: when a spot instance is reclaimed, ECS replaces its tasks
    # within these bounds, and at 100 it may stop none until replacements are healthy on another
    # instance, which can take longer than the 2-minute notice. One task still keeps its floor.
    min_healthy_percent: int = Field(
        50,
        ge=0,
        le=100,
        description="Share of desired tasks kept running while deploying or draining a reclaimed instance.",
    )
    max_percent: int = Field(200, ge=100, le=200, description="Ceiling of running tasks during a deployment.")
    circuit_breaker: bool = True
    rollback: bool = True


class Placement(Model):
    type: Literal["binpack", "spread", "random"]
    field: str | None = None

    @model_validator(mode="after")
    def _rules(self) -> Placement:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        if self.type == "random" and self.field:
            yield "field", "random placement takes no field"
        elif self.type != "random" and not self.field:
            yield "field", f"{self.type} placement needs a field (e.g. cpu, memory, attribute:ecs.availability-zone)"
        elif self.type == "binpack" and self.field not in ("cpu", "memory"):
            yield "field", "binpack field must be cpu or memory"


DEFAULT_PLACEMENT = [
    Placement(type="binpack", field="cpu"),
    Placement(type="spread", field="attribute:ecs.availability-zone"),
]


class TaskRole(Model):
    """The application's own AWS credentials, the supported way (not the instance's)."""

    managed_policies: list[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/.+$")]] = Field(
        default_factory=list, description="Managed policy ARNs to attach."
    )
    policy: dict[str, Any] | None = Field(None, description="An inline IAM policy document (Version, Statement).")

    @model_validator(mode="after")
    def _something(self) -> TaskRole:
        if not self.managed_policies and not self.policy:
            raise ValueError("managed_policies: give managed_policies, a policy, or both")
        if self.policy is not None and not isinstance(self.policy.get("Statement"), list | dict):
            raise ValueError("policy: an IAM policy document needs a Statement")
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
    secrets: dict[str, str | SecretRef] = Field(
        default_factory=dict,
        description="Env var -> where its value is: a Secrets Manager ARN (with or without its suffix, "
        "optionally :json-key::), an SSM parameter ARN or name; or {value_from, kms_key}.",
    )
    not_secret: dict[str, Reason] = Field(
        default_factory=dict,
        description="Environment variables whose names look secret (PASSWORD, TOKEN...) but are not: "
        "name -> why. Any other such variable with a literal value is refused.",
    )
    task_role: TaskRole | None = Field(
        None, description="An IAM role for the tasks, trusted by ecs-tasks.amazonaws.com; default none."
    )
    secrets_kms_key: str | None = Field(
        None, description="Customer-managed KMS key (key ARN) of this service's secrets: kms:Decrypt on it only."
    )
    repository_credentials: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:secretsmanager:",
        description="Secrets Manager ARN with the private registry's username/password.",
    )
    desired_count: int = Field(2, ge=0, le=MAX_TASKS)
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

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        return accept(v, formats.image_problems(v))

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: dict[str, str | SecretRef]) -> dict[str, str | SecretRef]:
        problems = [p for name in v for p in formats.env_name_problems(name)]
        for name, ref in v.items():
            found = problem(ref) if isinstance(ref, str) else None
            if found:
                problems.append(f"{name}: {found}")
        return accept(v, problems)

    @field_validator("secrets_kms_key")
    @classmethod
    def _secrets_key(cls, v: str | None) -> str | None:
        return check_key(v)

    def secret_refs(self) -> dict[str, tuple[str, str | None]]:
        """Env var -> (valueFrom, the KMS key it needs, if any)."""
        return {
            name: (ref, self.secrets_kms_key)
            if isinstance(ref, str)
            else (ref.value_from, ref.kms_key or self.secrets_kms_key)
            for name, ref in self.secrets.items()
        }

    @field_validator("environment")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        problems = [p for name in v for p in formats.env_name_problems(name)]
        problems += [f"{key}: {CREDENTIALS_HINT}" for key in v if key in CREDENTIAL_KEYS]
        return accept(v, problems)

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
    def _rules(self) -> Service:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        if self.memory_soft is None and self.memory_hard is None:
            yield "memory_soft", "set memory_soft, memory_hard or both"
        if self.memory_soft is not None and self.memory_hard is not None and self.memory_soft > self.memory_hard:
            yield "memory_soft", f"must not exceed memory_hard ({self.memory_hard})"
        if self.container_port is None and (self.routing.paths or self.routing.hosts):
            yield "routing", "a service without container_port is a worker and gets no load balancer routing"
        if (
            self.scaling
            and self.container_port is None
            and any(t.metric == "requests" for t in self.scaling.target_tracking)
        ):
            yield "scaling.target_tracking", "'requests' needs a load balancer (set container_port)"
        if self.scaling and self.desired_count > self.scaling.max:
            yield "desired_count", f"{self.desired_count} is above scaling.max ({self.scaling.max})"
        both = sorted(set(self.environment) & set(self.secrets))
        if both:
            yield "secrets", f"{', '.join(both)} also set in environment: a variable comes from one of them"

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
