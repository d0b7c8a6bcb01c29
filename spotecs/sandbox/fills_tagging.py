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

GetResources' own parameters are checked as AWS checks them (API_GetResources above), where moto
takes anything: each ResourceTypeFilters value is `service[:resourceType]`, "the same as that
embedded in a resource's ARN", at most 100 of them; a service or type AWS does not know is refused
with InvalidParameterException "Unsupported service=<service> in ResourceTypeFilter - <value>"
(AWS's words, as reported in https://github.com/boto/botocore/issues/1843 and
https://github.com/prometheus-community/yet-another-cloudwatch-exporter/issues/1150). The types
known here are those of the services spotecs uses, as AWS's tag-policy resource types name them
(https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_supported-resources-enforcement.html,
also hashicorp/terraform-provider-aws internal/tags/tagpolicy/tagris-terraform-mapping.hcl): a
real type missing here is added with its source, never taken on trust. ResourcesPerPage outside
1-100 moto refuses already, as AWS does. TagsPerPage bounds a page only when the request sends it:
AWS documents no default for it and recommends ResourcesPerPage instead, while moto bounds every
page by 100 tags (a page of resources with 2 tags each ended at 49, whatever ResourcesPerPage said).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

LAUNCH_TEMPLATE = "ec2:launch-template"
LOG_GROUP = "logs:log-group"
CAPACITY_PROVIDER = "ecs:capacity-provider"
LISTENER = "elasticloadbalancing:listener"
LISTENER_RULE = "elasticloadbalancing:listener-rule"
MOTO_LOG_GROUP = "logs:loggroup"

# service -> its resource types, as in their ARNs (sources: the module's docstring).
RESOURCE_TYPES: dict[str, frozenset[str]] = {
    "ec2": frozenset(
        {
            "instance",
            "launch-template",
            "security-group",
            "volume",
            "vpc",
            "subnet",
            "network-interface",
            "internet-gateway",
            "route-table",
            "elastic-ip",
            "spot-fleet-request",
        }
    ),
    "ecs": frozenset({"cluster", "service", "task-definition", "task-set", "capacity-provider"}),
    "elasticloadbalancing": frozenset({"loadbalancer", "targetgroup", "listener", "listener-rule", "truststore"}),
    "logs": frozenset({"log-group", "destination", "delivery", "delivery-source", "delivery-destination"}),
    "cloudwatch": frozenset({"alarm", "insight-rule", "metric-stream"}),
    # The tagging API knows only buckets of S3: `s3` and `s3:bucket` are the same filter.
    "s3": frozenset({"bucket", "accesspoint", "storage-lens"}),
    "ssm": frozenset({"parameter", "document", "association", "maintenancewindow", "patchbaseline"}),
}
MAX_TYPE_FILTERS = 100


def type_filter_refusal(filters: list[str]) -> str | None:
    """AWS's InvalidParameterException message for GetResources' ResourceTypeFilters, or None.
    An unknown service's is AWS's own; the other two follow it (AWS's text for them is not
    published)."""
    if len(filters) > MAX_TYPE_FILTERS:
        return f"ResourceTypeFilters can have at most {MAX_TYPE_FILTERS} items, {len(filters)} given"
    for value in filters:
        service, _, kind = value.partition(":")
        if service not in RESOURCE_TYPES:
            return f"Unsupported service={service} in ResourceTypeFilter - {value}"
        if kind and kind not in RESOURCE_TYPES[service]:
            return f"Unsupported resourceType={kind} in ResourceTypeFilter - {value}"
    return None


_request = threading.local()  # whether the GetResources being answered sent TagsPerPage


def tagging_get_resources_checked(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_resources(self: Any) -> Any:
        from moto.resourcegroupstaggingapi.exceptions import ResourceGroupsTaggingAPIError

        refusal = type_filter_refusal(list(self._get_param("ResourceTypeFilters", []) or []))
        if refusal:
            raise ResourceGroupsTaggingAPIError("InvalidParameterException", refusal)
        _request.tags_per_page_sent = self._get_param("TagsPerPage") is not None
        try:
            return original(self)
        finally:
            _request.tags_per_page_sent = True

    get_resources.__wrapped__ = original  # type: ignore[attr-defined]
    return get_resources


def tagging_tags_per_page_only_when_sent(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_resources(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not getattr(_request, "tags_per_page_sent", True):
            kwargs["tags_per_page"] = 10**9
        return original(self, *args, **kwargs)

    get_resources.__wrapped__ = original  # type: ignore[attr-defined]
    return get_resources


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
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend
    from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse

    wrap(EC2Backend, "iter_tagged_resources", ec2_launch_templates_tagged)
    wrap(ELBv2Backend, "iter_tagged_resources", elbv2_listeners_tagged)
    wrap(LogsBackend, "iter_tagged_resources", logs_log_group_resource_type)
    wrap(EC2ContainerServiceBackend, "iter_tagged_resources", ecs_capacity_providers_tagged)
    wrap(ResourceGroupsTaggingAPIResponse, "get_resources", tagging_get_resources_checked)
    wrap(ResourceGroupsTaggingAPIBackend, "get_resources", tagging_tags_per_page_only_when_sent)
