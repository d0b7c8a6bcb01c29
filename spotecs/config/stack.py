"""The whole stack file: its sections, the rules that span several of them (the article's
deployment-percent and spot-timing traps, routing between web services), the legal-but-risky
settings shown as warnings, and where in the file each field was written."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field, PrivateAttr, field_validator, model_validator

from spotecs import names
from spotecs.config import formats
from spotecs.config.base import SPOT_NOTICE_SECONDS, Model, Problem, accept, enforce
from spotecs.config.compute import CapacityProvider, Cluster, Instances
from spotecs.config.load_balancer import LoadBalancer
from spotecs.config.network import Network
from spotecs.config.safety import OptOuts
from spotecs.config.safety import problems as safety_problems
from spotecs.config.services import Service
from spotecs.errors import ConfigError

ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
# ALB limit: five condition values (paths plus hosts) per rule.
MAX_CONDITION_VALUES = 5


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
    opt_outs: OptOuts = Field(
        default_factory=OptOuts, description="Safe defaults given up, each with the reason (see README, Safety)."
    )

    # Where each key was written (set by the loader): plan-time checks cite the file's line.
    _file: str = PrivateAttr("")
    _lines: dict[tuple[str, ...], int] = PrivateAttr(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        return accept(v, formats.tag_problems(v))

    @model_validator(mode="after")
    def _rules(self) -> Stack:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        yield from names.problems(self, self.region)
        for name, svc in self.services.items():
            yield from _deployment_problems(name, svc)
            stop = self.stop_timeout(name)
            if svc.is_web and self.instances.uses_spot and svc.deregistration_delay + stop > SPOT_NOTICE_SECONDS:
                yield (
                    f"services.{name}.deregistration_delay",
                    f"{svc.deregistration_delay}s of draining plus a {stop}s stop timeout is more than the "
                    "2-minute spot notice: the instance may disappear before draining ends; keep their sum at "
                    "most 120s",
                )
        yield from safety_problems(self)
        web = self.web_services()
        for name in web[1:]:
            r = self.services[name].routing
            if not (r.paths or r.hosts):
                yield (
                    f"services.{name}.routing",
                    f"only the first web service ({web[0]}) is the load balancer's default; give this one "
                    "paths or hosts",
                )
        yield from self._routing_problems()
        if self.capacity_provider.managed_termination_protection and not self.instances.scale_in_protection:
            # ECS managed termination protection works by lifting scale-in protection from empty
            # instances: the group must protect every new instance in the first place.
            yield (
                "capacity_provider.managed_termination_protection",
                "needs instances.scale_in_protection: true (ECS can only keep busy instances from being "
                "terminated if they start protected); set it, or turn managed_termination_protection off",
            )

    def _routing_problems(self) -> Iterator[Problem]:
        priorities = self.rule_priorities()
        for prio in sorted(set(priorities.values())):
            sharing = [s for s, p in priorities.items() if p == prio]
            if len(sharing) > 1:
                yield (
                    f"services.{sharing[1]}.routing.priority",
                    f"{', '.join(sharing)} share listener rule priority {prio}; give each a different routing.priority",
                )
        claimed: dict[tuple[str, str], str] = {}
        for name in priorities:
            r = self.services[name].routing
            if len(r.paths) + len(r.hosts) > MAX_CONDITION_VALUES:
                yield (
                    f"services.{name}.routing",
                    f"{len(r.paths) + len(r.hosts)} paths and hosts, but a load balancer rule matches at most "
                    f"{MAX_CONDITION_VALUES}",
                )
            for path, host in sorted(r.conditions()):
                other = claimed.setdefault((path, host), name)
                if other != name:
                    yield (
                        f"services.{name}.routing",
                        f"path {path} on host {host} is already routed to {other}: only one of them would get "
                        "those requests",
                    )
                    break

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

    def rule_priorities(self) -> dict[str, int]:
        """Routed services and their listener rule priority: as configured, else 10, 20, ... by
        order in the file."""
        out: dict[str, int] = {}
        for i, name in enumerate(self.web_services()):
            r = self.services[name].routing
            if r.paths or r.hosts:
                out[name] = r.priority if r.priority is not None else 10 * (i + 1)
        return out

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
                    f"({100 - self.instances.on_demand_percent}% spot): ECS stops a reclaimed instance's "
                    "tasks only once their replacements are healthy, which can outlast the 2-minute notice; "
                    "50 lets it drain them in time"
                )
            if svc.scaling and svc.desired_count < svc.scaling.min:
                out.append(
                    f"services.{name}.desired_count: {svc.desired_count} is below scaling.min "
                    f"({svc.scaling.min}); auto scaling raises it to {svc.scaling.min} at once"
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
