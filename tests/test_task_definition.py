"""steps/task_definition.py: content, normalisation of what AWS fills in, revisions, deregistration."""

from __future__ import annotations

import boto3

from spotecs.engine.model import Action
from spotecs.steps.task_definition import normalise_container
from tests.helpers import (
    ACCOUNT,
    REGION,
    StandIn,
    changes,
    converge,
    fresh,
    make_stack,
    replan,
    sent,
    up,
    workload_steps,
)


def test_task_definition_content(compute: dict[str, StandIn]) -> None:
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:demo/db-AbCdEf"
    registry = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:demo/registry-AbCdEf"
    stack = make_stack(
        services={
            "api": {
                "cpu": 512,
                "memory_soft": 300,
                "memory_hard": 600,
                "command": "npm,start",
                "stop_timeout": 45,
                "environment": {"PORT": 3000, "NODE_ENV": "production"},
                "secrets": {"DB_PASSWORD": secret},
                "repository_credentials": registry,
                "container_health_check": {"command": ["CMD-SHELL", "curl -f http://localhost:3000/ || exit 1"]},
            }
        }
    )
    steps = workload_steps(stack, compute, lambda s: s.key == "task-definition:api")
    ctx = fresh(stack)
    converge(steps, ctx)

    td = boto3.client("ecs", region_name=REGION).describe_task_definition(taskDefinition="demo-api")["taskDefinition"]
    assert (td["networkMode"], td["requiresCompatibilities"]) == ("bridge", ["EC2"])
    assert td["executionRoleArn"] == ctx.outputs["iam:execution-role"]["arn"]
    (c,) = td["containerDefinitions"]
    assert (c["name"], c["image"], c["cpu"], c["memoryReservation"], c["memory"]) == (
        "api",
        "bitnami/node-example:0.0.1",
        512,
        300,
        600,
    )
    assert c["portMappings"] == [{"containerPort": 3000, "hostPort": 0, "protocol": "tcp"}]
    assert c["command"] == ["npm", "start"]
    assert sorted((e["name"], e["value"]) for e in c["environment"]) == [("NODE_ENV", "production"), ("PORT", "3000")]
    assert c["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": secret}]
    assert c["repositoryCredentials"] == {"credentialsParameter": registry}
    assert c["healthCheck"]["command"][0] == "CMD-SHELL" and c["healthCheck"]["retries"] == 3
    assert c["stopTimeout"] == 45
    assert c["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/ecs/demo/api", "awslogs-region": REGION, "awslogs-stream-prefix": "api"},
    }


def test_what_aws_fills_in_is_no_change() -> None:
    """describe_task_definition echoes defaults and reorders lists; none of it is a difference."""
    sent = {
        "name": "api",
        "image": "img",
        "cpu": 256,
        "memory": 512,
        "memoryReservation": 256,
        "essential": True,
        "portMappings": [{"containerPort": 3000, "hostPort": 0, "protocol": "tcp"}],
        "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
        "healthCheck": {"command": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0},
        "stopTimeout": 60,
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
    }
    echoed = {
        "name": "api",
        "image": "img",
        "cpu": 256,
        "memory": 512,
        "memoryReservation": 256,
        "portMappings": [{"containerPort": 3000}],
        "mountPoints": [],
        "volumesFrom": [],
        "systemControls": [],
        "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "secrets": [],
        "healthCheck": {"command": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 3},
        "stopTimeout": 60,
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}, "secretOptions": []},
    }
    assert normalise_container(sent) == normalise_container(echoed)
    # ...while a field the stack file dropped still shows as a change.
    assert normalise_container({**sent, "healthCheck": None}) != normalise_container(echoed)


