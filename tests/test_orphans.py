"""steps/orphans.py: what the stack owns but its file no longer names is deleted by `up` and
`teardown`, and only that."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import boto3
import pytest

from spotecs import names
from spotecs.aws import tag_list
from spotecs.steps import build
from spotecs.steps.orphans import find
from tests.helpers import (
    MINIMAL,
    REGION,
    STACK_TAG,
    Runs,
    cmd,
    converge,
    deep_merge,
    fresh,
    leftovers,
    make_stack,
    patch_client,
    providers_of,
    refuse,
    stack_file,
    up,
)

TWO = deep_merge(
    MINIMAL,
    {
        "services": {
            "old": {
                "image": "bitnami/node-example:0.0.1",
                "container_port": 3000,
                "routing": {"paths": ["/old/*"]},
                "scaling": {"min": 1, "max": 3, "target_tracking": [{"metric": "cpu", "target": 70}]},
            }
        }
    },
)


def old_left() -> list[str]:
    """What of service `old` (stack demo) is still there."""
    return [x for x in leftovers("demo", "demo") if "old" in x]


def rules() -> list[str]:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    lb = elbv2.describe_load_balancers(Names=["demo"])["LoadBalancers"][0]["LoadBalancerArn"]
    return [
        a.get("TargetGroupArn", "").split("/")[-2]
        for x in elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]
        for r in elbv2.describe_rules(ListenerArn=x["ListenerArn"])["Rules"]
        if not r["IsDefault"]
        for a in r["Actions"]
    ]


def test_up_deletes_what_a_service_removed_from_the_file_left(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = stack_file(tmp_path, TWO)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    assert rules() == ["demo-old"]
    before = old_left()
    assert {
        "ECS service demo-old",
        "target group demo-old",
        "task definition demo-old:1",
        "log group /ecs/demo/old",
        "scalable target service/demo/demo-old",
    } <= set(before)

    stack_file(tmp_path, MINIMAL)  # `old` removed from the file
    out = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert out.code == 0, out.text
    for line in (
        "- ECS service demo-old",
        "- target group demo-old",
        "- task definition demo-old",
        "- log group /ecs/demo/old",
        "- service auto scaling service/demo/demo-old",
        "~ listeners demo :80",
    ):
        assert line in out.text, line
    assert "Plan: 0 to add, 1 to change, 0 to replace, 5 to destroy." in out.text
    # The stack's only data goes too: said before the question, as teardown says it.
    assert "The logs in log group /ecs/demo/old will be deleted (--keep-logs keeps them)." in out.text
    assert old_left() == [] and rules() == []
    assert "ECS service demo-api" in leftovers("demo", "demo")  # the one still named is untouched
    again = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert "No changes." in again.text and runs.writes() == []


def test_teardown_removes_the_resources_of_a_service_the_file_lost(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = stack_file(tmp_path, TWO)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    providers = providers_of("demo")
    stack_file(tmp_path, MINIMAL)
    out = cmd("teardown", "-f", str(path), "--yes")
    assert out.code == 0, out.text
    assert "- ECS service demo-old" in out.text and "- target group demo-old" in out.text
    assert leftovers("demo", "demo", providers) == []


def test_a_stack_no_longer_routing_any_service_drops_its_load_balancer(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = stack_file(tmp_path, MINIMAL)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    worker = deep_merge(MINIMAL, {})
    worker["services"]["api"] = {"image": "bitnami/node-example:0.0.1"}  # no container_port: a worker
    stack_file(tmp_path, worker)
    out = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert out.code == 0, out.text
    for line in ("- load balancer demo", "- listeners demo :80", "- security group demo-lb", "- target group demo-api"):
        assert line in out.text, line
    left = leftovers("demo", "demo")
    assert not any(
        x.startswith(("load balancer", "listener", "target group", "security group demo-lb")) for x in left
    ), left
    # Nothing more to do on the next run: no deletion left, and the worker's service settled.
    assert "No changes." in cmd("up", "-f", str(path), "--dry-run").text


def test_only_what_carries_the_stack_tags_is_an_orphan(moto: None, runs: Runs, tmp_path: Path) -> None:
    path = stack_file(tmp_path, MINIMAL)
    elbv2, logs = boto3.client("elbv2", region_name=REGION), boto3.client("logs", region_name=REGION)
    ecs = boto3.client("ecs", region_name=REGION)
    vpc = boto3.client("ec2", region_name=REGION).describe_vpcs()["Vpcs"][0]["VpcId"]
    elbv2.create_target_group(Name="demo-theirs", Protocol="HTTP", Port=80, VpcId=vpc)  # untagged
    elbv2.create_target_group(
        Name="demo-api-web",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,  # stack demo-api's
        Tags=tag_list({STACK_TAG: "demo-api", "spotecs:managed": "true"}),
    )
    logs.create_log_group(logGroupName="/ecs/demo/theirs")
    ecs.register_task_definition(
        family="demo-api-web",
        containerDefinitions=[{"name": "x", "image": "y", "memory": 8}],
        tags=tag_list({STACK_TAG: "demo-api", "spotecs:managed": "true"}, "key", "value"),
    )
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    ecs.create_service(
        cluster="demo", serviceName="theirs", desiredCount=0, taskDefinition="demo-api-web"
    )  # untagged, in our cluster
    plan = cmd("up", "-f", str(path), "--dry-run")
    assert "No changes." in plan.text and "theirs" not in plan.text and "demo-api-web" not in plan.text
    out = cmd("teardown", "-f", str(path), "--yes")
    assert out.code == 1  # the cluster still runs `theirs`: said, not deleted
    assert "still runs service(s) theirs that this stack does not delete" in out.text
    assert sorted(g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]) == [
        "demo-api-web",
        "demo-theirs",
    ]
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["/ecs/demo/theirs"]
    assert [a.rsplit("/", 1)[-1] for a in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]] == [
        "demo-api-web:1"
    ]


def test_find_returns_nothing_for_a_stack_that_matches_its_file(moto: None) -> None:
    stack = make_stack(**{"services": TWO["services"]})
    steps, ctx = up(stack)
    assert find(fresh(stack), steps) == []
    assert find(fresh(stack), steps, destroy=True) == []
    # A filtered step list does not turn what the file names into orphans.
    assert find(fresh(stack), steps[:3]) == []
    one = make_stack()
    keys = {s.key: s for s in find(fresh(one), build(one, REGION))}
    assert sorted(keys) == [
        "orphan:log-group:old",
        "orphan:scaling:demo-old",
        "orphan:service:demo-old",
        "orphan:target-group:old",
        "orphan:task-definition:old",
    ]
    assert keys["orphan:service:demo-old"].depends_on == (
        "cluster",
        "capacity-provider",
        "listeners",
        "orphan:task-definition:old",
        "orphan:target-group:old",
    )
    assert keys["orphan:scaling:demo-old"].depends_on == ("orphan:service:demo-old",)
    assert keys["orphan:task-definition:old"].depends_on == ("iam:execution-role", "orphan:log-group:old")
    assert all(s.desired(ctx) is None for s in keys.values())


def test_a_service_that_loses_its_scaling_loses_its_scalable_target(moto: None) -> None:
    stack = make_stack(
        **{"services": {"api": {"scaling": {"min": 1, "max": 2, "target_tracking": [{"metric": "cpu", "target": 80}]}}}}
    )
    up(stack)
    plain = make_stack()
    (orphan,) = find(fresh(plain), build(plain, REGION))
    assert orphan.key == "orphan:scaling:demo-api" and orphan.depends_on == ("service:api",)
    steps = [*build(plain, REGION), orphan]
    plan_ctx = fresh(plain)
    _, result = converge(steps, plan_ctx)
    assert "orphan:scaling:demo-api" in result.applied
    aas = plan_ctx.client("application-autoscaling")
    assert aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    assert result.applied[-1] == "orphan:scaling:demo-api"  # deletions run after the forward walk


OWNED = {STACK_TAG: "demo", "spotecs:managed": "true"}
READ_ONLY = "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"


def test_a_removed_service_s_task_role_and_what_carries_the_stack_tags_under_other_names_are_orphans(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    path = stack_file(
        tmp_path, deep_merge(TWO, {"services": {"old": {"task_role": {"managed_policies": [READ_ONLY]}}}})
    )
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    # What an earlier file or spotecs may have left under other names, tagged as stack demo's.
    ec2, elbv2 = boto3.client("ec2", region_name=REGION), boto3.client("elbv2", region_name=REGION)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    lb = elbv2.create_load_balancer(
        Name="demo-old", Subnets=subnets[:2], Scheme="internet-facing", Tags=tag_list(OWNED)
    )["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name="demo-older", Protocol="HTTP", Port=80, VpcId=vpc, Tags=tag_list(OWNED))
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroups"][0]["TargetGroupArn"]}],
    )
    elbv2.create_target_group(Name="theirs-tg", Protocol="HTTP", Port=80, VpcId=vpc)  # untagged: not ours
    iam = boto3.client("iam", region_name=REGION)
    role = f"demo-{REGION}-old-task"
    assert iam.get_role(RoleName=role)["Role"]["RoleName"] == role

    stack_file(tmp_path, MINIMAL)  # service `old` removed
    out = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert out.code == 0, out.text
    for line in (f"- IAM role {role}", "- load balancer demo-old", "- ECS service demo-old"):
        assert line in out.text, line
    assert "theirs" not in out.text
    assert [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"] == role] == []
    assert [b["LoadBalancerName"] for b in elbv2.describe_load_balancers()["LoadBalancers"]] == ["demo"]
    assert sorted(g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]) == [
        "demo-api",
        "theirs-tg",
    ]  # demo-older: a target group named like the stack's is orphans.py's
    assert "No changes." in cmd("up", "-f", str(path), "--dry-run").text


LOOK_ALIKES = [
    "auto scaling group demo-lookalike-asg",
    "launch template demo-lookalike-lt",
    "security group demo-lookalike-sg",
]


def _plant_tagged_orphans() -> dict[str, str]:
    """What an earlier file or spotecs may have left of stack demo under names the file does not
    give, tagged as the stack's: a group (one instance) launching its own template in its own
    security group, with its capacity provider held by a cluster of an earlier name that runs a
    service; a load balancer in that security group forwarding to a target group; a log group.
    And an untagged look-alike of each kind. Returns the provider's name."""
    ec2, asg = boto3.client("ec2", region_name=REGION), boto3.client("autoscaling", region_name=REGION)
    ecs, elbv2 = boto3.client("ecs", region_name=REGION), boto3.client("elbv2", region_name=REGION)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    logs = boto3.client("logs", region_name=REGION)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    for tags, suffix in ((tag_list(OWNED), "previous"), ([], "lookalike")):
        spec = [{"ResourceType": "security-group", "Tags": tags}] if tags else []
        group_id = ec2.create_security_group(
            GroupName=f"demo-{suffix}-sg", Description="earlier", VpcId=vpc, TagSpecifications=spec
        )["GroupId"]
        data = {"ImageId": image, "InstanceType": "t3.small", "SecurityGroupIds": [group_id]}
        spec = [{"ResourceType": "launch-template", "Tags": tags}] if tags else []
        template = ec2.create_launch_template(
            LaunchTemplateName=f"demo-{suffix}-lt", LaunchTemplateData=data, TagSpecifications=spec
        )["LaunchTemplate"]["LaunchTemplateId"]
        asg.create_auto_scaling_group(
            AutoScalingGroupName=f"demo-{suffix}-asg",
            LaunchTemplate={"LaunchTemplateId": template, "Version": "$Default"},
            MinSize=0,
            MaxSize=3,
            DesiredCapacity=1 if tags else 0,
            VPCZoneIdentifier=subnets[0],
            Tags=[{**t, "PropagateAtLaunch": True} for t in tags],
        )
        elb_tags = {"Tags": tags} if tags else {}
        target = elbv2.create_target_group(Name=f"{suffix}-web", Protocol="HTTP", Port=80, VpcId=vpc, **elb_tags)
        balancer = elbv2.create_load_balancer(
            Name=f"demo-{suffix}-lb",
            Subnets=subnets[:2],
            SecurityGroups=[group_id],
            Scheme="internet-facing",
            **elb_tags,
        )["LoadBalancers"][0]["LoadBalancerArn"]
        elbv2.create_listener(
            LoadBalancerArn=balancer,
            Protocol="HTTP",
            Port=8080,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": target["TargetGroups"][0]["TargetGroupArn"]}],
        )
        logs.create_log_group(logGroupName=f"/earlier/demo-{suffix}", **({"tags": OWNED} if tags else {}))
    arn = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-previous-asg"])["AutoScalingGroups"][0][
        "AutoScalingGroupARN"
    ]
    provider = names.capacity_provider("demo-previous-asg", arn)
    ecs_tags = tag_list(OWNED, "key", "value")
    ecs.create_capacity_provider(name=provider, autoScalingGroupProvider={"autoScalingGroupArn": arn}, tags=ecs_tags)
    ecs.create_cluster(clusterName="demo-previous", tags=ecs_tags)
    ecs.put_cluster_capacity_providers(
        cluster="demo-previous",
        capacityProviders=[provider],
        defaultCapacityProviderStrategy=[{"capacityProvider": provider, "weight": 1, "base": 0}],
    )
    ecs.create_service(
        cluster="demo-previous", serviceName="demo-api", taskDefinition="demo-api", desiredCount=0, tags=ecs_tags
    )
    return {"provider": provider}


