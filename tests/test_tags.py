"""An edit of the stack file's `tags:` reaches every resource of the stack (issue 10): the plan
of the running article shows each kind's tags changed in place, `up` applies it with tagging
calls only, AWS holds the file's tags and the next plan is empty."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from spotecs.aws import Aws, tag_list
from spotecs.config import Stack
from spotecs.engine.contract import Node
from spotecs.engine.model import Action, Plan
from spotecs.engine.plan import plan
from spotecs.steps.base import Context
from tests.helpers import REGION, Runs, article, cmd, fresh, make_stack, only, target_group_arn, up
from tests.tag_edits import AFTER, BEFORE

pytestmark = pytest.mark.usefixtures("moto")

# Every kind whose tags converge in place, as the plan names it (the auto scaling group is checked
# on its own below, the launch template's volume tags are a new version's content).
IN_PLACE = (
    "ECS cluster",
    "capacity provider",
    "ECS service",
    "task definition",
    "log group",
    "service auto scaling",
)


def planned(text: str, notes: bool = False) -> dict[str, list[str]]:
    """`~ <kind> <name>` -> the field lines under it (or its `# note:` lines), from
    `up --dry-run`'s text plan."""
    out: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.splitlines():
        if m := re.match(r"\s+[~+-]+ (.+)$", line):
            lines = out.setdefault(m.group(1), [])
        elif line.startswith("        ") and line.strip() and line.strip().startswith("# note: ") == notes:
            lines.append(line.strip().removeprefix("# note: "))
    return out


def held(arn: str) -> dict[str, str]:
    """A resource's tags read back from AWS, not by the steps."""
    service = arn.split(":")[2]
    if service == "ecs":
        tags = boto3.client("ecs", region_name=REGION).list_tags_for_resource(resourceArn=arn)["tags"]
        return {t["key"]: t["value"] for t in tags}
    if service == "logs":
        return dict(boto3.client("logs", region_name=REGION).list_tags_for_resource(resourceArn=arn)["tags"])
    return dict(boto3.client(service, region_name=REGION).list_tags_for_resource(ResourceARN=arn)["Tags"])


def the_stack_s_arns() -> list[str]:
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = ecs.describe_clusters(clusters=["DemoApiClusterProd"])["clusters"][0]
    (service,) = ecs.describe_services(cluster="DemoApiClusterProd", services=["article-demo-api"])["services"]
    (provider,) = cluster["capacityProviders"]
    aas = boto3.client("application-autoscaling", region_name=REGION)
    (target,) = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    (group,) = boto3.client("logs", region_name=REGION).describe_log_groups(logGroupNamePrefix="/ecs/article/")[
        "logGroups"
    ]
    return [
        cluster["clusterArn"],
        ecs.describe_capacity_providers(capacityProviders=[provider])["capacityProviders"][0]["capacityProviderArn"],
        service["serviceArn"],
        service["taskDefinition"],
        group["arn"].removesuffix(":*"),
        target["ScalableTargetARN"],
    ]


