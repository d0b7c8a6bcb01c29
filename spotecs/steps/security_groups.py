"""Two security groups, as the article recommends: the load balancer's (80 and 443 from
anywhere) and the instances' (every TCP port, but only from the load balancer's group, since
ECS gives each task a dynamic host port; more only as instances.ingress, with its stated reason).
Egress stays AWS's default: all traffic out."""

from __future__ import annotations

from typing import Any

from spotecs import names
from spotecs.aws import tag_list, tags_from_list
from spotecs.engine.model import Change
from spotecs.steps.base import Context, Step
from spotecs.steps.tagging import desired_tags, held_tags, retag


def _rule(protocol: str, from_port: int, to_port: int, *, cidr: str = "", group: Any = "") -> dict[str, Any]:
    return {"protocol": protocol, "from": from_port, "to": to_port, "cidr": cidr, "source_group": group}


def _ip_permission(rule: dict[str, Any]) -> dict[str, Any]:
    perm: dict[str, Any] = {"IpProtocol": rule["protocol"], "FromPort": rule["from"], "ToPort": rule["to"]}
    if rule["cidr"]:
        key = "Ipv6Ranges" if ":" in rule["cidr"] else "IpRanges"
        perm[key] = [{"CidrIpv6" if ":" in rule["cidr"] else "CidrIp": rule["cidr"]}]
    else:
        perm["UserIdGroupPairs"] = [{"GroupId": rule["source_group"]}]
    return perm


def _rules_of(permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules = []
    for p in permissions:
        proto, lo, hi = p.get("IpProtocol", "-1"), p.get("FromPort", -1), p.get("ToPort", -1)
        rules += [_rule(proto, lo, hi, cidr=r["CidrIp"]) for r in p.get("IpRanges", [])]
        rules += [_rule(proto, lo, hi, cidr=r["CidrIpv6"]) for r in p.get("Ipv6Ranges", [])]
        rules += [_rule(proto, lo, hi, group=g["GroupId"]) for g in p.get("UserIdGroupPairs", [])]
    return sorted(rules, key=_sort_key)


def _sort_key(rule: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(rule[k]) for k in ("protocol", "from", "to", "cidr", "source_group"))


# The roles of the stack's security groups (names.security_group).
ROLES = ("lb", "instances")


def named_group(ctx: Context, name: str) -> dict[str, Any] | None:
    """The security group of one of the stack's names (in the file's VPC, when it names one).
    Both of the stack's groups come in one read, shared by their steps and the orphan search."""
    groups = ctx.read_pages(
        f"describe security group {name}",
        "ec2",
        "describe_security_groups",
        "SecurityGroups",
        Filters=[{"Name": "group-name", "Values": sorted(names.security_group(ctx.name, r) for r in ROLES)}],
    )
    vpc = ctx.stack.network.vpc_id
    return next((g for g in groups if g.get("GroupName") == name and (not vpc or g["VpcId"] == vpc)), None)


class SecurityGroup(Step):
    kind = "security group"
    replace_on = frozenset({"vpc_id", "description"})

    def __init__(self, role: str, stack: str, description: str, depends_on: tuple[str, ...] = ()) -> None:
        super().__init__(f"security-group:{role}", names.security_group(stack, role), ("network", *depends_on))
        self.role = role
        self.description = description

    def ingress(self, ctx: Context) -> list[dict[str, Any]]:
        raise NotImplementedError

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "vpc_id": ctx.output("network", "vpc_id"),
            "description": self.description,
            "ingress": sorted(self.ingress(ctx), key=_sort_key),
            # Name: how the console lists the group (GroupName is not shown there).
            "tags": desired_tags(ctx, Name=self.name),
        }

    def describe(self, ctx: Context) -> dict[str, Any] | None:
        return named_group(ctx, self.name)

    def read(self, ctx: Context) -> dict[str, Any] | None:
        g = self.describe(ctx)
        if g is None:
            return None
        tags = tags_from_list(g.get("Tags"))
        return {
            "vpc_id": g["VpcId"],
            "description": g.get("Description", ""),
            "ingress": _rules_of(g.get("IpPermissions", [])),
            "tags": held_tags(tags),
            "group_id": g["GroupId"],
            "_owned": ctx.owned(tags),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        ec2 = ctx.client("ec2")
        out = ctx.call(
            f"create security group {self.name}",
            ec2.create_security_group,
            GroupName=self.name,
            Description=desired["description"],
            VpcId=desired["vpc_id"],
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list(desired["tags"])}],
        )
        group_id = out["GroupId"]
        if desired["ingress"]:
            self._grant(ctx, group_id, [_ip_permission(r) for r in desired["ingress"]])
        return {"group_id": group_id}

    def _grant(self, ctx: Context, group_id: str, permissions: list[dict[str, Any]]) -> None:
        # The group created a moment ago, or one its rule names (the load balancer's, when the
        # file gains its first web service), may be unknown to this call for a few seconds.
        ctx.retry(
            f"allow ingress to {self.name}",
            ctx.client("ec2").authorize_security_group_ingress,
            codes=("InvalidGroup.NotFound",),
            timeout=ctx.timeouts.budget("eventual consistency"),
            GroupId=group_id,
            IpPermissions=permissions,
        )

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        ec2 = ctx.client("ec2")
        want = {tuple(sorted(r.items())): r for r in desired["ingress"]}
        have = {tuple(sorted(r.items())): r for r in current["ingress"]}
        gid = current["group_id"]
        revoke = [_ip_permission(r) for k, r in have.items() if k not in want]
        grant = [_ip_permission(r) for k, r in want.items() if k not in have]
        if revoke:
            ctx.call(
                f"revoke ingress from {self.name}", ec2.revoke_security_group_ingress, GroupId=gid, IpPermissions=revoke
            )
        if grant:
            self._grant(ctx, gid, grant)
        retag(ctx, "ec2", f"security group {self.name}", gid, desired["tags"], current.get("tags"))
        return {"group_id": gid}

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        ec2 = ctx.client("ec2")
        gid = current["group_id"]
        # Rules naming another group block that group's deletion: revoke ours first.
        cross = [_ip_permission(r) for r in current["ingress"] if r["source_group"]]
        if cross:
            ctx.call(
                f"revoke ingress from {self.name}",
                ec2.revoke_security_group_ingress,
                missing=("InvalidGroup.NotFound", "InvalidPermission.NotFound"),
                GroupId=gid,
                IpPermissions=cross,
            )
        # Rules of the stack's other groups that name this one block its deletion too (the
        # instances' group names the load balancer's): revoke them. Other groups are not ours.
        for g in ctx.paginate(
            f"list security groups that refer to {self.name}",
            "ec2",
            "describe_security_groups",
            "SecurityGroups",
            Filters=[{"Name": "ip-permission.group-id", "Values": [gid]}],
        ):
            if g["GroupId"] == gid or not ctx.owned(tags_from_list(g.get("Tags"))):
                continue
            refs = [_ip_permission(r) for r in _rules_of(g.get("IpPermissions", [])) if r["source_group"] == gid]
            if refs:
                ctx.call(
                    f"revoke ingress from {g.get('GroupName', g['GroupId'])} that names {self.name}",
                    ec2.revoke_security_group_ingress,
                    missing=("InvalidGroup.NotFound", "InvalidPermission.NotFound"),
                    GroupId=g["GroupId"],
                    IpPermissions=refs,
                )
        # The load balancer's network interfaces linger for minutes after it is deleted.
        ctx.until(
            f"security group {self.name} to be free",
            lambda budget: ctx.retry(
                f"delete security group {self.name}",
                ec2.delete_security_group,
                codes=("DependencyViolation",),
                missing=("InvalidGroup.NotFound",),
                timeout=budget,
                GroupId=gid,
            ),
            status=lambda: self._users(ctx, gid),
            budget=ctx.timeouts.budget("security group released"),
            hint="A deleted load balancer's or instance's network interfaces go within minutes: run "
            "the same command again. Anything else must stop using the group first.",
        )

    def _users(self, ctx: Context, gid: str) -> str:
        """What still holds the group: network interfaces in it, and groups whose rules name it."""
        enis = ctx.paginate(
            f"list network interfaces in {self.name}",
            "ec2",
            "describe_network_interfaces",
            "NetworkInterfaces",
            Filters=[{"Name": "group-id", "Values": [gid]}],
        )
        groups = ctx.paginate(
            f"list security groups that refer to {self.name}",
            "ec2",
            "describe_security_groups",
            "SecurityGroups",
            Filters=[{"Name": "ip-permission.group-id", "Values": [gid]}],
        )
        used = [
            f"network interface {e['NetworkInterfaceId']}" + (f" ({e['Description']})" if e.get("Description") else "")
            for e in enis
        ]
        used += [
            f"rules of security group {g['GroupId']} ({g.get('GroupName', '')})" for g in groups if g["GroupId"] != gid
        ]
        return "still used by " + ", ".join(used) if used else "AWS still reports it in use"