def _deleted(runs: Runs, operation: str, param: str) -> list[str]:
    return [str(c.params.get(param)) for c in runs.sessions[-1].writes() if c.operation == operation]


def test_what_carries_the_stack_tags_under_names_the_file_does_not_give_is_deleted_by_up(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    path = stack_file(tmp_path, MINIMAL)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    stack = leftovers("demo", "demo")
    assert "No changes." in cmd("up", "-f", str(path), "--dry-run").text
    no_op = Counter((c.service, c.operation) for c in runs.sessions[-1].calls)
    provider = _plant_tagged_orphans()["provider"]

    plan = cmd("up", "-f", str(path), "--dry-run")
    lines = (
        "- launch template demo-previous-lt",
        "- security group demo-previous-sg",
        "- auto scaling group demo-previous-asg",
        f"- capacity provider {provider}",
        "- ECS cluster demo-previous",
        "- target group previous-web",
        "- load balancer demo-previous-lb",
        "- log group /earlier/demo-previous",
    )
    for line in lines:
        assert line in plan.text, line
    assert "lookalike" not in plan.text
    assert "Plan: 0 to add, 0 to change, 0 to replace, 9 to destroy." in plan.text  # and the cluster's service

    out = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert out.code == 0, out.text
    writes = [c.operation for c in runs.sessions[-1].writes() if c.operation.startswith("Delete")]
    # AWS's order: the service, its cluster, the provider it held, the group, its template, its
    # security group.
    chain = ["DeleteService", "DeleteCluster", "DeleteCapacityProvider", "DeleteAutoScalingGroup"]
    chain += ["DeleteLaunchTemplate", "DeleteSecurityGroup"]
    assert [w for w in writes if w in chain] == chain
    # The load balancer before the security group it is in and the target group it forwards to.
    assert writes.index("DeleteLoadBalancer") < min(
        writes.index("DeleteSecurityGroup"), writes.index("DeleteTargetGroup")
    )
    assert _deleted(runs, "DeleteCapacityProvider", "capacityProvider") == [provider]
    assert _deleted(runs, "DeleteAutoScalingGroup", "AutoScalingGroupName") == ["demo-previous-asg"]
    assert _deleted(runs, "DeleteCluster", "cluster") == ["demo-previous"]
    assert [x for x in leftovers("demo", "demo-previous", [provider]) if "previous" in x] == []
    assert sorted(leftovers("demo", "demo")) == sorted(stack + LOOK_ALIKES)
    _assert_look_alikes_only(["demo"], ["demo-api", "lookalike-web"])
    again = cmd("up", "-f", str(path), "--dry-run")
    assert "No changes." in again.text, again.text
    # The untagged look-alikes left cost the plan no call; the cluster deleted above is still
    # listed by the tagging API (ECS keeps it INACTIVE for a while): described once, and left.
    calls = Counter((c.service, c.operation) for c in runs.sessions[-1].calls)
    assert calls - no_op == Counter({("ecs", "DescribeClusters"): 1}) and no_op - calls == Counter()


def test_teardown_with_the_current_file_removes_what_carries_the_stack_tags_under_other_names(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    path = stack_file(tmp_path, MINIMAL)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    providers = [*providers_of("demo"), _plant_tagged_orphans()["provider"]]
    out = cmd("teardown", "-f", str(path), "--yes")
    assert out.code == 0, out.text
    assert "- auto scaling group demo-previous-asg" in out.text and "lookalike" not in out.text
    assert sorted(leftovers("demo", "demo", providers)) == LOOK_ALIKES
    assert sorted(leftovers("demo", "demo-previous", providers)) == LOOK_ALIKES
    _assert_look_alikes_only([], ["lookalike-web"])


def _assert_look_alikes_only(balancers: list[str], target_groups: list[str]) -> None:
    elbv2, logs = boto3.client("elbv2", region_name=REGION), boto3.client("logs", region_name=REGION)
    assert sorted(b["LoadBalancerName"] for b in elbv2.describe_load_balancers()["LoadBalancers"]) == [
        *balancers,
        "demo-lookalike-lb",
    ]
    assert sorted(g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]) == target_groups
    groups = logs.describe_log_groups(logGroupNamePrefix="/earlier/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/earlier/demo-lookalike"]


TRUST = '{"Version":"2012-10-17","Statement":[]}'


def test_roles_tagged_as_the_stack_s_under_names_the_file_does_not_give_are_planned_gone_and_torn_down(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    """From the plan's one read of the account's roles: a removed service's task role, the task
    role of a service that stays but drops `task_role`, and an earlier file's role with its
    instance profile go; a role of a matching name not tagged as ours, the stack's roles in
    another region and the drill's role stay (teardown, with the current file, removes the
    drill's too)."""
    task_role = {"task_role": {"managed_policies": [READ_ONLY]}}
    path = stack_file(tmp_path, deep_merge(TWO, {"services": {"api": task_role, "old": task_role}}))
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    iam = boto3.client("iam", region_name=REGION)
    legacy, theirs = f"demo-{REGION}-legacy", f"demo-{REGION}-theirs"
    elsewhere, drill = "demo-eu-west-1-legacy", f"demo-{REGION}-fis-drill"
    for role, tags in ((legacy, OWNED), (theirs, {}), (elsewhere, OWNED), (drill, OWNED)):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST, Tags=tag_list(tags))
    iam.attach_role_policy(RoleName=legacy, PolicyArn=READ_ONLY)
    iam.create_instance_profile(InstanceProfileName=legacy, Tags=tag_list(OWNED))
    iam.add_role_to_instance_profile(InstanceProfileName=legacy, RoleName=legacy)

    def roles() -> list[str]:
        return sorted(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("demo-"))

    stack_file(tmp_path, MINIMAL)  # `old` removed, `api` without its task role
    plan = cmd("up", "-f", str(path), "--dry-run")
    gone = [f"demo-{REGION}-api-task", legacy, f"demo-{REGION}-old-task"]
    for role in gone:
        assert f"- IAM role {role}" in plan.text, role
    assert theirs not in plan.text and elsewhere not in plan.text and drill not in plan.text
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    mine = [f"demo-{REGION}-ecs-execution", f"demo-{REGION}-ecs-instance"]
    assert roles() == sorted([*mine, elsewhere, drill, theirs])
    assert [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]] == [mine[1]]
    assert "No changes." in cmd("up", "-f", str(path), "--dry-run").text

    iam.create_role(RoleName=legacy, AssumeRolePolicyDocument=TRUST, Tags=tag_list(OWNED))
    out = cmd("teardown", "-f", str(path), "--yes")
    assert out.code == 0, out.text
    assert f"- IAM role {legacy}" in out.text and f"- IAM role {drill}" in out.text
    assert roles() == sorted([elsewhere, theirs])
    assert iam.list_instance_profiles()["InstanceProfiles"] == []


