"""IAM: the instances' role and instance profile (the AWS managed policy for ECS container
instances), and the tasks' execution role (pull images, write logs, read exactly the secrets
the services name). A role of the same name that spotecs does not own is used read-only."""

from __future__ import annotations

import json
from typing import Any

from spotecs import names
from spotecs.aws import tag_list, tags_from_list
from spotecs.config.secrets import source as secret_source
from spotecs.engine.model import Change
from spotecs.errors import AwsError
from spotecs.steps.base import Context, Step
from spotecs.steps.tagging import desired_tags, held_tags, retag

INSTANCE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
SECRETS_POLICY = "spotecs-secrets"


# Every role of the account in one paginated read per plan, shared through the run's read layer
# by the IAM steps, the service-linked roles' check and the orphan search: each role comes with
# its trust policy, attached and inline policies (the documents URL-decoded and parsed by
# botocore), instance profiles, tags and path
# (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html).
ROLES_PAGE = 1000  # the most MaxItems allows


def account_roles(ctx: Context) -> dict[str, dict[str, Any]]:
    """The account's roles by name (RoleDetail), read once per plan whoever asks."""
    found = ctx.read_pages(
        "read the account's IAM roles",
        "iam",
        "get_account_authorization_details",
        "RoleDetailList",
        Filter=["Role"],
        MaxItems=ROLES_PAGE,
    )
    return {r["RoleName"]: r for r in found}


def describe_instance_profile(ctx: Context, name: str) -> dict[str, Any] | None:
    """GetInstanceProfile's profile (with its roles and tags), None when there is none: one read
    per run for the role's step and the orphan search alike."""
    got = ctx.read(
        f"describe instance profile {name}",
        "iam",
        "get_instance_profile",
        missing=("NoSuchEntity",),
        InstanceProfileName=name,
    )
    return None if got is None else dict(got["InstanceProfile"])


