"""Rules: what AWS refuses and moto accepts. Each rule is one wrapper around one moto handler (or
model method), raising the error code and message AWS returns (README.md in this package lists
each with the AWS documentation it follows). `install()` applies them all; `STRICT` says how
strict.

- A fresh account has none of the service-linked roles, and the calls that need them fail until
  they exist (`ecs_requires_service_linked_role`, `aas_register_scalable_target_strict`).
- A resource just created is not visible or usable for the first `STRICT.lag` calls that name it
  (`just_created` / `not_yet`): security groups, instance profiles, services, target group
  associations, service-linked roles.
- A cluster with registered container instances or services left cannot be deleted
  (`ecs_delete_cluster_must_be_empty`).
- Names AWS refuses: load balancers (rules_names.py), capacity providers' reserved prefixes.
- The agent refuses a task whose execution role cannot read one of its secrets: secrets_access.py,
  called by the simulated agent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# How many calls do not see a resource just created, in `spotecs sandbox`, `--sandbox` and the
# end-to-end tests (the unit tests' moto fixture uses 0: their call counts stay exact).
DEFAULT_LAG = 2


@dataclass
class Strictness:
    # A fresh account has no service-linked roles (AWS creates some on first use only).
    service_linked_roles: bool = True
    # How many calls naming a resource just created fail as AWS fails while it propagates.
    lag: int = 0
    _pending: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def just_created(self, key: str) -> None:
        if self.lag > 0:
            with self._lock:
                self._pending[key] = self.lag

    def not_yet(self, key: str) -> bool:
        """True (and one refusal used up) while `key` is still propagating."""
        with self._lock:
            left = self._pending.get(key, 0)
            if left <= 0:
                return False
            self._pending[key] = left - 1
            return True

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()


STRICT = Strictness()

ECS_ROLE = "AWSServiceRoleForECS"
ECS_SCALING_ROLE = "AWSServiceRoleForApplicationAutoScaling_ECSService"


def _role_exists(account: str, name: str) -> bool:
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    return any(r.name == name for r in backend.roles.values())


def _usable_role(account: str, name: str) -> bool:
    """The role exists and is past its propagation (AWS: a new role "may not be usable right away")."""
    if not STRICT.service_linked_roles:
        return True
    return _role_exists(account, name) and not STRICT.not_yet(f"role:{name}")


# -- service-linked roles -------------------------------------------------------------------------


def iam_create_service_linked_role_propagates(original: Callable[..., Any]) -> Callable[..., Any]:
    """A new service-linked role is not assumable for the first few calls that need it."""

    def create_service_linked_role(self: Any, service_name: str, description: str, suffix: str) -> Any:
        role = original(self, service_name, description, suffix)
        STRICT.just_created(f"role:{role.name}")
        return role

    return create_service_linked_role


def ecs_requires_service_linked_role(original: Callable[[Any], Any], operation: str) -> Callable[[Any], Any]:
    """CreateCapacityProvider fails "ClientException: The ECS Service Linked Role does not exist";
    PutClusterCapacityProviders and CreateService fail "InvalidParameterException: Unable to assume
    the service linked role" while AWSServiceRoleForECS is absent or too new."""
    from moto.ecs.exceptions import EcsClientException, InvalidParameterException

    def handler(self: Any) -> Any:
        if not _usable_role(self.current_account, ECS_ROLE):
            if operation == "CreateCapacityProvider":
                raise EcsClientException(
                    "The ECS Service Linked Role does not exist. Please ensure that it exists and try again."
                )
            raise InvalidParameterException(
                "Unable to assume the service linked role. Please verify that the ECS service linked role exists."
            )
        return original(self)

    return handler


