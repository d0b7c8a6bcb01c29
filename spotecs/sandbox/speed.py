"""The sandbox's own speed: the same answers as moto's, with less work per request.

The sandbox answers one request at a time (moto is not thread-safe), so a request's cost is paid
by every request queued behind it: with `--latency-ms`, a plan's longest chain of round trips
waits on the sandbox's processing of the requests asked at once with it, which AWS, answering in
parallel, does not make it wait for (bench/figures.py measures the no-op plan against both).
Nothing here changes what is answered: each replacement yields or returns what moto's own does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any


def ssm_tagged_only(original: Callable[[Any], Iterator[Any]]) -> Callable[[Any], Iterator[Any]]:
    """moto's SSM backend offers every parameter to the tagging API's GetResources, the ~5,500
    public ones it loads (the AMI aliases a plan reads) included, each looked up again for its
    tags: ~30 ms of every GetResources. A resource without tags is left out of every answer anyway
    (moto keeps one only if it says `include_untagged`, which SSM's never do), so only the tagged
    parameters are offered, with moto's ARN, tags and type."""
    from moto.core.resource_tagging import TaggedResource
    from moto.ssm.utils import parameter_arn

    def iter_tagged_resources(self: Any) -> Iterator[Any]:
        # moto's own, documents then parameters, less the parameters without tags.
        for document in self._documents.values():
            name = document.describe()["Name"]
            yield TaggedResource(
                arn=f"arn:{self.partition}:ssm:{self.region_name}:{self.account_id}:document/{name}",
                tags={t["Key"]: t["Value"] for t in self._get_documents_tags(name)},
                resource_type="ssm:document",
            )
        tags_of = self._resource_tags.get("Parameter", {})
        for name in self._parameters:
            if tags_of.get(name):
                yield TaggedResource(
                    arn=parameter_arn(self.account_id, self.region_name, name),
                    tags=dict(tags_of[name]),
                    resource_type="ssm:parameter",
                )

    iter_tagged_resources.__wrapped__ = original  # type: ignore[attr-defined]
    return iter_tagged_resources


def moto_modules_listed_once(original: Callable[[], Iterable[str]]) -> Callable[[], Iterable[str]]:
    """moto's server lists its own package folder (a directory read and a stat per entry, ~200)
    twice per request, to tell a service's name from a host name; the folder does not change while
    the sandbox runs."""
    listed = cache(lambda: tuple(original()))

    def list_of_moto_modules() -> Iterable[str]:
        return listed()

    list_of_moto_modules.__wrapped__ = original  # type: ignore[attr-defined]
    return list_of_moto_modules


def instance_types_by_name_first(original: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """moto's DescribeInstanceTypes tests every type it knows (~900) against each filter, each
    value found by a generic lookup: ~12 ms for a plan's `instance-type` filter, every request
    queued behind it waiting. A value without a wildcard (moto matches with fnmatch: `*`, `?`,
    `[`) matches only the type of that name, so those types are picked first and moto's own
    filtering runs on them: the same types in the same order."""
    from moto.ec2.utils import generic_filter

    def describe_instance_types(self: Any, instance_types: list[str] | None = None, filters: Any = None) -> list[Any]:
        names = (filters or {}).get("instance-type")
        if instance_types or not names or any(c in n for n in names for c in "*?["):
            return original(self, instance_types, filters)
        wanted = set(names)
        return list(generic_filter(filters, [t for t in self.instance_types if t.get("InstanceType") in wanted]))

    describe_instance_types.__wrapped__ = original  # type: ignore[attr-defined]
    return describe_instance_types


def install(wrap: Callable[[Any, str, Callable[[Any], Any]], None]) -> None:
    import moto.backends
    from moto.ec2.models.instance_types import InstanceTypeBackend
    from moto.ssm.models import SimpleSystemManagerBackend

    wrap(SimpleSystemManagerBackend, "iter_tagged_resources", ssm_tagged_only)
    wrap(moto.backends, "list_of_moto_modules", moto_modules_listed_once)
    wrap(InstanceTypeBackend, "describe_instance_types", instance_types_by_name_first)
