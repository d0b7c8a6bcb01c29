"""IAM: the instances' role and instance profile (the AWS managed policy for ECS container
instances), and the tasks' execution role (pull images, write logs, read exactly the secrets
the services name). A role of the same name that spotecs does not own is used read-only."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from spotecs import names
from spotecs.aws import tag_list, tags_from_list
from spotecs.config.secrets import source as secret_source
from spotecs.engine.model import Change
from spotecs.steps.base import Context, Step

INSTANCE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
SECRETS_POLICY = "spotecs-secrets"


def _trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


class Role(Step):
    kind = "IAM role"

    def __init__(self, key: str, name: str, service: str, managed: list[str], instance_profile: bool = False) -> None:
        super().__init__(key, name)
        self.service = service
        self.managed = managed
        self.instance_profile = instance_profile

    def inline(self, ctx: Context) -> dict[str, Any]:
        return {}

    def desired(self, ctx: Context) -> dict[str, Any]:
        inline = self.inline(ctx)
        # The names are diffed on their own: the generic diff compares a nested dict only on the
        # desired keys, so a policy no longer wanted would otherwise never show as a change.
        d: dict[str, Any] = {
            "trusted_service": self.service,
            "managed_policies": sorted(self.managed),
            "inline_policies": inline,
            "inline_policy_names": sorted(inline),
        }
        if self.instance_profile:
            d["instance_profile"] = self.name
        return d

    def read(self, ctx: Context) -> dict[str, Any] | None:
        iam = ctx.client("iam")
        got = ctx.call(f"describe IAM role {self.name}", iam.get_role, missing=("NoSuchEntity",), RoleName=self.name)
        if got is None:
            return None
        role = got["Role"]
        doc = role.get("AssumeRolePolicyDocument", {})
        doc = json.loads(doc) if isinstance(doc, str) else doc
        services = [s.get("Principal", {}).get("Service") for s in doc.get("Statement", [])]

        def attached() -> list[dict[str, Any]]:
            return ctx.paginate(
                f"list policies of role {self.name}",
                "iam",
                "list_attached_role_policies",
                "AttachedPolicies",
                RoleName=self.name,
            )

        def inline_policies() -> dict[str, Any]:
            pnames = ctx.paginate(
                f"list inline policies of role {self.name}",
                "iam",
                "list_role_policies",
                "PolicyNames",
                RoleName=self.name,
            )
            bodies = ctx.at_once(
                *(
                    partial(
                        ctx.call,
                        f"read policy {pname} of role {self.name}",
                        iam.get_role_policy,
                        RoleName=self.name,
                        PolicyName=pname,
                    )
                    for pname in pnames
                )
            )
            docs = (b["PolicyDocument"] for b in bodies)
            return {p: json.loads(d) if isinstance(d, str) else d for p, d in zip(pnames, docs, strict=True)}

        def profile() -> Any:
            if not self.instance_profile:
                return None
            return ctx.call(
                f"describe instance profile {self.name}",
                iam.get_instance_profile,
                missing=("NoSuchEntity",),
                InstanceProfileName=self.name,
            )

        # Each needs only the role's name: asked at once.
        policies, inline, prof = ctx.at_once(attached, inline_policies, profile)
        # GetRole answers with the role's tags (up to 50, as many as IAM allows on a role).
        tags = tags_from_list(role.get("Tags"))
        current: dict[str, Any] = {
            "trusted_service": services[0] if len(services) == 1 else services,
            "managed_policies": sorted(p["PolicyArn"] for p in policies),
            "inline_policies": inline,
            "inline_policy_names": sorted(inline),
            "arn": role["Arn"],
            "_owned": ctx.owned(tags),
        }
        if self.instance_profile:
            if prof and any(r["RoleName"] == self.name for r in prof["InstanceProfile"]["Roles"]):
                current["instance_profile"] = self.name
                current["instance_profile_arn"] = prof["InstanceProfile"]["Arn"]
            # What `delete` needs of the profile, so it does not read it again.
            current["_profile"] = prof["InstanceProfile"] if prof else None
        return current

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        iam = ctx.client("iam")
        role = ctx.call(
            f"create IAM role {self.name}",
            iam.create_role,
            RoleName=self.name,
            AssumeRolePolicyDocument=json.dumps(_trust(self.service)),
            Description=f"spotecs stack {ctx.name}",
            Tags=tag_list(ctx.tags()),
        )["Role"]
        out = {"arn": role["Arn"]}
        out.update(self._converge(ctx, desired, {"managed_policies": [], "inline_policies": {}}))
        return out

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        if desired["trusted_service"] != current["trusted_service"]:
            ctx.call(
                f"update trust policy of role {self.name}",
                ctx.client("iam").update_assume_role_policy,
                RoleName=self.name,
                PolicyDocument=json.dumps(_trust(self.service)),
            )
        return self._converge(ctx, desired, current)

    def _converge(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        iam = ctx.client("iam")
        for arn in sorted(set(desired["managed_policies"]) - set(current["managed_policies"])):
            ctx.call(f"attach {arn} to role {self.name}", iam.attach_role_policy, RoleName=self.name, PolicyArn=arn)
        for arn in sorted(set(current["managed_policies"]) - set(desired["managed_policies"])):
            ctx.call(f"detach {arn} from role {self.name}", iam.detach_role_policy, RoleName=self.name, PolicyArn=arn)
        for pname, doc in desired["inline_policies"].items():
            if current["inline_policies"].get(pname) != doc:
                ctx.call(
                    f"put policy {pname} on role {self.name}",
                    iam.put_role_policy,
                    RoleName=self.name,
                    PolicyName=pname,
                    PolicyDocument=json.dumps(doc),
                )
        for pname in set(current["inline_policies"]) - set(desired["inline_policies"]):
            ctx.call(
                f"delete policy {pname} of role {self.name}",
                iam.delete_role_policy,
                RoleName=self.name,
                PolicyName=pname,
            )
        out: dict[str, Any] = {}
        if self.instance_profile and not current.get("instance_profile"):
            prof = ctx.call(
                f"describe instance profile {self.name}",
                iam.get_instance_profile,
                missing=("NoSuchEntity",),
                InstanceProfileName=self.name,
            )
            if prof is None:
                prof = ctx.call(
                    f"create instance profile {self.name}",
                    iam.create_instance_profile,
                    InstanceProfileName=self.name,
                    Tags=tag_list(ctx.tags()),
                )
            ctx.call(
                f"add role {self.name} to its instance profile",
                iam.add_role_to_instance_profile,
                InstanceProfileName=self.name,
                RoleName=self.name,
            )
            out["instance_profile"] = self.name
            out["instance_profile_arn"] = prof["InstanceProfile"]["Arn"]
        return out

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        iam = ctx.client("iam")
        gone = ("NoSuchEntity",)
        if self.instance_profile:
            if "_profile" in current:
                prof = {"InstanceProfile": current["_profile"]} if current["_profile"] else None
            else:
                prof = ctx.call(
                    f"describe instance profile {self.name}",
                    iam.get_instance_profile,
                    missing=gone,
                    InstanceProfileName=self.name,
                )
            if prof is not None:
                if any(r["RoleName"] == self.name for r in prof["InstanceProfile"].get("Roles", [])):
                    ctx.call(
                        f"remove role {self.name} from its instance profile",
                        iam.remove_role_from_instance_profile,
                        missing=gone,
                        InstanceProfileName=self.name,
                        RoleName=self.name,
                    )
                # A profile of that name made outside spotecs only loses our role.
                if ctx.owned(tags_from_list(prof["InstanceProfile"].get("Tags"))):
                    ctx.call(
                        f"delete instance profile {self.name}",
                        iam.delete_instance_profile,
                        missing=gone,
                        InstanceProfileName=self.name,
                    )
        for arn in current.get("managed_policies", []):
            ctx.call(
                f"detach {arn} from role {self.name}",
                iam.detach_role_policy,
                missing=gone,
                RoleName=self.name,
                PolicyArn=arn,
            )
        for pname in current.get("inline_policies", {}):
            ctx.call(
                f"delete policy {pname} of role {self.name}",
                iam.delete_role_policy,
                missing=gone,
                RoleName=self.name,
                PolicyName=pname,
            )
        ctx.call(f"delete IAM role {self.name}", iam.delete_role, missing=gone, RoleName=self.name)


def instance_role(stack: str, region: str) -> Role:
    return Role(
        "iam:instance-role",
        names.instance_role(stack, region),
        "ec2.amazonaws.com",
        [INSTANCE_POLICY],
        instance_profile=True,
    )


TASK_POLICY = "spotecs-task"


class TaskRole(Role):
    """A service's own role: what the file gives it, nothing else."""

    def __init__(self, stack: str, region: str, service: str) -> None:
        super().__init__(
            f"iam:task-role:{service}", names.task_role(stack, region, service), "ecs-tasks.amazonaws.com", []
        )
        self.for_service = service

    def desired(self, ctx: Context) -> dict[str, Any]:
        role = ctx.stack.services[self.for_service].task_role
        self.managed = list(role.managed_policies) if role else []
        return super().desired(ctx)

    def inline(self, ctx: Context) -> dict[str, Any]:
        role = ctx.stack.services[self.for_service].task_role
        return {TASK_POLICY: role.policy} if role and role.policy else {}


