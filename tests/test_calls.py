"""AWS calls per operation for the article's stack (issue 15): `up` from nothing (--no-wait), a
plan with everything in place (`up --dry-run`) and `teardown`, through the CLI on moto. The
counts are exact, per (service, operation): a regression names the call it added. The lock's own
calls (lock.py) are left out: they are the same for every command that writes.

The no-op plan's floor: one read per resource kind, each describe made once whoever asks
(aws.Aws.reading), the orphan search sharing the steps' listings."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from spotecs import config
from spotecs.steps.listeners import Listeners
from spotecs.up import PLAN_SERVICES, plan_services
from tests.helpers import Runs, article, cmd, production

pytestmark = pytest.mark.usefixtures("moto")

NO_OP_PLAN: dict[str, int] = {
    "application-autoscaling.DescribeScalableTargets": 1,
    "application-autoscaling.DescribeScalingPolicies": 1,
    "application-autoscaling.DescribeScheduledActions": 1,
    "application-autoscaling.ListTagsForResource": 1,  # the scalable target's tags (issue 10)
    "autoscaling.DescribeAutoScalingGroups": 1,
    "ec2.DescribeImages": 1,
    "ec2.DescribeInstanceTypes": 1,
    "ec2.DescribeLaunchTemplateVersions": 1,
    "ec2.DescribeSecurityGroups": 1,
    "ec2.DescribeSubnets": 1,
    "ecs.DescribeCapacityProviders": 1,
    "ecs.DescribeClusters": 1,
    "ecs.DescribeServices": 1,
    "ecs.DescribeTaskDefinition": 1,
    "ecs.ListServices": 1,
    "ecs.ListTaskDefinitionFamilies": 1,
    "elbv2.DescribeListeners": 1,
    "elbv2.DescribeLoadBalancerAttributes": 1,
    "elbv2.DescribeLoadBalancers": 1,
    "elbv2.DescribeRules": 1,
    "elbv2.DescribeTargetGroupAttributes": 1,
    "elbv2.DescribeTargetGroups": 1,
    "iam.GetAccountAuthorizationDetails": 1,
    "logs.DescribeLogGroups": 1,
    "resourcegroupstaggingapi.GetResources": 1,
    "ssm.GetParameter": 1,
}


UP: dict[str, int] = {
    "application-autoscaling.DescribeScalableTargets": 1,
    "application-autoscaling.PutScalingPolicy": 1,
    "application-autoscaling.RegisterScalableTarget": 1,
    "autoscaling.CreateAutoScalingGroup": 1,
    "autoscaling.DescribeAutoScalingGroups": 4,  # the stack's groups by tag, then ours by name
    "ec2.AuthorizeSecurityGroupIngress": 2,
    "ec2.CreateLaunchTemplate": 1,
    "ec2.CreateSecurityGroup": 2,
    "ec2.DescribeImages": 1,
    "ec2.DescribeInstanceTypes": 1,
    "ec2.DescribeLaunchTemplateVersions": 1,
    "ec2.DescribeSecurityGroups": 1,
    "ec2.DescribeSubnets": 1,
    "ecs.CreateCapacityProvider": 1,
    "ecs.CreateCluster": 1,
    "ecs.CreateService": 1,
    "ecs.DescribeClusters": 2,
    "ecs.DescribeTaskDefinition": 1,
    "ecs.ListServices": 2,
    "ecs.ListTaskDefinitionFamilies": 1,
    "ecs.PutClusterCapacityProviders": 1,
    "ecs.RegisterTaskDefinition": 1,
    "elbv2.CreateListener": 1,
    "elbv2.CreateLoadBalancer": 1,
    "elbv2.CreateTargetGroup": 1,
    "elbv2.DescribeLoadBalancers": 2,
    "elbv2.DescribeTargetGroups": 1,
    "elbv2.ModifyLoadBalancerAttributes": 1,
    "elbv2.ModifyTargetGroupAttributes": 1,
    "iam.AddRoleToInstanceProfile": 1,
    "iam.AttachRolePolicy": 2,
    "iam.CreateInstanceProfile": 1,
    "iam.CreateRole": 2,
    "iam.GetAccountAuthorizationDetails": 1,
    "logs.CreateLogGroup": 1,
    "logs.DescribeLogGroups": 2,
    "logs.PutRetentionPolicy": 1,
    "resourcegroupstaggingapi.GetResources": 1,
    "ssm.GetParameter": 1,
}

TEARDOWN: dict[str, int] = {
    "application-autoscaling.DeleteScalingPolicy": 1,
    "application-autoscaling.DeregisterScalableTarget": 1,
    "application-autoscaling.DescribeScalableTargets": 1,
    "application-autoscaling.DescribeScalingPolicies": 1,
    "application-autoscaling.DescribeScheduledActions": 1,
    "application-autoscaling.ListTagsForResource": 1,
    "autoscaling.DeleteAutoScalingGroup": 1,
    "autoscaling.DescribeAutoScalingGroups": 3,
    "autoscaling.SetInstanceProtection": 1,
    "cloudwatch.DescribeAlarms": 1,
    "ec2.DeleteLaunchTemplate": 1,
    "ec2.DeleteSecurityGroup": 2,
    "ec2.DescribeLaunchTemplateVersions": 1,
    "ec2.DescribeLaunchTemplates": 1,
    "ec2.DescribeSecurityGroups": 3,
    "ec2.RevokeSecurityGroupIngress": 1,
    "ecs.DeleteCapacityProvider": 1,
    "ecs.DeleteCluster": 1,
    "ecs.DeleteService": 1,
    "ecs.DeregisterTaskDefinition": 1,
    "ecs.DescribeCapacityProviders": 3,
    "ecs.DescribeClusters": 3,
    "ecs.DescribeServices": 5,
    "ecs.DescribeTaskDefinition": 1,
    "ecs.ListContainerInstances": 1,
    "ecs.ListServices": 3,
    "ecs.ListTaskDefinitionFamilies": 1,
    "ecs.ListTaskDefinitions": 1,
    "ecs.PutClusterCapacityProviders": 1,
    "ecs.UpdateService": 1,
    "elbv2.DeleteListener": 1,
    "elbv2.DeleteLoadBalancer": 1,
    "elbv2.DeleteTargetGroup": 1,
    "elbv2.DescribeListeners": 2,
    "elbv2.DescribeLoadBalancerAttributes": 1,
    "elbv2.DescribeLoadBalancers": 2,
    "elbv2.DescribeRules": 1,
    "elbv2.DescribeTargetGroupAttributes": 1,
    "elbv2.DescribeTargetGroups": 2,
    "fis.ListExperimentTemplates": 1,
    "iam.DeleteInstanceProfile": 1,
    "iam.DeleteRole": 2,
    "iam.DetachRolePolicy": 2,
    "iam.GetAccountAuthorizationDetails": 1,
    "iam.RemoveRoleFromInstanceProfile": 1,
    "logs.DeleteLogGroup": 1,
    "logs.DescribeLogGroups": 2,
    "resourcegroupstaggingapi.GetResources": 1,
    "s3.GetBucketTagging": 1,
    "s3.HeadBucket": 1,
    "sts.GetCallerIdentity": 1,
}


# The no-op plan's longest chain of calls each waiting for the one before (aws.Call.depth): the
# orphan search beside the steps' reads, every read issued as soon as what it needs is known.
# Two round trips: what names a resource (a load balancer's ARN, a service's, the scalable
# target's, the AMI id), then what is read by that name; the listeners' rules leave with the
# listeners, by the ARNs the tagging-API read of the first round gives (steps/listeners.py).
NO_OP_PLAN_CRITICAL_PATH = 2
# At that depth, these at least: a read several steps share is made by whichever asks first, so
# as threads happen to run, one more may be made there by a thread already two answers deep.
SECOND_ROUND = {
    "application-autoscaling.DescribeScalingPolicies",
    "ec2.DescribeImages",
    "ecs.DescribeServices",
    "elbv2.DescribeListeners",
    "elbv2.DescribeLoadBalancerAttributes",
    "elbv2.DescribeRules",
    "elbv2.DescribeTargetGroupAttributes",
}


def deepest(runs: Runs) -> dict[int, list[str]]:
    """The last run's calls of the greatest depth, by that depth."""
    calls = [c for c in runs.sessions[-1].calls if not c.is_lock]
    depth = max(c.depth for c in calls)
    return {depth: sorted(f"{c.service}.{c.operation}" for c in calls if c.depth == depth)}


