"""End to end: the real `spotecs up` CLI against moto's HTTP server (the sandbox, with its
simulated ECS agent ticking in the background), with --endpoint-url, like a user would run it.
Every call a run makes is recorded by its `Aws` session (`Aws.calls`), which a recording
subclass keeps for the test. One sandbox for the module; each test has its own stack name."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import spotecs.up
from spotecs.aws import Aws, Call
from spotecs.cli import cli
from spotecs.render import Env
from spotecs.sandbox import Sandbox
from spotecs.steps.base import Timeouts

ROOT = Path(__file__).resolve().parent.parent
# Real AWS needs the CLI's 5 s between polls; the sandbox answers at once.
FAST = Timeouts(default=120, delay=0.1)
SERVICE = "demo-api"  # the article's service, named like its task definition
ARTICLE_IMAGE = "bitnami/node-example:0.0.1"
TERMINATION_POLICIES = ["OldestLaunchTemplate", "ClosestToNextInstanceHour", "OldestInstance"]


@dataclass
class UpRun:
    code: int
    output: str
    aws: Aws | None  # the run's session: every AWS call it made, in `.calls`

    def sent(self, operation: str) -> list[dict[str, Any]]:
        assert self.aws is not None
        return [c.params for c in self.aws.calls if c.operation == operation]

    def writes(self) -> list[Call]:
        assert self.aws is not None
        return self.aws.writes()


@dataclass
class Deployed:
    """A stack brought up once, shared by the tests that only read it."""

    name: str
    cluster: str
    path: Path
    first: UpRun


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(agent_interval=0.2) as box:
        yield box


def up(sandbox: Sandbox, stack_file: Path, *args: str) -> UpRun:
    """`spotecs up -f <file> --endpoint-url <sandbox> ...` with stdin not a terminal."""
    opened: list[Aws] = []

    class Recording(Aws):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            opened.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spotecs.up, "Aws", Recording)
        mp.setattr(spotecs.up, "Timeouts", lambda: FAST)
        result = CliRunner().invoke(
            cli,
            ["up", "-f", str(stack_file), "--endpoint-url", sandbox.endpoint_url, *args],
            obj=Env(stdin_isatty=False),
        )
    assert len(opened) <= 1
    return UpRun(result.exit_code, result.output, opened[0] if opened else None)


def stack_file(directory: Path, name: str, source: str = "article.yaml", **replace: str) -> Path:
    """An example renamed to `name` (its cluster to `<name>-cluster`), with text replacements."""
    text = (ROOT / "examples" / source).read_text()
    text = re.sub(r"(?m)^stack: .*$", f"stack: {name}", text)
    text = text.replace("DemoApiClusterProd", f"{name}-cluster")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spotecs.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def article(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    name = "e2e-article"
    path = stack_file(tmp_path_factory.mktemp(name), name)
    first = up(sandbox, path, "--yes")
    assert first.code == 0, first.output
    assert "Apply complete!" in first.output
    return Deployed(name, f"{name}-cluster", path, first)


# --- issue 3: the compute layer ------------------------------------------------------


def test_article_compute_layer(sandbox: Sandbox, article: Deployed) -> None:
    ec2, asg, ecs = sandbox.client("ec2"), sandbox.client("autoscaling"), sandbox.client("ecs")
    group_name = f"{article.name}-instances"

    # Launch template: t3.small, and user data that writes the article's three agent settings.
    [template] = ec2.describe_launch_templates(LaunchTemplateNames=[group_name])["LaunchTemplates"]
    [version] = ec2.describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default"]
    )["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert data["InstanceType"] == "t3.small"
    script = base64.b64decode(data["UserData"]).decode()
    assert script.startswith("#!/bin/bash\n") and "/etc/ecs/ecs.config" in script
    lines = script.splitlines()
    assert f"ECS_CLUSTER={article.cluster}" in lines
    assert "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true" in lines
    assert {"ECS_CONTAINER_STOP_TIMEOUT=1m", "ECS_CONTAINER_STOP_TIMEOUT=60s"} & set(lines)

    # The group: 50/50 above a base of 0, over t3.small, new instances protected from scale-in.
    [group] = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    policy = group["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateId"] == template["LaunchTemplateId"]
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == ["t3.small"]
    distribution = policy["InstancesDistribution"]
    assert distribution["OnDemandBaseCapacity"] == 0
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == 50
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 4, 2)
    assert group["NewInstancesProtectedFromScaleIn"] is True
    assert len(group["Instances"]) == 2 and all(i["ProtectedFromScaleIn"] for i in group["Instances"])
    # The termination policies as sent (the article's order matters: oldest template first).
    [create] = article.first.sent("CreateAutoScalingGroup")
    assert create["TerminationPolicies"] == TERMINATION_POLICIES

    # The cluster, named as the user data says, with its capacity provider as default strategy.
    [cluster] = ecs.describe_clusters(clusters=[article.cluster], include=["SETTINGS"])["clusters"]
    assert cluster["status"] == "ACTIVE"
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    [provider_name] = cluster["capacityProviders"]
    assert cluster["defaultCapacityProviderStrategy"] == [{"capacityProvider": provider_name, "weight": 1, "base": 0}]
    [provider] = ecs.describe_capacity_providers(capacityProviders=[provider_name])["capacityProviders"]
    auto = provider["autoScalingGroupProvider"]
    assert auto["autoScalingGroupArn"] == group["AutoScalingGroupARN"]
    assert auto["managedScaling"]["status"] == "ENABLED"
    assert auto["managedScaling"]["targetCapacity"] == 100
    assert auto["managedTerminationProtection"] == "ENABLED"

    # The (simulated) agent on each instance joined the cluster; the mix put one on spot.
    arns = ecs.list_container_instances(cluster=article.cluster)["containerInstanceArns"]
    registered = ecs.describe_container_instances(cluster=article.cluster, containerInstances=arns)[
        "containerInstances"
    ]
    instance_ids = sorted(ci["ec2InstanceId"] for ci in registered)
    assert instance_ids == sorted(i["InstanceId"] for i in group["Instances"])
    reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    lifecycles = sorted(i.get("InstanceLifecycle", "on-demand") for r in reservations for i in r["Instances"])
    assert lifecycles == ["on-demand", "spot"]


def test_new_template_version_is_what_the_group_launches_next(sandbox: Sandbox, tmp_path: Path) -> None:
    name = "e2e-version"
    first = up(sandbox, stack_file(tmp_path / "v1", name), "--yes")
    assert first.code == 0, first.output

    changed = stack_file(tmp_path / "v2", name, **{"container_stop_timeout: 1m": "container_stop_timeout: 90s"})
    second = up(sandbox, changed, "--yes")

    assert second.code == 0, second.output
    # The timeout is also each container's stop timeout: a new revision and a deployment too.
    writes = [c.operation for c in second.writes()]
    assert sorted(writes) == [
        "CreateLaunchTemplateVersion",
        "ModifyLaunchTemplate",
        "RegisterTaskDefinition",
        "UpdateService",
    ]
    assert writes.index("CreateLaunchTemplateVersion") < writes.index("ModifyLaunchTemplate")
    ec2, asg, ecs = sandbox.client("ec2"), sandbox.client("autoscaling"), sandbox.client("ecs")
    [version] = ec2.describe_launch_template_versions(LaunchTemplateName=f"{name}-instances", Versions=["$Default"])[
        "LaunchTemplateVersions"
    ]
    assert version["VersionNumber"] == 2
    assert "ECS_CONTAINER_STOP_TIMEOUT=90s" in base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()

    # The capacity provider scales out: the new instance starts from version 2 and joins.
    group = f"{name}-instances"
    old = {
        i["InstanceId"]
        for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    }
    asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=3)
    instances = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    [new] = {i["InstanceId"] for i in instances} - old
    user_data = ec2.describe_instance_attribute(InstanceId=new, Attribute="userData")["UserData"]["Value"]
    assert "ECS_CONTAINER_STOP_TIMEOUT=90s" in base64.b64decode(user_data).decode()
    sandbox.tick()
    arns = ecs.list_container_instances(cluster=f"{name}-cluster")["containerInstanceArns"]
    joined = ecs.describe_container_instances(cluster=f"{name}-cluster", containerInstances=arns)
    assert new in {ci["ec2InstanceId"] for ci in joined["containerInstances"]}


# --- issue 4: the workload layer -----------------------------------------------------


def test_article_workload_layer(sandbox: Sandbox, article: Deployed) -> None:
    elbv2, ecs = sandbox.client("elbv2"), sandbox.client("ecs")
    scaling = sandbox.client("application-autoscaling")
    family = f"{article.name}-{SERVICE}"

    # The ALB, its target group (the image answers 304) and the HTTP listener forwarding to it.
    [lb] = elbv2.describe_load_balancers(Names=[article.name])["LoadBalancers"]
    assert (lb["Type"], lb["Scheme"]) == ("application", "internet-facing")
    [tg] = elbv2.describe_target_groups(Names=[family])["TargetGroups"]
    assert tg["Matcher"]["HttpCode"] == "200-399"
    assert (tg["TargetType"], tg["HealthCheckPath"]) == ("instance", "/")
    [listener] = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert (listener["Protocol"], listener["Port"]) == ("HTTP", 80)
    assert listener["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]

    # The task definition: dynamic host port, soft and hard memory limits.
    td = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    [container] = td["containerDefinitions"]
    assert container["image"] == ARTICLE_IMAGE
    assert container["portMappings"] == [{"containerPort": 3000, "hostPort": 0, "protocol": "tcp"}]
    assert (container["cpu"], container["memoryReservation"], container["memory"]) == (256, 256, 512)
    assert container["command"] == ["npm", "start"]
    assert (td["networkMode"], td["requiresCompatibilities"]) == ("bridge", ["EC2"])

    # The service: on the capacity provider, binpack then spread, behind the target group, and
    # running what it wants (`up` waited for it).
    [service] = ecs.describe_services(cluster=article.cluster, services=[family])["services"]
    assert service["taskDefinition"] == td["taskDefinitionArn"]
    assert service["runningCount"] == service["desiredCount"] == 2
    [cluster] = ecs.describe_clusters(clusters=[article.cluster])["clusters"]
    assert service["capacityProviderStrategy"] == [
        {"capacityProvider": cluster["capacityProviders"][0], "weight": 1, "base": 0}
    ]
    assert service["placementStrategy"] == [
        {"type": "binpack", "field": "cpu"},
        {"type": "spread", "field": "attribute:ecs.availability-zone"},
    ]
    assert service["healthCheckGracePeriodSeconds"] == 60
    assert service["loadBalancers"] == [
        {"targetGroupArn": tg["TargetGroupArn"], "containerName": SERVICE, "containerPort": 3000}
    ]
    health = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
    assert [h["TargetHealth"]["State"] for h in health] == ["healthy", "healthy"]

    # Service auto scaling: 1 to 10 tasks, tracking 85 % average CPU.
    resource = f"service/{article.cluster}/{family}"
    [target] = scaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[resource])["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 10)
    [policy] = scaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource)["ScalingPolicies"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 85.0
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"

    # A second run finds nothing to do and changes nothing, though it reads everything.
    again = up(sandbox, article.path, "--yes")
    assert again.code == 0, again.output
    assert "No changes." in again.output
    assert again.writes() == []
    assert again.aws is not None and again.aws.calls


def test_new_image_is_one_revision_and_one_service_update(sandbox: Sandbox, tmp_path: Path) -> None:
    name = "e2e-image"
    family = f"{name}-{SERVICE}"
    first = up(sandbox, stack_file(tmp_path / "v1", name), "--yes")
    assert first.code == 0, first.output

    changed = stack_file(tmp_path / "v2", name, **{ARTICLE_IMAGE: "bitnami/node-example:0.0.2"})
    second = up(sandbox, changed, "--yes")

    assert second.code == 0, second.output
    assert [c.operation for c in second.writes()] == ["RegisterTaskDefinition", "UpdateService"]
    [register] = second.sent("RegisterTaskDefinition")
    assert register["containerDefinitions"][0]["image"] == "bitnami/node-example:0.0.2"
    ecs = sandbox.client("ecs")
    revisions = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    assert [arn.rsplit(":", 1)[-1] for arn in revisions] == ["1", "2"]  # 1 kept for a rollback
    [update] = second.sent("UpdateService")
    assert update["taskDefinition"] == revisions[1]

    # `up` returned only once the new revision ran at the desired count behind the target group.
    status = second.output[second.output.index("updating ECS service") :]
    assert f"ECS service {family}: running 2/2, targets healthy 2/2" in status
    cluster = f"{name}-cluster"
    [service] = ecs.describe_services(cluster=cluster, services=[family])["services"]
    assert service["runningCount"] == service["desiredCount"] == 2
    [deployment] = service["deployments"]
    assert (deployment["taskDefinition"], deployment["rolloutState"]) == (revisions[1], "COMPLETED")
    tasks = ecs.describe_tasks(cluster=cluster, tasks=ecs.list_tasks(cluster=cluster)["taskArns"])["tasks"]
    running = [t["taskDefinitionArn"] for t in tasks if t["lastStatus"] == "RUNNING"]
    assert running == [revisions[1]] * 2

    third = up(sandbox, changed, "--yes")
    assert third.code == 0 and "No changes." in third.output and third.writes() == []


# --- the production example ----------------------------------------------------------


def test_production_example_comes_up_and_is_stable(sandbox: Sandbox, tmp_path: Path) -> None:
    # As written, region and certificate included: the sandbox holds a sample certificate at
    # the example's ARN (spotecs/sandbox/certificates.py).
    name = "e2e-shop"
    [certificate] = re.findall(r"arn:aws:acm:\S+", (ROOT / "examples" / "production.yaml").read_text())
    path = stack_file(tmp_path, name, "production.yaml")

    first = up(sandbox, path, "--yes")
    assert first.code == 0, first.output
    assert "Apply complete!" in first.output

    elbv2, ecs = sandbox.client("elbv2", "eu-west-1"), sandbox.client("ecs", "eu-west-1")
    [lb] = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
    listeners = {ln["Port"]: ln for ln in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["Certificates"] == [{"CertificateArn": certificate}]
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    services = ecs.describe_services(cluster=name, services=[f"{name}-api", f"{name}-worker"])["services"]
    assert [(s["runningCount"], s["desiredCount"]) for s in services] == [(4, 4), (2, 2)]

    again = up(sandbox, path, "--yes")
    assert again.code == 0, again.output
    assert "No changes." in again.output
    assert again.writes() == []

    # Tuesday 08:00 Dublin: the newsletter schedule raises the api's min, as Application Auto
    # Scaling does. That is no drift, and `up` does not undo it; the plan says who set it.
    aas = sandbox.client("application-autoscaling", "eu-west-1")
    aas.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{name}/{name}-api",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=10,
        MaxCapacity=30,
    )
    window = up(sandbox, path, "--dry-run", "--detailed-exitcode")
    assert window.code == 0, window.output
    assert "min/max: 3/30 in the file, 10/30 in force: set by a scheduled action" in " ".join(window.output.split())
    assert window.writes() == []


# --- the CLI's guards over HTTP ------------------------------------------------------


def test_dry_run_detailed_exitcode_over_http(sandbox: Sandbox, tmp_path: Path) -> None:
    path = stack_file(tmp_path, "e2e-dry")
    run = up(sandbox, path, "--dry-run", "--detailed-exitcode")
    assert run.code == 2, run.output
    assert "Plan: " in run.output and " to add" in run.output
    assert run.writes() == []
    # Nothing was created: the stack's log group does not exist.
    logs = sandbox.client("logs")
    assert logs.describe_log_groups(logGroupNamePrefix="/ecs/e2e-dry/")["logGroups"] == []


def test_without_yes_and_no_tty_refuses(sandbox: Sandbox, tmp_path: Path) -> None:
    run = up(sandbox, stack_file(tmp_path, "e2e-refuse"))
    assert run.code == 2
    assert "pass --yes" in run.output
    assert run.writes() == []
