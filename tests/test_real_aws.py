"""What real AWS refuses and moto forgives (issue 9): the strict sandbox's rules
(spotecs/sandbox/rules.py, rules_names.py) and the product's answers to them: service-linked
roles made before the first write, and retries keyed to each eventual-consistency error.

Runs `spotecs up` in-process on moto with the rules installed (the `moto` fixture); `fresh_account`
starts without service-linked roles, `lagging` turns on "a resource just created is not visible
for 2 calls"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from spotecs.aws import Aws
from spotecs.sandbox import rules
from tests.helpers import ACCOUNT, MINIMAL, REGION, Runs, cmd, deep_merge, stack_file

pytestmark = pytest.mark.usefixtures("moto")

LINKED = {
    "AWSServiceRoleForECS": "ecs.amazonaws.com",
    "AWSServiceRoleForAutoScaling": "autoscaling.amazonaws.com",
    "AWSServiceRoleForApplicationAutoScaling_ECSService": "ecs.application-autoscaling.amazonaws.com",
    "AWSServiceRoleForElasticLoadBalancing": "elasticloadbalancing.amazonaws.com",
}
# A web service with auto scaling: it needs all four roles.
SCALED: dict[str, Any] = deep_merge(
    MINIMAL,
    {"services": {"api": {"scaling": {"min": 1, "max": 4, "target_tracking": [{"metric": "cpu", "target": 70}]}}}},
)


@pytest.fixture
def lagging(moto: None) -> Iterator[None]:
    rules.STRICT.lag = 2
    yield
    rules.STRICT.lag = 0
    rules.STRICT.reset()


def up(tmp_path: Path, doc: dict[str, Any], *args: str, command: str = "up") -> Any:
    return cmd(command, "-f", str(stack_file(tmp_path, doc)), "--yes", *args)


def roles() -> set[str]:
    iam = boto3.client("iam", region_name=REGION)
    return {r["RoleName"] for r in iam.list_roles(PathPrefix="/aws-service-role/")["Roles"]}


def refused(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


# ----------------------------------------------------------------------------- the rules themselves


def test_a_fresh_account_refuses_what_needs_the_ecs_role_as_aws_does(fresh_account: None) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="c")
    arn = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:x:autoScalingGroupName/g"
    code, message = refused(
        ecs.create_capacity_provider, name="p", autoScalingGroupProvider={"autoScalingGroupArn": arn}
    )
    assert code == "ClientException" and "The ECS Service Linked Role does not exist" in message
    code, message = refused(
        ecs.put_cluster_capacity_providers, cluster="c", capacityProviders=[], defaultCapacityProviderStrategy=[]
    )
    assert code == "InvalidParameterException" and "Unable to assume the service linked role" in message
    aas = boto3.client("application-autoscaling", region_name=REGION)
    code, message = refused(
        aas.register_scalable_target,
        ServiceNamespace="ecs",
        ResourceId="service/c/s",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1,
        MaxCapacity=2,
    )
    assert code == "ValidationException" and "Unable to assume IAM role" in message

    iam = boto3.client("iam", region_name=REGION)
    made = iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")["Role"]
    assert made["RoleName"] == "AWSServiceRoleForECS"  # moto's own name: AWSServiceRoleForecs
    code, message = refused(iam.create_service_linked_role, AWSServiceName="ecs.amazonaws.com")
    assert code == "InvalidInput" and "has been taken in this account" in message
    ecs.create_capacity_provider(name="p", autoScalingGroupProvider={"autoScalingGroupArn": arn})


def test_a_security_group_just_created_is_not_found_for_two_calls(lagging: None) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    gid = ec2.create_security_group(GroupName="g", Description="g")["GroupId"]
    rule = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    for _ in range(2):
        code, _message = refused(ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=rule)
        assert code == "InvalidGroup.NotFound"
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=rule)


def test_a_service_linked_role_just_created_is_not_assumable_at_once(fresh_account: None, lagging: None) -> None:
    boto3.client("iam", region_name=REGION).create_service_linked_role(AWSServiceName="ecs.amazonaws.com")
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="c")
    for _ in range(2):
        with pytest.raises(ClientError, match="Unable to assume the service linked role"):
            ecs.put_cluster_capacity_providers(cluster="c", capacityProviders=[], defaultCapacityProviderStrategy=[])
    ecs.put_cluster_capacity_providers(cluster="c", capacityProviders=[], defaultCapacityProviderStrategy=[])


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("a" * 33, "cannot be longer than '32' characters"),
        ("-demo", "cannot begin or end with '-'"),
        ("demo-", "cannot begin or end with '-'"),
        ("internal-demo", "cannot begin with 'internal-'"),
        ("demo_lb", "alphanumeric characters or hyphens"),
    ],
)
def test_load_balancer_names_aws_refuses_are_refused(moto: None, name: str, fragment: str) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    elbv2 = boto3.client("elbv2", region_name=REGION)
    code, message = refused(elbv2.create_load_balancer, Name=name, Subnets=subnets)
    assert code == "ValidationError" and fragment in message
    assert elbv2.create_load_balancer(Name="demo-lb", Subnets=subnets)["LoadBalancers"]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("t" * 33, "cannot be longer than '32' characters"), ("demo-", "failed to satisfy constraint")],
)
def test_target_group_names_aws_refuses_are_refused(moto: None, name: str, fragment: str) -> None:
    vpc = boto3.client("ec2", region_name=REGION).describe_vpcs()["Vpcs"][0]["VpcId"]
    elbv2 = boto3.client("elbv2", region_name=REGION)
    code, message = refused(elbv2.create_target_group, Name=name, Protocol="HTTP", Port=80, VpcId=vpc)
    assert code == "ValidationError" and fragment in message


@pytest.mark.parametrize("name", ["aws-demo", "ECS-demo", "fargate1", "demo provider"])
def test_capacity_provider_reserved_prefixes_are_refused(moto: None, name: str) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    arn = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:x:autoScalingGroupName/g"
    code, message = refused(
        ecs.create_capacity_provider, name=name, autoScalingGroupProvider={"autoScalingGroupArn": arn}
    )
    assert code == "ClientException"
    assert 'The name cannot be prefixed with "aws", "ecs", or "fargate"' in message
    ecs.create_capacity_provider(name="demo-spot", autoScalingGroupProvider={"autoScalingGroupArn": arn})


# ----------------------------------------------------------------------------- service-linked roles


def test_up_in_a_fresh_account_makes_the_linked_roles_first_and_never_deletes_them(
    fresh_account: None, runs: Runs, tmp_path: Path
) -> None:
    assert roles() == set()
    dry = up(tmp_path, SCALED, "--dry-run")
    assert dry.code == 0, dry.text
    assert runs.writes() == []
    for name in LINKED:
        assert f"service-linked role {name} does not exist in this account: up creates it" in dry.text

    first = up(tmp_path, SCALED, "--no-wait")
    assert first.code == 0, first.text
    made = [c.params["AWSServiceName"] for c in runs.sessions[-1].writes() if c.operation == "CreateServiceLinkedRole"]
    assert sorted(made) == sorted(LINKED.values())
    assert runs.writes()[: len(LINKED)] == ["CreateServiceLinkedRole"] * len(LINKED)  # before any other write
    assert roles() == set(LINKED)

    gone = up(tmp_path, SCALED, command="teardown")
    assert gone.code == 0, gone.text
    assert roles() == set(LINKED)  # account-wide, shared: never spotecs's to delete
    assert "DeleteServiceLinkedRole" not in runs.writes()


def test_a_worker_without_scaling_needs_only_the_ecs_and_auto_scaling_roles(
    fresh_account: None, runs: Runs, tmp_path: Path
) -> None:
    worker = deep_merge(MINIMAL, {"services": {"api": {"container_port": None}}})
    out = up(tmp_path, worker, "--no-wait")
    assert out.code == 0, out.text
    assert roles() == {"AWSServiceRoleForECS", "AWSServiceRoleForAutoScaling"}


def _patch_iam(monkeypatch: pytest.MonkeyPatch, create: Any) -> None:
    real = Aws.client

    def client(self: Aws, service: str, region: str | None = None) -> Any:
        c = real(self, service, region)
        if service == "iam" and not getattr(c, "_patched", False):
            c.create_service_linked_role = create(c.create_service_linked_role)
            c._patched = True
        return c

    monkeypatch.setattr(Aws, "client", client)


def test_a_role_made_meanwhile_has_been_taken_which_is_success(
    fresh_account: None, runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def racing(create: Any) -> Any:
        def raced(**kw: Any) -> Any:
            create(**kw)  # another run, or AWS itself, got there first: the real answer is "taken"
            return create(**kw)

        return raced

    _patch_iam(monkeypatch, racing)
    out = up(tmp_path, SCALED, "--no-wait")
    assert out.code == 0, out.text
    assert roles() == set(LINKED)


def test_a_caller_who_may_not_create_them_stops_before_any_write(
    fresh_account: None, runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refusing(create: Any) -> Any:
        def denied(**kw: Any) -> Any:
            message = f"User: arn:aws:iam::{ACCOUNT}:user/ci is not authorized to perform: iam:CreateServiceLinkedRole"
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, "CreateServiceLinkedRole")

        return denied

    _patch_iam(monkeypatch, refusing)
    out = up(tmp_path, SCALED, "--no-wait")
    assert out.code == 1
    assert "iam:CreateServiceLinkedRole" in out.text and "Nothing was changed" in out.text
    assert runs.writes() == []  # (the refusal never reached moto)
    assert boto3.client("ecs", region_name=REGION).list_clusters()["clusterArns"] == []


def test_the_plan_json_carries_the_notes_too(fresh_account: None, runs: Runs, tmp_path: Path) -> None:
    out = up(tmp_path, SCALED, "--dry-run", "-o", "json")
    assert out.code == 0, out.text
    doc = json.loads(out.stdout)
    assert any("AWSServiceRoleForECS" in w for w in doc["warnings"])


# ----------------------------------------------------------------------------- eventual consistency


def test_up_on_a_lagging_fresh_account_retries_each_call_on_its_own_error(
    fresh_account: None, lagging: None, runs: Runs, tmp_path: Path
) -> None:
    out = up(tmp_path, SCALED, "--no-wait")
    assert out.code == 0, out.text
    ops = runs.calls()
    # Each refused twice (the rule's lag), then done: no other call was retried for it.
    assert ops.count("CreateCapacityProvider") == 3  # the ECS role just created
    assert ops.count("AuthorizeSecurityGroupIngress") == 2 * 3  # two groups, each just created
    assert ops.count("CreateLaunchTemplate") == 3  # the instance profile just created
    assert ops.count("RegisterScalableTarget") == 2 + 2 + 1  # its role just created, then the service
    assert ops.count("CreateService") == 3  # the target group just put behind the listener
    again = up(tmp_path, SCALED, "--no-wait")
    assert again.code == 0 and runs.writes() == [], again.text
    assert "does not exist in this account" not in again.text


def test_register_scalable_target_waits_for_a_service_just_created(lagging: None, runs: Runs, tmp_path: Path) -> None:
    out = up(tmp_path, SCALED, "--no-wait")  # roles long there: only the service is new
    assert out.code == 0, out.text
    sent = [c for c in runs.sessions[-1].calls if c.operation == "RegisterScalableTarget"]
    assert len(sent) == 3 and sent[0].params["ResourceId"] == "service/demo/demo-api"


# ----------------------------------------------------------------------------- secrets the agent can read


def _tasks_after_ticks(cluster: str = "demo") -> list[dict[str, Any]]:
    from spotecs.sandbox.agent import SimulatedAgent

    agent = SimulatedAgent()
    for _ in range(3):
        agent.tick()
    ecs = boto3.client("ecs", region_name=REGION)
    arns = [
        a
        for status in ("RUNNING", "STOPPED")
        for a in ecs.list_tasks(cluster=cluster, desiredStatus=status)["taskArns"]
    ]
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def _secret_stack() -> dict[str, Any]:
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="demo/db", SecretString=json.dumps({"password": "x"})
    )
    # A JSON key of a secret named without its 6-character suffix: forms ECS accepts.
    ref = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:demo/db:password::"
    return deep_merge(MINIMAL, {"services": {"api": {"secrets": {"DB_PASSWORD": ref}, "desired_count": 1}}})


def test_the_agent_starts_tasks_whose_execution_role_reads_their_secrets(runs: Runs, tmp_path: Path) -> None:
    out = up(tmp_path, _secret_stack(), "--no-wait")
    assert out.code == 0, out.text
    assert [t["lastStatus"] for t in _tasks_after_ticks()] == ["RUNNING"]


def test_the_agent_refuses_a_task_whose_execution_role_cannot_read_a_secret(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spotecs.steps.iam import SECRETS_POLICY, ExecutionRole

    def as_written(self: ExecutionRole, ctx: Any) -> dict[str, Any]:
        # The mistake the real-ARN matching fixed: the reference itself as the resource.
        refs = [r for svc in ctx.stack.services.values() for r, _ in svc.secret_refs().values()]
        statement = {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": refs}
        return {SECRETS_POLICY: {"Version": "2012-10-17", "Statement": [statement]}}

    monkeypatch.setattr(ExecutionRole, "inline", as_written)
    out = up(tmp_path, _secret_stack(), "--no-wait")
    assert out.code == 0, out.text
    tasks = _tasks_after_ticks()
    assert tasks and all(t["lastStatus"] == "STOPPED" for t in tasks)
    reason = tasks[0]["stoppedReason"]
    assert reason.startswith("ResourceInitializationError: unable to pull secrets or registry auth")
    assert "is not authorized to perform: secretsmanager:GetSecretValue on resource: " in reason
    assert "secret:demo/db-" in reason  # the real ARN, with its suffix


def test_installing_the_rules_again_wraps_nothing_twice(moto: None) -> None:
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.elbv2.models import ELBv2Backend

    before = (ELBv2Backend.create_load_balancer, EC2ContainerServiceResponse.create_service)
    rules.install()
    assert (ELBv2Backend.create_load_balancer, EC2ContainerServiceResponse.create_service) == before
