"""The VPC and subnets: a data source. Default VPC and all its subnets unless the stack names
them. What the stack file names but AWS does not have is a problem for `check` (exit 2 with
every other problem), not an error of the read."""

from __future__ import annotations

from typing import Any

from spotecs.steps.base import Context, DataSource


class Network(DataSource):
    """Outputs: vpc_id, subnets, zones, subnet_zones (subnet id -> zone); `problem` when the
    stack's network cannot be used (then vpc_id is None and there are no subnets)."""

    kind = "network"

    def __init__(self) -> None:
        super().__init__("network", "vpc")

    def read(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.stack.network
        ec2 = ctx.client("ec2")
        unusable: dict[str, Any] = {"vpc_id": None, "subnets": [], "zones": []}
        if cfg.vpc_id:
            vpcs = ctx.call(
                f"describe VPC {cfg.vpc_id}", ec2.describe_vpcs, missing=("InvalidVpcID.NotFound",), VpcIds=[cfg.vpc_id]
            )
            if not vpcs or not vpcs["Vpcs"]:
                return {**unusable, "problem": f"network.vpc_id: {cfg.vpc_id} does not exist in {ctx.region}"}
            vpc_id = cfg.vpc_id
            subnets = ctx.paginate(
                f"list subnets of {vpc_id}",
                "ec2",
                "describe_subnets",
                "Subnets",
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
            )
        else:
            # One call finds the default VPC and its subnets: default subnets (DefaultForAz) exist
            # only in the default VPC (https://docs.aws.amazon.com/vpc/latest/userguide/default-vpc.html).
            region = ctx.paginate("list the region's subnets", "ec2", "describe_subnets", "Subnets")
            default = next((str(s["VpcId"]) for s in region if s.get("DefaultForAz")), None)
            if default is not None:
                vpc_id = default
            else:  # no default subnet left: ask EC2 which VPC is the default, if any
                vpcs = ctx.call(
                    "find the default VPC", ec2.describe_vpcs, Filters=[{"Name": "is-default", "Values": ["true"]}]
                )["Vpcs"]
                if not vpcs:
                    problem = f"network.vpc_id: {ctx.region} has no default VPC; set network.vpc_id and network.subnets"
                    return {**unusable, "problem": problem}
                vpc_id = vpcs[0]["VpcId"]
            subnets = [s for s in region if s["VpcId"] == vpc_id]
        by_id = {s["SubnetId"]: s for s in subnets}
        if cfg.subnets:
            unknown = [s for s in cfg.subnets if s not in by_id]
            if unknown:
                return {**unusable, "problem": f"network.subnets: {', '.join(unknown)} not found in {vpc_id}"}
            chosen = list(cfg.subnets)
        else:
            chosen = sorted(by_id, key=lambda s: (by_id[s]["AvailabilityZone"], s))
        if not chosen:
            return {**unusable, "problem": f"network.subnets: {vpc_id} has no subnets"}
        return {
            "vpc_id": vpc_id,
            "subnets": chosen,
            "zones": sorted({by_id[s]["AvailabilityZone"] for s in chosen}),
            "subnet_zones": {s: by_id[s]["AvailabilityZone"] for s in chosen},
        }

    def check(self, ctx: Context, current: dict[str, Any] | None) -> list[str]:
        problem = (current or {}).get("problem")
        return [problem] if problem else []
