"""The whole stack file: its sections, the rules that span several of them (the article's
deployment-percent and spot-timing traps, routing between web services), the legal-but-risky
settings shown as warnings, and where in the file each field was written."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field, PrivateAttr, field_validator, model_validator

from spotecs.config.base import SPOT_NOTICE_SECONDS, Model, Problem, Problems, enforce
from spotecs.config.compute import CapacityProvider, Cluster, Instances
from spotecs.config.load_balancer import LoadBalancer
from spotecs.config.network import Network
from spotecs.config.services import Service
from spotecs.errors import ConfigError

ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]


def split_path(path: str) -> tuple[str, ...]:
    """`services.api.placement[1].field` or `...placement.1.field` -> its parts."""
    return tuple(p for p in re.split(r"[.\[\]]+", path) if p)


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

    # Where each key was written (set by the loader): plan-time checks cite the file's line.
    _file: str = PrivateAttr("")
    _lines: dict[tuple[str, ...], int] = PrivateAttr(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        reserved = [key for key in v if key.startswith(("spotecs:", "aws:"))]
        if reserved:
            raise Problems([("", f"'{key}': tags starting with spotecs: or aws: are reserved") for key in reserved])
        return v

    @model_validator(mode="after")
    def _rules(self) -> Stack:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        for name, svc in self.services.items():
            if len(f"{self.stack}-{name}") > 32:
                yield (
                    f"services.{name}",
                    f"'{self.stack}-{name}' is longer than the 32 characters AWS allows for a target "
                    "group name; shorten it",
                )
            yield from _deployment_problems(name, svc)
            stop = self.stop_timeout(name)
            if svc.is_web and self.instances.uses_spot and svc.deregistration_delay + stop > SPOT_NOTICE_SECONDS:
                yield (
                    f"services.{name}.deregistration_delay",
                    f"{svc.deregistration_delay}s of draining plus a {stop}s stop timeout is more than the "
                    "2-minute spot notice: the instance may disappear before draining ends; keep their sum at "
                    "most 120s",
                )
        web = self.web_services()
        for name in web[1:]:
            r = self.services[name].routing
            if not (r.paths or r.hosts):
                yield (
                    f"services.{name}.routing",
                    f"only the first web service ({web[0]}) is the load balancer's default; give this one "
                    "paths or hosts",
                )

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or self.stack

    @property
    def file(self) -> str:
        return self._file

    def stop_timeout(self, service: str) -> int:
        s = self.services[service].stop_timeout
        return self.instances.container_stop_timeout if s is None else s

    def web_services(self) -> list[str]:
        return [n for n, s in self.services.items() if s.is_web]

    def located(self, file: str, lines: dict[tuple[str, ...], int]) -> Stack:
        """This stack, remembering the file and the line of each key (the loader calls it)."""
        self._file, self._lines = file, dict(lines)
        return self

    def line_of(self, path: str) -> int | None:
        """The line of `path` (`instances.types[1]`) in the stack file, or of its nearest
        written parent (a default value has no line of its own)."""
        return line_in(self._lines, split_path(path))

    def cite(self, path: str, message: str) -> str:
        """`file:line: path: message`, as the loader reports errors."""
        return ConfigError(message, path=path, file=self._file, line=self.line_of(path)).render()

    def cite_problem(self, problem: str) -> str:
        """A plan-time problem `path: message` as `file:line: path: message`."""
        m = re.match(r"^([\w.\[\]*-]+): (.*)$", problem, re.S)
        return self.cite(m.group(1), m.group(2)) if m else problem

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


def line_in(lines: dict[tuple[str, ...], int], keys: tuple[str, ...]) -> int | None:
    for i in range(len(keys), 0, -1):
        if keys[:i] in lines:
            return lines[keys[:i]]
    return None


def _deployment_problems(name: str, svc: Service) -> Iterator[Problem]:
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
            yield (
                f"services.{name}.deployment",
                f"with {n} task(s), min_healthy_percent {d.min_healthy_percent} keeps all {floor} running and "
                f"max_percent {d.max_percent} allows no extra task ({ceiling}), so a deployment can never make "
                "progress; raise max_percent (e.g. 200) or lower min_healthy_percent",
            )
            return