# ----------------------------------------------------- kinds left under names the file would not give
THEIRS = {STACK_TAG: "demo-api", "spotecs:managed": "true"}  # another stack's, named alike


def _plant_unnamed(kinds: tuple[str, ...]) -> dict[str, str]:
    """What an earlier file (or spotecs) of stack demo may have left under names the current file
    would not give, tagged as demo's, and beside each a look-alike of stack demo-api's and an
    untagged one: a task definition family (two ACTIVE revisions), a capacity provider whose
    group is gone, a step-scaling alarm, a scalable target of a service of a deleted cluster, an
    access-log bucket (with objects), and the instance role's profile without its role."""
    ecs, aas = boto3.client("ecs", region_name=REGION), boto3.client("application-autoscaling", region_name=REGION)
    cw, s3 = boto3.client("cloudwatch", region_name=REGION), boto3.client("s3", region_name=REGION)
    asg, ec2 = boto3.client("autoscaling", region_name=REGION), boto3.client("ec2", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    planted = {}
    for tags, who in ((OWNED, "earlier"), (THEIRS, "theirs"), ({}, "untagged")):
        if "family" in kinds:
            for memory in (96, 160):  # two revisions
                ecs.register_task_definition(
                    family=f"{who}-web",
                    containerDefinitions=[{"name": "web", "image": "nginx", "memory": memory}],
                    **({"tags": tag_list(tags, "key", "value")} if tags else {}),
                )
        if "provider" in kinds:
            subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
            template = ec2.describe_launch_templates(LaunchTemplateNames=["demo-instances"])["LaunchTemplates"][0]
            asg.create_auto_scaling_group(
                AutoScalingGroupName=f"{who}-group",
                LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Default"},
                MinSize=0,
                MaxSize=2,
                VPCZoneIdentifier=subnet,
            )
            arn = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{who}-group"])["AutoScalingGroups"][0][
                "AutoScalingGroupARN"
            ]
            planted[f"provider-{who}"] = provider = names.capacity_provider(f"{who}-group", arn)
            ecs.create_capacity_provider(
                name=provider,
                autoScalingGroupProvider={"autoScalingGroupArn": arn},
                **({"tags": tag_list(tags, "key", "value")} if tags else {}),
            )
            asg.delete_auto_scaling_group(AutoScalingGroupName=f"{who}-group", ForceDelete=True)
        if "alarm" in kinds:
            cw.put_metric_alarm(
                AlarmName=f"{who}-queue-step-deep",
                Namespace="Custom",
                MetricName="Depth",
                Statistic="Average",
                Period=60,
                EvaluationPeriods=3,
                Threshold=17.0,
                ComparisonOperator="GreaterThanThreshold",
                **({"Tags": tag_list(tags)} if tags else {}),
            )
        if "target" in kinds:
            # Stack demo's services are named demo-*: each look-alike's too (only tags tell).
            resource = f"service/{who}-cluster/demo-worker"
            ecs.create_cluster(clusterName=f"{who}-cluster")
            ecs.create_service(
                cluster=f"{who}-cluster", serviceName="demo-worker", taskDefinition="demo-api", desiredCount=0
            )
            aas.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=resource,
                ScalableDimension="ecs:service:DesiredCount",
                MinCapacity=1,
                MaxCapacity=7,
                **({"Tags": tags} if tags else {}),
            )
            aas.put_scheduled_action(
                ServiceNamespace="ecs",
                ResourceId=resource,
                ScalableDimension="ecs:service:DesiredCount",
                ScheduledActionName="demo-worker-nightly",
                Schedule="cron(0 3 * * ? *)",
                ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 5},
            )
            ecs.delete_service(cluster=f"{who}-cluster", service="demo-worker", force=True)
            ecs.delete_cluster(cluster=f"{who}-cluster")  # its service's scaling left behind
        if "bucket" in kinds:
            bucket = f"{who}-alb-logs-7"
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key="AWSLogs/1/log.gz", Body=b"GET / 200")
            if tags:
                s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list(tags)})
    if "profile" in kinds:
        role = f"demo-{REGION}-ecs-instance"
        iam.remove_role_from_instance_profile(InstanceProfileName=role, RoleName=role)
        for policy in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
        iam.delete_role(RoleName=role)  # by hand: its profile stays
        iam.create_instance_profile(InstanceProfileName=f"demo-{REGION}-theirs", Tags=tag_list(THEIRS))
    return planted


