"""Compute layer on moto: launch template, auto scaling group, ECS cluster, capacity provider.

Each step gets the five cases (absent -> create; apply; re-plan -> no-op; one field changed;
delete twice). moto ignores much of what the template and group ask for (IMDSv2, overrides,
spot...), so those tests assert on the request spotecs sent (`ctx.aws.calls`)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotecs import names
from spotecs.aws import Aws
from spotecs.engine.model import Action, Plan
from spotecs.engine.plan import plan
from spotecs.errors import WaitTimeout
from spotecs.sandbox.userdata import parse_ecs_config
from spotecs.steps.base import Context, Step, Timeouts, retry_iam_propagation
from tests.conftest import REGION, converge, make_ctx, make_stack, steps_for

pytestmark = pytest.mark.usefixtures("moto")

COMPUTE = {"ami", "instance-types", "cluster", "launch-template", "auto-scaling-group", "capacity-provider"}
AL2023 = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"


def compute_steps(stack: Any) -> list[Step]:
    """The compute steps and their upstreams (network, IAM, security groups)."""
    return steps_for(stack, lambda s: s.key in COMPUTE)


def rerun(ctx: Context, stack: Any) -> Context:
    """A fresh run (new outputs, facts and call log) on the same boto3 session: loading the
    service models is most of a test's time, and a session holds no AWS state."""
    return Context(
        stack=stack, aws=Aws(ctx.aws.options, _session=ctx.aws.session), timeouts=Timeouts(default=5, delay=0)
    )


def replan(ctx: Context, steps: list[Step], stack: Any) -> Plan:
    return plan(steps, rerun(ctx, stack))


def sent(ctx: Context, operation: str) -> list[dict[str, Any]]:
    return [c.params for c in ctx.aws.calls if c.operation == operation]


def writes(ctx: Context, service: str | None = None) -> list[str]:
    return [c.operation for c in ctx.aws.writes() if service is None or c.service == service]


def up(stack: Any) -> tuple[list[Step], Context]:
    steps = compute_steps(stack)
    ctx = make_ctx(stack)
    converge(steps, ctx)
    return steps, ctx


def step(steps: list[Step], key: str) -> Step:
    return next(s for s in steps if s.key == key)


def group(ctx: Context, name: str = "demo-instances") -> dict[str, Any] | None:
    groups = ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return groups["AutoScalingGroups"][0] if groups["AutoScalingGroups"] else None


def cluster(ctx: Context, name: str = "demo") -> dict[str, Any]:
    return ctx.client("ecs").describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]


# --------------------------------------------------------------------------- the layer


def test_layer_plans_every_resource_as_a_create() -> None:
    the_plan = plan(compute_steps(make_stack()), make_ctx(make_stack()))
    actions = {c.key: c.action for c in the_plan.changes}
    for key in ("cluster", "launch-template", "auto-scaling-group", "capacity-provider"):
        assert actions[key] is Action.CREATE
    # data steps are facts, not changes
    assert "ami" not in actions and "instance-types" not in actions


def test_outputs_and_a_rerun_that_is_a_noop_and_writes_nothing() -> None:
    stack = make_stack()
    steps, first = up(stack)
    for key, outputs in (
        ("cluster", {"name", "arn"}),
        ("launch-template", {"id", "name"}),
        ("auto-scaling-group", {"name", "arn"}),
        ("capacity-provider", {"name", "arn"}),
    ):
        assert set(first.outputs[key]) >= outputs  # outputs of create
    ctx = rerun(first, stack)
    the_plan, _ = converge(steps, ctx)
    assert [c.key for c in the_plan.changes if c.is_change] == []
    assert writes(ctx) == []
    # the workload layer's inputs are there on a no-op run too (read from AWS)
    out = ctx.outputs
    assert out["cluster"]["name"] == "demo" and out["cluster"]["arn"].endswith(":cluster/demo")
    assert out["launch-template"]["name"] == "demo-instances" and out["launch-template"]["id"].startswith("lt-")
    assert out["auto-scaling-group"]["name"] == "demo-instances"
    assert out["capacity-provider"]["name"].startswith("demo-instances-")


