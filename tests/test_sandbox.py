"""The local sandbox: moto over HTTP plus the simulated ECS agent (spotecs.sandbox)."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from spotecs.errors import SandboxUnavailable
from spotecs.sandbox import Sandbox, rules
from spotecs.sandbox.instances import AGENT_RESERVED_MIB, on_demand_wanted
from spotecs.sandbox.userdata import decode_user_data, parse_ecs_config
from tests.helpers import ACCOUNT, REGION

AMI_PARAM = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
ECS_FOR_EC2_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"


def user_data(cluster: str) -> str:
    script = (
        "#!/bin/bash\n"
        f"echo ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
        "echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config\n"
    )
    return base64.b64encode(script.encode()).decode()


def uid() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Aws:
    sandbox: Sandbox
    ecs: Any
    ec2: Any
    asg: Any
    ssm: Any
    elbv2: Any
    iam: Any

    def default_vpc(self) -> tuple[str, list[str]]:
        vpc = self.ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])
        subnets = self.ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        return vpc["Vpcs"][0]["VpcId"], [s["SubnetId"] for s in subnets]

    def ami(self) -> str:
        return str(self.ssm.get_parameter(Name=AMI_PARAM)["Parameter"]["Value"])

    def launch_template(self, ud_cluster: str) -> str:
        return str(
            self.ec2.create_launch_template(
                LaunchTemplateName=f"lt-{uid()}",
                LaunchTemplateData={
                    "ImageId": self.ami(),
                    "InstanceType": "t3.small",
                    "UserData": user_data(ud_cluster),
                },
            )["LaunchTemplate"]["LaunchTemplateId"]
        )

    def capacity(
        self,
        ud_cluster: str,
        desired: int = 2,
        base: int = 0,
        percent: int = 50,
        template: str | None = None,
        version: str = "$Latest",
        weight: int | None = None,
    ) -> tuple[str, list[str]]:
        """Mixed-instances ASG over ``template`` (default: a new one whose user data joins
        ``ud_cluster``); returns its name and instances, checked to be the desired count."""
        name = f"asg-{uid()}"
        lt_id = template or self.launch_template(ud_cluster)
        override: dict[str, Any] = {"InstanceType": "t3.small"}
        if weight is not None:
            override["WeightedCapacity"] = str(weight)
        _, subnets = self.default_vpc()
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=0,
            MaxSize=6,
            DesiredCapacity=desired,
            VPCZoneIdentifier=",".join(subnets),
            MixedInstancesPolicy={
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {"LaunchTemplateId": lt_id, "Version": version},
                    "Overrides": [override],
                },
                "InstancesDistribution": {
                    "OnDemandBaseCapacity": base,
                    "OnDemandPercentageAboveBaseCapacity": percent,
                    "SpotAllocationStrategy": "price-capacity-optimized",
                },
            },
        )
        instance_ids = self.asg_instances(name)
        # Alone, moto truncates the on-demand/spot split (desired 1 at 50 % launches none):
        # the sandbox's fill makes the group launch the whole desired capacity.
        assert len(instance_ids) == -(-desired // (weight or 1)), "fewer instances than desired"
        return name, instance_ids

    def asg_instances(self, name: str) -> list[str]:
        group = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        return [i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"]]

    def container_instances(self, cluster: str) -> list[dict[str, Any]]:
        arns = self.ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
        if not arns:
            return []
        return self.ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]

    def cluster_with_capacity(self, desired: int = 2) -> tuple[str, list[str]]:
        cluster = f"c-{uid()}"
        self.ecs.create_cluster(clusterName=cluster)
        _, instance_ids = self.capacity(cluster, desired=desired)
        self.sandbox.tick()
        return cluster, instance_ids

    def web_task_definition(self, family: str, cpu: int = 256, memory: int = 256) -> str:
        return self.ecs.register_task_definition(
            family=family,
            networkMode="bridge",
            requiresCompatibilities=["EC2"],
            containerDefinitions=[
                {
                    "name": "web",
                    "image": "public.ecr.aws/nginx/nginx:latest",
                    "cpu": cpu,
                    "memory": memory,
                    "essential": True,
                    "portMappings": [{"containerPort": 3000, "hostPort": 0, "protocol": "tcp"}],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]

    def alb_target_group(self) -> str:
        vpc, subnets = self.default_vpc()
        name = f"tg-{uid()}"
        tg = self.elbv2.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=80,
            VpcId=vpc,
            TargetType="instance",
            HealthCheckPath="/health",
            Matcher={"HttpCode": "200-399"},
        )["TargetGroups"][0]["TargetGroupArn"]
        lb = self.elbv2.create_load_balancer(
            Name=f"lb-{name}", Subnets=subnets[:2], Type="application", Scheme="internet-facing"
        )["LoadBalancers"][0]["LoadBalancerArn"]
        self.elbv2.create_listener(
            LoadBalancerArn=lb,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
        )
        return tg

    def service(self, cluster: str, name: str) -> dict[str, Any]:
        return self.ecs.describe_services(cluster=cluster, services=[name])["services"][0]

    def targets(self, tg: str) -> list[dict[str, Any]]:
        return self.elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]

    def running_tasks(self, cluster: str) -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=cluster)["taskArns"]
        if not arns:
            return []
        tasks = self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
        return [t for t in tasks if t["lastStatus"] == "RUNNING"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    # No background ticking: each test calls tick() itself, so it proves tick() did the work.
    # These tests make resources by hand: an account that has used ECS, nothing lagging (the
    # strict rules have their own tests in tests/test_real_aws.py).
    with Sandbox(agent_interval=None, lag=0) as sb:
        rules.linked_roles_exist("123456789012")
        yield sb


@pytest.fixture(scope="module")
def aws(sandbox: Sandbox) -> Aws:
    return Aws(sandbox, *(sandbox.client(s) for s in ("ecs", "ec2", "autoscaling", "ssm", "elbv2", "iam")))


# --- pure helpers ---------------------------------------------------------------------


def test_parse_ecs_config_reads_the_forms_user_data_uses() -> None:
    script = (
        "#!/bin/bash\n"
        "echo ECS_CLUSTER=first >> /etc/ecs/ecs.config\n"
        'echo "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true" >> /etc/ecs/ecs.config\n'
        "cat <<EOF >> /etc/ecs/ecs.config\nECS_RESERVED_MEMORY=64\nEOF\n"
        "echo ECS_CLUSTER=prod >> /etc/ecs/ecs.config\n"
        "echo hello\n"
    )
    assert parse_ecs_config(script) == {
        "ECS_CLUSTER": "prod",
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING": "true",
        "ECS_RESERVED_MEMORY": "64",
    }
    assert parse_ecs_config("#!/bin/bash\nyum update -y\n") == {}
    assert decode_user_data(user_data("x")).startswith("#!/bin/bash\necho ECS_CLUSTER=x")


@pytest.mark.parametrize(
    ("count", "base", "percent", "on_demand"),
    [(2, 0, 50, 1), (4, 0, 50, 2), (3, 0, 50, 2), (5, 1, 50, 3), (2, 5, 0, 2), (3, 0, 0, 0), (3, 1, 100, 3)],
)
def test_on_demand_share(count: int, base: int, percent: int, on_demand: int) -> None:
    assert on_demand_wanted(count, base, percent) == on_demand


def test_importing_the_package_does_not_import_moto() -> None:
    code = "import sys, spotecs.sandbox; assert 'moto' not in sys.modules, 'moto imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_moto_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)
    monkeypatch.setitem(sys.modules, "moto.server", None)
    with pytest.raises(SandboxUnavailable, match=r"pip install 'spotecs\[sandbox\]'"):
        Sandbox()


def test_env_defaults_do_not_override_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    from spotecs.sandbox import server

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    server._set_default_env()
    import os

    assert os.environ["AWS_ACCESS_KEY_ID"] == "mine"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "sandbox"


# --- the server -----------------------------------------------------------------------


def test_endpoint_serves_aws_and_managed_policies_attach(aws: Aws) -> None:
    assert aws.sandbox.endpoint_url.startswith("http://127.0.0.1:")
    role = f"ecs-instance-{uid()}"
    aws.iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
            '"Principal":{"Service":"ec2.amazonaws.com"}}]}'
        ),
    )
    aws.iam.attach_role_policy(RoleName=role, PolicyArn=ECS_FOR_EC2_POLICY)
    attached = aws.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ECS_FOR_EC2_POLICY]


def test_background_agent_registers_without_manual_ticks(sandbox: Sandbox) -> None:
    with Sandbox(agent_interval=0.1, lag=0) as other:
        ecs, ec2 = other.client("ecs"), other.client("ec2")
        cluster = f"bg-{uid()}"
        ecs.create_cluster(clusterName=cluster)
        ami = other.client("ssm").get_parameter(Name=AMI_PARAM)["Parameter"]["Value"]
        ec2.run_instances(
            ImageId=ami,
            InstanceType="t3.small",
            MinCount=1,
            MaxCount=1,
            UserData=base64.b64decode(user_data(cluster)).decode(),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the background agent never registered the instance")
        url = other.endpoint_url
    with pytest.raises(Exception, match=r"(?i)connect"):
        import boto3
        from botocore.config import Config

        boto3.client(
            "ecs",
            region_name="us-east-1",
            endpoint_url=url,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
        ).list_clusters()


# --- agent: instances -----------------------------------------------------------------


def test_asg_instances_register_with_instance_type_resources(aws: Aws) -> None:
    cluster = f"c-{uid()}"
    aws.ecs.create_cluster(clusterName=cluster)
    _, instance_ids = aws.capacity(cluster)
    assert aws.container_instances(cluster) == []  # moto alone never registers them

    summary = aws.sandbox.tick()

    assert sorted(summary.registered) == sorted(instance_ids)
    registered = aws.container_instances(cluster)
    assert sorted(ci["ec2InstanceId"] for ci in registered) == sorted(instance_ids)
    t3_small = aws.ec2.describe_instance_types(InstanceTypes=["t3.small"])["InstanceTypes"][0]
    memory = t3_small["MemoryInfo"]["SizeInMiB"] - AGENT_RESERVED_MIB
    for ci in registered:
        resources = {r["name"]: r.get("integerValue") for r in ci["registeredResources"]}
        assert resources["CPU"] == 2048  # 2 vCPU x 1024
        assert resources["MEMORY"] == memory == 1920
        assert ci["status"] == "ACTIVE" and ci["agentConnected"] is True
    assert aws.sandbox.tick().registered == []  # never twice


def test_mixed_instances_policy_marks_spot_share(aws: Aws) -> None:
    name, _ = aws.capacity(f"c-{uid()}", desired=2, base=0, percent=50)

    def lifecycles() -> list[str]:
        ids = aws.asg_instances(name)
        reservations = aws.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return sorted(i.get("InstanceLifecycle", "on-demand") for r in reservations for i in r["Instances"])

    assert lifecycles() == ["on-demand", "on-demand"]  # what moto does by itself
    aws.sandbox.tick()
    assert lifecycles() == ["on-demand", "spot"]

    aws.asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=4)
    aws.sandbox.tick()
    assert lifecycles() == ["on-demand", "on-demand", "spot", "spot"]


def test_on_demand_base_capacity_comes_first(aws: Aws) -> None:
    name, instance_ids = aws.capacity(f"c-{uid()}", desired=3, base=1, percent=0)
    aws.sandbox.tick()
    reservations = aws.ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    lifecycle = {i["InstanceId"]: i.get("InstanceLifecycle") for r in reservations for i in r["Instances"]}
    first, *rest = aws.asg_instances(name)  # launch order
    assert lifecycle[first] is None
    assert [lifecycle[i] for i in rest] == ["spot", "spot"]


def test_user_data_naming_a_missing_cluster_registers_nothing(aws: Aws) -> None:
    cluster = f"c-{uid()}"
    aws.ecs.create_cluster(clusterName=cluster)
    _, instance_ids = aws.capacity(f"typo-{cluster}")

    summary = aws.sandbox.tick()

    assert not set(instance_ids) & set(summary.registered)
    assert aws.container_instances(cluster) == []


def test_terminated_instance_is_deregistered(aws: Aws) -> None:
    cluster = f"c-{uid()}"
    aws.ecs.create_cluster(clusterName=cluster)
    asg_name, instance_ids = aws.capacity(cluster)
    aws.sandbox.tick()
    aws.ec2.terminate_instances(InstanceIds=[instance_ids[0]])

    summary = aws.sandbox.tick()

    assert summary.deregistered == [instance_ids[0]]
    # moto's ASG launches a replacement, which the agent registers in the same tick.
    [replacement] = set(aws.asg_instances(asg_name)) - set(instance_ids)
    assert summary.registered == [replacement]
    registered = {ci["ec2InstanceId"] for ci in aws.container_instances(cluster)}
    assert registered == {instance_ids[1], replacement}


# --- fills: what moto gets wrong, filled in spotecs.sandbox.fills ----------------------


def test_deregistering_an_instance_ecs_already_deregistered_is_a_client_error(aws: Aws) -> None:
    cluster = f"c-{uid()}"
    aws.ecs.create_cluster(clusterName=cluster)
    _, instance_ids = aws.capacity(cluster)
    aws.sandbox.tick()
    [arn] = [
        ci["containerInstanceArn"] for ci in aws.container_instances(cluster) if ci["ec2InstanceId"] == instance_ids[0]
    ]
    aws.ec2.terminate_instances(InstanceIds=[instance_ids[0]])
    assert aws.sandbox.tick().deregistered == [instance_ids[0]]  # by ECS, before the caller's call
    with pytest.raises(ClientError) as raised:
        aws.ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
    error = raised.value.response
    assert error["Error"]["Code"] == "ClientException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_cluster_with_instances_or_services_left_cannot_be_deleted(aws: Aws) -> None:
    # AWS's DeleteCluster refuses both (rules.ecs_delete_cluster_must_be_empty); moto deleted it.
    cluster = f"c-{uid()}"
    aws.ecs.create_cluster(clusterName=cluster)
    group, instance_ids = aws.capacity(cluster)
    aws.sandbox.tick()
    family = f"f-{uid()}"
    aws.ecs.register_task_definition(
        family=family, containerDefinitions=[{"name": "app", "image": "nginx", "memory": 64}]
    )
    aws.ecs.create_service(cluster=cluster, serviceName="s", taskDefinition=family, desiredCount=0)

    def refusal() -> str:
        with pytest.raises(ClientError) as raised:
            aws.ecs.delete_cluster(cluster=cluster)
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return str(raised.value.response["Error"]["Code"])

    assert refusal() == "ClusterContainsContainerInstancesException"
    # The module's sandbox is shared: no instance of this group may register again in later ticks.
    aws.asg.delete_auto_scaling_group(AutoScalingGroupName=group, ForceDelete=True)
    aws.ec2.terminate_instances(InstanceIds=instance_ids)
    for ci in aws.container_instances(cluster):
        aws.ecs.deregister_container_instance(cluster=cluster, containerInstance=ci["containerInstanceArn"], force=True)
    assert refusal() == "ClusterContainsServicesException"
    aws.ecs.delete_service(cluster=cluster, service="s", force=True)
    assert aws.ecs.delete_cluster(cluster=cluster)["cluster"]["status"] == "INACTIVE"


def test_new_template_version_with_user_data_launches_instances_that_register(aws: Aws) -> None:
    cluster = f"c-{uid()}"
    aws.ecs.create_cluster(clusterName=cluster)
    template = aws.launch_template(f"old-{cluster}")  # version 1 joins a cluster that is not there
    # What spotecs does when the AMI or the stop timeout changes: a full new version, made default.
    version = aws.ec2.create_launch_template_version(
        LaunchTemplateId=template,
        VersionDescription="new AMI",
        LaunchTemplateData={"ImageId": aws.ami(), "InstanceType": "t3.small", "UserData": user_data(cluster)},
    )["LaunchTemplateVersion"]
    assert version["VersionNumber"] == 2
    aws.ec2.modify_launch_template(LaunchTemplateId=template, DefaultVersion="2")
    [stored] = aws.ec2.describe_launch_template_versions(LaunchTemplateId=template, Versions=["$Default"])[
        "LaunchTemplateVersions"
    ]
    assert stored["LaunchTemplateData"]["UserData"] == user_data(cluster)

    # Without the fill, moto answers HTTP 500 to every launch from version 2.
    name, instance_ids = aws.capacity(cluster, desired=2, template=template, version="$Default")
    aws.asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=3)  # and a scale-out
    instance_ids = aws.asg_instances(name)
    assert len(instance_ids) == 3
    for instance_id in instance_ids:
        got = aws.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        assert got["UserData"]["Value"] == user_data(cluster)

    summary = aws.sandbox.tick()

    assert sorted(summary.registered) == sorted(instance_ids)
    assert sorted(ci["ec2InstanceId"] for ci in aws.container_instances(cluster)) == sorted(instance_ids)


def test_template_version_with_user_data_not_in_base64_is_refused(aws: Aws) -> None:
    template = aws.launch_template(f"c-{uid()}")
    with pytest.raises(ClientError) as refused:
        aws.ec2.create_launch_template_version(
            LaunchTemplateId=template, LaunchTemplateData={"UserData": "#!/bin/bash\necho plain text\n"}
        )
    assert refused.value.response["Error"]["Code"] == "InvalidUserData.Malformed"
    versions = aws.ec2.describe_launch_template_versions(LaunchTemplateId=template)["LaunchTemplateVersions"]
    assert [v["VersionNumber"] for v in versions] == [1]


@pytest.mark.parametrize(
    ("desired", "base", "percent"),
    # moto alone launches 0, 1, 2 and 4 of the first four.
    [(1, 0, 20), (2, 0, 20), (3, 0, 50), (5, 1, 20), (1, 0, 0), (4, 0, 100)],
)
def test_mixed_instances_group_launches_its_desired_capacity(aws: Aws, desired: int, base: int, percent: int) -> None:
    name, instance_ids = aws.capacity(f"c-{uid()}", desired=desired, base=base, percent=percent)
    [group] = aws.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    assert group["DesiredCapacity"] == len(instance_ids) == desired

    aws.sandbox.tick()  # the agent then splits them between on-demand and spot

    reservations = aws.ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    spot = [i for r in reservations for i in r["Instances"] if i.get("InstanceLifecycle") == "spot"]
    assert len(spot) == desired - on_demand_wanted(desired, base, percent)


def test_mixed_instances_group_scales_out_and_in_without_replacing_instances(aws: Aws) -> None:
    name, first = aws.capacity(f"c-{uid()}", desired=3, percent=50)
    # The same capacity again (or another setting) keeps every instance: moto alone counts 2
    # for 3 at 50 % and terminates one.
    aws.asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=3)
    aws.asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=8, DesiredCapacity=3)
    assert aws.asg_instances(name) == first

    aws.asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=5)
    grown = aws.asg_instances(name)
    assert len(grown) == 5 and set(first) < set(grown)

    aws.asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=2)
    shrunk = aws.asg_instances(name)
    assert len(shrunk) == 2 and set(shrunk) < set(grown)
    [group] = aws.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    assert group["DesiredCapacity"] == 2


def test_group_update_changes_what_it_names_and_keeps_the_rest(aws: Aws) -> None:
    name, instance_ids = aws.capacity(f"c-{uid()}", desired=2)

    def group() -> dict[str, Any]:
        return dict(aws.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0])

    policy = group()["MixedInstancesPolicy"]
    aws.asg.update_auto_scaling_group(
        AutoScalingGroupName=name,
        CapacityRebalance=True,
        TerminationPolicies=["OldestLaunchTemplate", "OldestInstance"],
    )
    updated = group()
    assert updated["TerminationPolicies"] == ["OldestLaunchTemplate", "OldestInstance"]
    assert updated["CapacityRebalance"] is True

    aws.asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=8)  # names no policy
    updated = group()
    assert updated["MaxSize"] == 8
    assert updated["MixedInstancesPolicy"] == policy
    assert updated["TerminationPolicies"] == ["OldestLaunchTemplate", "OldestInstance"]
    assert aws.asg_instances(name) == instance_ids


def test_weighted_overrides_launch_capacity_over_weight_instances(aws: Aws) -> None:
    name, instance_ids = aws.capacity(f"c-{uid()}", desired=5, percent=50, weight=2)
    assert len(instance_ids) == 3  # 5 units at 2 units per instance, rounded up as AWS does
    [group] = aws.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    assert group["DesiredCapacity"] == 5


# --- agent: services ------------------------------------------------------------------


def test_service_reaches_steady_state_behind_the_target_group(aws: Aws) -> None:
    cluster, instance_ids = aws.cluster_with_capacity()
    td = aws.web_task_definition(f"web-{uid()}")
    tg = aws.alb_target_group()
    aws.ecs.create_service(
        cluster=cluster,
        serviceName="web",
        taskDefinition=td,
        desiredCount=3,
        launchType="EC2",
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 3000}],
    )
    assert aws.service(cluster, "web")["runningCount"] == 0  # moto alone

    summary = aws.sandbox.tick()

    assert len(summary.tasks_started) == 3
    service = aws.service(cluster, "web")
    assert (service["runningCount"], service["pendingCount"]) == (3, 0)
    [deployment] = service["deployments"]
    assert deployment["status"] == "PRIMARY" and deployment["rolloutState"] == "COMPLETED"
    assert deployment["runningCount"] == 3
    assert "has reached a steady state" in service["events"][0]["message"]

    targets = aws.targets(tg)
    pairs = {(t["Target"]["Id"], t["Target"]["Port"]) for t in targets}
    assert len(targets) == len(pairs) == 3
    assert all(port >= 32768 for _, port in pairs)
    assert {i for i, _ in pairs} <= set(instance_ids)
    assert {t["TargetHealth"]["State"] for t in targets} == {"healthy"}

    # Tasks are visible, stay RUNNING when described again, and match the targets.
    aws.running_tasks(cluster)
    tasks = aws.running_tasks(cluster)
    assert len(tasks) == 3
    assert {t["group"] for t in tasks} == {"service:web"}
    ports = {t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks}
    assert ports == {port for _, port in pairs}

    aws.ecs.update_service(cluster=cluster, service="web", desiredCount=1)
    summary = aws.sandbox.tick()

    assert len(summary.tasks_stopped) == 2
    service = aws.service(cluster, "web")
    assert service["runningCount"] == 1
    assert service["deployments"][0]["runningCount"] == 1
    assert len(aws.targets(tg)) == 1
    assert len(aws.running_tasks(cluster)) == 1


def test_new_task_definition_rolls_out_and_old_deployment_goes(aws: Aws) -> None:
    cluster, _ = aws.cluster_with_capacity()
    family = f"web-{uid()}"
    first = aws.web_task_definition(family)
    tg = aws.alb_target_group()
    aws.ecs.create_service(
        cluster=cluster,
        serviceName="web",
        taskDefinition=first,
        desiredCount=2,
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 3000}],
    )
    aws.sandbox.tick()
    old_targets = {(t["Target"]["Id"], t["Target"]["Port"]) for t in aws.targets(tg)}

    second = aws.web_task_definition(family, memory=300)
    aws.ecs.update_service(cluster=cluster, service="web", taskDefinition=f"{family}:2")
    aws.sandbox.tick()

    service = aws.service(cluster, "web")
    assert service["taskDefinition"] == second
    [deployment] = service["deployments"]
    assert deployment["taskDefinition"] == second
    assert deployment["rolloutState"] == "COMPLETED" and deployment["runningCount"] == 2
    assert {t["taskDefinitionArn"] for t in aws.running_tasks(cluster)} == {second}
    new_targets = {(t["Target"]["Id"], t["Target"]["Port"]) for t in aws.targets(tg)}
    assert len(new_targets) == 2 and not new_targets & old_targets


def test_update_service_starts_its_deployment_at_once(aws: Aws) -> None:
    """What a client polling right after UpdateService sees, before the scheduler runs."""
    cluster, _ = aws.cluster_with_capacity()
    family = f"web-{uid()}"
    first = aws.web_task_definition(family)
    aws.ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=first, desiredCount=2)
    aws.sandbox.tick()
    [old] = aws.service(cluster, "web")["deployments"]

    second = aws.web_task_definition(family, memory=300)
    aws.ecs.update_service(cluster=cluster, service="web", taskDefinition=f"{family}:2")

    service = aws.service(cluster, "web")
    assert service["taskDefinition"] == second  # the ARN, not "family:2" as sent
    assert service["runningCount"] == 2  # the old tasks still run
    primary, active = service["deployments"]
    assert (primary["status"], primary["taskDefinition"], primary["rolloutState"]) == ("PRIMARY", second, "IN_PROGRESS")
    assert (primary["runningCount"], primary["desiredCount"]) == (0, 2)
    assert (active["status"], active["id"], active["taskDefinition"]) == ("ACTIVE", old["id"], first)
    aws.sandbox.tick()
    [done] = aws.service(cluster, "web")["deployments"]
    assert (done["id"], done["rolloutState"], done["runningCount"]) == (primary["id"], "COMPLETED", 2)

    # Forced: a new deployment of the same revision, whose tasks replace the running ones.
    before = {t["taskArn"] for t in aws.running_tasks(cluster)}
    aws.ecs.update_service(cluster=cluster, service="web", forceNewDeployment=True)
    primary, active = aws.service(cluster, "web")["deployments"]
    assert (primary["taskDefinition"], primary["rolloutState"]) == (second, "IN_PROGRESS")
    assert (active["id"], active["status"]) == (done["id"], "ACTIVE")
    aws.sandbox.tick()
    assert len(aws.service(cluster, "web")["deployments"]) == 1
    after = {t["taskArn"] for t in aws.running_tasks(cluster)}
    assert len(after) == 2 and not after & before

    # Only the count: no new deployment, and nothing claims to run before the scheduler acts.
    aws.ecs.update_service(cluster=cluster, service="web", desiredCount=3)
    service = aws.service(cluster, "web")
    [deployment] = service["deployments"]
    assert service["runningCount"] == 2 and deployment["desiredCount"] == 3
    aws.sandbox.tick()
    assert aws.service(cluster, "web")["runningCount"] == 3


def test_tasks_that_do_not_fit_stay_pending(aws: Aws) -> None:
    cluster, _ = aws.cluster_with_capacity()  # 2 x t3.small: 2 x 2048 CPU
    td = aws.web_task_definition(f"big-{uid()}", cpu=1024, memory=512)
    aws.ecs.create_service(cluster=cluster, serviceName="big", taskDefinition=td, desiredCount=5)
    aws.sandbox.tick()

    service = aws.service(cluster, "big")
    assert (service["runningCount"], service["pendingCount"]) == (4, 1)
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert "unable to place a task" in service["events"][0]["message"]


def test_tasks_on_a_terminated_instance_stop_and_leave_the_target_group(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spotecs.sandbox.clock import CLOCK

    # The load balancer keeps a dead target until its health checks fail (lb_front.py): 60 s of
    # AWS time with this group's checks, made instant here.
    monkeypatch.setattr(CLOCK, "factor", 1e9)
    cluster, instance_ids = aws.cluster_with_capacity()
    td = aws.web_task_definition(f"half-{uid()}", cpu=256, memory=1200)  # one per host
    tg = aws.alb_target_group()
    aws.ecs.create_service(
        cluster=cluster,
        serviceName="web",
        taskDefinition=td,
        desiredCount=2,
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 3000}],
    )
    aws.sandbox.tick()
    assert {t["Target"]["Id"] for t in aws.targets(tg)} == set(instance_ids)

    aws.ec2.terminate_instances(InstanceIds=[instance_ids[0]])
    summary = aws.sandbox.tick()

    assert summary.deregistered == [instance_ids[0]]
    assert len(summary.tasks_stopped) == 1 and len(summary.tasks_started) == 1
    # The task moves to moto's replacement instance; the dead one leaves the target group once
    # the health checks have caught it (the next tick, at this clock).
    [replacement] = summary.registered
    assert {t["Target"]["Id"] for t in aws.targets(tg)} == {instance_ids[0], instance_ids[1], replacement}
    aws.sandbox.tick()
    assert {t["Target"]["Id"] for t in aws.targets(tg)} == {instance_ids[1], replacement}
    service = aws.service(cluster, "web")
    assert (service["runningCount"], service["pendingCount"]) == (2, 0)


def test_a_broken_service_is_reported_not_raised(aws: Aws) -> None:
    from moto.backends import get_backend

    cluster, _ = aws.cluster_with_capacity()
    td = aws.web_task_definition(f"ok-{uid()}")
    aws.ecs.create_service(cluster=cluster, serviceName="broken", taskDefinition=td, desiredCount=1)
    aws.ecs.create_service(cluster=cluster, serviceName="fine", taskDefinition=td, desiredCount=1)
    ecs = get_backend("ecs")["123456789012"]["us-east-1"]
    ecs.services[f"{cluster}:broken"].task_definition = "does-not-exist:9"

    summary = aws.sandbox.tick()

    assert any(f"{cluster}:broken" in e for e in summary.errors)
    assert aws.service(cluster, "fine")["runningCount"] == 1


def test_the_tagging_api_lists_launch_templates_and_log_groups_under_aws_s_resource_types(moto: None) -> None:
    """fills_tagging: moto lists no launch template and files log groups as `logs:loggroup`."""
    ec2, logs = boto3.client("ec2", region_name=REGION), boto3.client("logs", region_name=REGION)
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    ours = [{"Key": "spotecs:stack", "Value": "demo"}]
    lt_id = ec2.create_launch_template(
        LaunchTemplateName="demo-instances",
        LaunchTemplateData={"ImageId": "ami-12c6146b"},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": ours}],
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template(LaunchTemplateName="theirs", LaunchTemplateData={"ImageId": "ami-12c6146b"})
    logs.create_log_group(logGroupName="/ecs/demo/api", tags={"spotecs:stack": "demo"})
    logs.create_log_group(logGroupName="/ecs/other/api", tags={"spotecs:stack": "other"})

    def found(kind: str) -> list[tuple[str, dict[str, str]]]:
        got = tagging.get_resources(
            TagFilters=[{"Key": "spotecs:stack", "Values": ["demo"]}], ResourceTypeFilters=[kind]
        )["ResourceTagMappingList"]
        return [(r["ResourceARN"], {t["Key"]: t["Value"] for t in r["Tags"]}) for r in got]

    assert found("ec2:launch-template") == [
        (f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/{lt_id}", {"spotecs:stack": "demo"})
    ]
    assert found("logs:log-group") == [
        (f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/demo/api", {"spotecs:stack": "demo"})
    ]
    ec2.delete_launch_template(LaunchTemplateId=lt_id)
    assert found("ec2:launch-template") == []


def test_the_tagging_api_lists_capacity_providers_as_ecs_capacity_provider(moto: None) -> None:
    """fills_tagging: moto's ECS lists clusters, services, tasks and task definitions, no provider."""
    ecs, tagging = boto3.client("ecs", region_name=REGION), boto3.client("resourcegroupstaggingapi", region_name=REGION)
    group = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:0ab1:autoScalingGroupName/g"
    for name, value in (("demo-cp", "demo"), ("other-cp", "other")):
        ecs.create_capacity_provider(
            name=name,
            autoScalingGroupProvider={"autoScalingGroupArn": group},
            tags=[{"key": "spotecs:stack", "value": value}],
        )
    got = tagging.get_resources(
        TagFilters=[{"Key": "spotecs:stack", "Values": ["demo"]}], ResourceTypeFilters=["ecs:capacity-provider"]
    )["ResourceTagMappingList"]
    assert [r["ResourceARN"] for r in got] == [f"arn:aws:ecs:{REGION}:{ACCOUNT}:capacity-provider/demo-cp"]
    ecs.delete_capacity_provider(capacityProvider="demo-cp")
    assert tagging.get_resources(ResourceTypeFilters=["ecs:capacity-provider"])["ResourceTagMappingList"][0][
        "ResourceARN"
    ].endswith("/other-cp")


