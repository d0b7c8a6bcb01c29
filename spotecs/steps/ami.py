"""What the instances are made of, read-only: the machine image (the recommended ECS-optimized
AMI, resolved through SSM at every run, or an explicit id) and the configured instance types.

Both are data sources: they never fail a plan themselves. A missing AMI or type is recorded in the
facts, and the launch template's `check()` reports it with every other problem (exit 2)."""

from __future__ import annotations

from typing import Any

from spotecs.config import AMI_ALIASES
from spotecs.steps.base import Context, DataSource


class Ami(DataSource):
    """Outputs: image_id, architecture, root_device, root_size_gib, source; `problem` when the
    image cannot be used (then image_id is None)."""

    kind = "machine image"

    def __init__(self, ami: str) -> None:
        super().__init__("ami", ami)
        self.ami = ami

    def read(self, ctx: Context) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "image_id": None,
            "architecture": None,
            "root_device": None,
            "root_size_gib": 0,
            "source": self.ami,
            "problem": None,
        }
        image_id = self.ami
        if self.ami in AMI_ALIASES:
            # The JSON ".../recommended" parameter is not parseable in every tool (moto's is a
            # Python repr); the "image_id" sub-parameter is a plain string everywhere.
            param = AMI_ALIASES[self.ami]
            got = ctx.call(
                f"look up the ECS-optimized AMI {param}",
                ctx.client("ssm").get_parameter,
                missing=("ParameterNotFound",),
                Name=param,
            )
            if got is None:
                facts["problem"] = (
                    f"instances.ami: {self.ami} has no ECS-optimized image in {ctx.region} "
                    f"(SSM parameter {param} not found)"
                )
                return facts
            image_id = got["Parameter"]["Value"]
        images = ctx.call(
            f"describe AMI {image_id}",
            ctx.client("ec2").describe_images,
            missing=("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"),
            ImageIds=[image_id],
        )
        if not images or not images.get("Images"):
            facts["problem"] = f"instances.ami: {image_id} does not exist in {ctx.region} (or is not shared with you)"
            return facts
        image = images["Images"][0]
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
            image_id=image_id, architecture=image.get("Architecture"), root_device=root, root_size_gib=int(size or 0)
        )
        return facts


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
