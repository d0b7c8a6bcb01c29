"""names.py: the names spotecs derives, and the AWS rules they are checked against."""

from __future__ import annotations

import pytest

from spotecs import names


def test_every_per_service_name_maps_back_to_its_service() -> None:
    for derive in (names.service, names.task_family, names.target_group):
        name = derive("shop", "api-v2")
        assert name.startswith(names.service_prefix("shop"))
        assert names.service_of("shop", name) == "api-v2"


def test_log_groups_of_a_stack_share_a_prefix_other_stacks_do_not_match() -> None:
    assert names.log_group("shop", "api").startswith(names.log_group_prefix("shop"))
    assert not names.log_group("shop2", "api").startswith(names.log_group_prefix("shop"))


def test_iam_roles_carry_the_region_so_one_stack_name_works_in_two_regions() -> None:
    assert names.instance_role("shop", "eu-west-1") != names.instance_role("shop", "us-east-1")
    assert names.instance_role("shop", "eu-west-1") != names.execution_role("shop", "eu-west-1")


def test_the_cluster_defaults_to_the_stack_name() -> None:
    assert names.cluster("shop") == "shop"
    assert names.cluster("shop", "Prod_Cluster") == "Prod_Cluster"


def test_a_scaled_service_resource_id_falls_under_the_stack_prefix() -> None:
    rid = names.scalable_target("prod", names.service("shop", "api"))
    assert rid == "service/prod/shop-api"
    assert rid.startswith(names.scalable_target_prefix("prod", "shop"))
    assert names.step_policy(names.service("shop", "api"), "queue").startswith(
        names.step_policy_prefix(names.service("shop", "api"))
    )


@pytest.mark.parametrize(
    ("group_name", "expected"),
    [
        ("demo-instances", "demo-instances-1a2b3c4d"),
        ("ecs-demo-instances", "spotecs-ecs-demo-instances-1a2b3c4d"),  # ECS reserves aws*, ecs*, fargate*
        ("Fargate-x-instances", "spotecs-Fargate-x-instances-1a2b3c4d"),  # in any case
    ],
)
def test_capacity_provider_name_comes_from_the_group_id(group_name: str, expected: str) -> None:
    arn = (
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:"
        f"1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d:autoScalingGroupName/{group_name}"
    )
    name = names.capacity_provider(group_name, arn)
    assert name == expected
    assert names.capacity_provider_pattern(group_name).match(name)
    assert names.CAPACITY_PROVIDER.problem(name) is None


def test_capacity_provider_needs_a_group_arn() -> None:
    with pytest.raises(ValueError, match="not an auto scaling group ARN"):
        names.capacity_provider("demo-instances", "arn:aws:ecs:us-east-1:123456789012:cluster/demo")


@pytest.mark.parametrize(
    ("rule", "name", "complaint"),
    [
        (names.TARGET_GROUP, "a" * 33, "33 characters; AWS allows 1 to 32"),
        (names.TARGET_GROUP, "shop-api-", "characters AWS does not allow"),
        (names.LOAD_BALANCER, "internal-shop", "starts with 'internal-'"),
        (names.SECURITY_GROUP, "sg-shop-lb", "starts with 'sg-'"),
        (names.IAM_ROLE, "x" * 65, "65 characters; AWS allows 1 to 64"),
        (names.BUCKET, "shop-logs-s3alias", "ends with '-s3alias'"),
        (names.BUCKET, "Shop-logs", "characters AWS does not allow"),
        (names.CAPACITY_PROVIDER, "AWS-thing", "starts with 'aws'"),
        (names.SCHEDULED_ACTION, "shop-api-morning:peak", "characters AWS does not allow"),
        (names.LAUNCH_TEMPLATE, "ab", "2 characters; AWS allows 3 to 128"),
    ],
)
def test_a_rule_names_what_aws_would_refuse(rule: names.Rule, name: str, complaint: str) -> None:
    problem = rule.problem(name)
    assert problem is not None and complaint in problem and name in problem


def test_the_longest_stack_names_fit_every_rule_they_feed() -> None:
    stack, service, region = "a" * 20, "b" * 11, "ap-southeast-3"
    assert names.TARGET_GROUP.problem(names.target_group(stack, service)) is None
    assert names.TARGET_GROUP.problem(names.target_group(stack, service + "c")) is not None
    assert names.IAM_ROLE.problem(names.execution_role(stack, region)) is None
    assert names.BUCKET.problem(names.access_log_bucket(stack, "123456789012")) is None
    assert names.LOAD_BALANCER.problem(names.load_balancer(stack)) is None