def test_rerun_registers_no_revision_and_an_image_change_exactly_one(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    steps = workload_steps(stack, compute, lambda s: s.key == "service:api")
    converge(steps, fresh(stack))
    again = fresh(stack)
    p, _ = converge(steps, again)
    assert changes(p) == {}
    assert again.aws.writes() == []  # same content: no new revision, nothing written

    bumped = make_stack(services={"api": {"image": "bitnami/node-example:0.0.2"}})
    steps = workload_steps(bumped, compute, lambda s: s.key == "service:api")
    p = replan(steps, bumped)
    assert changes(p) == {"task-definition:api": Action.NEW_VERSION, "service:api": Action.UPDATE}
    ctx = fresh(bumped)
    converge(steps, ctx)
    assert [w.operation for w in ctx.aws.writes()] == ["RegisterTaskDefinition", "UpdateService"]
    (update,) = sent(ctx, "UpdateService")
    assert update["taskDefinition"].endswith("task-definition/demo-api:2")
    assert update["forceNewDeployment"] is False
    assert "desiredCount" in update and "loadBalancers" not in update
    assert changes(replan(steps, bumped)) == {}


def test_task_definition_tag_edit_retags_the_current_revision_in_place(compute: dict[str, StandIn]) -> None:
    tagged = make_stack(tags={"team": "payments", "cost-center": "cc-17"})
    converge(workload_steps(tagged, compute, lambda s: s.key == "service:api"), fresh(tagged))
    edited = make_stack(tags={"team": "billing", "owner": "ops"})
    steps = workload_steps(edited, compute, lambda s: s.key == "service:api")
    p = replan(steps, edited)
    ch = p.get("task-definition:api")
    assert ch.action is Action.UPDATE and ch.changed_fields() == {"tags"}  # not a new version
    assert p.get("service:api").changed_fields() == {"tags"}  # still on revision 1
    ctx = fresh(edited)
    converge(steps, ctx)
    assert not sent(ctx, "RegisterTaskDefinition") and not sent(ctx, "UpdateService")
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/demo-api:1"
    (tag,) = [r for r in sent(ctx, "TagResource") if r["resourceArn"] == arn]
    assert {t["key"]: t["value"] for t in tag["tags"]} == {"team": "billing", "owner": "ops"}
    (untag,) = [r for r in sent(ctx, "UntagResource") if r["resourceArn"] == arn]
    assert untag["tagKeys"] == ["cost-center"]
    ecs = boto3.client("ecs", region_name=REGION)
    held = {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert held["team"] == "billing" and held["owner"] == "ops" and "cost-center" not in held
    assert held["spotecs:stack"] == "demo"
    assert ecs.list_task_definitions(familyPrefix="demo-api")["taskDefinitionArns"] == [arn]
    assert changes(replan(steps, edited)) == {}

    # With the content changed too, the one new revision is registered with the file's tags.
    bumped = make_stack(tags={"team": "search"}, services={"api": {"image": "bitnami/node-example:0.0.2"}})
    steps = workload_steps(bumped, compute, lambda s: s.key == "service:api")
    assert replan(steps, bumped).get("task-definition:api").action is Action.NEW_VERSION
    ctx = fresh(bumped)
    converge(steps, ctx)
    (register,) = sent(ctx, "RegisterTaskDefinition")
    tags = {t["key"]: t["value"] for t in register["tags"]}
    assert tags["team"] == "search" and "owner" not in tags
    assert changes(replan(steps, bumped)) == {}


def test_teardown_deregisters_every_active_revision(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    steps = workload_steps(stack, compute, lambda s: s.key == "task-definition:api")
    converge(steps, fresh(stack))
    bumped = make_stack(services={"api": {"image": "bitnami/node-example:0.0.2"}})
    converge(steps, fresh(bumped))
    ecs = boto3.client("ecs", region_name=REGION)
    assert len(ecs.list_task_definitions(familyPrefix="demo-api")["taskDefinitionArns"]) == 2
    ctx = fresh(bumped)
    converge(steps, ctx, destroy=True)
    assert ecs.list_task_definitions(familyPrefix="demo-api", status="ACTIVE")["taskDefinitionArns"] == []
    assert len(sent(ctx, "DeregisterTaskDefinition")) == 2


def test_every_active_revision_of_the_family_is_deregistered(moto: None) -> None:
    stack = make_stack()
    steps, ctx = up(stack, lambda s: s.key == "task-definition:api")
    changed = make_stack(services={"api": {"image": "bitnami/node-example:0.0.2"}})
    converge(steps, fresh(changed))
    ecs = ctx.client("ecs")
    assert len(ecs.list_task_definitions(familyPrefix="demo-api", status="ACTIVE")["taskDefinitionArns"]) == 2
    converge(steps, fresh(changed), destroy=True)
    assert ecs.list_task_definitions(familyPrefix="demo-api", status="ACTIVE")["taskDefinitionArns"] == []