def _doc(value: Any) -> dict[str, Any]:
    """A policy document as botocore gives it: parsed; a string only if it was not JSON-encoded."""
    if isinstance(value, str):
        return dict(json.loads(value))
    return dict(value or {})


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
            "tags": desired_tags(ctx),
        }
        if self.instance_profile:
            d["instance_profile"] = self.name
            d["instance_profile_tags"] = desired_tags(ctx)
        return d

    def read(self, ctx: Context) -> dict[str, Any] | None:
        role = account_roles(ctx).get(self.name)
        if role is None:
            return None
        services = [
            s.get("Principal", {}).get("Service")
            for s in _doc(role.get("AssumeRolePolicyDocument")).get("Statement", [])
        ]
        inline = {p["PolicyName"]: _doc(p["PolicyDocument"]) for p in role.get("RolePolicyList") or []}
        # Every profile holding the role: it cannot be deleted while one does.
        profiles = list(role.get("InstanceProfileList") or [])
        current: dict[str, Any] = {
            "trusted_service": services[0] if len(services) == 1 else services,
            "managed_policies": sorted(p["PolicyArn"] for p in role.get("AttachedManagedPolicies") or []),
            "inline_policies": inline,
            "inline_policy_names": sorted(inline),
            "tags": held_tags(tags_from_list(role.get("Tags"))),
            "arn": role["Arn"],
            "_owned": ctx.owned(tags_from_list(role.get("Tags"))),
            "_profiles": profiles,
        }
        if self.instance_profile:
            prof = next((p for p in profiles if p["InstanceProfileName"] == self.name), None)
            if prof is not None:
                current["instance_profile"] = self.name
                current["instance_profile_arn"] = prof["Arn"]
                current["instance_profile_tags"] = held_tags(self._profile_tags(ctx, prof))
            else:
                # Not holding the role (removed by hand, or deleted): the role's answer cannot
                # show it, so asked directly, a call made only when not converged.
                alone = describe_instance_profile(ctx, self.name)
                if alone is not None:
                    current["_profiles"].append(alone)
                    current["instance_profile_tags"] = held_tags(self._profile_tags(ctx, alone))
        return current

    def _profile_tags(self, ctx: Context, prof: dict[str, Any]) -> dict[str, str]:
        """The tags of the role's instance profile: in the roles' read (InstanceProfile.Tags),
        or, where an answer leaves them out, asked (a call made only then; the same read as
        that of a profile that lost its role)."""
        if "Tags" in prof:
            return tags_from_list(prof["Tags"])
        return tags_from_list((describe_instance_profile(ctx, self.name) or {}).get("Tags"))

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        iam = ctx.client("iam")
        role = ctx.call(
            f"create IAM role {self.name}",
            iam.create_role,
            RoleName=self.name,
            AssumeRolePolicyDocument=json.dumps(_trust(self.service)),
            Description=f"spotecs stack {ctx.name}",
            Tags=tag_list(desired["tags"]),
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
        retag(ctx, "iam role", f"IAM role {self.name}", self.name, desired["tags"], current.get("tags"))
        out = self._converge(ctx, desired, current)
        if self.instance_profile and "instance_profile_tags" in current:  # one made just now has them
            want, have = desired["instance_profile_tags"], current["instance_profile_tags"]
            retag(ctx, "iam instance profile", f"instance profile {self.name}", self.name, want, have)
        return out

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
            prof = next((p for p in current.get("_profiles", []) if p["InstanceProfileName"] == self.name), None)
            if prof is None:
                prof = self._create_profile(ctx, desired["instance_profile_tags"])
            ctx.call(
                f"add role {self.name} to its instance profile",
                iam.add_role_to_instance_profile,
                InstanceProfileName=self.name,
                RoleName=self.name,
            )
            out["instance_profile"] = self.name
            out["instance_profile_arn"] = prof["Arn"]
        return out

    def _create_profile(self, ctx: Context, tags: dict[str, str]) -> dict[str, Any]:
        """The role's instance profile, made; one already there (a run that stopped half-way, or
        one made outside spotecs) is read instead: asked only then, not before every create."""
        iam = ctx.client("iam")
        try:
            made = ctx.call(
                f"create instance profile {self.name}",
                iam.create_instance_profile,
                InstanceProfileName=self.name,
                Tags=tag_list(tags),
            )
        except AwsError as e:
            if e.code != "EntityAlreadyExists":
                raise
            made = ctx.call(
                f"describe instance profile {self.name}", iam.get_instance_profile, InstanceProfileName=self.name
            )
        return dict(made["InstanceProfile"])

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        iam = ctx.client("iam")
        gone = ("NoSuchEntity",)
        profiles = current.get("_profiles")
        if profiles is None:  # not from `read`: asked
            profiles = []
            if self.instance_profile:
                got = ctx.call(
                    f"describe instance profile {self.name}",
                    iam.get_instance_profile,
                    missing=gone,
                    InstanceProfileName=self.name,
                )
                profiles = [got["InstanceProfile"]] if got else []
        for prof in profiles:
            pname = prof["InstanceProfileName"]
            if any(r["RoleName"] == self.name for r in prof.get("Roles", [])):
                ctx.call(
                    f"remove role {self.name} from instance profile {pname}",
                    iam.remove_role_from_instance_profile,
                    missing=gone,
                    InstanceProfileName=pname,
                    RoleName=self.name,
                )
            # spotecs names a role's profile after it; any other, or one made outside spotecs,
            # only loses the role.
            if pname == self.name and self._profile_owned(ctx, prof):
                ctx.call(
                    f"delete instance profile {pname}",
                    iam.delete_instance_profile,
                    missing=gone,
                    InstanceProfileName=pname,
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

    def _profile_owned(self, ctx: Context, prof: dict[str, Any]) -> bool:
        """Whether the stack owns `prof`. A profile as the role's answer lists it may come without
        its tags (AWS documents them on the InstanceProfile type, not that every answer carries
        them): then they are asked."""
        if "Tags" not in prof:
            got = ctx.call(
                f"describe instance profile {prof['InstanceProfileName']}",
                ctx.client("iam").get_instance_profile,
                missing=("NoSuchEntity",),
                InstanceProfileName=prof["InstanceProfileName"],
            )
            prof = got["InstanceProfile"] if got else {}
        return ctx.owned(tags_from_list(prof.get("Tags")))


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
