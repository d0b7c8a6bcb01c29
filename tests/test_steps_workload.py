"""Workload layer: load balancer, access-log bucket, target groups, listeners, task definitions,
services, service auto scaling, and the wait for a healthy service.

The compute layer's "cluster" and "capacity-provider" steps are stood in for by a fixture that
creates them with boto3, so these tests exercise only this layer's steps."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from spotecs.config import Stack, parse
from spotecs.engine.model import Action, Plan
from spotecs.engine.plan import plan
from spotecs.errors import AwsError, CheckError, ConfigError, WaitTimeout
from spotecs.steps import build, workload
from spotecs.steps.base import Context, DataSource, Step, Timeouts
from spotecs.steps.service import wait_until_healthy
from spotecs.steps.task_definition import normalise_container
from tests.conftest import MINIMAL, REGION, converge, deep_merge, make_ctx, make_stack, with_upstreams

CLUSTER = "demo"
PROVIDER = "demo-spot"
ACCOUNT = "123456789012"  # moto's


# --------------------------------------------------------------------------- harness


class StandIn(DataSource):
    """A compute-layer step (cluster, capacity provider) whose resource the fixture created."""

    kind = "stand-in"

    def __init__(self, key: str, outputs: dict[str, Any]) -> None:
        super().__init__(key, outputs["name"])
        self.outputs = outputs

    def read(self, ctx: Context) -> dict[str, Any]:
        return dict(self.outputs)


@pytest.fixture
def compute(moto: None) -> dict[str, StandIn]:
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = ecs.create_cluster(clusterName=CLUSTER)["cluster"]
    for name in (PROVIDER, f"{PROVIDER}-2"):
        ecs.create_capacity_provider(
            name=name,
            autoScalingGroupProvider={
                "autoScalingGroupArn": f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:x:"
                f"autoScalingGroupName/{name}"
            },
        )
    ecs.put_cluster_capacity_providers(
        cluster=CLUSTER, capacityProviders=[PROVIDER, f"{PROVIDER}-2"], defaultCapacityProviderStrategy=[]
    )
    return {
        "cluster": StandIn("cluster", {"name": CLUSTER, "arn": cluster["clusterArn"]}),
        "capacity-provider": StandIn("capacity-provider", {"name": PROVIDER}),
    }


def workload_steps(
    stack: Stack, compute: dict[str, StandIn], keep: Callable[[Step], bool] = lambda s: True
) -> list[Step]:
    """This layer's steps (filtered by `keep`) and every upstream they need, compute stood in."""
    everything = {s.key: s for s in build(stack, REGION)}
    everything.update(compute)
    return with_upstreams(everything, [s.key for s in workload.steps(stack, REGION) if keep(s)])


def ctx_for(stack: Stack) -> Context:
    """A context that does not wait for services: plain moto never starts their tasks."""
    ctx = make_ctx(stack)
    ctx.wait_for_services = False
    return ctx


def replan(steps: list[Step], stack: Stack) -> Plan:
    ctx = ctx_for(stack)
    return plan(steps, ctx)


def changes(p: Plan) -> dict[str, Action]:
    return {c.key: c.action for c in p.changes if c.is_change}


def writes(ctx: Context, operation: str) -> list[dict[str, Any]]:
    return [c.params for c in ctx.aws.calls if c.operation == operation]


WEB: dict[str, Any] = {"services": {"api": {"image": "bitnami/node-example:0.0.1", "container_port": 3000}}}
SCALED: dict[str, Any] = {
    "services": {"api": {"scaling": {"min": 1, "max": 4, "target_tracking": [{"metric": "cpu", "target": 85}]}}}
}


# --------------------------------------------------------------------------- the five cases, per step

LIFECYCLES = [
    # key, stack overrides, a one-field change, the action it plans, the field it names
    pytest.param(
        "load-balancer",
        {},
        {"load_balancer": {"idle_timeout": 120}},
        Action.UPDATE,
        "attributes.idle_timeout.timeout_seconds",
        id="load-balancer",
    ),
    pytest.param(
        "load-balancer", {}, {"load_balancer": {"internal": True}}, Action.REPLACE, "scheme", id="load-balancer-scheme"
    ),
    pytest.param(
        "access-log-bucket",
        {"load_balancer": {"access_logs": {}}},
        {"load_balancer": {"access_logs": {"expire_days": 7}}},
        Action.UPDATE,
        "expire_days",
        id="access-log-bucket",
    ),
    pytest.param(
        "target-group:api",
        {},
        {"services": {"api": {"health_check": {"path": "/health"}}}},
        Action.UPDATE,
        "health_check.path",
        id="target-group",
    ),
    pytest.param(
        "listeners",
        {"services": {"admin": {"image": "a", "container_port": 80, "routing": {"paths": ["/admin/*"]}}}},
        {"services": {"admin": {"routing": {"paths": ["/admin/*", "/staff/*"]}}}},
        Action.UPDATE,
        "http.rules",
        id="listeners",
    ),
    pytest.param(
        "task-definition:api",
        {},
        {"services": {"api": {"image": "bitnami/node-example:0.0.2"}}},
        Action.NEW_VERSION,
        "container.image",
        id="task-definition",
    ),
    pytest.param(
        "service:api",
        {},
        {"services": {"api": {"deployment": {"min_healthy_percent": 50}}}},
        Action.UPDATE,
        "deployment.minimumHealthyPercent",
        id="service",
    ),
    pytest.param(
        "scaling:api", SCALED, {"services": {"api": {"scaling": {"max": 6}}}}, Action.UPDATE, "max", id="scaling"
    ),
]