def _families() -> list[str]:
    ecs = boto3.client("ecs", region_name=REGION)
    return sorted(a.rsplit("/", 1)[-1] for a in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"])


def _providers(planted: dict[str, str]) -> list[str]:
    """Which of the planted providers are still ACTIVE."""
    ecs = boto3.client("ecs", region_name=REGION)
    got = ecs.describe_capacity_providers(capacityProviders=sorted(planted.values()))["capacityProviders"]
    return sorted(p["name"] for p in got if p["status"] == "ACTIVE")


def _alarms() -> list[str]:
    return sorted(
        a["AlarmName"] for a in boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    )


def _targets() -> list[str]:
    aas = boto3.client("application-autoscaling", region_name=REGION)
    return sorted(t["ResourceId"] for t in aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"])


def _scheduled() -> list[str]:
    aas = boto3.client("application-autoscaling", region_name=REGION)
    got = aas.describe_scheduled_actions(ServiceNamespace="ecs")["ScheduledActions"]
    return sorted(a["ResourceId"] for a in got)


def test_families_providers_alarms_and_targets_left_under_other_names_are_planned_gone_and_deleted_by_up(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    path = stack_file(tmp_path, MINIMAL)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    assert "No changes." in cmd("up", "-f", str(path), "--dry-run").text
    no_op = Counter((c.service, c.operation) for c in runs.sessions[-1].calls)
    planted = _plant_unnamed(("family", "provider", "alarm", "target"))

    plan = cmd("up", "-f", str(path), "--dry-run")
    for line in (
        "- task definition earlier-web",
        f"- capacity provider {planted['provider-earlier']}",
        "- CloudWatch alarm earlier-queue-step-deep",
        "- service auto scaling service/earlier-cluster/demo-worker",
    ):
        assert line in plan.text, line
    assert "theirs" not in plan.text and "untagged" not in plan.text, plan.text
    assert "- task definition earlier-web (delete: tagged as the stack's, no longer in its file)" in plan.text
    assert "Plan: 0 to add, 0 to change, 0 to replace, 4 to destroy." in plan.text

    out = cmd("up", "-f", str(path), "--yes", "--no-wait")
    assert out.code == 0, out.text
    assert _families() == ["demo-api:1", "theirs-web:1", "theirs-web:2", "untagged-web:1", "untagged-web:2"]
    assert _providers(planted) == sorted([planted["provider-theirs"], planted["provider-untagged"]])
    assert _alarms() == ["theirs-queue-step-deep", "untagged-queue-step-deep"]
    assert _targets() == ["service/theirs-cluster/demo-worker", "service/untagged-cluster/demo-worker"]
    assert _scheduled() == ["service/theirs-cluster/demo-worker", "service/untagged-cluster/demo-worker"]
    # The family's revisions are deleted too, so no later plan finds (and describes) it again.
    again = cmd("up", "-f", str(path), "--dry-run")
    assert "No changes." in again.text, again.text
    calls = Counter((c.service, c.operation) for c in runs.sessions[-1].calls)
    # Only the look-alike targets of another stack's cluster are asked their tags (named demo-*).
    assert calls - no_op == Counter({("application-autoscaling", "ListTagsForResource"): 2}), calls - no_op


def test_teardown_with_the_current_file_removes_every_kind_left_under_other_names(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    path = stack_file(tmp_path, MINIMAL)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    providers = providers_of("demo")
    planted = _plant_unnamed(("family", "provider", "alarm", "target", "bucket", "profile"))
    out = cmd("teardown", "-f", str(path), "--yes")
    assert out.code == 0, out.text
    for line in (
        "- task definition earlier-web",
        f"- capacity provider {planted['provider-earlier']}",
        "- CloudWatch alarm earlier-queue-step-deep",
        "- service auto scaling service/earlier-cluster/demo-worker",
        "- S3 bucket earlier-alb-logs-7",
        f"- IAM instance profile demo-{REGION}-ecs-instance",
    ):
        assert line in out.text, line
    assert "theirs" not in out.text and "untagged" not in out.text, out.text
    assert leftovers("demo", "demo", providers) == []
    assert _families() == ["theirs-web:1", "theirs-web:2", "untagged-web:1", "untagged-web:2"]
    assert _providers(planted) == sorted([planted["provider-theirs"], planted["provider-untagged"]])
    assert _alarms() == ["theirs-queue-step-deep", "untagged-queue-step-deep"]
    assert _targets() == ["service/theirs-cluster/demo-worker", "service/untagged-cluster/demo-worker"]
    s3, iam = boto3.client("s3", region_name=REGION), boto3.client("iam", region_name=REGION)
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["theirs-alb-logs-7", "untagged-alb-logs-7"]
    assert [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]] == [
        f"demo-{REGION}-theirs"
    ]
    assert "Nothing to delete" in cmd("teardown", "-f", str(path), "--yes").text


def test_an_access_log_bucket_of_another_name_is_kept_by_up_and_teardown_keep_logs(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    """Like the stack's log groups: `up` and teardown delete it unless told to keep logs
    (tests/test_up_logs.py: deleted by `up`)."""
    path = stack_file(tmp_path, MINIMAL)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    _plant_unnamed(("bucket",))
    kept = cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode", "--keep-logs")
    assert kept.code == 0, kept.text
    assert "S3 bucket earlier-alb-logs-7: kept (--keep-logs)" in kept.text, kept.text
    out = cmd("teardown", "-f", str(path), "--yes", "--keep-logs")
    assert out.code == 0, out.text
    assert "S3 bucket earlier-alb-logs-7: kept (--keep-logs)" in out.text, out.text
    s3 = boto3.client("s3", region_name=REGION)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="earlier-alb-logs-7")["Contents"]] == ["AWSLogs/1/log.gz"]


STEP = {
    "name": "busy",
    "alarm": {"namespace": "AWS/ECS", "metric": "CPUUtilization", "threshold": 65},
    "steps": [{"lower": 0, "change": 2}],
}


def test_an_alarm_whose_policy_is_gone_is_an_orphan_and_one_of_a_policy_the_file_dropped_is_its_scaling_s(
    moto: None, runs: Runs, tmp_path: Path
) -> None:
    tracking = {"metric": "cpu", "target": 60}
    both = {"min": 1, "max": 4, "step_scaling": [STEP, {**STEP, "name": "queue"}], "target_tracking": [tracking]}
    path = stack_file(tmp_path, deep_merge(MINIMAL, {"services": {"api": {"scaling": both}}}))
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    mine = [a for a in _alarms() if not a.startswith("TargetTracking-")]  # those are AWS's own
    assert mine == ["demo-api-step-busy", "demo-api-step-queue"]
    aas = boto3.client("application-autoscaling", region_name=REGION)
    aas.delete_scaling_policy(  # by hand: its alarm stays, firing into nothing
        PolicyName="demo-api-step-queue",
        ServiceNamespace="ecs",
        ResourceId="service/demo/demo-api",
        ScalableDimension="ecs:service:DesiredCount",
    )
    one = {"min": 1, "max": 4, "target_tracking": [tracking]}  # and the file drops both policies
    stack_file(tmp_path, deep_merge(MINIMAL, {"services": {"api": {"scaling": one}}}))
    plan = cmd("up", "-f", str(path), "--dry-run")
    assert "- CloudWatch alarm demo-api-step-queue" in plan.text and "alarm demo-api-step-busy" not in plan.text
    assert "~ service auto scaling service/demo/demo-api" in plan.text
    assert "Plan: 0 to add, 1 to change, 0 to replace, 1 to destroy." in plan.text, plan.text
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    assert [a for a in _alarms() if not a.startswith("TargetTracking-")] == []
    assert "No changes." in cmd("up", "-f", str(path), "--dry-run").text


def test_a_bucket_of_another_name_spotecs_may_not_read_is_left_and_the_teardown_plan_still_made(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's S3 permissions cover `<stack>-alb-logs-*` only."""
    stack = make_stack()
    steps, _ = up(stack)
    _plant_unnamed(("bucket",))
    ctx = fresh(stack)
    assert [s.name for s in find(ctx, steps, destroy=True) if s.kind == "S3 bucket"] == ["earlier-alb-logs-7"]
    ctx = fresh(stack)
    patch_client(monkeypatch, ctx, "s3", "get_bucket_location", refuse("AccessDenied"))
    assert [s.name for s in find(ctx, steps, destroy=True) if s.kind == "S3 bucket"] == []


def test_a_family_is_deregistered_even_where_its_revisions_may_not_be_deleted(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    steps, _ = up(stack)
    _plant_unnamed(("family",))
    ctx = fresh(stack)
    (family,) = [s for s in find(ctx, steps) if s.kind == "task definition"]
    patch_client(monkeypatch, ctx, "ecs", "delete_task_definitions", refuse("AccessDeniedException"))
    current = family.read(ctx)
    assert current is not None and current["revision"] == 2
    family.delete(ctx, current)
    assert _families() == ["demo-api:1", "theirs-web:1", "theirs-web:2", "untagged-web:1", "untagged-web:2"]


def test_the_scaling_of_a_service_gone_from_a_cluster_of_an_earlier_name_that_remains_is_an_orphan(
    moto: None,
) -> None:
    stack = make_stack()
    steps, _ = up(stack)
    ecs, aas = boto3.client("ecs", region_name=REGION), boto3.client("application-autoscaling", region_name=REGION)
    ecs.create_cluster(clusterName="demo-previous", tags=tag_list(OWNED, "key", "value"))
    for service, tags in (("demo-gone", OWNED), ("demo-theirs", THEIRS)):
        ecs.create_service(cluster="demo-previous", serviceName=service, taskDefinition="demo-api", desiredCount=0)
        aas.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/demo-previous/{service}",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=2,
            MaxCapacity=6,
            Tags=tags,
        )
        ecs.delete_service(cluster="demo-previous", service=service, force=True)
    found = {s.key: s for s in find(fresh(stack), steps)}
    assert sorted(found) == ["orphan:cluster:demo-previous", "orphan:scaling:service/demo-previous/demo-gone"]
    _, result = converge([*steps, *found.values()], fresh(stack))
    assert "orphan:scaling:service/demo-previous/demo-gone" in result.applied
    assert _targets() == ["service/demo-previous/demo-theirs"]
