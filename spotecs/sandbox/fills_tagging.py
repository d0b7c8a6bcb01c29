"""Fill for moto's Resource Groups Tagging API: the resource types AWS lists and moto 5.2 does not.

AWS's GetResources covers every resource type ("The GetResources, GetTagKeys, and GetTagValues
operations support all resource types":
https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html,
https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html),
among them EC2 launch templates (`ec2:launch-template`, ARN
`arn:aws:ec2:<region>:<account>:launch-template/<id>`), CloudWatch Logs log groups
(`logs:log-group`, ARN `arn:aws:logs:<region>:<account>:log-group:<name>`), ECS capacity
providers (`ecs:capacity-provider`, ARN `arn:aws:ecs:<region>:<account>:capacity-provider/<name>`)
and the listeners and listener rules of Elastic Load Balancing (`elasticloadbalancing:listener`,
`elasticloadbalancing:listener-rule`: the type is the service and the ARN's resource type).
moto lists no launch template, capacity provider, listener or rule at all, and files log groups
under `logs:loggroup`, so a `ResourceTypeFilters=["logs:log-group"]` finds none. They are added
here, from moto's own templates, providers, log groups, listeners and rules with their tags;
nothing else of moto's answer changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

LAUNCH_TEMPLATE = "ec2:launch-template"
LOG_GROUP = "logs:log-group"
CAPACITY_PROVIDER = "ecs:capacity-provider"
LISTENER = "elasticloadbalancing:listener"
LISTENER_RULE = "elasticloadbalancing:listener-rule"
MOTO_LOG_GROUP = "logs:loggroup"


def ec2_launch_templates_tagged(original: Callable[[Any], Iterator[Any]]) -> Callable[[Any], Iterator[Any]]:
    from moto.core.resource_tagging import TaggedResource

    def iter_tagged_resources(self: Any) -> Iterator[Any]:
        yield from original(self)
        for template in list(self.launch_templates.values()):
            yield TaggedResource(
                arn=f"arn:{self.partition}:ec2:{self.region_name}:{self.account_id}:launch-template/{template.id}",
                tags=dict(self.tags.get(template.id, {})),
                resource_type=LAUNCH_TEMPLATE,
            )

    iter_tagged_resources.__wrapped__ = original  # type: ignore[attr-defined]
    return iter_tagged_resources


def elbv2_listeners_tagged(original: Callable[[Any], Iterator[Any]]) -> Callable[[Any], Iterator[Any]]:
    from moto.core.resource_tagging import TaggedResource

    def iter_tagged_resources(self: Any) -> Iterator[Any]:
        yield from original(self)
        for lb in list(self.load_balancers.values()):
            for listener in list(lb.listeners.values()):
                tags = self.tagging_service.get_tag_dict_for_resource(listener.arn)
                yield TaggedResource(arn=listener.arn, tags=tags, resource_type=LISTENER)
                # A listener's default rule is not a resource of its own: only the rules made.
                for arn in list(listener._non_default_rules):
                    tags = self.tagging_service.get_tag_dict_for_resource(arn)
                    yield TaggedResource(arn=arn, tags=tags, resource_type=LISTENER_RULE)

    iter_tagged_resources.__wrapped__ = original  # type: ignore[attr-defined]
    return iter_tagged_resources


def logs_log_group_resource_type(original: Callable[[Any], Iterator[Any]]) -> Callable[[Any], Iterator[Any]]:
    def iter_tagged_resources(self: Any) -> Iterator[Any]:
        for resource in original(self):
            if resource.resource_type == MOTO_LOG_GROUP:
                resource.resource_type = LOG_GROUP
            yield resource

    iter_tagged_resources.__wrapped__ = original  # type: ignore[attr-defined]
    return iter_tagged_resources


def ecs_capacity_providers_tagged(original: Callable[[Any], Iterator[Any]]) -> Callable[[Any], Iterator[Any]]:
    from moto.core.resource_tagging import TaggedResource

    def iter_tagged_resources(self: Any) -> Iterator[Any]:
        yield from original(self)
        for provider in list(self.capacity_providers.values()):
            yield TaggedResource(
                arn=provider.capacity_provider_arn,
                tags={t["key"]: t["value"] for t in (provider.tags or [])},
                resource_type=CAPACITY_PROVIDER,
            )

    iter_tagged_resources.__wrapped__ = original  # type: ignore[attr-defined]
    return iter_tagged_resources


def install(wrap: Callable[[type, str, Callable[[Any], Any]], None]) -> None:
    from moto.ec2.models import EC2Backend
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.elbv2.models import ELBv2Backend
    from moto.logs.models import LogsBackend

    wrap(EC2Backend, "iter_tagged_resources", ec2_launch_templates_tagged)
    wrap(ELBv2Backend, "iter_tagged_resources", elbv2_listeners_tagged)
    wrap(LogsBackend, "iter_tagged_resources", logs_log_group_resource_type)
    wrap(EC2ContainerServiceBackend, "iter_tagged_resources", ecs_capacity_providers_tagged)