@pytest.mark.parametrize(("key", "base", "change", "action", "field"), LIFECYCLES)
def test_step_lifecycle(
    compute: dict[str, StandIn], key: str, base: dict[str, Any], change: dict[str, Any], action: Action, field: str
) -> None:
    stack = make_stack(**base)
    steps = workload_steps(stack, compute, lambda s: s.key == key)
    ctx = ctx_for(stack)

    first, _ = converge(steps, ctx)  # absent -> create, applied
    assert first.get(key).action is Action.CREATE
    assert changes(replan(steps, stack)) == {}  # again -> no-op

    changed = make_stack(**deep_merge(base, change))
    steps = workload_steps(changed, compute, lambda s: s.key == key)
    p = replan(steps, changed)  # one field -> its action
    assert p.get(key).action is action
    assert field in [d.path for d in p.get(key).diffs]
    converge(steps, ctx_for(changed))
    assert changes(replan(steps, changed)) == {}

    gone, _ = converge(steps, ctx_for(changed), destroy=True)  # delete ...
    assert gone.get(key).action is Action.DELETE
    assert next(s for s in steps if s.key == key).read(ctx_for(changed)) is None
    again = plan(steps, ctx_for(changed), destroy=True)  # ... and again: nothing to do
    assert all(c.action is not Action.DELETE for c in again.changes)


def test_layer_wiring() -> None:
    stack = make_stack(
        **deep_merge(
            SCALED,
            {
                "load_balancer": {"access_logs": {}},
                "services": {
                    "worker": {
                        "image": "w",
                        "scaling": {
                            "min": 1,
                            "max": 2,
                            "scheduled": [{"name": "night", "schedule": "cron(0 22 * * ? *)", "max": 1}],
                        },
                    }
                },
            },
        )
    )
    deps = {s.key: set(s.depends_on) for s in workload.steps(stack, REGION)}
    assert deps["load-balancer"] == {"network", "security-group:lb", "access-log-bucket"}
    assert deps["listeners"] == {"load-balancer", "target-group:api"}
    assert deps["task-definition:api"] == {"iam:execution-role", "log-group:api"}
    assert deps["service:api"] == {
        "cluster",
        "capacity-provider",
        "task-definition:api",
        "target-group:api",
        "listeners",
    }
    assert deps["service:worker"] == {"cluster", "capacity-provider", "task-definition:worker"}
    # Scaling depends on its service, so a teardown (reverse order) removes it first.
    assert deps["scaling:api"] == {"service:api"}
    assert "target-group:worker" not in deps


# --------------------------------------------------------------------------- load balancer


def test_access_log_bucket_expires_logs_and_lets_the_elb_account_write(compute: dict[str, StandIn]) -> None:
    stack = make_stack(load_balancer={"access_logs": {"expire_days": 14}})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    converge(steps, ctx_for(stack))

    s3, elbv2 = boto3.client("s3", region_name=REGION), boto3.client("elbv2", region_name=REGION)
    bucket = f"demo-alb-logs-{ACCOUNT}"
    rule = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert (rule["Expiration"], rule["Filter"], rule["Status"]) == ({"Days": 14}, {"Prefix": "alb/"}, "Enabled")
    statement = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}  # us-east-1's ELB account
    assert statement["Resource"] == f"arn:aws:s3:::{bucket}/alb/AWSLogs/{ACCOUNT}/*"
    lb_arn = elbv2.describe_load_balancers(Names=["demo"])["LoadBalancers"][0]["LoadBalancerArn"]
    attrs = {
        a["Key"]: a["Value"] for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
    }
    assert (attrs["access_logs.s3.enabled"], attrs["access_logs.s3.bucket"], attrs["access_logs.s3.prefix"]) == (
        "true",
        bucket,
        "alb",
    )

    # Teardown empties the bucket spotecs created, then deletes it.
    s3.put_object(Bucket=bucket, Key="alb/AWSLogs/x.log.gz", Body=b"log")
    converge(steps, ctx_for(stack), destroy=True)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_a_named_access_log_bucket_is_used_not_created(compute: dict[str, StandIn]) -> None:
    stack = make_stack(load_balancer={"access_logs": {"bucket": "corp-logs", "prefix": "demo"}})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    assert "access-log-bucket" not in [s.key for s in steps]
    ctx = ctx_for(stack)
    converge(steps, ctx)
    sent = {a["Key"]: a["Value"] for a in writes(ctx, "ModifyLoadBalancerAttributes")[0]["Attributes"]}
    assert (sent["access_logs.s3.bucket"], sent["access_logs.s3.prefix"]) == ("corp-logs", "demo")
    assert writes(ctx, "CreateBucket") == []