class LoadBalancerGroup(SecurityGroup):
    def __init__(self, stack: str) -> None:
        super().__init__("lb", stack, f"spotecs {stack}: load balancer, HTTP and HTTPS from anywhere")

    def ingress(self, ctx: Context) -> list[dict[str, Any]]:
        # 443 only when a listener answers there: an open port with nothing behind it is surface
        # for nothing. (The description keeps "HTTPS": AWS cannot change it without a new group.)
        ports = (80, 443) if ctx.stack.load_balancer.certificate_arn else (80,)
        return [_rule("tcp", port, port, cidr=cidr) for port in ports for cidr in ("0.0.0.0/0", "::/0")]


class InstanceGroup(SecurityGroup):
    def __init__(self, stack: str, with_lb: bool) -> None:
        super().__init__(
            "instances",
            stack,
            f"spotecs {stack}: ECS instances, any TCP port from the load balancer only",
            ("security-group:lb",) if with_lb else (),
        )
        self.with_lb = with_lb

    def ingress(self, ctx: Context) -> list[dict[str, Any]]:
        # instances.ingress exists only with a stated reason (opt_outs.instance_ingress).
        extra = [
            _rule(
                r.protocol,
                r.port,
                r.last_port,
                cidr="" if r.source.startswith("sg-") else r.source,
                group=r.source if r.source.startswith("sg-") else "",
            )
            for r in ctx.stack.instances.ingress
        ]
        if not self.with_lb:
            return extra
        return [_rule("tcp", 0, 65535, group=ctx.output("security-group:lb", "group_id")), *extra]