def test_teardown_deletes_everything_again_is_a_noop_and_up_gets_a_fresh_provider_name() -> None:
    stack = make_stack()
    steps, ctx = up(stack)
    the_plan, _ = converge(steps, rerun(ctx, stack), destroy=True)
    assert {c.key for c in the_plan.changes if c.action is Action.DELETE} >= COMPUTE - {"ami", "instance-types"}
    assert group(ctx) is None
    assert cluster(ctx)["status"] == "INACTIVE"
    again = rerun(ctx, stack)
    the_plan, _ = converge(steps, again, destroy=True)
    assert not the_plan.has_changes
    assert writes(again) == []
    # up again soon after: ECS still holds the old provider's name, so the new one needs another
    second = rerun(ctx, stack)
    converge(steps, second)
    assert second.outputs["capacity-provider"]["name"] != ctx.outputs["capacity-provider"]["name"]


# --------------------------------------------------------------------------- launch template


def test_launch_template_request_is_hardened() -> None:
    _, ctx = up(make_stack())
    (req,) = sent(ctx, "CreateLaunchTemplate")
    data = req["LaunchTemplateData"]
    ami = ctx.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    profile = ctx.client("iam").get_instance_profile(InstanceProfileName=f"demo-{REGION}-ecs-instance")
    sg = ctx.client("ec2").describe_security_groups(GroupNames=["demo-instances"])["SecurityGroups"][0]
    assert data["ImageId"] == ami
    assert data["IamInstanceProfile"] == {"Arn": profile["InstanceProfile"]["Arn"]}
    assert data["SecurityGroupIds"] == [sg["GroupId"]]
    assert data["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 2,
    }
    # moto's ECS AMI has a 15 GiB root; the ECS-optimized minimum (30) wins
    assert data["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
        }
    ]
    assert data["EbsOptimized"] is True
    assert data["CreditSpecification"] == {"CpuCredits": "unlimited"}  # t3.small is burstable
    assert "KeyName" not in data
    assert {"Key": "spotecs:managed", "Value": "true"} in req["TagSpecifications"][0]["Tags"]


def test_user_data_writes_the_three_ecs_settings() -> None:
    stack = make_stack(
        cluster={"name": "DemoApiClusterProd"},
        instances={"container_stop_timeout": "1m", "ecs_agent": {"ECS_ENABLE_TASK_IAM_ROLE": "true"}},
    )
    _, ctx = up(stack)
    (req,) = sent(ctx, "CreateLaunchTemplate")
    script = base64.b64decode(req["LaunchTemplateData"]["UserData"]).decode()
    assert script.startswith("#!/bin/bash\n")
    body = script.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    settings = dict(line.split("=", 1) for line in body.splitlines())
    assert settings == {
        "ECS_CLUSTER": "DemoApiClusterProd",
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING": "true",
        "ECS_CONTAINER_STOP_TIMEOUT": "60s",
        "ECS_ENABLE_TASK_IAM_ROLE": "true",
    }
    assert "/etc/ecs/ecs.config" in script.split("<<'EOF'")[0]
    # the sandbox's simulated agent reads the same settings
    assert parse_ecs_config(script)["ECS_CLUSTER"] == "DemoApiClusterProd"


def test_stop_timeout_change_is_a_new_version_and_the_group_is_untouched() -> None:
    steps, first = up(make_stack())
    lt_id = first.outputs["launch-template"]["id"]
    changed = make_stack(instances={"container_stop_timeout": 30})
    the_plan = replan(first, steps, changed)
    assert the_plan.get("launch-template").action is Action.NEW_VERSION
    assert [d.path for d in the_plan.get("launch-template").diffs] == ["user_data"]
    assert the_plan.get("auto-scaling-group").action is Action.NOOP
    assert the_plan.get("capacity-provider").action is Action.NOOP

    ctx = rerun(first, changed)
    converge(steps, ctx)
    assert writes(ctx, "autoscaling") == [] and writes(ctx, "ecs") == []
    (req,) = sent(ctx, "CreateLaunchTemplateVersion")
    assert req["LaunchTemplateId"] == lt_id
    assert "SourceVersion" not in req and req["LaunchTemplateData"]["ImageId"]  # full data, always
    assert "ECS_CONTAINER_STOP_TIMEOUT=30s" in base64.b64decode(req["LaunchTemplateData"]["UserData"]).decode()
    lt = ctx.client("ec2").describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"][0]
    assert lt["DefaultVersionNumber"] == 2
    assert ctx.outputs["launch-template"]["id"] == lt_id and ctx.outputs["launch-template"]["version"] == 2
    assert not replan(first, steps, changed).has_changes


