"""What the instances are made of, read-only: the machine image and the configured instance types.

The image is either an explicit id, applied as written, or an alias (`al2023`...) resolved
through SSM to the recommended ECS-optimized AMI. With an alias, an existing stack keeps the
image its launch template already runs as long as it is an image of the same alias: AWS
publishing a new image is not a change to the stack file, so it must not plan a new template
version (nor make `--detailed-exitcode` report drift). `spotecs refresh-ami` is what moves the
fleet; `up` only notes that a newer image exists. A new stack starts on the latest.

Both are data sources: they never fail a plan themselves. A missing AMI or type is recorded in the
facts, and the launch template's `check()` reports it with every other problem (exit 2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from spotecs import aws
from spotecs.aws import Aws
from spotecs.config import AMI_ALIASES
from spotecs.steps.base import Context, DataSource
from spotecs.steps.launch_template import default_version

IMAGE_MISSING = ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable")


@dataclass(frozen=True)
class AmiRelease:
    """One ECS-optimized image: its id, name (which carries the release, e.g.
    `al2023-ami-ecs-hvm-2023.0.20241031-kernel-6.1-x86_64`), creation date (ISO 8601, as EC2
    returns it) and architecture."""

    image_id: str
    name: str
    created: str
    architecture: str

    def as_dict(self) -> dict[str, str]:
        return {
            "image_id": self.image_id,
            "name": self.name,
            "created": self.created,
            "architecture": self.architecture,
        }


def latest_ami(session: Aws, alias: str) -> AmiRelease | None:
    """The ECS-optimized AMI AWS recommends today for `alias` (one of config.AMI_ALIASES; the
    alias names the OS and the architecture), or None when the region has none.

    The one place spotecs asks SSM for it: `up`, `refresh-ami` and `status` all use this."""
    image_id = recommended_id(session, alias)
    image = describe_images(session, [image_id]).get(image_id) if image_id else None
    return None if image is None else release(image)


def recommended_id(session: Aws, alias: str) -> str | None:
    """The id SSM publishes for `alias` (not described: see latest_ami)."""
    param = AMI_ALIASES[alias]
    # The JSON ".../recommended" parameter is not parseable in every tool (moto's is a Python
    # repr); the "image_id" sub-parameter is a plain string everywhere.
    got = aws.call(
        f"look up the ECS-optimized AMI {param}",
        session.client("ssm").get_parameter,
        missing=("ParameterNotFound",),
        Name=param,
    )
    return None if got is None else str(got["Parameter"]["Value"])


def describe_images(session: Aws, image_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Image id -> DescribeImages entry, for the ids that exist (one call)."""
    wanted = sorted({i for i in image_ids if i})
    if not wanted:
        return {}
    got = aws.call(
        f"describe AMI {', '.join(wanted)}",
        session.client("ec2").describe_images,
        missing=IMAGE_MISSING,
        ImageIds=wanted,
    )
    return {i["ImageId"]: i for i in (got or {}).get("Images", [])}


def release(image: dict[str, Any]) -> AmiRelease:
    return AmiRelease(
        image_id=image["ImageId"],
        name=image.get("Name", ""),
        created=str(image.get("CreationDate", "")),
        architecture=image.get("Architecture", ""),
    )