def test_load_balancer_is_internet_facing_in_the_stack_subnets_behind_its_group(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    ctx = ctx_for(stack)
    converge(steps, ctx)
    lb = boto3.client("elbv2", region_name=REGION).describe_load_balancers(Names=["demo"])["LoadBalancers"][0]
    subnets = [s["SubnetId"] for s in boto3.client("ec2", region_name=REGION).describe_subnets()["Subnets"]]
    assert (lb["Scheme"], lb["Type"]) == ("internet-facing", "application")
    assert sorted(z["SubnetId"] for z in lb["AvailabilityZones"]) == sorted(subnets)
    assert lb["SecurityGroups"] == [ctx.outputs["security-group:lb"]["group_id"]]
    assert ctx.outputs["load-balancer"]["url"] == f"http://{lb['DNSName']}"


def test_load_balancer_needs_one_subnet_in_each_of_two_zones(compute: dict[str, StandIn]) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    default_1a = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])
    first = default_1a["Subnets"][0]["SubnetId"]
    second = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.200.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    stack = make_stack(network={"vpc_id": vpc, "subnets": [first, second["SubnetId"]]})
    steps = workload_steps(stack, compute, lambda s: s.key == "load-balancer")
    with pytest.raises(CheckError) as e:
        plan(steps, ctx_for(stack))
    assert any("one subnet per Availability Zone" in p and "us-east-1a" in p for p in e.value.problems)
    assert any("at least two Availability Zones" in p for p in e.value.problems)


# --------------------------------------------------------------------------- listeners


ROUTED: dict[str, Any] = {
    "services": {
        "api": {"image": "a", "container_port": 3000},
        "admin": {"image": "b", "container_port": 8080, "routing": {"paths": ["/admin/*"]}},
        "docs": {
            "image": "c",
            "container_port": 80,
            "routing": {"hosts": ["docs.example.com"], "paths": ["/v1/*"], "priority": 5},
        },
    }
}


def _listeners(lb: str = "demo") -> dict[int, dict[str, Any]]:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    arn = elbv2.describe_load_balancers(Names=[lb])["LoadBalancers"][0]["LoadBalancerArn"]
    out = {}
    for listener in elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
        rules = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
        listener["rules"] = {r["Priority"]: r for r in rules}
        out[listener["Port"]] = listener
    return out