def aas_register_scalable_target_strict(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """RegisterScalableTarget for an ECS service fails "ValidationException: Unable to assume IAM
    role" while the Application Auto Scaling role for ECS is absent or too new, and "ECS service
    doesn't exist" while the service just created is not yet visible to Application Auto Scaling."""
    from moto.applicationautoscaling.exceptions import AWSValidationException

    def register_scalable_target(self: Any) -> Any:
        if self._get_param("ServiceNamespace") == "ecs":
            account = self.current_account
            resource = str(self._get_param("ResourceId"))
            if not _usable_role(account, ECS_SCALING_ROLE):
                raise AWSValidationException(
                    f"Unable to assume IAM role: arn:aws:iam::{account}:role/aws-service-role/"
                    f"ecs.application-autoscaling.amazonaws.com/{ECS_SCALING_ROLE}"
                )
            if STRICT.not_yet(f"service:{resource.removeprefix('service/')}"):
                raise AWSValidationException(f"ECS service doesn't exist: {resource}")
        return original(self)

    return register_scalable_target


def ecs_delete_cluster_must_be_empty(original: Callable[..., Any]) -> Callable[..., Any]:
    """DeleteCluster fails while the cluster still holds registered container instances
    (ClusterContainsContainerInstancesException: "You must deregister all container instances from
    this cluster before you may delete it") or ACTIVE or DRAINING services
    (ClusterContainsServicesException), per
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCluster.html. Tasks on the
    EC2 launch type run on registered instances, and one left on an instance deregistered with
    force is "no longer monitored or accounted for" (DeregisterContainerInstance), so the instances'
    check covers ClusterContainsTasksException here. moto deletes any cluster."""
    from moto.ecs.exceptions import ECSException

    def refuse(code: str, what: str) -> ECSException:
        return ECSException(code, f"The Cluster cannot be deleted while {what}.")

    def delete_cluster(self: Any, cluster_str: str) -> Any:
        cluster = self._get_cluster(cluster_str)
        registered = self.container_instances.get(cluster.name, {})
        if registered:
            raise refuse("ClusterContainsContainerInstancesException", "Container Instances are active or draining")
        if any(
            s.cluster_name == cluster.name and s.status in ("ACTIVE", "DRAINING") for s in list(self.services.values())
        ):
            raise refuse("ClusterContainsServicesException", "Services are active")
        return original(self, cluster_str)

    return delete_cluster


# -- just created, not yet visible ----------------------------------------------------------------


def ec2_security_group_propagates(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_security_group(self: Any, *args: Any, **kwargs: Any) -> Any:
        group = original(self, *args, **kwargs)
        STRICT.just_created(f"sg:{group.id}")
        return group

    return create_security_group


def ec2_authorize_ingress_needs_a_visible_group(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """AuthorizeSecurityGroupIngress naming a group created a moment ago: InvalidGroup.NotFound."""
    from moto.ec2.exceptions import InvalidSecurityGroupNotFoundError

    def authorize_security_group_ingress(self: Any) -> Any:
        group_id = self._get_param("GroupId")
        if group_id and STRICT.not_yet(f"sg:{group_id}"):
            raise InvalidSecurityGroupNotFoundError(group_id)
        return original(self)

    return authorize_security_group_ingress


def iam_instance_profile_propagates(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_instance_profile(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        profile = original(self, name, *args, **kwargs)
        STRICT.just_created(f"profile:{name}")
        return profile

    return create_instance_profile


def _profile_name(data: Any) -> str | None:
    spec = (data or {}).get("IamInstanceProfile") or {}
    if spec.get("Name"):
        return str(spec["Name"])
    arn = spec.get("Arn")
    return str(arn).rsplit("/", 1)[-1] if arn else None


def ec2_launch_template_needs_a_visible_profile(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """CreateLaunchTemplate(Version) naming an instance profile created a moment ago:
    "InvalidParameterValue: Value (...) for parameter iamInstanceProfile.name is invalid"."""
    from moto.ec2.exceptions import InvalidParameterValueError

    def handler(self: Any) -> Any:
        name = _profile_name(self._get_param("LaunchTemplateData"))
        if name and STRICT.not_yet(f"profile:{name}"):
            raise InvalidParameterValueError(
                f"Value ({name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
            )
        return original(self)

    return handler


def ecs_service_propagates(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def create_service(self: Any) -> Any:
        result = original(self)
        cluster = str(self._get_param("cluster", "default")).rsplit("/", 1)[-1]
        STRICT.just_created(f"service:{cluster}/{self._get_param('serviceName')}")
        return result

    return create_service


def elbv2_target_group_association_propagates(original: Callable[..., Any]) -> Callable[..., Any]:
    """A target group just put behind a listener (or rule) is not yet associated for ECS."""

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        for action in getattr(made, "actions", None) or getattr(made, "default_actions", None) or []:
            data = getattr(action, "data", None) or {}
            arns = [data.get("TargetGroupArn")]
            arns += [g.get("TargetGroupArn") for g in (data.get("ForwardConfig") or {}).get("TargetGroups") or []]
            for arn in filter(None, arns):
                STRICT.just_created(f"tg-lb:{arn}")
        return made

    return create


def ecs_create_service_needs_an_associated_target_group(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """CreateService naming a target group whose listener was made a moment ago:
    "InvalidParameterException: The target group with targetGroupArn ... does not have an
    associated load balancer." """
    from moto.ecs.exceptions import InvalidParameterException

    def create_service(self: Any) -> Any:
        for lb in self._get_param("loadBalancers") or []:
            arn = lb.get("targetGroupArn")
            if arn and STRICT.not_yet(f"tg-lb:{arn}"):
                raise InvalidParameterException(
                    f"The target group with targetGroupArn {arn} does not have an associated load balancer."
                )
        return original(self)

    return create_service


def _wrap(owner: type, name: str, make: Callable[..., Any], *args: Any) -> None:
    # A marker per rule: fills may wrap the same handler (e.g. CreateService) before or after.
    marker = f"_spotecs_rule_{make.__name__}"
    current = getattr(owner, name)
    if getattr(current, marker, False):
        return
    wrapped = make(current, *args)
    setattr(wrapped, marker, True)
    # Keep the markers of what already wraps it (rules, and fills.py's `_spotecs_fill`): a second
    # install() must find them on top, or it would wrap the same method again.
    for earlier in dir(current):
        if earlier.startswith("_spotecs_"):
            setattr(wrapped, earlier, getattr(current, earlier))
    wrapped.__wrapped__ = current  # fills.install() wraps only what nothing wrapped yet
    setattr(owner, name, wrapped)


def install() -> None:
    """Apply every rule to moto's classes (after the fills, which they wrap); idempotent. How
    strict: `STRICT`."""
    from spotecs.sandbox import backends, fills, rules_names

    backends.serialize_in_process_requests()
    fills.install()
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.ec2.responses import EC2Response
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.elbv2.models import ELBv2Backend
    from moto.iam.models import IAMBackend

    _wrap(IAMBackend, "create_service_linked_role", iam_create_service_linked_role_propagates)
    for handler, operation in (
        ("create_capacity_provider", "CreateCapacityProvider"),
        ("put_cluster_capacity_providers", "PutClusterCapacityProviders"),
        ("create_service", "CreateService"),
    ):
        _wrap(EC2ContainerServiceResponse, handler, ecs_requires_service_linked_role, operation)
    _wrap(ApplicationAutoScalingResponse, "register_scalable_target", aas_register_scalable_target_strict)
    _wrap(SecurityGroupBackend, "create_security_group", ec2_security_group_propagates)
    _wrap(EC2Response, "authorize_security_group_ingress", ec2_authorize_ingress_needs_a_visible_group)
    _wrap(IAMBackend, "create_instance_profile", iam_instance_profile_propagates)
    _wrap(EC2Response, "create_launch_template", ec2_launch_template_needs_a_visible_profile)
    _wrap(EC2Response, "create_launch_template_version", ec2_launch_template_needs_a_visible_profile)
    _wrap(EC2ContainerServiceResponse, "create_service", ecs_service_propagates)
    _wrap(EC2ContainerServiceResponse, "create_service", ecs_create_service_needs_an_associated_target_group)
    _wrap(ELBv2Backend, "create_listener", elbv2_target_group_association_propagates)
    _wrap(ELBv2Backend, "create_rule", elbv2_target_group_association_propagates)
    from moto.ecs.models import EC2ContainerServiceBackend

    _wrap(EC2ContainerServiceBackend, "delete_cluster", ecs_delete_cluster_must_be_empty)
    rules_names.install(_wrap)


def linked_roles_exist(account: str) -> None:
    """Give `account` the service-linked roles, as an account that has used ECS before has them
    (the tests' default; a fresh account, as `spotecs sandbox` starts, has none)."""
    from moto.iam.models import iam_backends

    from spotecs.sandbox.fills_iam import SERVICE_LINKED_ROLE_NAMES

    backend = iam_backends[account]["aws"]
    for service, name in SERVICE_LINKED_ROLE_NAMES.items():
        if not _role_exists(account, name):
            backend.create_service_linked_role(service, "", "")
    STRICT.reset()