class ExecutionRole(Role):
    def __init__(self, stack: str, region: str) -> None:
        super().__init__(
            "iam:execution-role", names.execution_role(stack, region), "ecs-tasks.amazonaws.com", [EXECUTION_POLICY]
        )

    def inline(self, ctx: Context) -> dict[str, Any]:
        """Read access to exactly the secrets the services name (matching their real ARNs, whatever
        form the file names them in), decryption with exactly their customer-managed keys."""
        refs = [ref for svc in ctx.stack.services.values() for ref in svc.secret_refs().values()]
        refs += [
            (svc.repository_credentials, None) for svc in ctx.stack.services.values() if svc.repository_credentials
        ]
        found: dict[str, set[str]] = {"secretsmanager": set(), "ssm": set(), "kms": set()}
        for value_from, key in refs:
            # SSM parameter names need the account: looked up only when one is named so.
            account = "" if value_from.startswith("arn:") else ctx.account_id
            src = secret_source(value_from, ctx.region, account, _partition(ctx.region))
            found[src.service].update(src.resources)
            if key:
                found["kms"].add(key)
        statements = [
            {"Effect": "Allow", "Action": [action], "Resource": sorted(found[service])}
            for service, action in (
                ("secretsmanager", "secretsmanager:GetSecretValue"),
                ("ssm", "ssm:GetParameters"),
                ("kms", "kms:Decrypt"),
            )
            if found[service]
        ]
        if not statements:
            return {}
        return {SECRETS_POLICY: {"Version": "2012-10-17", "Statement": statements}}


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