def test_article_tags_edit_is_planned_on_every_kind_and_converges(runs: Runs, tmp_path: Path) -> None:
    path = article(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    file = path.read_text()
    path.write_text(file + "\ntags: {team: payments, cost-center: cc-17}\n")
    text = cmd("up", "-f", str(path), "--dry-run").stdout
    plan = planned(text)
    # The plan says the running fleet is re-tagged too (steps/fleet_tags.py), nothing else has notes.
    (g,) = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=["article-instances"]
    )["AutoScalingGroups"]
    (s,) = boto3.client("ecs", region_name=REGION).describe_services(
        cluster="DemoApiClusterProd", services=["article-demo-api"]
    )["services"]
    instances, tasks = len(g["Instances"]), s["runningCount"] + s["pendingCount"]
    assert instances > 0 and tasks > 0  # the article runs 2 of each: test_fleet_tags tells them apart
    assert {line: n for line, n in planned(text, notes=True).items() if n} == {
        "auto scaling group article-instances": [
            f"also re-tags the {instances} running instances and their volumes "
            "(AWS tags them from the group and the launch template only at launch)"
        ],
        "ECS service article-demo-api": [
            f"also re-tags the {tasks} running tasks (ECS propagates the service's tags only at launch)"
        ],
    }
    by_kind = {kind: fields for kind in IN_PLACE for line, fields in plan.items() if line.startswith(f"{kind} ")}
    assert set(by_kind) == set(IN_PLACE)
    for kind, fields in by_kind.items():
        assert sorted(fields) == ['tags.cost-center: null → "cc-17"', 'tags.team: null → "payments"'], kind
    (group,) = [f for line, f in plan.items() if line.startswith("auto scaling group ")]
    assert sorted(group) == ['tags.cost-center: null → "cc-17"', 'tags.team: null → "payments"']
    (template,) = [f for line, f in plan.items() if line.startswith("launch template ")]
    assert 'volume_tags.team: null → "payments"' in template

    # One tag changed, one added, one dropped: each resource gets exactly that.
    path.write_text(file + "\ntags: {team: billing, owner: ops}\n")
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    for arn in the_stack_s_arns():
        tags = held(arn)
        assert (tags.get("team"), tags.get("owner"), tags.get("spotecs:stack")) == ("billing", "ops", "article"), arn
        assert "cost-center" not in tags, arn
    # The auto scaling group's (propagated to instances) and the new instances' volumes' agree.
    asg = boto3.client("autoscaling", region_name=REGION)
    (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["article-instances"])["AutoScalingGroups"]
    ec2 = boto3.client("ec2", region_name=REGION)
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateName="article-instances", Versions=["$Default"])[
        "LaunchTemplateVersions"
    ]
    (volumes,) = version["LaunchTemplateData"]["TagSpecifications"]
    for tags in ({t["Key"]: t["Value"] for t in g["Tags"]}, {t["Key"]: t["Value"] for t in volumes["Tags"]}):
        assert (tags.get("team"), tags.get("owner"), tags.get("Name")) == ("billing", "ops", "article-instances")
        assert "cost-center" not in tags
    again = cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert again.code == 0, again.stdout


# The kinds tagged through their own service's calls (ELB, EC2, IAM), as the plan names them.
ALSO_IN_PLACE = ("IAM role", "security group", "target group", "load balancer", "listeners")


def held_elsewhere() -> dict[str, dict[str, str]]:
    """The tags of the load balancer, its listener, the target group, the security groups, the
    launch template itself, the roles and the instance profile, read back from AWS."""

    def tags(items: list[dict[str, str]]) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in items}

    elbv2, ec2 = boto3.client("elbv2", region_name=REGION), boto3.client("ec2", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    (lb,) = elbv2.describe_load_balancers(Names=["article"])["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    (group,) = elbv2.describe_target_groups(Names=["article-demo-api"])["TargetGroups"]
    arns = [lb["LoadBalancerArn"], listener["ListenerArn"], group["TargetGroupArn"]]
    out = {d["ResourceArn"]: tags(d["Tags"]) for d in elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]}
    for sg in ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["article-lb", "article-instances"]}]
    )["SecurityGroups"]:
        out[sg["GroupName"]] = tags(sg["Tags"])
    (template,) = ec2.describe_launch_templates(LaunchTemplateNames=["article-instances"])["LaunchTemplates"]
    out["launch template"] = tags(template["Tags"])
    for role in (f"article-{REGION}-ecs-instance", f"article-{REGION}-ecs-execution"):
        out[role] = tags(iam.list_role_tags(RoleName=role)["Tags"])
    profile = iam.get_instance_profile(InstanceProfileName=f"article-{REGION}-ecs-instance")["InstanceProfile"]
    out["instance profile"] = tags(profile["Tags"])
    return out