def test_launch_template_delete_twice() -> None:
    stack = make_stack()
    steps, ctx = up(stack)
    lt = step(steps, "launch-template")
    current = lt.read(ctx)
    assert current is not None
    lt.delete(ctx, current)
    assert lt.read(ctx) is None
    n = len(ctx.aws.writes())
    lt.delete(ctx, current)  # already gone: no error
    assert lt.read(ctx) is None and len(ctx.aws.writes()) == n + 1


@pytest.mark.parametrize(
    ("types", "credits", "ebs_optimized"),
    [
        (["t3.small"], "unlimited", True),
        (["t3.medium", "m5.large"], None, True),  # the flag is invalid for m5; t3 is unlimited by default
        (["t2.micro"], "unlimited", False),  # t2 cannot be EBS-optimized
    ],
)
def test_credits_and_ebs_optimization_follow_the_types(
    types: list[str], credits: str | None, ebs_optimized: bool
) -> None:
    stack = make_stack(instances={"types": types}, services={"api": {"memory_soft": 128}})
    desired = plan(compute_steps(stack), make_ctx(stack)).get("launch-template").desired
    assert desired is not None
    assert desired["cpu_credits"] == credits
    assert desired["ebs_optimized"] is ebs_optimized
    assert desired["instance_type"] == types[0]


def test_ami_alias_explicit_id_and_disk_size() -> None:
    ctx = make_ctx()
    arm = ctx.client("ssm").get_parameter(
        Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    )["Parameter"]["Value"]
    stack = make_stack(instances={"ami": "al2023-arm64", "types": ["t4g.small"], "disk_gib": 50})
    desired = plan(compute_steps(stack), rerun(ctx, stack)).get("launch-template").desired
    assert desired is not None
    assert desired["image_id"] == arm and desired["root_volume"]["size_gib"] == 50
    explicit = make_stack(instances={"ami": arm, "types": ["t4g.small"]})
    desired = plan(compute_steps(explicit), rerun(ctx, explicit)).get("launch-template").desired
    assert desired is not None and desired["image_id"] == arm


def test_key_pair_is_sent_when_configured() -> None:
    make_ctx().client("ec2").create_key_pair(KeyName="ops")
    _, ctx = up(make_stack(instances={"key_pair": "ops"}))
    assert sent(ctx, "CreateLaunchTemplate")[0]["LaunchTemplateData"]["KeyName"] == "ops"


def _iam_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateAutoScalingGroup")


def test_a_just_created_instance_profile_is_retried() -> None:
    ctx = make_ctx()
    answers: list[Any] = [
        _iam_error(
            "ValidationError",
            "You must use a valid fully-formed launch template. Value (arn) for "
            "parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN",
        ),
        _iam_error("InvalidParameterValue", "Invalid IamInstanceProfile: demo"),
        {"ok": True},
    ]

    def fake(**kw: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry_iam_propagation(ctx, "create auto scaling group demo", fake, Name="x") == {"ok": True}
    assert answers == []


def test_other_validation_errors_are_not_retried() -> None:
    from spotecs.errors import AwsError

    calls = []

    def fake(**kw: Any) -> Any:
        calls.append(kw)
        raise _iam_error("ValidationError", "Max bound, 1, must be greater than or equal to min bound, 2")

    with pytest.raises(AwsError, match="Failed to create auto scaling group demo: Max bound"):
        retry_iam_propagation(make_ctx(), "create auto scaling group demo", fake)
    assert len(calls) == 1


def test_iam_retry_is_bounded() -> None:
    def never_ready(**kw: Any) -> Any:
        raise _iam_error("ValidationError", "Invalid IAM Instance Profile name")

    ctx = make_ctx()
    ctx.timeouts.default = 0
    with pytest.raises(WaitTimeout, match="create launch template demo-instances") as info:
        retry_iam_propagation(ctx, "create launch template demo-instances", never_ready)
    # AWS's own code, not one made up for the retry
    assert "Invalid IAM Instance Profile name (ValidationError)" in str(info.value)


# --------------------------------------------------------------------------- auto scaling group


def test_group_request_mixes_spot_and_on_demand_over_every_type() -> None:
    stack = make_stack(
        instances={
            "types": ["t3.small", "t3a.small"],
            "on_demand_base": 1,
            "on_demand_percent": 50,
            "min": 1,
            "max": 5,
            "desired": 2,
        }
    )
    _, ctx = up(stack)
    (req,) = sent(ctx, "CreateAutoScalingGroup")
    lt_id = ctx.outputs["launch-template"]["id"]
    assert req["MixedInstancesPolicy"] == {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": lt_id, "Version": "$Default"},
            "Overrides": [{"InstanceType": "t3.small"}, {"InstanceType": "t3a.small"}],
        },
        "InstancesDistribution": {
            "OnDemandBaseCapacity": 1,
            "OnDemandPercentageAboveBaseCapacity": 50,
            "SpotAllocationStrategy": "price-capacity-optimized",
        },
    }
    subnets = ctx.client("ec2").describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    assert sorted(req["VPCZoneIdentifier"].split(",")) == sorted(s["SubnetId"] for s in subnets)
    assert len(subnets) == 6
    assert (req["MinSize"], req["MaxSize"], req["DesiredCapacity"]) == (1, 5, 2)
    assert req["NewInstancesProtectedFromScaleIn"] is True
    assert req["TerminationPolicies"] == ["OldestLaunchTemplate", "ClosestToNextInstanceHour", "OldestInstance"]
    assert req["CapacityRebalance"] is True
    name_tag = next(t for t in req["Tags"] if t["Key"] == "Name")
    assert name_tag["PropagateAtLaunch"] is True and name_tag["Value"] == "demo-instances"


