"""Request-level fills for moto: API behaviour real AWS has and moto 5.2 drops. Each fill is a
small wrapper around one moto response handler; `install()` applies them all (the sandbox does,
once per process) and the unit tests that need one apply it with monkeypatch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# ECS CreateService fields moto's create_service ignores but its update_service stores.
ECS_CREATE_SERVICE_DROPPED = ("capacityProviderStrategy", "placementStrategy", "placementConstraints",
                              "deploymentConfiguration", "healthCheckGracePeriodSeconds", "enableECSManagedTags")


def ecs_create_service_keeping_fields(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's CreateService handler so the service keeps the fields real ECS keeps,
    stored the way moto's UpdateService stores them (so DescribeServices shows them)."""
    from moto.core.utils import camelcase_to_underscores

    def create_service(self: Any) -> Any:
        result = original(self)
        cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
        service = self.ecs_backend.services[f"{cluster.name}:{self._get_param('serviceName')}"]
        for name in ECS_CREATE_SERVICE_DROPPED:
            if (value := self._get_param(name)) is not None:
                setattr(service, camelcase_to_underscores(name), value)
        return result

    create_service.__wrapped__ = original  # type: ignore[attr-defined]
    return create_service


def install() -> None:
    """Apply every fill to moto's classes; idempotent."""
    from moto.ecs.responses import EC2ContainerServiceResponse

    current = EC2ContainerServiceResponse.create_service
    if not hasattr(current, "__wrapped__"):
        EC2ContainerServiceResponse.create_service = ecs_create_service_keeping_fields(current)  # type: ignore[method-assign]
