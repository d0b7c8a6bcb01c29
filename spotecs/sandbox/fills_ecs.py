"""Fills for moto's ECS: deregistering a container instance the cluster does not have, and a
deleted service that still has tasks.

AWS answers DeregisterContainerInstance naming an identifier that is not valid with a client
error, `ClientException` (HTTP 400: "specifying an identifier that isn't valid",
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterContainerInstance.html),
as when ECS deregistered a terminated instance on its own between a listing and the call. moto
raises a bare Exception (HTTP 500) instead, which botocore retries with backoff for some forty
seconds before the caller sees it.

AWS's DeleteService leaves a service with tasks still running DRAINING ("if there are still
running tasks that require cleanup, the service status moves from ACTIVE to DRAINING ... After all
tasks have transitioned to either STOPPING or STOPPED status, the service status moves from
DRAINING to INACTIVE", https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html).
moto makes it INACTIVE at once, so a teardown waiting for INACTIVE went on while the tasks still
ran; the simulated agent (services.reconcile) stops them and then makes the service INACTIVE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def ecs_deregister_unknown_container_instance(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.ecs.exceptions import ECSException

    class ClientException(ECSException):
        code = "ClientException"

    def deregister_container_instance(self: Any, cluster_str: str, container_instance_str: str, force: bool) -> Any:
        cluster = self._get_cluster(cluster_str)
        if container_instance_str.split("/")[-1] not in self.container_instances.get(cluster.name, {}):
            raise ClientException(f"Container instance {container_instance_str} not found in cluster {cluster.name}.")
        return original(self, cluster_str, container_instance_str, force)

    deregister_container_instance.__wrapped__ = original  # type: ignore[attr-defined]
    return deregister_container_instance


def ecs_delete_service_drains(original: Callable[..., Any]) -> Callable[..., Any]:
    from spotecs.sandbox.services import service_tasks

    def delete_service(self: Any, cluster_name: str, service_name: str, force: bool) -> Any:
        service = original(self, cluster_name, service_name, force)
        if service_tasks(self, service):
            service.status = "DRAINING"
        return service

    delete_service.__wrapped__ = original  # type: ignore[attr-defined]
    return delete_service


def install(wrap: Callable[[type, str, Callable[[Any], Any]], None]) -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    wrap(EC2ContainerServiceBackend, "deregister_container_instance", ecs_deregister_unknown_container_instance)
    wrap(EC2ContainerServiceBackend, "delete_service", ecs_delete_service_drains)