def test_desired_capacity_is_sent_on_create_only() -> None:
    steps, first = up(make_stack())
    assert sent(first, "CreateAutoScalingGroup")[0]["DesiredCapacity"] == 1
    # the capacity provider scales the group; a re-run must not fight it
    first.client("autoscaling").set_desired_capacity(AutoScalingGroupName="demo-instances", DesiredCapacity=3)
    assert not replan(first, steps, make_stack(instances={"desired": 2})).has_changes

    bigger = make_stack(instances={"max": 6})
    the_plan = replan(first, steps, bigger)
    assert the_plan.get("auto-scaling-group").action is Action.UPDATE
    assert [d.path for d in the_plan.get("auto-scaling-group").diffs] == ["max"]
    ctx = rerun(first, bigger)
    converge(steps, ctx)
    (req,) = sent(ctx, "UpdateAutoScalingGroup")
    assert "DesiredCapacity" not in req and req["MaxSize"] == 6
    g = group(ctx)
    assert g is not None and g["MaxSize"] == 6 and g["DesiredCapacity"] == 3
    assert not replan(first, steps, bigger).has_changes


def test_ecs_managed_tag_is_neither_a_diff_nor_removed() -> None:
    stack = make_stack()
    steps, first = up(stack)
    ctx = first
    # ECS tags a group its capacity provider manages (moto does not: do it as ECS would)
    ctx.client("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": "demo-instances",
                "ResourceType": "auto-scaling-group",
                "Key": "AmazonECSManaged",
                "Value": "",
                "PropagateAtLaunch": True,
            }
        ]
    )
    assert replan(first, steps, stack).get("auto-scaling-group").action is Action.NOOP

    tagged = make_stack(tags={"team": "api"})
    assert replan(first, steps, tagged).get("auto-scaling-group").action is Action.UPDATE
    again = rerun(first, tagged)
    converge(steps, again)
    assert "UpdateAutoScalingGroup" not in writes(again)  # only the tags changed
    (put,) = sent(again, "CreateOrUpdateTags")
    assert [t["Key"] for t in put["Tags"]] == ["team"]
    assert sent(again, "DeleteTags") == []
    g = group(again)
    assert g is not None
    assert {t["Key"] for t in g["Tags"]} >= {"AmazonECSManaged", "team", "Name"}
    assert not replan(first, steps, tagged).has_changes


def test_group_delete_lifts_protection_force_deletes_and_twice_is_fine() -> None:
    stack = make_stack(instances={"desired": 2, "max": 4})
    steps, ctx = up(stack)
    g = group(ctx)
    assert g is not None
    ids = sorted(i["InstanceId"] for i in g["Instances"])
    assert ids and all(i["ProtectedFromScaleIn"] for i in g["Instances"])
    asg = step(steps, "auto-scaling-group")
    current = asg.read(ctx)
    assert current is not None
    asg.delete(ctx, current)
    (protection,) = sent(ctx, "SetInstanceProtection")
    assert sorted(protection["InstanceIds"]) == ids and protection["ProtectedFromScaleIn"] is False
    (delete,) = sent(ctx, "DeleteAutoScalingGroup")
    assert delete["ForceDelete"] is True
    assert writes(ctx)[-2:] == ["SetInstanceProtection", "DeleteAutoScalingGroup"]
    assert group(ctx) is None and asg.read(ctx) is None
    n = len(ctx.aws.writes())
    asg.delete(ctx, current)
    assert len(ctx.aws.writes()) == n


