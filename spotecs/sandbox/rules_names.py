"""Rules: names AWS refuses and moto accepts (installed by rules.install()).

Load balancers (CreateLoadBalancer,
https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html):
"can have a maximum of 32 characters, must contain only alphanumeric characters or hyphens, must
not begin or end with a hyphen, and must not begin with "internal-"", refused with
ValidationError. moto checks none of it for load balancers. (Target group names, same rules less
"internal-", moto already refuses as AWS does.)

Capacity providers (CreateCapacityProvider,
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCapacityProvider.html): "The
name can't be prefixed with "aws", "ecs", or "fargate"" (in any case), refused with
ClientException. moto takes any name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_ALNUM_HYPHEN = re.compile(r"^[A-Za-z0-9-]+$")
_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
RESERVED_PROVIDER_PREFIXES = ("aws", "ecs", "fargate")


def load_balancer_name_problem(name: str) -> str | None:
    """AWS's message for a load balancer name it refuses, or None."""
    if len(name) > 32:
        return f"The load balancer name '{name}' cannot be longer than '32' characters"
    if not _ALNUM_HYPHEN.match(name):
        return f"Load balancer name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)"
    if name.startswith("-") or name.endswith("-"):
        return f"Load balancer name '{name}' cannot begin or end with '-'"
    if name.lower().startswith("internal-"):
        return f"Load balancer name '{name}' cannot begin with 'internal-'"
    return None


def elbv2_load_balancer_names(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.elbv2.exceptions import ELBClientError

    def create_load_balancer(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = str(kwargs.get("name", args[0] if args else ""))
        problem = load_balancer_name_problem(name)
        if problem:
            raise ELBClientError("ValidationError", problem)
        return original(self, *args, **kwargs)

    return create_load_balancer


def capacity_provider_name_problem(name: str) -> str | None:
    if _PROVIDER_NAME.match(name) and not name.lower().startswith(RESERVED_PROVIDER_PREFIXES):
        return None
    return (
        "The specified capacity provider name is invalid. Up to 255 characters are allowed, including letters "
        '(upper and lowercase), numbers, underscores, and hyphens. The name cannot be prefixed with "aws", "ecs", '
        'or "fargate". Specify a valid name and try again.'
    )


def ecs_capacity_provider_names(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    from moto.ecs.exceptions import EcsClientException

    def create_capacity_provider(self: Any) -> Any:
        problem = capacity_provider_name_problem(str(self._get_param("name") or ""))
        if problem:
            raise EcsClientException(problem)
        return original(self)

    return create_capacity_provider


def install(wrap: Callable[..., None]) -> None:
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.elbv2.models import ELBv2Backend

    wrap(ELBv2Backend, "create_load_balancer", elbv2_load_balancer_names)
    wrap(EC2ContainerServiceResponse, "create_capacity_provider", ecs_capacity_provider_names)
