"""What the engine needs of the things it plans and applies, and nothing more: a context that
carries outputs between steps, resources it can create/update/delete, and data sources it only
reads. `spotecs.steps.base` implements these; the tests use fakes with no AWS at all.

Optional members stay outside the protocols (the engine looks them up with getattr, so a step
without them is still a Node):
- `first_read(ctx) -> None`: the read that starts the step's chain of round trips, when that
  chain is longer than the other steps' reads (the listeners: their load balancer and the
  stack's tagging-API read, then the listeners and their rules at once). `engine.plan.read_all`
  asks every first read before any step's `read`, through the run's read layer, so the longest
  chain starts first; the step's `read` then finds that answer made or under way. It returns
  nothing and changes nothing.
- `chained = True`: the step's read is two round trips (what names the resource, then the
  resource by that name); `read_all` asks it before the reads that end in one.
- `planned_name(ctx) -> str`: the name a resource yet to be created will have when a run-wide
  fact decides it (the access-log bucket's account id), shown in the plan (`engine.plan`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from spotecs.engine.model import Change


class Context(Protocol):
    """The run's shared state, as the engine sees it."""

    def for_step(self, key: str) -> Any:
        """A view bound to one step (for progress); outputs stay shared."""
        ...

    def output(self, key: str, name: str) -> Any:
        """An upstream step's output; an `Unknown` while that step is yet to be applied."""
        ...

    def set_output(self, key: str, values: dict[str, Any]) -> None:
        """Record a step's outputs for its dependants (thread-safe)."""
        ...


C = TypeVar("C", bound=Context, contravariant=True)


class InGraph(Protocol):
    """What places a node in the graph and names it in the plan."""

    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def depends_on(self) -> tuple[str, ...]: ...


@runtime_checkable
class DataSource(InGraph, Protocol[C]):
    """A fact read from AWS (an image, the network): read at plan time, never written."""

    def read(self, ctx: C) -> dict[str, Any] | None: ...

    def check(self, ctx: C, current: dict[str, Any] | None) -> list[str]:
        """Problems with what was read (e.g. a configured VPC that does not exist)."""
        ...


@runtime_checkable
class Resource(InGraph, Protocol[C]):
    """One AWS resource (or a tightly bound group): README, "Working on spotecs"."""

    @property
    def replace_on(self) -> frozenset[str]:
        """Fields that cannot change in place: a change to one is a replacement."""
        ...

    @property
    def versioned(self) -> bool:
        """A change is a new version (template version, task definition revision)."""
        ...

    @property
    def version_outputs(self) -> frozenset[str]:
        """For versioned steps: outputs each new version changes (e.g. a revision ARN)."""
        ...

    @property
    def binds_to(self) -> frozenset[str]:
        """Upstream keys (or kinds: a key before ":") whose replacement takes this resource
        with it: the plan replaces it too, in the same run, saying why."""
        ...

    def desired(self, ctx: C) -> dict[str, Any] | None:
        """None: the resource should not exist (an orphan the stack file no longer names)."""
        ...

    def read(self, ctx: C) -> dict[str, Any] | None: ...

    def check(self, ctx: C, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]: ...

    def create(self, ctx: C, desired: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, ctx: C, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]: ...

    def delete(self, ctx: C, current: dict[str, Any]) -> None: ...

    def replace(self, ctx: C, desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]: ...


Node = Resource[Any] | DataSource[Any]


def is_resource(node: Node) -> bool:
    return isinstance(node, Resource)


def resources(nodes: Sequence[Node]) -> list[Resource[Any]]:
    return [n for n in nodes if isinstance(n, Resource)]