def test_article_tags_edit_reaches_the_load_balancer_groups_template_and_roles(runs: Runs, tmp_path: Path) -> None:
    path = article(tmp_path)
    file = path.read_text()
    path.write_text(file + "\ntags: {team: payments, cost-center: cc-17}\n")
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    path.write_text(file + "\ntags: {team: billing, owner: ops}\n")
    plan = planned(cmd("up", "-f", str(path), "--dry-run").stdout)
    edit = ['tags.cost-center: "cc-17" → null', 'tags.owner: null → "ops"', 'tags.team: "payments" → "billing"']
    by_name = {line: fields for line, fields in plan.items() if line.startswith(ALSO_IN_PLACE)}
    assert len(by_name) == 7, plan  # two roles, two security groups, the target group, the balancer, the listeners
    for line, fields in by_name.items():
        assert sorted(f for f in fields if f.startswith("tags.")) == edit, line
        assert sorted(fields) == sorted(
            edit + [f"instance_profile_{f}" for f in edit] if "ecs-instance" in line else edit
        ), line
    (template,) = [f for line, f in plan.items() if line.startswith("launch template ")]
    assert set(edit) <= set(template)

    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    held = held_elsewhere()
    assert len(held) == 9
    for what, tags in held.items():
        assert (tags.get("team"), tags.get("owner"), tags.get("spotecs:stack")) == ("billing", "ops", "article"), what
        assert "cost-center" not in tags, what
    again = cmd("up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert again.code == 0, again.stdout


# The kinds whose tags come from the stack's tagging-API read (steps.base.stack_tagged).
FROM_THE_INDEX = ("load-balancer", "target-group:api", "listeners", "launch-template", "log-group:api")


def _index_answers(monkeypatch: pytest.MonkeyPatch, tags: dict[str, str]) -> None:
    """The tagging API's index still holds `tags` (and the stack's own) for every resource: what
    it answers right after `up` re-tagged them, as it is eventually consistent."""
    real = Aws.read_pages

    def stale(self: Aws, intent: str, service: str, operation: str, key: str, /, **params: Any) -> list[Any]:
        found = real(self, intent, service, operation, key, **params)
        if operation != "get_resources":
            return found
        return [
            {**r, "Tags": [t for t in r["Tags"] if t["Key"].startswith("spotecs:")] + tag_list(tags)} for r in found
        ]

    monkeypatch.setattr(Aws, "read_pages", stale)


def _plan(steps: list[Node], stack: Stack) -> tuple[Plan, Context]:
    ctx = fresh(stack)
    with ctx.aws.reading():
        return plan(steps, ctx), ctx


def _asked(ctx: Context) -> list[tuple[str, list[str]]]:
    """The resources' own tag reads: (operation, what each asked)."""
    out = []
    for c in ctx.aws.calls:
        if c.operation == "DescribeTags":
            out.append((c.operation, sorted(c.params["ResourceArns"])))
        elif c.operation in ("ListTagsLogGroup", "DescribeLaunchTemplates"):
            out.append((c.operation, [c.params.get("logGroupName") or c.params["LaunchTemplateNames"][0]]))
    return sorted(out)


def test_old_tags_in_the_tagging_index_are_confirmed_on_the_resource_not_planned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = make_stack(tags=AFTER)
    steps, _ = up(stack, only(*FROM_THE_INDEX))
    # The index agrees with the file: no resource is asked for its tags.
    agreed, ctx = _plan(steps, stack)
    assert not agreed.has_changes and _asked(ctx) == []
    calls = list(ctx.aws.calls)

    _index_answers(monkeypatch, BEFORE)
    the_plan, ctx = _plan(steps, stack)
    assert {c.key: c.action for c in the_plan.changes if c.key in FROM_THE_INDEX} == dict.fromkeys(
        FROM_THE_INDEX, Action.NOOP
    )
    assert not the_plan.has_changes, the_plan.summary()
    elbv2 = boto3.client("elbv2", region_name=REGION)
    (lb,) = elbv2.describe_load_balancers(Names=["demo"])["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    # One DescribeTags for the balancer and its target group, one for the listener; one read each
    # of the template and the log group: nothing else added to the plan.
    assert _asked(ctx) == sorted(
        [
            ("DescribeLaunchTemplates", ["demo-instances"]),
            ("DescribeTags", sorted([lb["LoadBalancerArn"], target_group_arn("demo-api")])),
            ("DescribeTags", [listener["ListenerArn"]]),
            ("ListTagsLogGroup", ["/ecs/demo/api"]),
        ]
    )
    assert len(ctx.aws.calls) == len(calls) + 4


def test_tags_changed_on_the_resources_themselves_are_still_planned() -> None:
    stack = make_stack(tags=AFTER)
    steps, _ = up(stack, only(*FROM_THE_INDEX))
    elbv2 = boto3.client("elbv2", region_name=REGION)
    (lb,) = elbv2.describe_load_balancers(Names=["demo"])["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    arns = [lb["LoadBalancerArn"], target_group_arn("demo-api"), listener["ListenerArn"]]
    elbv2.add_tags(ResourceArns=arns, Tags=[{"Key": "team", "Value": "rogue"}])
    ec2 = boto3.client("ec2", region_name=REGION)
    (lt,) = ec2.describe_launch_templates(LaunchTemplateNames=["demo-instances"])["LaunchTemplates"]
    ec2.create_tags(Resources=[lt["LaunchTemplateId"]], Tags=[{"Key": "team", "Value": "rogue"}])
    boto3.client("logs", region_name=REGION).tag_log_group(logGroupName="/ecs/demo/api", tags={"team": "rogue"})

    the_plan, _ = _plan(steps, stack)
    for key in FROM_THE_INDEX:
        change = the_plan.get(key)
        assert change.action is Action.UPDATE and change.changed_fields() == {"tags"}, (key, change.diffs)
