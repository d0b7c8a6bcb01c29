"""The service-linked roles a stack needs: a data source, never created by the engine nor deleted.

In a fresh account or region they may not exist yet. `CreateCluster` only *tries* to create the
ECS one, and a role just created is not usable at once: `CreateCapacityProvider` then fails with
"The ECS Service Linked Role does not exist", `PutClusterCapacityProviders` and `CreateService`
with "Unable to assume the service linked role", `RegisterScalableTarget` with "Unable to assume
IAM role". So `up` creates the absent ones before its first write (`ensure`), and the calls that
need them retry on exactly those messages (`NOT_USABLE_YET`), for a bounded time.

A role is account-wide and shared with everything else in the account: spotecs never deletes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from spotecs.config import Stack
from spotecs.errors import AwsError
from spotecs.steps.base import Context, DataSource
from spotecs.steps.iam import account_roles

KEY = "service-linked-roles"
PERMISSION = "iam:CreateServiceLinkedRole"
PATH = "/aws-service-role/"
DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


@dataclass(frozen=True)
class LinkedRole:
    service: str  # the AWS service name the role is linked to (iam:AWSServiceName)
    name: str
    needed_for: str


ECS = LinkedRole("ecs.amazonaws.com", "AWSServiceRoleForECS", "the capacity provider and the services")
AUTO_SCALING = LinkedRole("autoscaling.amazonaws.com", "AWSServiceRoleForAutoScaling", "the auto scaling group")
ECS_SCALING = LinkedRole(
    "ecs.application-autoscaling.amazonaws.com",
    "AWSServiceRoleForApplicationAutoScaling_ECSService",
    "service auto scaling",
)
ELB = LinkedRole("elasticloadbalancing.amazonaws.com", "AWSServiceRoleForElasticLoadBalancing", "the load balancer")
ALL = (ECS, AUTO_SCALING, ECS_SCALING, ELB)

# What AWS answers while a role is absent or just created (and not yet assumable), as
# (code, message fragment) for `aws.caused_by`: these codes have other causes that never pass.
NOT_USABLE_YET: tuple[tuple[str, str], ...] = (
    ("ClientException", "Service Linked Role does not exist"),
    ("InvalidParameterException", "Unable to assume the service linked role"),
    ("ValidationException", "Unable to assume IAM role"),
)


def needed(stack: Stack) -> list[LinkedRole]:
    roles = [ECS, AUTO_SCALING]
    if any(s.scaling is not None for s in stack.services.values()):
        roles.append(ECS_SCALING)
    if stack.web_services():
        roles.append(ELB)
    return roles


class ServiceLinkedRoles(DataSource):
    """Outputs: present, missing (role names)."""

    kind = "service-linked roles"

    def __init__(self, roles: Sequence[LinkedRole]) -> None:
        super().__init__(KEY, ", ".join(r.name for r in roles))
        self.roles = list(roles)

    def read(self, ctx: Context) -> dict[str, Any]:
        # From the run's one read of the account's roles (the IAM steps'): every service-linked
        # role lives under this path.
        names = {n for n, r in account_roles(ctx).items() if r.get("Path", "").startswith(PATH)}
        return {
            "present": [r.name for r in self.roles if r.name in names],
            "missing": [r.name for r in self.roles if r.name not in names],
        }


def missing_roles(ctx: Context) -> list[LinkedRole]:
    """The roles the plan found absent (none when the run has no such data source: teardown)."""
    names = ctx.outputs.get(KEY, {}).get("missing", [])
    return [r for r in ALL if r.name in names]


def plan_notes(ctx: Context) -> list[str]:
    return [
        f"service-linked role {r.name} does not exist in this account: up creates it before its first "
        f"change (needed for {r.needed_for}); it is shared by the account and never deleted"
        for r in missing_roles(ctx)
    ]


def ensure(ctx: Context) -> list[str]:
    """Create the absent roles, before any other write, all at once (one round trip, not one
    each). "has been taken" means it exists (made meanwhile by AWS itself or another run):
    success. A caller that may not create one stops the run here, so nothing is half-built.
    Returns the names created."""
    iam = ctx.client("iam")

    def create(role: LinkedRole) -> str | None:
        try:
            ctx.call(
                f"create the service-linked role {role.name}",
                iam.create_service_linked_role,
                AWSServiceName=role.service,
            )
        except AwsError as e:
            if e.code == "InvalidInput" and "has been taken" in e.detail:
                return None
            if e.code in DENIED:
                raise AwsError(
                    f"create the service-linked role {role.name}",
                    f"this caller may not ({e.code}): it needs {PERMISSION} for iam:AWSServiceName "
                    f"{role.service}, or an administrator can run `aws iam create-service-linked-role "
                    f"--aws-service-name {role.service}` once for the account. Nothing was changed.",
                    e.code,
                ) from None
            raise
        return role.name

    made = ctx.at_once(*(partial(create, role) for role in missing_roles(ctx)))
    return [name for name in made if name is not None]
