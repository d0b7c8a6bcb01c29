"""Fills for moto's ELBv2: creates that AWS makes idempotent by name and moto does not.

CreateLoadBalancer (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html):
"This operation is idempotent ... If you attempt to create multiple load balancers with the same
settings, each call succeeds"; a load balancer of that name with other settings fails with
DuplicateLoadBalancerName. moto makes a second load balancer of the same name every time, so a
create whose answer was lost and is sent again (botocore's retry) would leave two.

CreateTargetGroup (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html):
the same rule; moto refuses the second call with DuplicateTargetGroupName even when the settings
are the same, so a retried create would fail where AWS succeeds.

CreateListener (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateListener.html):
"This operation is idempotent ... If you attempt to create multiple listeners with the same
settings, each call succeeds"; another listener on a port in use fails with DuplicateListener.
moto checks the port against listener ARNs, so it never matches: a resent create (its answer
lost) made a second listener on the same port (found by the fault property).

AddTags (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-tags.html):
an Application Load Balancer, its listeners, rules and target groups take up to 50 tags each,
`aws:` ones not counted. moto refuses an 11th (the Classic Load Balancer's old quota of 10), so
an edit of a stack's tags that AWS takes failed in the sandbox with TooManyTags.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _lb_settings(lb: Any) -> tuple[Any, ...]:
    return (
        lb.scheme,
        lb.type,
        sorted(s.id for s in lb.subnets),
        sorted(lb.security_groups or []),
    )


def create_load_balancer_idempotent(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.elbv2.exceptions import DuplicateLoadBalancerName

    def create_load_balancer(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        existing = [lb for lb in self.load_balancers.values() if lb.name == name]
        if not existing:
            return original(self, name, *args, **kwargs)
        made = original(self, name, *args, **kwargs)  # moto's own validation, then compare
        del self.load_balancers[made.arn]
        self.tagging_service.delete_all_tags_for_resource(made.arn)
        if _lb_settings(made) == _lb_settings(existing[0]):
            return existing[0]
        raise DuplicateLoadBalancerName()

    create_load_balancer.__wrapped__ = original  # type: ignore[attr-defined]
    return create_load_balancer


_TG_SETTINGS = ("protocol", "port", "vpc_id", "target_type")


def create_target_group_idempotent(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_target_group(self: Any, name: str, **kwargs: Any) -> Any:
        for tg in self.target_groups.values():
            if tg.name == name and all(
                kwargs.get(k) is None or str(kwargs.get(k)) == str(getattr(tg, k, None)) for k in _TG_SETTINGS
            ):
                return tg
        return original(self, name, **kwargs)

    create_target_group.__wrapped__ = original  # type: ignore[attr-defined]
    return create_target_group


def create_listener_idempotent(original: Callable[..., Any]) -> Callable[..., Any]:
    import copy

    from moto.elbv2.exceptions import DuplicateListenerError
    from moto.elbv2.models import FakeAction

    def create_listener(self: Any, load_balancer_arn: str, protocol: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        balancer = self.load_balancers.get(load_balancer_arn)
        same_port = [li for li in (balancer.listeners.values() if balancer else []) if str(li.port) == str(port)]
        if not same_port:
            return original(self, load_balancer_arn, protocol, port, *args, **kwargs)
        existing = same_port[0]
        actions = kwargs.get("actions", args[3] if len(args) > 3 else [])
        wanted = [FakeAction(copy.deepcopy(a)).data for a in actions]
        if (protocol or "").upper() == existing.protocol and wanted == [a.data for a in existing.default_actions]:
            return existing
        raise DuplicateListenerError()

    create_listener.__wrapped__ = original  # type: ignore[attr-defined]
    return create_listener


ELB_MAX_TAGS = 50


def add_tags_up_to_50(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.elbv2.exceptions import TooManyTagsError

    def add_tags(self: Any, resource_arns: list[str], tags: list[dict[str, str]]) -> None:
        adding = set(self.tagging_service.flatten_tag_list(tags))
        for arn in resource_arns:
            self._get_resource_by_arn(arn)
            held = set(self.tagging_service.get_tag_dict_for_resource(arn))
            if len({k for k in held | adding if not k.startswith("aws:")}) > ELB_MAX_TAGS:
                raise TooManyTagsError()
        for arn in resource_arns:
            self.tagging_service.tag_resource(arn, tags)

    add_tags.__wrapped__ = original  # type: ignore[attr-defined]
    return add_tags


def install(wrap: Callable[[type, str, Callable[[Any], Any]], None]) -> None:
    from moto.elbv2.models import ELBv2Backend

    wrap(ELBv2Backend, "create_load_balancer", create_load_balancer_idempotent)
    wrap(ELBv2Backend, "create_target_group", create_target_group_idempotent)
    wrap(ELBv2Backend, "create_listener", create_listener_idempotent)
    wrap(ELBv2Backend, "add_tags", add_tags_up_to_50)