def test_the_tagging_api_offers_the_same_tagged_parameters_as_moto_without_the_untagged_ones(moto: None) -> None:
    """speed.ssm_tagged_only: moto offered each of its ~5,500 public parameters to every
    GetResources (~30 ms a call, every request behind it waiting); the answer is the same."""
    from moto.backends import get_backend

    ssm = boto3.client("ssm", region_name=REGION)
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    # The ECS-optimized AMI aliases a plan reads: moto loads them all at the first such read.
    ssm.get_parameters_by_path(Path="/aws/service/ecs/optimized-ami/amazon-linux-2023", Recursive=False)
    ssm.put_parameter(Name="/demo/lock", Value="x", Type="String", Tags=[{"Key": "spotecs:stack", "Value": "demo"}])
    ssm.put_parameter(Name="/demo/untagged", Value="x", Type="String")
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId="/demo/untagged", Tags=[{"Key": "k", "Value": "v"}])
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/demo/untagged", TagKeys=["k"])
    got = tagging.get_resources(ResourceTypeFilters=["ssm:parameter"])["ResourceTagMappingList"]
    assert [(r["ResourceARN"], r["Tags"]) for r in got] == [
        (f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/demo/lock", [{"Key": "spotecs:stack", "Value": "demo"}])
    ]

    backend = get_backend("ssm")[ACCOUNT][REGION]
    assert len(backend._parameters) > 1000  # the public parameters: what made it slow

    def offered(resources: Iterator[Any]) -> list[tuple[str, dict[str, str], str]]:
        return [(r.arn, r.tags, r.resource_type) for r in resources if r.tags]

    moto_own = type(backend).iter_tagged_resources.__wrapped__  # type: ignore[attr-defined]
    assert offered(backend.iter_tagged_resources()) == offered(moto_own(backend))
    assert all(r.tags for r in backend.iter_tagged_resources() if r.resource_type == "ssm:parameter")


def test_instance_types_asked_by_name_are_moto_s_own_answer(moto: None) -> None:
    """speed.instance_types_by_name_first: moto tested each of its types against the filter (~12 ms
    a plan's call, every request behind it waiting); by name, the same types in the same order."""
    from moto.backends import get_backend

    backend = get_backend("ec2")[ACCOUNT][REGION]
    moto_own = type(backend).describe_instance_types.__wrapped__  # type: ignore[attr-defined]
    for filters in (
        {"instance-type": ["m6i.large", "t3.small", "m5.large", "no.such"]},
        {"instance-type": ["t3.small", "m5.large"], "current-generation": ["true"]},
        {"instance-type": ["t3.*"]},
    ):
        got = [t["InstanceType"] for t in backend.describe_instance_types(None, filters)]
        assert got == [t["InstanceType"] for t in moto_own(backend, None, filters)] and got
    ec2 = boto3.client("ec2", region_name=REGION)
    asked = ec2.describe_instance_types(Filters=[{"Name": "instance-type", "Values": ["t3.small", "m5.large"]}])
    assert sorted(t["InstanceType"] for t in asked["InstanceTypes"]) == ["m5.large", "t3.small"]


def test_moto_s_package_folder_is_listed_once_not_at_every_request(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """speed.moto_modules_listed_once: the server told a service from a host name by listing
    moto's folder twice per request."""
    import os

    import moto.backends

    listed = list(moto.backends.list_of_moto_modules.__wrapped__())  # type: ignore[attr-defined]
    assert "ecs" in listed and "elbv2" in listed

    def refuse(path: Any) -> list[str]:
        raise AssertionError(f"listed {path}")

    with Sandbox(agent_interval=None, latency_ms=0) as box:
        sts, ecs = box.client("sts"), box.client("ecs")
        sts.get_caller_identity()  # each service's first request loads its models: listings
        ecs.list_clusters()
        monkeypatch.setattr(os, "listdir", refuse)
        for _ in range(3):
            assert sts.get_caller_identity()["Account"] == ACCOUNT
            assert ecs.list_clusters()["clusterArns"] == []
    assert list(moto.backends.list_of_moto_modules()) == listed


def test_the_tagging_api_lists_listeners_and_their_rules(moto: None) -> None:
    """fills_tagging: moto lists no listener nor rule; AWS's GetResources covers every type."""
    ec2, elbv2 = boto3.client("ec2", region_name=REGION), boto3.client("elbv2", region_name=REGION)
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"][:2]]
    lb = elbv2.create_load_balancer(Name="demo", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    tg = elbv2.create_target_group(Name="demo-api", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]
    forward = [{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}]
    ours = [{"Key": "spotecs:stack", "Value": "demo"}]
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=forward, Tags=ours)
    listener_arn = listener["Listeners"][0]["ListenerArn"]
    path = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/admin/*"]}}]
    rule = elbv2.create_rule(ListenerArn=listener_arn, Priority=7, Conditions=path, Actions=forward, Tags=ours)
    elbv2.create_rule(ListenerArn=listener_arn, Priority=9, Conditions=path, Actions=forward)  # not the stack's

    def found(kind: str) -> list[str]:
        got = tagging.get_resources(
            TagFilters=[{"Key": "spotecs:stack", "Values": ["demo"]}], ResourceTypeFilters=[kind]
        )["ResourceTagMappingList"]
        return [r["ResourceARN"] for r in got]

    assert found("elasticloadbalancing:listener") == [listener_arn]
    assert found("elasticloadbalancing:listener-rule") == [rule["Rules"][0]["RuleArn"]]
    elbv2.delete_listener(ListenerArn=listener_arn)
    assert found("elasticloadbalancing:listener") == found("elasticloadbalancing:listener-rule") == []


def test_the_tagging_api_refuses_a_resource_type_filter_aws_does_not_know(moto: None) -> None:
    """fills_tagging: AWS refuses the whole GetResources for one ResourceTypeFilters value it does
    not know (moto took anything), and ResourcesPerPage outside 1-100."""
    from spotecs.steps.base import TAGGED_TYPES

    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/ecs/demo/api", tags={"spotecs:stack": "demo"})

    def refusal(**params: Any) -> tuple[str, str]:
        with pytest.raises(ClientError) as caught:
            tagging.get_resources(**params)
        return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]

    got = tagging.get_resources(ResourceTypeFilters=[*TAGGED_TYPES, "s3", "ec2:instance"], ResourcesPerPage=100)
    assert [r["ResourceARN"] for r in got["ResourceTagMappingList"]] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/demo/api"
    ]
    assert refusal(ResourceTypeFilters=["logs:log-group", "ecs:taskdefinition"]) == (
        "InvalidParameterException",
        "Unsupported resourceType=taskdefinition in ResourceTypeFilter - ecs:taskdefinition",
    )
    assert refusal(ResourceTypeFilters=["elbv2:loadbalancer"]) == (
        "InvalidParameterException",
        "Unsupported service=elbv2 in ResourceTypeFilter - elbv2:loadbalancer",
    )
    assert refusal(ResourceTypeFilters=["logs:log-group"] * 101)[0] == "InvalidParameterException"
    for outside in (0, 101):
        assert refusal(ResourcesPerPage=outside) == (
            "InvalidParameterException",
            "ResourcesPerPage must be between 1 and 100",
        )


def test_the_tagging_api_bounds_a_page_by_tags_only_when_asked(moto: None) -> None:
    """fills_tagging: moto bounded every page by 100 tags, so 2-tag resources came 49 a page
    whatever ResourcesPerPage said; TagsPerPage, when sent, still bounds it."""
    logs = boto3.client("logs", region_name=REGION)
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    for n in range(70):
        logs.create_log_group(logGroupName=f"/ecs/demo/{n}", tags={"spotecs:stack": "demo", "team": "a"})

    def pages(**params: Any) -> list[int]:
        paginator = tagging.get_paginator("get_resources")
        return [len(p["ResourceTagMappingList"]) for p in paginator.paginate(ResourceTypeFilters=["logs"], **params)]

    assert pages(ResourcesPerPage=100) == [70]
    assert pages(ResourcesPerPage=30) == [30, 30, 10]
    assert pages(ResourcesPerPage=100, TagsPerPage=100) == [49, 21]
