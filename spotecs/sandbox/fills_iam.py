"""Fill for moto's IAM: service-linked roles named as AWS names them.

CreateServiceLinkedRole (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html)
makes the role each service documents (ECS: "AWSServiceRoleForECS",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html); moto
derives "AWSServiceRoleForecs" from the service name. A second create of the same role fails in
AWS with "InvalidInput: Service role name ... has been taken in this account, please try a
different suffix."; moto makes a second role of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The role names AWS gives (each service's page on its service-linked role).
SERVICE_LINKED_ROLE_NAMES = {
    "ecs.amazonaws.com": "AWSServiceRoleForECS",
    "autoscaling.amazonaws.com": "AWSServiceRoleForAutoScaling",
    "ecs.application-autoscaling.amazonaws.com": "AWSServiceRoleForApplicationAutoScaling_ECSService",
    "elasticloadbalancing.amazonaws.com": "AWSServiceRoleForElasticLoadBalancing",
}


def iam_service_linked_role_names(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.iam.exceptions import InvalidInput

    def create_service_linked_role(self: Any, service_name: str, description: str, suffix: str) -> Any:
        name = SERVICE_LINKED_ROLE_NAMES.get(service_name)
        if name is None:
            return original(self, service_name, description, suffix)
        name = f"{name}_{suffix}" if suffix else name
        if any(r.name == name for r in self.roles.values()):
            raise InvalidInput(
                f"Service role name {name} has been taken in this account, please try a different suffix."
            )
        role = original(self, service_name, description, suffix)
        # moto keys roles by id: renaming the role renames it everywhere.
        role.name = name
        return role

    create_service_linked_role.__wrapped__ = original  # type: ignore[attr-defined]
    return create_service_linked_role


def install(wrap: Callable[[type, str, Callable[[Any], Any]], None]) -> None:
    from moto.iam.models import IAMBackend

    wrap(IAMBackend, "create_service_linked_role", iam_service_linked_role_names)
