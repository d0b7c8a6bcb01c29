"""The EC2 launch template every instance starts from (the article's "EC2 Launch Template"):
the ECS-optimized AMI, the instance profile and security group, IMDSv2, an encrypted gp3 root
volume, and user data that writes the ECS agent's settings.

A change is a new version made the default, never a replacement: the group launches
`$Default`, so new instances pick it up and running ones are left alone."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

from spotecs import checks, names
from spotecs.aws import tag_list, tags_from_list
from spotecs.engine.diff import IN_PLACE
from spotecs.engine.model import Change, Unknown
from spotecs.steps.base import Context, Step, retry_iam_propagation, stack_read_tags
from spotecs.steps.tagging import confirmed, desired_tags, held_tags, retag

if TYPE_CHECKING:
    from spotecs.aws import Aws

ECS_CONFIG = "/etc/ecs/ecs.config"
NOT_FOUND = (
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.NotFoundException",
)
# Containers reach the instance metadata through the Docker bridge, one hop more than the host:
# at hop limit 1 they cannot (nor read the instance role's credentials), while the ECS agent, on
# the host network, still can. 2 only when the file opts out with a reason.
IMDS_HOP_LIMIT = 1
IMDS_HOP_LIMIT_FOR_CONTAINERS = 2


def default_version(reader: Aws | Context, name: str) -> dict[str, Any] | None:
    """The default version of launch template `name`, None when there is no such template. Asked
    by name, one read per plan through the read layer, whoever asks: the template's step, the
    AMI data source and the orphan search (which tells the file's template by its id)."""
    got = reader.read(
        f"describe the default version of launch template {name}",
        "ec2",
        "describe_launch_template_versions",
        missing=NOT_FOUND,
        LaunchTemplateName=name,
        Versions=["$Default"],
    )
    versions = (got or {}).get("LaunchTemplateVersions") or []
    return versions[0] if versions else None


def user_data_script(cluster: str, stop_timeout: int, extra: dict[str, str]) -> str:
    """The ECS agent's settings, appended to its config file before the agent starts."""
    settings = {
        "ECS_CLUSTER": cluster,
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING": "true",
        "ECS_CONTAINER_STOP_TIMEOUT": f"{stop_timeout}s",
        **dict(sorted(extra.items())),
    }
    lines = "".join(f"{k}={v}\n" for k, v in settings.items())
    # Quoted heredoc delimiter: the shell expands nothing in the values.
    return f"#!/bin/bash\n# Written by spotecs.\ncat >> {ECS_CONFIG} <<'EOF'\n{lines}EOF\n"


def registered_cluster(user_data: str) -> str | None:
    """The cluster a template's instances register to (its ECS_CLUSTER line), if any."""
    found = re.search(r"(?m)^ECS_CLUSTER=(.*)$", user_data)
    return found.group(1) if found else None


def template_data(desired: dict[str, Any]) -> dict[str, Any]:
    """LaunchTemplateData for a desired state (always the full data: see moto-gaps.md)."""
    root = desired["root_volume"]
    data: dict[str, Any] = {
        "ImageId": desired["image_id"],
        "InstanceType": desired["instance_type"],
        "IamInstanceProfile": {"Arn": desired["instance_profile"]},
        "SecurityGroupIds": list(desired["security_groups"]),
        "MetadataOptions": {
            "HttpEndpoint": "enabled",
            "HttpTokens": desired["metadata"]["http_tokens"],
            "HttpPutResponseHopLimit": desired["metadata"]["hop_limit"],
        },
        "BlockDeviceMappings": [
            {
                "DeviceName": root["device"],
                "Ebs": {
                    "VolumeSize": root["size_gib"],
                    "VolumeType": root["type"],
                    "Encrypted": root["encrypted"],
                    "DeleteOnTermination": True,
                },
            }
        ],
        "EbsOptimized": desired["ebs_optimized"],
        "UserData": base64.b64encode(desired["user_data"].encode()).decode(),
        "TagSpecifications": [{"ResourceType": "volume", "Tags": tag_list(desired["volume_tags"])}],
    }
    if desired["cpu_credits"]:
        data["CreditSpecification"] = {"CpuCredits": desired["cpu_credits"]}
    if desired["key_pair"]:
        data["KeyName"] = desired["key_pair"]
    return data


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """LaunchTemplateData as AWS returns it -> the shape of `desired`."""
    bdm = (data.get("BlockDeviceMappings") or [{}])[0]
    ebs = bdm.get("Ebs", {})
    meta = data.get("MetadataOptions", {})
    raw = data.get("UserData") or ""
    volume_tags: list[dict[str, str]] = next(
        (t.get("Tags", []) for t in data.get("TagSpecifications", []) if t.get("ResourceType") == "volume"), []
    )
    return {
        "image_id": data.get("ImageId"),
        "instance_type": data.get("InstanceType"),
        "instance_profile": data.get("IamInstanceProfile", {}).get("Arn"),
        "security_groups": sorted(data.get("SecurityGroupIds", [])),
        "key_pair": data.get("KeyName"),
        "metadata": {
            "http_tokens": meta.get("HttpTokens", "optional"),
            "hop_limit": meta.get("HttpPutResponseHopLimit", 1),
        },
        "root_volume": {
            "device": bdm.get("DeviceName"),
            "size_gib": ebs.get("VolumeSize"),
            "type": ebs.get("VolumeType"),
            "encrypted": bool(ebs.get("Encrypted")),
        },
        "ebs_optimized": bool(data.get("EbsOptimized")),
        "cpu_credits": data.get("CreditSpecification", {}).get("CpuCredits"),
        "user_data": base64.b64decode(raw).decode("utf-8", errors="replace") if raw else "",
        "volume_tags": tags_from_list(volume_tags),
    }


def _describe(ctx: Context, name: str) -> dict[str, Any] | None:
    got = ctx.read(
        f"describe launch template {name}",
        "ec2",
        "describe_launch_templates",
        missing=NOT_FOUND,
        LaunchTemplateNames=[name],
    )
    return got["LaunchTemplates"][0] if got and got.get("LaunchTemplates") else None


class LaunchTemplate(Step):
    """Outputs: id, name, version (the default version's number)."""

    kind = "launch template"
    versioned = True
    version_outputs = frozenset({"version"})

    def __init__(self, stack: str) -> None:
        super().__init__(
            "launch-template",
            names.launch_template(stack),
            ("ami", "instance-types", "iam:instance-role", "security-group:instances", "cluster"),
        )

    def desired(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.stack.instances
        facts = self._type_facts(ctx)
        known = [facts[t] for t in cfg.types if t in facts]
        ami_size = ctx.output("ami", "root_size_gib")
        return {
            "image_id": ctx.output("ami", "image_id"),
            # Overrides in the group choose the type; this one is what the template launches alone.
            "instance_type": cfg.types[0],
            "instance_profile": ctx.output("iam:instance-role", "instance_profile_arn"),
            "security_groups": [ctx.output("security-group:instances", "group_id")],
            "key_pair": cfg.key_pair,
            "metadata": {
                "http_tokens": "required",
                "hop_limit": IMDS_HOP_LIMIT_FOR_CONTAINERS if ctx.stack.opt_outs.imds_hop_limit_2 else IMDS_HOP_LIMIT,
            },
            "root_volume": {
                "device": ctx.output("ami", "root_device"),
                "size_gib": max(cfg.disk_gib, ami_size if isinstance(ami_size, int) else 0),
                "type": "gp3",
                "encrypted": True,
            },
            # One flag for every type: on unless a type cannot take it (t2 and older fail to launch).
            "ebs_optimized": not any(f["ebs_optimized"] == "unsupported" for f in known),
            # Only when every type is burstable: the flag is invalid for other types. T3, T3a and
            # T4g launch unlimited by default anyway; this makes it explicit (and covers T2).
            "cpu_credits": "unlimited" if known and all(f["burstable"] for f in known) else None,
            "user_data": user_data_script(ctx.stack.cluster_name, cfg.container_stop_timeout, cfg.ecs_agent),
            # Whole: a tag the file dropped must leave new instances' volumes too.
            "volume_tags": desired_tags(ctx, Name=self.name),
            # The template's own: changed in place (diff.IN_PLACE), never a new version.
            "tags": desired_tags(ctx),
        }

    def _type_facts(self, ctx: Context) -> dict[str, Any]:
        facts = ctx.output("instance-types", "types")
        return {} if isinstance(facts, Unknown) else dict(facts)

    def check(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        stack = ctx.stack
        problem = ctx.output("ami", "problem")
        problems = [problem] if isinstance(problem, str) else []
        facts = self._type_facts(ctx)
        arch = ctx.output("ami", "architecture")
        problems += checks.instance_type_problems(
            stack.instances.types, facts, arch if isinstance(arch, str) else None, stack.instances.ami
        )
        problems += checks.task_fit_problems(stack, facts)
        if current is not None:
            registered = registered_cluster(str(current.get("user_data") or ""))
            problems += checks.cluster_rename_problems(registered, stack.cluster_name)
        key = stack.instances.key_pair
        if key and not ctx.call(
            f"describe key pair {key}",
            ctx.client("ec2").describe_key_pairs,
            missing=("InvalidKeyPair.NotFound",),
            KeyNames=[key],
        ):
            problems.append(f"instances.key_pair: no key pair named '{key}' in {ctx.region}")
        return problems

    def note(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> str:
        latest = ctx.output("ami", "latest")
        if current is None or ctx.output("ami", "newer_available") is not True or not isinstance(latest, dict):
            return ""
        return (
            f"keeps AMI {current.get('image_id')}; a newer ECS-optimized AMI is available: "
            f"{latest['image_id']} ({latest['name']}, {latest['created'][:10]}); "
            "`spotecs refresh-ami` moves the fleet to it"
        )

    def read(self, ctx: Context) -> dict[str, Any] | None:
        # Its tags come from the stack's tagging-API read; only a template missing there, or
        # whose tags there are not the file's (tagging.confirmed), is described for them.
        version = default_version(ctx, self.name)
        if version is None:
            return None
        lt_id = version["LaunchTemplateId"]
        tags = confirmed(
            ctx,
            {lt_id: stack_read_tags(ctx, f"launch-template/{lt_id}")},
            lambda _: {lt_id: tags_from_list(lt.get("Tags")) if (lt := _describe(ctx, self.name)) else None},
        )[lt_id]
        if tags is None:  # deleted between the two reads
            return None
        return {
            **normalise(version.get("LaunchTemplateData") or {}),
            "id": lt_id,
            "name": self.name,
            "version": version["VersionNumber"],
            "tags": held_tags(tags),
            "_owned": ctx.owned(tags),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        ec2 = ctx.client("ec2")
        request: dict[str, Any] = {
            "LaunchTemplateName": self.name,
            "VersionDescription": "created by spotecs",
            "LaunchTemplateData": template_data(desired),
            "TagSpecifications": [{"ResourceType": "launch-template", "Tags": tag_list(desired["tags"])}],
        }
        # botocore's own token is new on each run; this one is the same on a re-run.
        lt = retry_iam_propagation(
            ctx,
            f"create launch template {self.name}",
            ec2.create_launch_template,
            ClientToken=ctx.client_token(self.key, request),
            **request,
        )["LaunchTemplate"]
        return {"id": lt["LaunchTemplateId"], "name": self.name, "version": lt["DefaultVersionNumber"]}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        lt_id = current["id"]
        retag(ctx, "ec2", f"launch template {self.name}", lt_id, desired["tags"], current.get("tags"))
        versioned = change.changed_fields() - IN_PLACE
        if not versioned:
            return {"id": lt_id, "name": self.name, "version": current["version"]}
        return {"id": lt_id, "name": self.name, "version": self._new_version(ctx, lt_id, desired, versioned)}

    def _new_version(self, ctx: Context, lt_id: str, desired: dict[str, Any], fields: set[str]) -> int:
        ec2 = ctx.client("ec2")
        # The full data, not SourceVersion + changes: simpler to reason about, and moto ignores
        # SourceVersion.
        what = ", ".join(sorted(fields))[:255]
        request: dict[str, Any] = {
            "LaunchTemplateId": lt_id,
            "VersionDescription": f"spotecs: {what}",
            "LaunchTemplateData": template_data(desired),
        }
        # A re-run after a lost response plans the same version again (the default did not move):
        # the same token gets the version already made back, not a second one.
        version = retry_iam_propagation(
            ctx,
            f"create a new version of launch template {self.name}",
            ec2.create_launch_template_version,
            ClientToken=ctx.client_token(self.key, request),
            **request,
        )["LaunchTemplateVersion"]["VersionNumber"]
        ctx.call(
            f"make version {version} the default of launch template {self.name}",
            ec2.modify_launch_template,
            LaunchTemplateId=lt_id,
            DefaultVersion=str(version),
        )
        return int(version)

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        if _describe(ctx, self.name) is None:  # deleted since: nothing to write
            return
        ctx.call(
            f"delete launch template {self.name}",
            ctx.client("ec2").delete_launch_template,
            missing=NOT_FOUND,
            LaunchTemplateId=current["id"],
        )