def same_family(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two releases of one image family (same OS, variant and architecture), told by their names
    with every version number blanked: `al2023-ami-ecs-hvm-2023.0.20241031-kernel-6.1-x86_64`
    and its successor match, `amzn2-ami-ecs-hvm-...` or an arm64 image do not."""

    def family(name: str) -> str:
        return re.sub(r"\d[\d.]*", "#", name)

    return a.get("Architecture") == b.get("Architecture") and family(a.get("Name", "")) == family(b.get("Name", ""))


def template_image(session: Aws, template: str) -> str | None:
    """The AMI of the default version of launch template `template`, or None if it is absent."""
    version = default_version(session, template)
    image = version.get("LaunchTemplateData", {}).get("ImageId") if version else None
    return str(image) if image else None


class Ami(DataSource):
    """Outputs: image_id, architecture, root_device, root_size_gib, source; `latest` (the
    AmiRelease as a dict) and `newer_available` for an alias; `problem` when the image cannot be
    used (then image_id is None)."""

    kind = "machine image"
    # Its read is two round trips (an alias's image id, then the image): asked first (engine.plan.read_all).
    chained = True

    def __init__(self, ami: str, template: str = "") -> None:
        super().__init__("ami", ami)
        self.ami = ami
        self.template = template  # the launch template whose image an alias keeps

    def read(self, ctx: Context) -> dict[str, Any]:
        ctx.act()  # its calls go through the session (shared with refresh-ami)
        facts: dict[str, Any] = {
            "image_id": None,
            "architecture": None,
            "root_device": None,
            "root_size_gib": 0,
            "source": self.ami,
            "latest": None,
            "newer_available": False,
            "problem": None,
        }
        if self.ami in AMI_ALIASES:
            image = self._alias_image(ctx, facts)
        else:
            image = describe_images(ctx.aws, [self.ami]).get(self.ami)
            if image is None:
                facts["problem"] = (
                    f"instances.ami: {self.ami} does not exist in {ctx.region} (or is not shared with you)"
                )
        if image is None:
            return facts
        root = image.get("RootDeviceName")
        size = next(
            (
                m.get("Ebs", {}).get("VolumeSize", 0)
                for m in image.get("BlockDeviceMappings", [])
                if m.get("DeviceName") == root
            ),
            0,
        )
        facts.update(
            image_id=image["ImageId"],
            architecture=image.get("Architecture"),
            root_device=root,
            root_size_gib=int(size or 0),
        )
        return facts

    def _alias_image(self, ctx: Context, facts: dict[str, Any]) -> dict[str, Any] | None:
        """The image to use for an alias: the template's own while it is a release of the same
        family, else the latest."""
        # Both at once: neither needs the other.
        latest_id, in_use = ctx.at_once(
            lambda: recommended_id(ctx.aws, self.ami),
            lambda: template_image(ctx.aws, self.template) if self.template else None,
        )
        if latest_id is None:
            facts["problem"] = (
                f"instances.ami: {self.ami} has no ECS-optimized image in {ctx.region} "
                f"(SSM parameter {AMI_ALIASES[self.ami]} not found)"
            )
            return None
        images = describe_images(ctx.aws, [latest_id, in_use or ""])  # one call for both
        newest = images.get(latest_id)
        if newest is None:
            facts["problem"] = f"instances.ami: {latest_id} ({self.ami}) does not exist in {ctx.region}"
            return None
        facts["latest"] = release(newest).as_dict()
        kept = images.get(in_use or "")
        if kept is not None and in_use != latest_id and same_family(kept, newest):
            # ISO 8601 strings in one format compare in time order.
            facts["newer_available"] = str(newest.get("CreationDate", "")) >= str(kept.get("CreationDate", ""))
            return kept
        return newest


class InstanceTypes(DataSource):
    """Outputs: types ({name: {vcpus, memory_mib, architectures, burstable, ebs_optimized}}) for
    the configured types that exist; missing (the names that do not)."""

    kind = "instance types"

    def __init__(self, types: list[str]) -> None:
        super().__init__("instance-types", ", ".join(types))
        self.types = list(types)

    def read(self, ctx: Context) -> dict[str, Any]:
        # A filter, not InstanceTypes=[...]: one unknown name would fail the whole call and hide
        # the facts of the others.
        found = ctx.paginate(
            "describe instance types",
            "ec2",
            "describe_instance_types",
            "InstanceTypes",
            Filters=[{"Name": "instance-type", "Values": self.types}],
        )
        types = {
            t["InstanceType"]: {
                "vcpus": t["VCpuInfo"]["DefaultVCpus"],
                "memory_mib": t["MemoryInfo"]["SizeInMiB"],
                "architectures": sorted(t.get("ProcessorInfo", {}).get("SupportedArchitectures", [])),
                "burstable": bool(t.get("BurstablePerformanceSupported")),
                # "default" (always on), "supported" (on request) or "unsupported" (e.g. t2)
                "ebs_optimized": t.get("EbsInfo", {}).get("EbsOptimizedSupport", "unsupported"),
            }
            for t in found
        }
        return {"types": types, "missing": [t for t in self.types if t not in types]}