def counted(runs: Runs) -> dict[str, int]:
    """The last run's calls per `service.Operation`, the lock's own left out."""
    return dict(sorted(Counter(f"{c.service}.{c.operation}" for c in runs.sessions[-1].calls if not c.is_lock).items()))


def test_article_calls_per_operation_up_no_op_plan_and_teardown(runs: Runs, tmp_path: Path) -> None:
    path = article(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    up = counted(runs)
    assert up == UP
    assert sum(up.values()) < 59

    assert cmd("up", "-f", str(path), "--dry-run").code == 0
    assert counted(runs) == NO_OP_PLAN
    # 32 with ownership from the tagging-API read, 25 with IAM in one read, 26 with the scalable
    # target's tags (issue 10: DescribeScalableTargets gives none)
    assert sum(NO_OP_PLAN.values()) <= 26
    (depth, calls), *_ = deepest(runs).items()
    assert depth == NO_OP_PLAN_CRITICAL_PATH and set(calls) >= SECOND_ROUND, calls
    # The listeners' first round is asked before every other read (engine.plan.read_all;
    # tests/test_listeners.py says which reads it is).
    assert callable(getattr(Listeners, "first_read", None))
    # Every client the plan calls through was made before its first call (up.PLAN_SERVICES).
    assert {c.service for c in runs.sessions[-1].calls} <= set(PLAN_SERVICES)

    assert cmd("teardown", "-f", str(path), "--yes").code == 0
    down = counted(runs)
    assert down == TEARDOWN
    assert sum(down.values()) < 85


def test_production_no_op_plan_takes_no_more_round_trips_than_the_article_s(runs: Runs, tmp_path: Path) -> None:
    """examples/production.yaml adds an HTTPS listener (its certificate and TLS policy checked),
    an access-log bucket and a step policy's alarm: each read in the first round or by a name
    that round gives, never a round after the others."""
    path = production(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    assert cmd("up", "-f", str(path), "--dry-run").code == 0
    calls = [c for c in runs.sessions[-1].calls if not c.is_lock]
    assert max(c.depth for c in calls) == NO_OP_PLAN_CRITICAL_PATH, [c.operation for c in calls if c.depth > 2]
    # The checks leave with the plan's first round (steps/certificate.py), not after its reads.
    assert {(c.depth, c.operation) for c in calls if c.step == "certificate"} == {
        (1, "DescribeCertificate"),
        (1, "DescribeSSLPolicies"),
    }
    # The bucket's settings beside its tags, the alarm beside the step policy: by the names the
    # first round (the account id, the tagging-API read) gives.
    by_operation = {f"{c.service}.{c.operation}": c.depth for c in calls}
    assert by_operation["s3.GetBucketTagging"] == by_operation["s3.GetBucketPolicy"] == 2
    assert by_operation["cloudwatch.DescribeAlarms"] == by_operation["application-autoscaling.DescribeScalingPolicies"]
    # The alarm's tags are the tagging-API read's when they are the file's: no ListTagsForResource.
    assert "cloudwatch.ListTagsForResource" not in by_operation
    # Every client the plan calls through was made before its first call (up.plan_services).
    assert {c.service for c in calls} <= set(plan_services(config.load(path)))