# --------------------------------------------------------------------------- cluster


def test_cluster_is_created_with_container_insights_and_tags() -> None:
    _, ctx = up(make_stack(cluster={"name": "DemoApiClusterProd"}))
    (req,) = sent(ctx, "CreateCluster")
    assert req["clusterName"] == "DemoApiClusterProd"
    assert req["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert {"key": "spotecs:stack", "value": "demo"} in req["tags"]


def test_cluster_insights_switch_is_an_update() -> None:
    steps, first = up(make_stack())
    off = make_stack(cluster={"container_insights": False})
    the_plan = replan(first, steps, off)
    assert the_plan.get("cluster").action is Action.UPDATE
    assert [(d.path, d.old, d.new) for d in the_plan.get("cluster").diffs] == [
        ("container_insights", "enabled", "disabled")
    ]
    ctx = rerun(first, off)
    converge(steps, ctx)
    assert writes(ctx) == ["UpdateCluster"]
    assert cluster(ctx)["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    assert not replan(first, steps, off).has_changes


def _register_instances(ctx: Context) -> list[str]:
    """What the ECS agent on each instance does at boot."""
    g = group(ctx)
    assert g is not None
    ecs = ctx.client("ecs")
    for i in g["Instances"]:
        ecs.register_container_instance(
            cluster="demo", instanceIdentityDocument=json.dumps({"instanceId": i["InstanceId"], "region": REGION})
        )
    return ecs.list_container_instances(cluster="demo")["containerInstanceArns"]


def test_cluster_delete_deregisters_instances_and_twice_is_fine() -> None:
    # 50/50 with 2 instances: moto 5.2.5 truncates a 20% on-demand share of 1 instance to 0 instances
    steps, ctx = up(make_stack(instances={"desired": 2, "on_demand_percent": 50}))
    arns = _register_instances(ctx)
    assert arns
    cl = step(steps, "cluster")
    current = cl.read(ctx)
    assert current is not None
    cl.delete(ctx, current)
    assert sorted(p["containerInstance"] for p in sent(ctx, "DeregisterContainerInstance")) == sorted(arns)
    assert all(p["force"] is True for p in sent(ctx, "DeregisterContainerInstance"))
    assert cluster(ctx)["status"] == "INACTIVE" and cl.read(ctx) is None
    n = len(ctx.aws.writes())
    cl.delete(ctx, current)
    assert len(ctx.aws.writes()) == n


def test_cluster_delete_retries_while_ecs_catches_up(monkeypatch: pytest.MonkeyPatch) -> None:
    steps, ctx = up(make_stack())
    ecs = ctx.client("ecs")
    real = ecs.delete_cluster
    refusals = ["ClusterContainsTasksException", "ClusterContainsContainerInstancesException"]

    def eventually(**kw: Any) -> Any:
        if refusals:
            code = refusals.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": "still busy"}}, "DeleteCluster")
        return real(**kw)

    monkeypatch.setattr(ecs, "delete_cluster", eventually)
    cl = step(steps, "cluster")
    current = cl.read(ctx)
    assert current is not None
    cl.delete(ctx, current)
    assert refusals == [] and cluster(ctx)["status"] == "INACTIVE"


# --------------------------------------------------------------------------- capacity provider


def test_capacity_provider_request_and_cluster_default() -> None:
    _, ctx = up(make_stack(capacity_provider={"target_capacity": 80}))
    g = group(ctx)
    assert g is not None
    (req,) = sent(ctx, "CreateCapacityProvider")
    name = names.capacity_provider("demo-instances", g["AutoScalingGroupARN"])
    assert req["name"] == name == ctx.outputs["capacity-provider"]["name"]
    assert req["autoScalingGroupProvider"] == {
        "autoScalingGroupArn": g["AutoScalingGroupARN"],
        "managedScaling": {
            "status": "ENABLED",
            "targetCapacity": 80,
            "minimumScalingStepSize": 1,
            "maximumScalingStepSize": 10,
            "instanceWarmupPeriod": 300,
        },
        "managedTerminationProtection": "ENABLED",
        "managedDraining": "ENABLED",
    }
    c = cluster(ctx)
    assert c["capacityProviders"] == [name]
    assert c["defaultCapacityProviderStrategy"] == [{"capacityProvider": name, "weight": 1, "base": 0}]


def test_capacity_provider_read_changes_nothing_and_the_plan_shows_the_live_name() -> None:
    _, first = up(make_stack())
    live = first.outputs["capacity-provider"]["name"]
    fresh = compute_steps(make_stack())
    cp = step(fresh, "capacity-provider")
    before = cp.name
    ctx = rerun(first, make_stack())
    assert cp.read(ctx.for_step(cp.key))["name"] == live  # type: ignore[index]
    assert cp.name == before == "demo-instances-<group id>"
    assert plan(fresh, rerun(first, make_stack())).get("capacity-provider").name == live


def test_capacity_provider_target_change_is_an_update() -> None:
    steps, first = up(make_stack())
    name = first.outputs["capacity-provider"]["name"]
    changed = make_stack(capacity_provider={"target_capacity": 90})
    the_plan = replan(first, steps, changed)
    assert the_plan.get("capacity-provider").action is Action.UPDATE
    assert the_plan.get("capacity-provider").name == name
    ctx = rerun(first, changed)
    converge(steps, ctx)
    assert writes(ctx) == ["UpdateCapacityProvider"]
    live = ctx.client("ecs").describe_capacity_providers(capacityProviders=[name])["capacityProviders"][0]
    assert live["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 90
    assert not replan(first, steps, changed).has_changes


def test_capacity_provider_detached_by_hand_is_reattached() -> None:
    stack = make_stack()
    steps, first = up(stack)
    first.client("ecs").put_cluster_capacity_providers(
        cluster="demo", capacityProviders=[], defaultCapacityProviderStrategy=[]
    )
    assert replan(first, steps, stack).get("capacity-provider").action is Action.UPDATE
    again = rerun(first, stack)
    converge(steps, again)
    assert writes(again) == ["PutClusterCapacityProviders"]
    assert cluster(again)["capacityProviders"] == [again.outputs["capacity-provider"]["name"]]


def test_a_recreated_group_replaces_the_provider_under_a_fresh_name() -> None:
    stack = make_stack()
    steps, first = up(stack)
    old = first.outputs["capacity-provider"]["name"]
    # someone deletes the group by hand: the provider now points at nothing
    first.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="demo-instances", ForceDelete=True)
    the_plan = replan(first, steps, stack)
    assert the_plan.get("auto-scaling-group").action is Action.CREATE
    change = the_plan.get("capacity-provider")
    assert change.action is Action.REPLACE
    assert {d.path for d in change.diffs if d.forces_replace} >= {"auto_scaling_group_arn", "name"}
    ctx = rerun(first, stack)
    converge(steps, ctx)
    new = ctx.outputs["capacity-provider"]["name"]
    assert new != old and new.startswith("demo-instances-")
    assert cluster(ctx)["capacityProviders"] == [new]
    gone = ctx.client("ecs").describe_capacity_providers(capacityProviders=[old])["capacityProviders"]
    assert all(p["status"] == "INACTIVE" for p in gone)
    assert not replan(first, steps, stack).has_changes


def test_capacity_provider_delete_detaches_first_and_twice_is_fine() -> None:
    steps, ctx = up(make_stack())
    cp = step(steps, "capacity-provider")
    current = cp.read(ctx)
    assert current is not None
    cp.delete(ctx, current)
    assert writes(ctx)[-2:] == ["PutClusterCapacityProviders", "DeleteCapacityProvider"]
    assert sent(ctx, "PutClusterCapacityProviders")[-1]["capacityProviders"] == []
    assert cluster(ctx)["capacityProviders"] == [] and cp.read(ctx) is None
    n = len(ctx.aws.writes())
    cp.delete(ctx, current)
    assert len(ctx.aws.writes()) == n


def test_other_providers_on_the_cluster_are_kept() -> None:
    stack = make_stack()
    steps, ctx = up(stack)
    name = ctx.outputs["capacity-provider"]["name"]
    ctx.client("ecs").put_cluster_capacity_providers(
        cluster="demo",
        capacityProviders=["FARGATE", name],
        defaultCapacityProviderStrategy=[{"capacityProvider": name, "weight": 1, "base": 0}],
    )
    cp = step(steps, "capacity-provider")
    current = cp.read(ctx)
    assert current is not None
    cp.delete(ctx, current)
    assert cluster(ctx)["capacityProviders"] == ["FARGATE"]
