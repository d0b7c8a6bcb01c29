"""steps/iam.py: the instances' role and instance profile, the tasks' execution role and its secrets
policy; drift, ownership, deletion."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from spotecs.config import Stack, parse
from spotecs.engine.apply import apply
from spotecs.engine.model import Action
from spotecs.engine.plan import NOT_OWNED, plan
from spotecs.errors import ConfigError
from spotecs.steps.base import Step
from spotecs.steps.iam import EXECUTION_POLICY, INSTANCE_POLICY, SECRETS_POLICY, instance_role
from tests.helpers import (
    REGION,
    converge,
    fresh,
    make_ctx,
    make_stack,
    only,
    replan,
    steps_for,
    touching,
    up,
    writes,
)
from tests.tag_edits import AFTER, BEFORE, holds_the_edit, planned_as_tags_only

SECRET_A = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"

SECRET_B = "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-XyZ123"

REGISTRY = "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-QwErTy"

PARAM = "arn:aws:ssm:us-east-1:123456789012:parameter/demo/token"

INSTANCE_ROLE = f"demo-{REGION}-ecs-instance"

EXECUTION_ROLE = f"demo-{REGION}-ecs-execution"

IAM_KEYS = ("iam:instance-role", "iam:execution-role")


def _iam_stack(**service: Any) -> Stack:
    return make_stack(services={"api": service})


def _inline(iam: Any, role: str) -> dict[str, Any]:
    return {
        n: iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]
        for n in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }


def _attached(iam: Any, role: str) -> list[str]:
    return sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"])


@pytest.fixture
def iam_steps(moto: None) -> list[Step]:
    return steps_for(make_stack(), only(*IAM_KEYS))


def test_iam_absent_plan_create(iam_steps: list[Step]) -> None:
    p = plan(iam_steps, make_ctx())
    assert {c.key: c.action for c in p.changes} == dict.fromkeys(IAM_KEYS, Action.CREATE)
    assert p.get("iam:instance-role").name == INSTANCE_ROLE
    assert p.get("iam:execution-role").name == EXECUTION_ROLE


def test_iam_apply(iam_steps: list[Step], iam: Any) -> None:
    ctx = make_ctx()
    converge(iam_steps, ctx)
    role = iam.get_role(RoleName=INSTANCE_ROLE)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert _attached(iam, INSTANCE_ROLE) == [INSTANCE_POLICY]
    profile = iam.get_instance_profile(InstanceProfileName=INSTANCE_ROLE)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [INSTANCE_ROLE]
    exec_role = iam.get_role(RoleName=EXECUTION_ROLE)["Role"]
    assert exec_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert _attached(iam, EXECUTION_ROLE) == [EXECUTION_POLICY]
    assert _inline(iam, EXECUTION_ROLE) == {}  # no secrets named: no secrets access
    for name in (INSTANCE_ROLE, EXECUTION_ROLE):
        tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
        assert tags == {"spotecs:stack": "demo", "spotecs:managed": "true"}
    # Outputs the launch template and task definitions need, right after creation.
    out = ctx.outputs["iam:instance-role"]
    assert out["arn"] == role["Arn"]
    assert out["instance_profile"] == INSTANCE_ROLE
    assert out["instance_profile_arn"] == profile["Arn"]
    assert ctx.outputs["iam:execution-role"]["arn"] == exec_role["Arn"]


def test_execution_role_reads_exactly_the_services_secrets(moto: None, iam: Any) -> None:
    stack = make_stack(
        services={
            "api": {"secrets": {"DB": SECRET_A, "TOKEN": PARAM}, "repository_credentials": REGISTRY},
            "worker": {"image": "busybox", "secrets": {"KEY": SECRET_B, "DB": SECRET_A}},
        }
    )
    steps = steps_for(stack, only("iam:execution-role"))
    converge(steps, make_ctx(stack))
    assert _inline(iam, EXECUTION_ROLE) == {
        SECRETS_POLICY: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": sorted([SECRET_A, SECRET_B, REGISTRY]),
                },
                {"Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": [PARAM]},
            ],
        }
    }
    assert not replan(steps, stack).has_changes


def test_iam_plan_again_is_noop(iam_steps: list[Step]) -> None:
    converge(iam_steps, make_ctx())
    ctx = make_ctx()
    p, result = converge(iam_steps, ctx)
    assert not p.has_changes and result.applied == []
    assert ctx.aws.writes() == []


def test_execution_role_secret_added_is_an_update(moto: None, iam: Any) -> None:
    before = _iam_stack(secrets={"DB": SECRET_A})
    steps = steps_for(before, only("iam:execution-role"))
    converge(steps, make_ctx(before))
    after = _iam_stack(secrets={"DB": SECRET_A, "KEY": SECRET_B})
    p = replan(steps, after)
    ch = p.get("iam:execution-role")
    assert ch.action is Action.UPDATE
    assert [d.path for d in ch.diffs] == [f"inline_policies.{SECRETS_POLICY}.Statement"]
    ctx = make_ctx(after)
    converge(steps, ctx)
    assert [c.operation for c in ctx.aws.writes()] == ["PutRolePolicy"]
    doc = _inline(iam, EXECUTION_ROLE)[SECRETS_POLICY]
    assert doc["Statement"][0]["Resource"] == sorted([SECRET_A, SECRET_B])
    assert not replan(steps, after).has_changes


def test_execution_role_all_secrets_removed_drops_the_policy(moto: None, iam: Any) -> None:
    before = _iam_stack(secrets={"DB": SECRET_A})
    steps = steps_for(before, only("iam:execution-role"))
    converge(steps, make_ctx(before))
    after = _iam_stack()
    ch = replan(steps, after).get("iam:execution-role")
    assert ch.action is Action.UPDATE
    assert [(d.path, d.old, d.new) for d in ch.diffs] == [("inline_policy_names", [SECRETS_POLICY], [])]
    ctx = make_ctx(after)
    converge(steps, ctx)
    assert [c.operation for c in ctx.aws.writes()] == ["DeleteRolePolicy"]
    assert _inline(iam, EXECUTION_ROLE) == {}
    assert not replan(steps, after).has_changes


def test_instance_role_drift_is_repaired(iam_steps: list[Step], iam: Any) -> None:
    converge(iam_steps, make_ctx())
    iam.detach_role_policy(RoleName=INSTANCE_ROLE, PolicyArn=INSTANCE_POLICY)
    iam.remove_role_from_instance_profile(InstanceProfileName=INSTANCE_ROLE, RoleName=INSTANCE_ROLE)
    p = replan(iam_steps, make_stack())
    ch = p.get("iam:instance-role")
    assert ch.action is Action.UPDATE
    assert sorted(d.path for d in ch.diffs) == ["instance_profile", "managed_policies"]
    ctx = make_ctx()
    converge(iam_steps, ctx)
    assert sorted(c.operation for c in ctx.aws.writes()) == ["AddRoleToInstanceProfile", "AttachRolePolicy"]
    assert _attached(iam, INSTANCE_ROLE) == [INSTANCE_POLICY]
    assert ctx.outputs["iam:instance-role"]["instance_profile"] == INSTANCE_ROLE
    assert not replan(iam_steps, make_stack()).has_changes


def test_role_trust_policy_drift_is_updated(iam_steps: list[Step], iam: Any) -> None:
    converge(iam_steps, make_ctx())
    wrong = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.update_assume_role_policy(RoleName=EXECUTION_ROLE, PolicyDocument=json.dumps(wrong))
    ctx = make_ctx()
    p, _ = converge(iam_steps, ctx)
    assert [d.path for d in p.get("iam:execution-role").diffs] == ["trusted_service"]
    (call,) = ctx.aws.writes()
    assert call.operation == "UpdateAssumeRolePolicy"
    assert json.loads(call.params["PolicyDocument"])["Statement"][0]["Principal"] == {
        "Service": "ecs-tasks.amazonaws.com"
    }


def test_iam_delete_and_delete_again(iam_steps: list[Step], iam: Any) -> None:
    stack = _iam_stack(secrets={"DB": SECRET_A})
    converge(iam_steps, make_ctx(stack))
    ctx = make_ctx(stack)
    current = {s.key: s.read(ctx.for_step(s.key)) for s in iam_steps}
    p, _ = converge(iam_steps, ctx, destroy=True)
    assert {c.key: c.action for c in p.changes} == dict.fromkeys(IAM_KEYS, Action.DELETE)
    # The account's service-linked roles are not the stack's: they stay.
    assert [r["RoleName"] for r in iam.list_roles()["Roles"] if not r["Path"].startswith("/aws-service-role/")] == []
    assert iam.list_instance_profiles()["InstanceProfiles"] == []
    again = make_ctx(stack)
    for s in iam_steps:
        s.delete(again.for_step(s.key), current[s.key])  # type: ignore[arg-type]
    assert not plan(iam_steps, make_ctx(stack), destroy=True).has_changes


@pytest.fixture
def foreign_execution_role(iam: Any) -> str:
    """A role with spotecs's name that spotecs did not create: no tags, another policy."""
    iam.create_role(
        RoleName=EXECUTION_ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    iam.put_role_policy(
        RoleName=EXECUTION_ROLE,
        PolicyName="theirs",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    return str(iam.get_role(RoleName=EXECUTION_ROLE)["Role"]["Arn"])


def test_not_owned_role_is_reused_read_only(iam_steps: list[Step], iam: Any, foreign_execution_role: str) -> None:
    stack = _iam_stack(secrets={"DB": SECRET_A})
    ctx = make_ctx(stack)
    p, _ = converge(iam_steps, ctx)
    ch = p.get("iam:execution-role")
    assert ch.action is Action.NOOP and ch.note == NOT_OWNED and ch.diffs == []
    assert p.get("iam:instance-role").action is Action.CREATE
    # No write call of any kind names the foreign role...
    assert touching(ctx.aws.writes(), RoleName=EXECUTION_ROLE) == []
    assert ctx.aws.writes(), "the owned role must still have been created"
    # ...its ARN is still the output dependants get...
    assert ctx.outputs["iam:execution-role"]["arn"] == foreign_execution_role
    # ...and it is exactly as it was.
    assert list(_inline(iam, EXECUTION_ROLE)) == ["theirs"]
    assert _attached(iam, EXECUTION_ROLE) == []
    assert iam.list_role_tags(RoleName=EXECUTION_ROLE)["Tags"] == []


def test_not_owned_role_is_never_deleted(iam_steps: list[Step], iam: Any, foreign_execution_role: str) -> None:
    converge(iam_steps, make_ctx())
    ctx = make_ctx()
    p, _ = converge(iam_steps, ctx, destroy=True)
    assert p.get("iam:execution-role").action is Action.NOOP
    assert p.get("iam:instance-role").action is Action.DELETE
    assert touching(ctx.aws.writes(), RoleName=EXECUTION_ROLE) == []
    assert iam.get_role(RoleName=EXECUTION_ROLE)["Role"]["Arn"] == foreign_execution_role


def test_instance_profile_made_outside_spotecs_only_loses_our_role(moto: None) -> None:
    stack = make_stack()
    iam = boto3.client("iam", region_name=REGION)
    role = instance_role("demo", REGION)
    iam.create_instance_profile(InstanceProfileName=role.name)  # untagged: not ours
    steps, _ = up(stack, lambda s: s.key == "iam:instance-role")
    assert [
        r["RoleName"] for r in iam.get_instance_profile(InstanceProfileName=role.name)["InstanceProfile"]["Roles"]
    ] == [role.name]
    converge(steps, fresh(stack), destroy=True)
    assert iam.get_instance_profile(InstanceProfileName=role.name)["InstanceProfile"]["Roles"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role.name)


KEY_A = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_B = "arn:aws:kms:us-east-1:123456789012:key/0987dcba-09fe-87dc-65ba-ab0987654321"


def test_execution_role_matches_every_form_a_secret_may_be_named_in(moto: None, iam: Any) -> None:
    stack = make_stack(
        services={
            "api": {
                "secrets": {
                    "DB_PASSWORD": f"{SECRET_A}:password::",  # a JSON key of the secret
                    "API_KEY": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api",  # no suffix
                    "TOKEN": "/demo/token",  # an SSM parameter by name
                    "SIGNING": {"value_from": SECRET_B, "kms_key": KEY_B},
                },
                "secrets_kms_key": KEY_A,
            },
        }
    )
    steps = steps_for(stack, only("iam:execution-role"))
    converge(steps, make_ctx(stack))
    statements = {s["Action"][0]: s["Resource"] for s in _inline(iam, EXECUTION_ROLE)[SECRETS_POLICY]["Statement"]}
    assert statements == {
        "secretsmanager:GetSecretValue": sorted(
            [SECRET_A, SECRET_B, "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-??????"]
        ),
        "ssm:GetParameters": [PARAM],
        "kms:Decrypt": sorted([KEY_A, KEY_B]),  # those keys only, never "*"
    }
    assert not replan(steps, stack).has_changes


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:s3:::bucket/key",
        "arn:aws:secretsmanager:us-east-1:123456789012:db-AbCdEf",  # no "secret:"
        "arn:aws:ssm:us-east-1:123456789012:document/x",
        "has spaces in it",
        "",
    ],
)
def test_a_secret_in_no_accepted_form_is_refused_with_the_forms(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(f"stack: demo\nservices:\n  api:\n    image: a\n    secrets: {{DB: {json.dumps(value)}}}\n")
    message = str(e.value)
    assert "services.api.secrets" in message and "accepted: a Secrets Manager secret ARN" in message
    assert "an SSM parameter name" in message


def test_a_kms_alias_is_refused_for_a_key_arn() -> None:
    with pytest.raises(ConfigError, match="IAM cannot grant Decrypt by alias"):
        parse(
            "stack: demo\nservices:\n  api:\n    image: a\n"
            "    secrets_kms_key: arn:aws:kms:us-east-1:123456789012:alias/app\n"
        )


def test_a_service_task_role_is_owned_trusted_by_tasks_and_torn_down(moto: None, iam: Any) -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::demo-assets/*"}],
    }
    managed = "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"
    stack = _iam_stack(task_role={"managed_policies": [managed], "policy": document})
    steps = steps_for(stack, only("task-definition:api"))
    assert "iam:task-role:api" in next(s for s in steps if s.key == "task-definition:api").depends_on
    ctx = make_ctx(stack)
    converge(steps, ctx)
    name = f"demo-{REGION}-api-task"
    role = iam.get_role(RoleName=name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ecs-tasks.amazonaws.com"}]
    assert _attached(iam, name) == [managed]
    assert _inline(iam, name) == {"spotecs-task": document}
    td = ctx.client("ecs").describe_task_definition(taskDefinition="demo-api")["taskDefinition"]
    assert td["taskRoleArn"] == role["Arn"]
    assert not replan(steps, stack).has_changes

    converge(steps, make_ctx(stack), destroy=True)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=name)


def test_a_task_role_needs_a_policy() -> None:
    with pytest.raises(ConfigError, match="give managed_policies, a policy, or both"):
        parse("stack: demo\nservices:\n  api:\n    image: a\n    task_role: {}\n")


# -- the one read of the account's roles (iam.account_roles) ---------------------------------


def _iam_reads(ctx: Any) -> list[str]:
    return [c.operation for c in ctx.aws.calls if c.service == "iam" and not c.is_write]


def test_the_roles_are_read_once_per_plan_and_a_profile_only_when_it_lost_its_role(
    iam_steps: list[Step], iam: Any
) -> None:
    converge(iam_steps, make_ctx())
    ctx = make_ctx()
    with ctx.aws.reading():
        assert not plan(iam_steps, ctx).has_changes
    assert _iam_reads(ctx) == ["GetAccountAuthorizationDetails"]

    iam.remove_role_from_instance_profile(InstanceProfileName=INSTANCE_ROLE, RoleName=INSTANCE_ROLE)
    ctx = make_ctx()
    with ctx.aws.reading():
        p = plan(iam_steps, ctx)
    assert [d.path for d in p.get("iam:instance-role").diffs] == ["instance_profile"]
    assert _iam_reads(ctx) == ["GetAccountAuthorizationDetails", "GetInstanceProfile"]


def test_an_iam_write_forgets_the_roles_read(iam_steps: list[Step], iam: Any) -> None:
    ctx = make_ctx()
    with ctx.aws.reading():
        assert iam_steps[0].read(ctx) is None
        p = plan(iam_steps[:1], ctx)  # the same answer: not asked again
        assert _iam_reads(ctx) == ["GetAccountAuthorizationDetails"]
        apply(p, iam_steps[:1], ctx)  # creates the instance role: IAM writes
        assert iam_steps[0].read(ctx) is not None
        assert iam_steps[0].read(ctx) is not None
    assert _iam_reads(ctx) == ["GetAccountAuthorizationDetails"] * 2


def test_a_policy_attached_or_put_by_hand_on_a_stack_role_is_drift(iam_steps: list[Step], iam: Any) -> None:
    converge(iam_steps, make_ctx())
    extra = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    iam.attach_role_policy(RoleName=EXECUTION_ROLE, PolicyArn=extra)
    by_hand = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=INSTANCE_ROLE, PolicyName="by-hand", PolicyDocument=json.dumps(by_hand))
    ctx = make_ctx()
    p, _ = converge(iam_steps, ctx)
    assert [d.path for d in p.get("iam:execution-role").diffs] == ["managed_policies"]
    assert [d.path for d in p.get("iam:instance-role").diffs] == ["inline_policy_names"]
    assert sorted(c.operation for c in ctx.aws.writes()) == ["DeleteRolePolicy", "DetachRolePolicy"]
    assert _attached(iam, EXECUTION_ROLE) == [EXECUTION_POLICY]
    assert _inline(iam, INSTANCE_ROLE) == {}
    assert not replan(iam_steps, make_stack()).has_changes


def test_an_instance_profile_deleted_by_hand_is_made_again(iam_steps: list[Step], iam: Any) -> None:
    converge(iam_steps, make_ctx())
    iam.remove_role_from_instance_profile(InstanceProfileName=INSTANCE_ROLE, RoleName=INSTANCE_ROLE)
    iam.delete_instance_profile(InstanceProfileName=INSTANCE_ROLE)
    ctx = make_ctx()
    p, _ = converge(iam_steps, ctx)
    # The profile made again carries the stack's tags: shown as such.
    assert [d.path for d in p.get("iam:instance-role").diffs] == ["instance_profile", "instance_profile_tags"]
    assert [c.operation for c in ctx.aws.writes()] == ["CreateInstanceProfile", "AddRoleToInstanceProfile"]
    (made,) = [c for c in ctx.aws.writes() if c.operation == "CreateInstanceProfile"]
    assert {"Key": "spotecs:stack", "Value": "demo"} in made.params["Tags"]
    profile = iam.get_instance_profile(InstanceProfileName=INSTANCE_ROLE)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [INSTANCE_ROLE]
    assert ctx.outputs["iam:instance-role"]["instance_profile_arn"] == profile["Arn"]
    assert not replan(iam_steps, make_stack()).has_changes


def test_the_roles_read_follows_its_pages(iam_steps: list[Step], iam: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from spotecs.steps import iam as iam_module

    converge(iam_steps, make_ctx())
    for n in range(3):  # roles of someone else's, listed before and after the stack's
        iam.create_role(RoleName=f"zz-other-{n}", AssumeRolePolicyDocument=json.dumps(_trust_of("ec2")))
        iam.create_role(RoleName=f"aa-other-{n}", AssumeRolePolicyDocument=json.dumps(_trust_of("ec2")))
    monkeypatch.setattr(iam_module, "ROLES_PAGE", 2)
    ctx = make_ctx()
    with ctx.aws.reading():
        assert not plan(iam_steps, ctx).has_changes
    pages = [c for c in ctx.aws.calls if c.operation == "GetAccountAuthorizationDetails"]
    roles = len(iam.get_account_authorization_details(Filter=["Role"], MaxItems=1000)["RoleDetailList"])
    assert len(pages) == -(-roles // 2) > 1
    assert all(c.params["MaxItems"] == 2 for c in pages)


def _trust_of(service: str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": f"{service}.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = {"StringLike": condition}
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_the_sandbox_sends_trust_policies_url_encoded_as_aws_does(iam: Any) -> None:
    """botocore URL-decodes every policy document of the answer: a trust policy moto sent as
    plain JSON would lose its '%' escapes (spotecs.sandbox.fills_iam)."""
    trust = _trust_of("ec2", **{"aws:SourceArn": "arn:aws:ec2:*:*:instance/a%2Fb"})
    iam.create_role(RoleName="percent", AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName="percent")
    iam.add_role_to_instance_profile(InstanceProfileName="percent", RoleName="percent")
    [role] = [
        r
        for r in iam.get_account_authorization_details(Filter=["Role"])["RoleDetailList"]
        if r["RoleName"] == "percent"
    ]
    assert role["AssumeRolePolicyDocument"] == trust
    assert role["InstanceProfileList"][0]["Roles"][0]["AssumeRolePolicyDocument"] == trust


def _tags_of(items: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items}


def test_role_and_instance_profile_tag_edit_converges_with_tag_calls_only(moto: None, iam: Any) -> None:
    steps, _ = up(make_stack(tags=BEFORE), only(*IAM_KEYS))
    edited = make_stack(tags=AFTER)
    the_plan = replan(steps, edited)
    planned_as_tags_only(the_plan, "iam:execution-role")
    change = the_plan.get("iam:instance-role")
    assert change.action is Action.UPDATE and change.changed_fields() == {"tags", "instance_profile_tags"}

    ctx = fresh(edited)
    converge(steps, ctx)
    assert sorted(writes(ctx)) == sorted(["TagRole", "UntagRole"] * 2 + ["TagInstanceProfile", "UntagInstanceProfile"])
    (profile_tagged,) = [c for c in ctx.aws.writes() if c.operation == "TagInstanceProfile"]
    assert profile_tagged.params["InstanceProfileName"] == INSTANCE_ROLE
    for role in (INSTANCE_ROLE, EXECUTION_ROLE):
        holds_the_edit(_tags_of(iam.list_role_tags(RoleName=role)["Tags"]))
    holds_the_edit(_tags_of(iam.get_instance_profile(InstanceProfileName=INSTANCE_ROLE)["InstanceProfile"]["Tags"]))
    assert not replan(steps, edited).has_changes


def test_instance_profile_tags_the_roles_read_leaves_out_are_asked(
    moto: None, iam: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS documents Tags on InstanceProfile without saying every answer carries them."""
    from spotecs.steps import iam as iam_module

    steps, _ = up(make_stack(tags=AFTER), only(*IAM_KEYS))
    iam.untag_instance_profile(InstanceProfileName=INSTANCE_ROLE, TagKeys=["owner"])
    read = iam_module.account_roles

    def without_profile_tags(ctx: Any) -> dict[str, dict[str, Any]]:
        roles = read(ctx)
        for detail in roles.values():
            for prof in detail.get("InstanceProfileList") or []:
                prof.pop("Tags", None)
        return roles

    monkeypatch.setattr(iam_module, "account_roles", without_profile_tags)
    ctx = fresh(make_stack(tags=AFTER))
    with ctx.aws.reading():
        change = plan(steps, ctx).get("iam:instance-role")
    assert change.changed_fields() == {"instance_profile_tags"}
    assert _iam_reads(ctx) == ["GetAccountAuthorizationDetails", "GetInstanceProfile"]