def _tg(name: str) -> str:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    return str(elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"])


def test_listener_routes_by_path_and_host_with_the_first_service_as_default(compute: dict[str, StandIn]) -> None:
    stack = make_stack(**ROUTED)
    steps = workload_steps(stack, compute, lambda s: s.key == "listeners")
    converge(steps, ctx_for(stack))

    listeners = _listeners()
    assert list(listeners) == [80]
    http = listeners[80]
    assert http["Protocol"] == "HTTP"
    assert http["DefaultActions"][0]["TargetGroupArn"] == _tg("demo-api")
    rules = http["rules"]
    assert sorted(rules) == ["20", "5", "default"]
    admin, docs = rules["20"], rules["5"]  # admin by its place in the file (2nd), docs by its own priority
    assert admin["Conditions"] == [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/admin/*"]}}]
    assert admin["Actions"][0]["TargetGroupArn"] == _tg("demo-admin")
    assert {c["Field"]: c for c in docs["Conditions"]}["host-header"]["HostHeaderConfig"]["Values"] == [
        "docs.example.com"
    ]
    assert {c["Field"]: c for c in docs["Conditions"]}["path-pattern"]["PathPatternConfig"]["Values"] == ["/v1/*"]
    assert docs["Actions"][0]["TargetGroupArn"] == _tg("demo-docs")

    # A route removed from the file is removed from the listener; the others stay untouched.
    fewer = make_stack(**deep_merge(ROUTED, {"services": {"docs": {"routing": {"hosts": []}}}}))
    ctx = ctx_for(fewer)
    converge(workload_steps(fewer, compute, lambda s: s.key == "listeners"), ctx)
    assert [c["Field"] for c in _listeners()[80]["rules"]["5"]["Conditions"]] == ["path-pattern"]
    assert [w["RuleArn"] for w in writes(ctx, "ModifyRule")] == [docs["RuleArn"]]
    assert writes(ctx, "CreateRule") == writes(ctx, "DeleteRule") == writes(ctx, "ModifyListener") == []


def test_rule_priorities_must_be_unique() -> None:
    stack = make_stack(**deep_merge(ROUTED, {"services": {"admin": {"routing": {"priority": 5}}}}))
    listeners = next(s for s in workload.steps(stack, REGION) if s.key == "listeners")
    problems = listeners.check(ctx_for(stack), {}, None)
    assert problems and "admin, docs share listener rule priority 5" in problems[0]


def _certificate() -> str:
    acm = boto3.client("acm", region_name=REGION)
    return str(acm.request_certificate(DomainName="example.com")["CertificateArn"])


def test_https_listener_with_tls12_policy_and_http_redirecting_301(compute: dict[str, StandIn]) -> None:
    stack = make_stack(**deep_merge(ROUTED, {"load_balancer": {"certificate_arn": _certificate()}}))
    steps = workload_steps(stack, compute, lambda s: s.key == "listeners")
    ctx = ctx_for(stack)
    converge(steps, ctx)

    listeners = _listeners()
    https, http = listeners[443], listeners[80]
    assert https["Protocol"] == "HTTPS"
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["Certificates"][0]["CertificateArn"] == stack.load_balancer.certificate_arn
    assert https["DefaultActions"][0]["TargetGroupArn"] == _tg("demo-api")
    assert sorted(https["rules"]) == ["20", "5", "default"]
    redirect = http["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    assert list(http["rules"]) == ["default"]  # the rules live on HTTPS only
    assert ctx.outputs["load-balancer"]["url"].startswith("https://")
    assert changes(replan(steps, stack)) == {}


def test_https_without_redirect_serves_both_ports(compute: dict[str, StandIn]) -> None:
    stack = make_stack(load_balancer={"certificate_arn": _certificate(), "redirect_http": False})
    converge(workload_steps(stack, compute, lambda s: s.key == "listeners"), ctx_for(stack))
    listeners = _listeners()
    assert {p: listener["DefaultActions"][0]["Type"] for p, listener in listeners.items()} == {
        80: "forward",
        443: "forward",
    }


def test_adding_a_certificate_adds_https_and_turns_http_into_a_redirect(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    converge(workload_steps(stack, compute, lambda s: s.key == "listeners"), ctx_for(stack))
    secure = make_stack(load_balancer={"certificate_arn": _certificate()})
    steps = workload_steps(secure, compute, lambda s: s.key == "listeners")
    p = replan(steps, secure)
    assert p.get("listeners").action is Action.UPDATE
    assert {d.path for d in p.get("listeners").diffs} >= {"https", "http.default.type"}
    ctx = ctx_for(secure)
    converge(steps, ctx)
    assert len(writes(ctx, "CreateListener")) == 1 and len(writes(ctx, "ModifyListener")) == 1
    assert _listeners()[80]["DefaultActions"][0]["Type"] == "redirect"
    assert changes(replan(steps, secure)) == {}


# --------------------------------------------------------------------------- task definitions


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
    ctx = ctx_for(stack)
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
    converge(steps, ctx_for(stack))
    again = ctx_for(stack)
    p, _ = converge(steps, again)
    assert changes(p) == {}
    assert again.aws.writes() == []  # same content: no new revision, nothing written

    bumped = make_stack(services={"api": {"image": "bitnami/node-example:0.0.2"}})
    steps = workload_steps(bumped, compute, lambda s: s.key == "service:api")
    p = replan(steps, bumped)
    assert changes(p) == {"task-definition:api": Action.NEW_VERSION, "service:api": Action.UPDATE}
    ctx = ctx_for(bumped)
    converge(steps, ctx)
    assert [w.operation for w in ctx.aws.writes()] == ["RegisterTaskDefinition", "UpdateService"]
    (update,) = writes(ctx, "UpdateService")
    assert update["taskDefinition"].endswith("task-definition/demo-api:2")
    assert update["forceNewDeployment"] is False
    assert "desiredCount" in update and "loadBalancers" not in update
    assert changes(replan(steps, bumped)) == {}


def test_teardown_deregisters_every_active_revision(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    steps = workload_steps(stack, compute, lambda s: s.key == "task-definition:api")
    converge(steps, ctx_for(stack))
    bumped = make_stack(services={"api": {"image": "bitnami/node-example:0.0.2"}})
    converge(steps, ctx_for(bumped))
    ecs = boto3.client("ecs", region_name=REGION)
    assert len(ecs.list_task_definitions(familyPrefix="demo-api")["taskDefinitionArns"]) == 2
    ctx = ctx_for(bumped)
    converge(steps, ctx, destroy=True)
    assert ecs.list_task_definitions(familyPrefix="demo-api", status="ACTIVE")["taskDefinitionArns"] == []
    assert len(writes(ctx, "DeregisterTaskDefinition")) == 2


# --------------------------------------------------------------------------- services


def test_create_service_sends_what_moto_drops(compute: dict[str, StandIn]) -> None:
    """moto's create_service drops the capacity provider strategy, placement, deployment settings and
    grace period (moto-gaps.md): assert on the request spotecs sent."""
    stack = make_stack()
    ctx = ctx_for(stack)
    converge(workload_steps(stack, compute, lambda s: s.key == "service:api"), ctx)
    (create,) = writes(ctx, "CreateService")
    assert create["cluster"] == CLUSTER and create["serviceName"] == "demo-api"
    assert create["taskDefinition"].endswith("task-definition/demo-api:1")
    assert create["desiredCount"] == 2
    assert create["capacityProviderStrategy"] == [{"capacityProvider": PROVIDER, "weight": 1, "base": 0}]
    assert "launchType" not in create
    assert create["deploymentConfiguration"] == {
        "minimumHealthyPercent": 100,
        "maximumPercent": 200,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }
    assert create["deploymentController"] == {"type": "ECS"}
    assert create["placementStrategy"] == [
        {"type": "binpack", "field": "cpu"},
        {"type": "spread", "field": "attribute:ecs.availability-zone"},
    ]
    assert create["loadBalancers"] == [
        {"targetGroupArn": _tg("demo-api"), "containerName": "api", "containerPort": 3000}
    ]
    assert create["healthCheckGracePeriodSeconds"] == 60
    assert (create["enableECSManagedTags"], create["propagateTags"]) == (True, "SERVICE")
    assert {t["key"]: t["value"] for t in create["tags"]}["spotecs:stack"] == "demo"


def test_a_worker_service_has_no_load_balancer(compute: dict[str, StandIn]) -> None:
    stack = Stack.model_validate({**MINIMAL, "services": {"jobs": {"image": "worker:1", "command": ["run"]}}})
    keys = [s.key for s in workload.steps(stack, REGION)]
    assert keys == ["task-definition:jobs", "service:jobs"]
    steps = workload_steps(stack, compute)
    ctx = ctx_for(stack)
    converge(steps, ctx)
    (create,) = writes(ctx, "CreateService")
    assert "loadBalancers" not in create and "healthCheckGracePeriodSeconds" not in create
    (td,) = writes(ctx, "RegisterTaskDefinition")
    assert "portMappings" not in td["containerDefinitions"][0]
    assert changes(replan(steps, stack)) == {}


def test_a_web_service_turned_worker_settles_after_one_update(compute: dict[str, StandIn]) -> None:
    web = make_stack()
    converge(workload_steps(web, compute, lambda s: s.key == "service:api"), ctx_for(web))
    worker = Stack.model_validate({**MINIMAL, "services": {"api": {"image": "worker:1"}}})
    steps = workload_steps(worker, compute, lambda s: s.key == "service:api")
    ctx = ctx_for(worker)
    converge(steps, ctx)
    (update,) = writes(ctx, "UpdateService")
    assert update["loadBalancers"] == []
    # The grace period only applies behind a load balancer: it must not keep the plan dirty.
    assert changes(replan(steps, worker)) == {}


def test_a_new_capacity_provider_strategy_forces_a_new_deployment(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    converge(workload_steps(stack, compute, lambda s: s.key == "service:api"), ctx_for(stack))
    moved = {**compute, "capacity-provider": StandIn("capacity-provider", {"name": f"{PROVIDER}-2"})}
    steps = workload_steps(stack, moved, lambda s: s.key == "service:api")
    p = replan(steps, stack)
    assert [d.path for d in p.get("service:api").diffs] == ["capacity_provider_strategy"]
    ctx = ctx_for(stack)
    converge(steps, ctx)
    (update,) = writes(ctx, "UpdateService")
    assert update["forceNewDeployment"] is True
    assert update["capacityProviderStrategy"] == [{"capacityProvider": f"{PROVIDER}-2", "weight": 1, "base": 0}]


def test_with_scaling_the_desired_count_is_set_only_at_creation(compute: dict[str, StandIn]) -> None:
    stack = make_stack(services={"api": {"desired_count": 9, "scaling": {"min": 1, "max": 4}}})
    steps = workload_steps(stack, compute, lambda s: s.key == "service:api")
    ctx = ctx_for(stack)
    converge(steps, ctx)
    assert writes(ctx, "CreateService")[0]["desiredCount"] == 4  # within the scaling bounds
    # Auto scaling moves the count; spotecs leaves it alone, even when updating other fields.
    boto3.client("ecs", region_name=REGION).update_service(cluster=CLUSTER, service="demo-api", desiredCount=3)
    assert changes(replan(steps, stack)) == {}
    slower = make_stack(
        services={"api": {"desired_count": 9, "scaling": {"min": 1, "max": 4}, "health_check_grace_period": 90}}
    )
    ctx = ctx_for(slower)
    converge(workload_steps(slower, compute, lambda s: s.key == "service:api"), ctx)
    assert "desiredCount" not in writes(ctx, "UpdateService")[0]


def test_service_teardown_scales_to_zero_deletes_with_force_and_waits(compute: dict[str, StandIn]) -> None:
    stack = make_stack()
    steps = workload_steps(stack, compute, lambda s: s.key == "service:api")
    converge(steps, ctx_for(stack))
    ctx = ctx_for(stack)
    converge(steps, ctx, destroy=True)
    ops = [(c.operation, c.params) for c in ctx.aws.calls if c.operation in ("UpdateService", "DeleteService")]
    assert ops == [
        ("UpdateService", {"cluster": CLUSTER, "service": "demo-api", "desiredCount": 0}),
        ("DeleteService", {"cluster": CLUSTER, "service": "demo-api", "force": True}),
    ]
    # The wait for INACTIVE looked after the delete.
    after = [c.operation for c in ctx.aws.calls][[c.operation for c in ctx.aws.calls].index("DeleteService") :]
    assert "DescribeServices" in after
    svc = boto3.client("ecs", region_name=REGION).describe_services(cluster=CLUSTER, services=["demo-api"])
    assert svc["services"][0]["status"] == "INACTIVE"  # still listed by ECS, but gone for spotecs
    assert "service:api" not in changes(plan(steps, ctx_for(stack), destroy=True))


# --------------------------------------------------------------------------- service auto scaling


def _policies() -> dict[str, dict[str, Any]]:
    aas = boto3.client("application-autoscaling", region_name=REGION)
    return {
        p["PolicyName"]: p
        for p in aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=f"service/{CLUSTER}/demo-api")[
            "ScalingPolicies"
        ]
    }


def test_target_tracking_on_requests_names_the_target_group(compute: dict[str, StandIn]) -> None:
    stack = make_stack(
        services={
            "api": {
                "scaling": {
                    "min": 1,
                    "max": 4,
                    "target_tracking": [
                        {"metric": "requests", "target": 1000},
                        {"metric": "cpu", "target": 85, "disable_scale_in": True},
                    ],
                }
            }
        }
    )
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    ctx = ctx_for(stack)
    converge(steps, ctx)

    lb = ctx.outputs["load-balancer"]["arn"].split(":loadbalancer/")[1]
    tg = ctx.outputs["target-group:api"]["arn"].split(":")[-1]
    label = f"{lb}/{tg}"
    assert label.startswith("app/demo/") and "/targetgroup/demo-api/" in label
    # moto accepts ALBRequestCountPerTarget without a label, so the request is what proves it.
    sent = {p["PolicyName"]: p for p in writes(ctx, "PutScalingPolicy")}
    spec = sent["demo-api-track-requests"]["TargetTrackingScalingPolicyConfiguration"]
    assert spec["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "ALBRequestCountPerTarget",
        "ResourceLabel": label,
    }
    assert spec["TargetValue"] == 1000.0
    cpu = _policies()["demo-api-track-cpu"]["TargetTrackingScalingPolicyConfiguration"]
    assert cpu["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    assert (cpu["TargetValue"], cpu["DisableScaleIn"], cpu["ScaleInCooldown"], cpu["ScaleOutCooldown"]) == (
        85.0,
        True,
        300,
        60,
    )
    target = boto3.client("application-autoscaling", region_name=REGION).describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/{CLUSTER}/demo-api"]
    )["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    assert changes(replan(steps, stack)) == {}


STEP_SCALING: dict[str, Any] = {
    "services": {
        "api": {
            "scaling": {
                "min": 2,
                "max": 10,
                "step_scaling": [
                    {
                        "name": "pushes",
                        "cooldown": 60,
                        "alarm": {
                            "namespace": "AWS/SQS",
                            "metric": "ApproximateNumberOfMessagesVisible",
                            "dimensions": {"QueueName": "outgoing-pushes"},
                            "statistic": "Maximum",
                            "threshold": 10000,
                        },
                        "steps": [{"lower": 0, "upper": 50000, "change": 2}, {"lower": 50000, "change": 5}],
                    }
                ],
            }
        }
    }
}


def test_step_scaling_fires_from_an_alarm_on_any_metric(compute: dict[str, StandIn]) -> None:
    stack = make_stack(**STEP_SCALING)
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    converge(steps, ctx_for(stack))

    policy = _policies()["demo-api-step-pushes"]
    cfg = policy["StepScalingPolicyConfiguration"]
    assert cfg["AdjustmentType"] == "ChangeInCapacity"
    assert (cfg["Cooldown"], cfg["MetricAggregationType"]) == (60, "Maximum")
    assert cfg["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 50000.0, "ScalingAdjustment": 2},
        {"MetricIntervalLowerBound": 50000.0, "ScalingAdjustment": 5},
    ]
    alarm = boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=["demo-api-step-pushes"])[
        "MetricAlarms"
    ][0]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        10000.0,
    )
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": "outgoing-pushes"}]
    assert alarm["AlarmActions"] == [policy["PolicyARN"]]
    assert changes(replan(steps, stack)) == {}

    # A new threshold updates the alarm, still wired to the policy.
    pushes = STEP_SCALING["services"]["api"]["scaling"]["step_scaling"][0]
    higher = make_stack(
        services={
            "api": {
                "scaling": {
                    "min": 2,
                    "max": 10,
                    "step_scaling": [{**pushes, "alarm": {**pushes["alarm"], "threshold": 20000}}],
                }
            }
        }
    )
    p = replan(steps, higher)
    assert p.get("scaling:api").action is Action.UPDATE
    converge(workload_steps(higher, compute, lambda s: s.key == "scaling:api"), ctx_for(higher))
    alarm = boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=["demo-api-step-pushes"])[
        "MetricAlarms"
    ][0]
    assert alarm["Threshold"] == 20000.0
    assert alarm["AlarmActions"] == [_policies()["demo-api-step-pushes"]["PolicyARN"]]
    assert changes(replan(steps, higher)) == {}


def test_scheduled_actions_with_timezone_and_removal(compute: dict[str, StandIn]) -> None:
    burst = {"name": "newsletter", "schedule": "cron(0 9 ? * TUE *)", "timezone": "Europe/Paris", "min": 6}
    calm = {"name": "night", "schedule": "cron(0 23 * * ? *)", "max": 2}
    stack = make_stack(services={"api": {"scaling": {"min": 1, "max": 8, "scheduled": [burst, calm]}}})
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    converge(steps, ctx_for(stack))
    aas = boto3.client("application-autoscaling", region_name=REGION)

    def actions() -> dict[str, dict[str, Any]]:
        return {
            a["ScheduledActionName"]: a
            for a in aas.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=f"service/{CLUSTER}/demo-api")[
                "ScheduledActions"
            ]
        }

    got = actions()
    assert (got["demo-api-newsletter"]["Schedule"], got["demo-api-newsletter"]["Timezone"]) == (
        "cron(0 9 ? * TUE *)",
        "Europe/Paris",
    )
    assert got["demo-api-newsletter"]["ScalableTargetAction"] == {"MinCapacity": 6}
    assert got["demo-api-night"]["ScalableTargetAction"] == {"MaxCapacity": 2}
    assert changes(replan(steps, stack)) == {}

    fewer = make_stack(services={"api": {"scaling": {"min": 1, "max": 8, "scheduled": [burst]}}})
    p = replan(steps, fewer)
    assert [d.path for d in p.get("scaling:api").diffs] == ["scheduled"]
    ctx = ctx_for(fewer)
    converge(steps, ctx)
    assert list(actions()) == ["demo-api-newsletter"]
    assert [w["ScheduledActionName"] for w in writes(ctx, "DeleteScheduledAction")] == ["demo-api-night"]
    assert writes(ctx, "PutScheduledAction") == writes(ctx, "RegisterScalableTarget") == []


def test_scaling_teardown_removes_policies_alarms_actions_and_target_before_the_service(
    compute: dict[str, StandIn],
) -> None:
    stack = make_stack(
        **deep_merge(
            STEP_SCALING,
            {
                "services": {
                    "api": {
                        "scaling": {
                            "target_tracking": [{"metric": "memory", "target": 70}],
                            "scheduled": [{"name": "burst", "schedule": "at(2030-01-01T09:00:00)", "min": 4}],
                        }
                    }
                }
            },
        )
    )
    steps = workload_steps(stack, compute, lambda s: s.key == "scaling:api")
    converge(steps, ctx_for(stack))
    ctx = ctx_for(stack)
    converge(steps, ctx, destroy=True)

    ops = [c.operation for c in ctx.aws.calls if c.is_write]
    assert ops.index("DeregisterScalableTarget") < ops.index("DeleteService")
    assert ops.index("DeleteAlarms") < ops.index("DeleteScalingPolicy")
    aas = boto3.client("application-autoscaling", region_name=REGION)
    rid = f"service/{CLUSTER}/demo-api"
    assert aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[rid])["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=rid)["ScalingPolicies"] == []
    assert aas.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=rid)["ScheduledActions"] == []
    alarms = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms if a["AlarmName"].startswith("demo-")] == []


def test_one_target_per_metric() -> None:
    stack = make_stack(
        services={
            "api": {
                "scaling": {
                    "min": 1,
                    "max": 4,
                    "target_tracking": [{"metric": "cpu", "target": 60}, {"metric": "cpu", "target": 80}],
                }
            }
        }
    )
    scaling = next(s for s in workload.steps(stack, REGION) if s.key == "scaling:api")
    assert scaling.check(ctx_for(stack), {}, None) == [
        "services.api.scaling.target_tracking: 'cpu' is listed 2 times; keep one target per metric"
    ]


# --------------------------------------------------------------------------- waiting for a healthy service

TD1 = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/demo-api:1"
TD2 = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/demo-api:2"
TG = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/demo-api/0123456789abcdef"


def _service(deployments: list[dict[str, Any]], desired: int = 2, events: int = 0) -> dict[str, Any]:
    return {
        "services": [
            {
                "serviceName": "demo-api",
                "status": "ACTIVE",
                "desiredCount": desired,
                "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
                "deployments": [{"id": f"ecs-svc/{i}", **d} for i, d in enumerate(deployments)],
                "events": [{"id": str(i), "message": f"(service demo-api) event {i}"} for i in range(events)],
            }
        ],
        "failures": [],
    }


def _health(states: list[str]) -> dict[str, Any]:
    return {
        "TargetHealthDescriptions": [
            {"Target": {"Id": f"i-{i}", "Port": 32768 + i}, "TargetHealth": {"State": s}} for i, s in enumerate(states)
        ]
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Context, Stubber, Stubber, list[str]]]:
    """A context whose ECS and ELB calls answer from a script (no moto): ECS deployment states
    that moto never reaches."""
    ctx = make_ctx(make_stack())
    statuses: list[str] = []
    ctx.on_status = lambda key, status: statuses.append(status)
    with Stubber(ctx.client("ecs")) as ecs, Stubber(ctx.client("elbv2")) as elbv2:
        yield ctx, ecs, elbv2, statuses
        ecs.assert_no_pending_responses()
        elbv2.assert_no_pending_responses()


def test_wait_ends_when_the_deployment_completes_and_targets_are_healthy(stubbed: Any) -> None:
    ctx, ecs, elbv2, statuses = stubbed
    ecs.add_response(
        "describe_services",
        _service(
            [
                {"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "IN_PROGRESS", "runningCount": 1},
                {"status": "ACTIVE", "taskDefinition": TD1, "rolloutState": "COMPLETED", "runningCount": 1},
            ]
        ),
        {"cluster": CLUSTER, "services": ["demo-api"], "include": ["TAGS"]},
    )
    elbv2.add_response("describe_target_health", _health(["healthy", "initial", "healthy"]), {"TargetGroupArn": TG})
    ecs.add_response(
        "describe_services",
        _service([{"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "COMPLETED", "runningCount": 2}]),
    )
    elbv2.add_response("describe_target_health", _health(["healthy", "healthy", "draining"]))

    wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)
    assert statuses == ["running 1/2, targets healthy 2/2", "running 2/2, targets healthy 2/2"]


def test_wait_for_a_worker_counts_tasks_only(stubbed: Any) -> None:
    ctx, ecs, _, statuses = stubbed
    ecs.add_response(
        "describe_services",
        _service(
            [{"status": "PRIMARY", "taskDefinition": TD1, "rolloutState": "COMPLETED", "runningCount": 3}], desired=3
        ),
    )
    wait_until_healthy(ctx, CLUSTER, "demo-api", TD1, None)
    assert statuses == ["running 3/3"]


def test_a_failed_deployment_ends_the_wait_with_the_reason_and_last_events(stubbed: Any) -> None:
    ctx, ecs, _, _ = stubbed
    ecs.add_response(
        "describe_services",
        _service(
            [
                {"status": "PRIMARY", "taskDefinition": TD1, "rolloutState": "IN_PROGRESS", "runningCount": 1},
                {
                    "status": "ACTIVE",
                    "taskDefinition": TD2,
                    "rolloutState": "FAILED",
                    "runningCount": 0,
                    "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
                },
            ],
            events=7,
        ),
    )
    with pytest.raises(AwsError) as e:
        wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)
    message = str(e.value)
    assert message.startswith(
        "Failed to deploy ECS service demo-api: deployment failed: "
        "ECS deployment circuit breaker: tasks failed to start."
    )
    assert [f"event {i}" in message for i in range(7)] == [True] * 5 + [False] * 2  # the newest five


def test_a_rollback_is_a_failure_too(stubbed: Any) -> None:
    ctx, ecs, _, _ = stubbed
    ecs.add_response(
        "describe_services",
        _service([{"status": "PRIMARY", "taskDefinition": TD1, "rolloutState": "IN_PROGRESS", "runningCount": 2}]),
    )
    with pytest.raises(AwsError, match="ECS rolled back to demo-api:1"):
        wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)


def test_a_timeout_names_the_counts_and_the_last_events(stubbed: Any) -> None:
    ctx, ecs, elbv2, _ = stubbed
    ctx.timeouts = Timeouts(default=0, delay=0)
    stuck = [{"status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "IN_PROGRESS", "runningCount": 0}]
    ecs.add_response("describe_services", _service(stuck))
    elbv2.add_response("describe_target_health", _health([]))
    ecs.add_response("describe_services", _service(stuck, events=2))
    with pytest.raises(WaitTimeout) as e:
        wait_until_healthy(ctx, CLUSTER, "demo-api", TD2, TG)
    message = str(e.value)
    assert "waiting for ECS service demo-api to become healthy (running 0/2, targets healthy 0/2)" in message
    assert "event 0" in message and "event 1" in message


def test_up_waits_for_the_service_unless_told_not_to(compute: dict[str, StandIn]) -> None:
    """On plain moto a service never starts its tasks: a waiting `up` times out, naming the counts."""
    from spotecs.engine.apply import apply

    stack = make_stack()
    steps = workload_steps(stack, compute, lambda s: s.key == "service:api")
    ctx = make_ctx(stack)
    ctx.timeouts = Timeouts(default=0, delay=0)
    result = apply(plan(steps, ctx), steps, ctx)
    assert list(result.failed) == ["service:api"]
    assert "running 0/2, targets healthy 0/2" in str(result.failed["service:api"])
    assert writes(ctx, "CreateService")  # created, then waited: the next `up` goes on

    ctx = ctx_for(stack)
    assert apply(plan(steps, ctx), steps, ctx).ok


# --------------------------------------------------------------------------- checks before any write


def _yaml(service: str, **extra: str) -> str:
    lines = [
        "stack: demo",
        "instances:",
        "  types: [t3.small]",
        *extra.get("instances", "").splitlines(),
        "services:",
        "  api:",
        "    image: app:1",
        *(f"    {line}" for line in service.splitlines()),
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("service", "instances", "message"),
    [
        ("memory_soft: 600\nmemory_hard: 512", "", "services.api.memory_soft: must not exceed memory_hard (512)"),
        (
            "desired_count: 1\ndeployment:\n  min_healthy_percent: 50\n  max_percent: 150",
            "",
            "a deployment can never make progress",
        ),
        (
            "container_port: 3000\nderegistration_delay: 90",
            "  container_stop_timeout: 60",
            "more than the 2-minute spot notice",
        ),
    ],
)
def test_config_refuses_settings_that_cannot_work(service: str, instances: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse(_yaml(service, instances=instances))


def test_min_healthy_100_with_spot_is_a_warning() -> None:
    stack = parse(_yaml("container_port: 3000"))
    assert any("min_healthy_percent: 100 with a spot-heavy mix" in w for w in stack.warnings())
    on_demand = parse(_yaml("container_port: 3000", instances="  on_demand_percent: 100"))
    assert on_demand.warnings() == []
