"""The convergence walk: from examples/article.yaml, a seeded sequence of edits drawn from a
catalogue covering every section of the stack file, each applied with `spotecs up` on the
sandbox, then checked: the next `up --dry-run --detailed-exitcode` exits 0, AWS holds what the
file says (read back with plain boto3 calls, not through the steps), nothing of the stack is
orphaned, and every service runs its desired count with healthy targets. A scheduled action
takes effect after each `up` (fire_schedules), so the checks also hold inside its window.

Used by tests/test_converge.py (a fixed small set of seeds) and bench/converge.py (a seed range).
"""

from __future__ import annotations

import copy
import random
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

import spotecs.up
from spotecs.aws import Aws
from spotecs.cli import cli
from spotecs.config import AMI_ALIASES, Stack
from spotecs.errors import ConfigError
from spotecs.render import Env
from spotecs.sandbox import Sandbox
from spotecs.steps.base import Timeouts
from tests.stack_inventory import inventory

ROOT = Path(__file__).resolve().parent.parent
FAST = Timeouts(default=60, delay=0.05)
Doc = dict[str, Any]


@dataclass
class Outcome:
    code: int
    output: str
    aws: Aws


def spotecs_cli(sandbox: Sandbox, *args: str) -> Outcome:
    opened: list[Aws] = []

    class Recording(Aws):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            opened.append(self)

    env = Env(console=Console(width=1000), err=Console(stderr=True, width=1000), stdin_isatty=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spotecs.up, "Aws", Recording)
        mp.setattr(spotecs.up, "Timeouts", lambda: FAST)
        result = CliRunner().invoke(cli, [*args, "--endpoint-url", sandbox.endpoint_url], obj=env)
    assert len(opened) == 1, result.output
    return Outcome(result.exit_code, result.output, opened[0])


_CLIENTS: weakref.WeakKeyDictionary[Sandbox, dict[str, Any]] = weakref.WeakKeyDictionary()


def _client(sandbox: Sandbox, service: str) -> Any:
    """The checks' client for `service`, made once per sandbox (a client costs more than the
    calls a check makes with it)."""
    made = _CLIENTS.setdefault(sandbox, {})
    if service not in made:
        made[service] = sandbox.client(service)
    return made[service]


# ----------------------------------------------------------------------------- the catalogue


def _svc(doc: Doc, rng: random.Random, web: bool | None = None) -> str:
    names = [n for n, s in doc["services"].items() if web is None or ("container_port" in s) == web]
    return rng.choice(sorted(names)) if names else ""


def _first(doc: Doc) -> Doc:
    return dict(doc["services"][sorted(doc["services"])[0]])


def instance_types(doc: Doc, rng: random.Random) -> str:
    doc["instances"]["types"] = rng.choice([["t3.small"], ["t3.small", "t3a.small"], ["t3.medium", "t3.small"]])
    return f"instances.types {doc['instances']['types']}"


def instance_mix(doc: Doc, rng: random.Random) -> str:
    doc["instances"]["on_demand_base"] = rng.choice([0, 1])
    doc["instances"]["on_demand_percent"] = rng.choice([0, 20, 35, 100])
    return f"mix base {doc['instances']['on_demand_base']} {doc['instances']['on_demand_percent']}%"


def ami(doc: Doc, rng: random.Random) -> str:
    doc["instances"]["ami"] = "al2" if doc["instances"].get("ami") == "al2023" else "al2023"
    return f"ami {doc['instances']['ami']}"


def disk(doc: Doc, rng: random.Random) -> str:
    doc["instances"]["disk_gib"] = rng.choice([30, 35, 40])
    return f"disk {doc['instances']['disk_gib']}"


def bounds(doc: Doc, rng: random.Random) -> str:
    lo = rng.choice([1, 2])
    doc["instances"].update(min=lo, max=rng.choice([4, 5, 6]), desired=lo + 1)
    return f"instances {lo}..{doc['instances']['max']}"


def target_capacity(doc: Doc, rng: random.Random) -> str:
    doc["capacity_provider"]["target_capacity"] = rng.choice([80, 90, 100])
    return f"target capacity {doc['capacity_provider']['target_capacity']}"


def cluster_name(doc: Doc, rng: random.Random) -> str:
    doc["cluster"]["name"] = f"{doc['stack']}-c{rng.randrange(1000)}"
    return f"cluster name {doc['cluster']['name']}"


def internal(doc: Doc, rng: random.Random) -> str:
    lb = doc.setdefault("load_balancer", {})
    lb["internal"] = not lb.get("internal", False)
    return f"internal {lb['internal']}"


def https(doc: Doc, rng: random.Random) -> str:
    lb = doc.setdefault("load_balancer", {})
    if lb.pop("certificate_arn", None):
        return "https off"
    lb["certificate_arn"] = doc["_certificate"]
    return "https on"


LOGS_OFF = "access logs off"


def access_logs(doc: Doc, rng: random.Random) -> str:
    """The load balancer's access logs on (into the bucket spotecs makes) or off: the bucket goes
    with them, after an `up --keep-logs` that keeps it (the walk does both). Without a web
    service there is no load balancer, so no bucket either way."""
    lb = doc.setdefault("load_balancer", {})
    if lb.pop("access_logs", None) is not None:
        return LOGS_OFF
    lb["access_logs"] = {"expire_days": rng.choice([3, 9])}
    return f"access logs on, expiring after {lb['access_logs']['expire_days']} days"


def health_check(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng, web=True)
    if not name:
        return ""
    doc["services"][name]["health_check"] = {"path": rng.choice(["/", "/health"]), "interval": rng.choice([15, 30])}
    return f"{name} health check"


def deregistration_delay(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng, web=True)
    if not name:
        return ""
    doc["services"][name]["deregistration_delay"] = rng.choice([10, 20, 30])
    return f"{name} deregistration delay"


def image(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng)
    doc["services"][name]["image"] = rng.choice(["bitnami/node-example:0.0.1", "bitnami/node-example:0.0.2"])
    return f"{name} image"


def port(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng, web=True)
    if not name:
        return ""
    doc["services"][name]["container_port"] = rng.choice([3000, 8080])
    return f"{name} port"


def size(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng)
    cpu, soft, hard = rng.choice([(256, 256, 512), (512, 384, 768), (128, 200, 300)])
    doc["services"][name].update(cpu=cpu, memory_soft=soft, memory_hard=hard)
    return f"{name} cpu/memory {cpu}/{soft}/{hard}"


def environment(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng)
    svc = doc["services"][name]
    svc["environment"] = {"MODE": rng.choice(["a", "b"]), **({"EXTRA": "1"} if rng.random() < 0.5 else {})}
    if rng.random() < 0.5:
        svc["secrets"] = {"TOKEN": doc["_secret"]}
    else:
        svc.pop("secrets", None)
    return f"{name} environment/secrets"


def deployment(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng)
    low, high = rng.choice([(100, 200), (50, 200), (50, 150)])
    doc["services"][name]["deployment"] = {"min_healthy_percent": low, "max_percent": high}
    return f"{name} deployment {low}/{high}"


def placement(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng)
    doc["services"][name]["placement"] = rng.choice(
        [
            [{"type": "binpack", "field": "cpu"}],
            [{"type": "spread", "field": "attribute:ecs.availability-zone"}],
            [{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "binpack", "field": "memory"}],
        ]
    )
    return f"{name} placement"


def add_service(doc: Doc, rng: random.Random) -> str:
    name = f"svc{rng.randrange(100)}"
    base = {k: v for k, v in _first(doc).items() if k not in ("scaling", "routing")}
    if rng.random() < 0.5:
        base.pop("container_port", None)
        base.pop("health_check", None)
        base.pop("deregistration_delay", None)
        base.pop("health_check_grace_period", None)
    else:
        base["container_port"] = 3000
        base["routing"] = {"paths": [f"/{name}/*"]}
    base["desired_count"] = 1
    doc["services"][name] = base
    return f"add service {name}"


def rename_service(doc: Doc, rng: random.Random) -> str:
    old = _svc(doc, rng)
    new = f"{old.split('-r')[0]}-r{rng.randrange(100)}"
    doc["services"] = {(new if k == old else k): v for k, v in doc["services"].items()}
    return f"rename service {old} -> {new}"


def remove_service(doc: Doc, rng: random.Random) -> str:
    if len(doc["services"]) < 2:
        return ""
    name = _svc(doc, rng)
    del doc["services"][name]
    return f"remove service {name}"


def to_worker(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng, web=True)
    if not name:
        return ""
    svc = doc["services"][name]
    for key in ("container_port", "health_check", "deregistration_delay", "health_check_grace_period", "routing"):
        svc.pop(key, None)
    if svc.get("scaling"):
        svc["scaling"]["target_tracking"] = [
            t for t in svc["scaling"].get("target_tracking", []) if t["metric"] != "requests"
        ]
    return f"{name} web -> worker"


def scaling(doc: Doc, rng: random.Random) -> str:
    name = _svc(doc, rng)
    choice = rng.choice(["tracking", "scheduled", "off"])
    svc = doc["services"][name]
    if choice == "off":
        svc.pop("scaling", None)
        return f"{name} scaling off"
    rule = {
        "min": 1,
        "max": rng.choice([6, 10]),
        "target_tracking": [{"metric": "cpu", "target": rng.choice([70, 85])}],
    }
    if choice == "scheduled":
        rule["scheduled"] = [{"name": "morning", "schedule": "cron(0 8 * * ? *)", "min": 2}]
    svc["scaling"] = rule
    return f"{name} scaling {choice}"


def scheduled_change(doc: Doc, rng: random.Random) -> str:
    """An existing scheduled action moved and resized (not added or removed)."""
    names = sorted(n for n, s in doc["services"].items() if (s.get("scaling") or {}).get("scheduled"))
    if not names:
        return ""
    name = rng.choice(names)
    action = doc["services"][name]["scaling"]["scheduled"][0]
    action["schedule"] = rng.choice(["cron(30 7 ? * MON-FRI *)", "cron(0 9 * * ? *)", "cron(15 6 ? * SAT *)"])
    action["min"] = rng.choice([2, 3])
    action["timezone"] = rng.choice(["UTC", "Europe/Paris"])
    return f"{name} scheduled action {action['name']} -> {action['schedule']} min {action['min']}"


def requests_scaling(doc: Doc, rng: random.Random) -> str:
    """Target tracking on the load balancer's requests per target (ALBRequestCountPerTarget)."""
    name = _svc(doc, rng, web=True)
    if not name:
        return ""
    svc = doc["services"][name]
    rule = svc.get("scaling") or {"min": 1, "max": 6}
    others = [t for t in rule.get("target_tracking", []) if t["metric"] != "requests"]
    rule["target_tracking"] = [*others, {"metric": "requests", "target": rng.choice([500, 1200])}]
    svc["scaling"] = rule
    return f"{name} scaling on requests per target"


def keep_logs(doc: Doc, rng: random.Random) -> str:
    """The file unchanged: `teardown --keep-logs`, then `up` again (the walk does both)."""
    return "teardown --keep-logs, then up"


def tags(doc: Doc, rng: random.Random) -> str:
    doc["tags"] = rng.choice([{}, {"team": "web"}, {"team": "ops", "cost": "a1"}])
    return f"tags {doc['tags']}"


CATALOGUE: list[Callable[[Doc, random.Random], str]] = [
    instance_types,
    instance_mix,
    ami,
    disk,
    bounds,
    target_capacity,
    cluster_name,
    internal,
    https,
    access_logs,
    health_check,
    deregistration_delay,
    image,
    port,
    size,
    environment,
    deployment,
    placement,
    add_service,
    rename_service,
    remove_service,
    to_worker,
    scaling,
    scheduled_change,
    requests_scaling,
    tags,
    keep_logs,
]


# ----------------------------------------------------------------------------- checks


def _write(path: Path, doc: Doc) -> None:
    path.write_text(yaml.safe_dump({k: v for k, v in doc.items() if not k.startswith("_")}, sort_keys=False))


def _valid(doc: Doc) -> bool:
    try:
        Stack.model_validate({k: v for k, v in doc.items() if not k.startswith("_")})
    except (ValueError, ConfigError):
        return False
    return True


def mismatches(sandbox: Sandbox, doc: Doc) -> list[str]:
    """What AWS holds that differs from the file, read with plain calls. The file is read through
    the config model (for its defaults); AWS only through describe calls, never through a step."""
    stack = Stack.model_validate({k: v for k, v in doc.items() if not k.startswith("_")})
    out = _fleet_mismatches(sandbox, stack)
    web = [name for name, svc in stack.services.items() if svc.container_port is not None]
    for name in stack.services:
        out += _service_mismatches(sandbox, doc, stack, name)
    if web:
        out += _load_balancer_mismatches(sandbox, stack)
    return out + tag_mismatches(sandbox, stack)


# Keys that are not the file's `tags:`: the stack's own (spotecs:*, including the bounds a
# scalable target remembers), AWS's (aws:*, AmazonECSManaged) and the Name some kinds carry.
def _file_tags(tags: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in tags.items()
        if not k.startswith(("spotecs:", "aws:")) and k not in ("Name", "AmazonECSManaged")
    }


def tag_mismatches(sandbox: Sandbox, stack: Stack) -> list[str]:
    """Each resource of the stack whose tags (beyond the stack's own and a Name) are not the
    file's `tags:`, read with plain calls: the tagging API for what it indexes, the per-service
    tag reads for listeners, rules, IAM, scalable targets and alarms, each service's current task
    definition revision (older revisions keep the tags they were made with), and the running
    instances, their volumes and the running tasks."""
    want, out = dict(stack.tags), []
    held: dict[str, dict[str, str]] = {}
    tagging = _client(sandbox, "resourcegroupstaggingapi")
    for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "spotecs:stack", "Values": [stack.stack]}]
    ):
        for r in page["ResourceTagMappingList"]:
            # The running fleet's are read below; the tagging API also lists the gone ones.
            if not re.search(r":(instance|volume|task|container-instance|task-definition)/", r["ResourceARN"]):
                held[r["ResourceARN"]] = {t["Key"]: t["Value"] for t in r.get("Tags", [])}
    ecs, elbv2, iam = (_client(sandbox, s) for s in ("ecs", "elbv2", "iam"))
    # moto's tagging API keeps deleted clusters and services (a renamed cluster's, say)
    for arn in [a for a in held if ":service/" in a]:
        found = ecs.describe_services(cluster=arn.split("/")[-2], services=[arn])["services"]
        if not found or found[0]["status"] != "ACTIVE":
            del held[arn]
    for arn in [a for a in held if ":cluster/" in a]:
        found = ecs.describe_clusters(clusters=[arn])["clusters"]
        if not found or found[0]["status"] != "ACTIVE":
            del held[arn]
    [cluster] = ecs.describe_clusters(clusters=[_cluster(stack)])["clusters"]
    providers = cluster.get("capacityProviders", [])
    for p in ecs.describe_capacity_providers(capacityProviders=providers, include=["TAGS"])["capacityProviders"]:
        held[p["capacityProviderArn"]] = {t["key"]: t["value"] for t in p.get("tags", [])}
    for name in stack.services:
        found = ecs.describe_services(cluster=_cluster(stack), services=[f"{stack.stack}-{name}"])["services"]
        if found and found[0]["status"] == "ACTIVE":
            td = ecs.describe_task_definition(taskDefinition=found[0]["taskDefinition"], include=["TAGS"])
            held[td["taskDefinition"]["taskDefinitionArn"]] = {t["key"]: t["value"] for t in td.get("tags", [])}
    lbs = [a for a in held if ":loadbalancer/app/" in a]
    for lb in lbs:
        for ln in elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]:
            rules = [r["RuleArn"] for r in elbv2.describe_rules(ListenerArn=ln["ListenerArn"])["Rules"]]
            arns = [ln["ListenerArn"], *(r for r in rules if ":listener-rule/" in r)]
            for d in elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]:
                if d["Tags"]:  # a default rule carries no tags of its own
                    held[d["ResourceArn"]] = {t["Key"]: t["Value"] for t in d["Tags"]}
    region = stack.region
    for role in ("ecs-instance", "ecs-execution"):
        name = f"{stack.stack}-{region}-{role}"
        held[f"iam role {name}"] = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
    profile = f"{stack.stack}-{region}-ecs-instance"
    tags = iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"].get("Tags", [])
    held[f"instance profile {profile}"] = {t["Key"]: t["Value"] for t in tags}
    aas = _client(sandbox, "application-autoscaling")
    for t in aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]:
        if t["ResourceId"].split("/")[1] == _cluster(stack):
            held[t["ScalableTargetARN"]] = aas.list_tags_for_resource(ResourceARN=t["ScalableTargetARN"])["Tags"]
    held.update(_running_fleet_tags(sandbox, stack))
    for what, tags in sorted(held.items()):
        if _file_tags(tags) != want:
            out.append(f"tags of {what}: {_file_tags(tags)}")
    return out


def _running_fleet_tags(sandbox: Sandbox, stack: Stack) -> dict[str, dict[str, str]]:
    """The tags of the group's running instances, of their volumes and of the services' running
    tasks (AWS tags them at launch only; `up` re-tags them on a tags edit): one DescribeInstances,
    one DescribeVolumes, and a ListTasks and DescribeTasks per service."""
    ec2, ecs, out = _client(sandbox, "ec2"), _client(sandbox, "ecs"), {}
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:aws:autoscaling:groupName", "Values": [f"{stack.stack}-instances"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    ids = sorted(i["InstanceId"] for r in reservations for i in r["Instances"])
    for r in reservations:
        for i in r["Instances"]:
            out[f"instance {i['InstanceId']}"] = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
    if ids:
        for v in ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": ids}])["Volumes"]:
            out[f"volume {v['VolumeId']}"] = {t["Key"]: t["Value"] for t in v.get("Tags", [])}
    for name in stack.services:
        service = f"{stack.stack}-{name}"
        arns = ecs.list_tasks(cluster=_cluster(stack), serviceName=service, desiredStatus="RUNNING")["taskArns"]
        for task in ecs.describe_tasks(cluster=_cluster(stack), tasks=arns, include=["TAGS"])["tasks"] if arns else []:
            out[f"task {task['taskArn'].rsplit('/', 1)[-1]} of {service}"] = {
                t["key"]: t["value"] for t in task.get("tags", [])
            }
    return out


def _fleet_mismatches(sandbox: Sandbox, stack: Stack) -> list[str]:
    """The group (bounds, types, mix, the file's tags), the template version it launches (the
    alias's image, the disk, the volumes' tags) and the capacity provider's target capacity."""
    out: list[str] = []
    asg, ec2, ecs, ssm = (_client(sandbox, s) for s in ("autoscaling", "ec2", "ecs", "ssm"))
    inst, name = stack.instances, f"{stack.stack}-instances"
    [group] = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if (group["MinSize"], group["MaxSize"]) != (inst.min, inst.max):
        out.append(f"group bounds {group['MinSize']}..{group['MaxSize']}")
    lt = group["MixedInstancesPolicy"]["LaunchTemplate"]
    if [o["InstanceType"] for o in lt["Overrides"]] != inst.types:
        out.append(f"group types {lt['Overrides']}")
    dist = group["MixedInstancesPolicy"]["InstancesDistribution"]
    mix = (dist["OnDemandBaseCapacity"], dist["OnDemandPercentageAboveBaseCapacity"])
    if mix != (inst.on_demand_base, inst.on_demand_percent):
        out.append(f"group on-demand base and percent {mix}")
    if _user_tags(group["Tags"]) != {"Name": name, **stack.tags}:
        out.append(f"group tags {_user_tags(group['Tags'])}")
    spec = lt["LaunchTemplateSpecification"]
    [version] = ec2.describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"], Versions=[spec["Version"]]
    )["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    image = ssm.get_parameter(Name=AMI_ALIASES[inst.ami])["Parameter"]["Value"] if inst.ami in AMI_ALIASES else inst.ami
    if data["ImageId"] != image:
        out.append(f"template image {data['ImageId']}, {inst.ami} is {image}")
    [disk] = data["BlockDeviceMappings"]
    if disk["Ebs"]["VolumeSize"] != inst.disk_gib:
        out.append(f"template disk {disk['Ebs']['VolumeSize']} GiB")
    volume_tags = next(t["Tags"] for t in data["TagSpecifications"] if t["ResourceType"] == "volume")
    if {t["Key"]: t["Value"] for t in volume_tags if not t["Key"].startswith("spotecs:")} != {
        "Name": name,
        **stack.tags,
    }:
        out.append(f"template volume tags {volume_tags}")
    [cluster] = ecs.describe_clusters(clusters=[_cluster(stack)])["clusters"]
    providers = ecs.describe_capacity_providers(capacityProviders=cluster["capacityProviders"])["capacityProviders"]
    if [p["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] for p in providers] != [
        stack.capacity_provider.target_capacity
    ]:
        out.append(f"capacity providers {providers}")
    return out


def _user_tags(tags: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags if not t["Key"].startswith("spotecs:")}


def _cluster(stack: Stack) -> str:
    return stack.cluster.name or stack.stack


def _service_mismatches(sandbox: Sandbox, doc: Doc, stack: Stack, name: str) -> list[str]:
    """The service's deployment and placement, its task definition's container (image, size,
    environment, secrets, port), its scaling, its count and its healthy targets."""
    ecs, elbv2 = _client(sandbox, "ecs"), _client(sandbox, "elbv2")
    svc, service = stack.services[name], f"{stack.stack}-{name}"
    found = ecs.describe_services(cluster=_cluster(stack), services=[service])["services"]
    if not found or found[0]["status"] != "ACTIVE":
        return [f"service {name} missing"]
    out: list[str] = []
    s = found[0]
    deploy = s["deploymentConfiguration"]
    if (deploy["minimumHealthyPercent"], deploy["maximumPercent"]) != (
        svc.deployment.min_healthy_percent,
        svc.deployment.max_percent,
    ):
        out.append(f"service {name} deployment {deploy}")
    placement = [{k: v for k, v in p.items() if v is not None} for p in s.get("placementStrategy", [])]
    wanted = [{"type": p.type, **({"field": p.field} if p.field else {})} for p in svc.placement]
    if placement != wanted:
        out.append(f"service {name} placement {placement}")
    td = ecs.describe_task_definition(taskDefinition=s["taskDefinition"])["taskDefinition"]
    [container] = td["containerDefinitions"]
    if container["image"] != svc.image:
        out.append(f"service {name} image {container['image']}")
    size = (container.get("cpu"), container.get("memoryReservation"), container.get("memory"))
    if size != (svc.cpu, svc.memory_soft, svc.memory_hard):
        out.append(f"service {name} cpu/memory {size}")
    env = {e["name"]: e["value"] for e in container.get("environment") or []}
    if env != svc.environment:
        out.append(f"service {name} environment {env}")
    secrets = {e["name"]: e["valueFrom"] for e in container.get("secrets") or []}
    if secrets != doc["services"][name].get("secrets", {}):
        out.append(f"service {name} secrets {secrets}")
    ports = [p["containerPort"] for p in container.get("portMappings", [])]
    if ports != ([svc.container_port] if svc.container_port is not None else []):
        out.append(f"service {name} ports {ports}")
    rule = doc["services"][name].get("scaling")
    if rule:
        out += _scaling_mismatches(sandbox, f"service/{_cluster(stack)}/{service}", service, rule)
    count = s["desiredCount"]
    if rule is None and count != svc.desired_count:
        out.append(f"service {name} desired {count}")
    if s["runningCount"] != count:
        out.append(f"service {name} running {s['runningCount']}/{count}")
    if svc.container_port is None:
        return out
    lbs = s.get("loadBalancers", [])
    if not lbs:
        return [*out, f"service {name} has no target group"]
    arn = lbs[0]["targetGroupArn"]
    health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    healthy = [h for h in health if h["TargetHealth"]["State"] == "healthy"]
    if len(healthy) != count:
        out.append(f"service {name} healthy targets {len(healthy)}/{count}")
    [tg] = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
    check = svc.health_check
    got = (tg["HealthCheckPath"], tg["HealthCheckIntervalSeconds"], tg["Matcher"]["HttpCode"])
    if got != (check.path, check.interval, check.success_codes):
        out.append(f"service {name} health check {got}")
    attributes = elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    delay = next(a["Value"] for a in attributes if a["Key"] == "deregistration_delay.timeout_seconds")
    if int(delay) != svc.deregistration_delay:
        out.append(f"service {name} deregistration delay {delay}")
    return out


def _load_balancer_mismatches(sandbox: Sandbox, stack: Stack) -> list[str]:
    """The scheme, and the listeners: HTTP forwarding, or HTTP redirecting to HTTPS on the
    file's certificate."""
    elbv2, out = _client(sandbox, "elbv2"), []
    [lb] = elbv2.describe_load_balancers(Names=[stack.stack])["LoadBalancers"]
    want = "internal" if stack.load_balancer.internal else "internet-facing"
    if lb["Scheme"] != want:
        out.append(f"load balancer scheme {lb['Scheme']}")
    listeners = {ln["Port"]: ln for ln in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    cert = stack.load_balancer.certificate_arn
    if sorted(listeners) != ([80, 443] if cert else [80]):
        return [*out, f"listeners {sorted(listeners)}"]
    http = listeners[80]["DefaultActions"][0]["Type"]
    if http != ("redirect" if cert and stack.load_balancer.redirect_http else "forward"):
        out.append(f"the HTTP listener's action {http}")
    if cert and [c["CertificateArn"] for c in listeners[443].get("Certificates", [])] != [cert]:
        out.append(f"the HTTPS listener's certificates {listeners[443].get('Certificates')}")
    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]
    held = {a["Key"]: a["Value"] for a in attributes if a["Key"].startswith("access_logs.s3.")}
    logs = stack.load_balancer.access_logs
    want_logs = ("true", logs.bucket or f"{stack.stack}-alb-logs-123456789012") if logs else ("false", "")
    if (held.get("access_logs.s3.enabled"), held.get("access_logs.s3.bucket", "")) != want_logs:
        out.append(f"load balancer access logs {held}")
    return out


METRICS = {"cpu": "ECSServiceAverageCPUUtilization", "requests": "ALBRequestCountPerTarget"}


def _scaling_mismatches(sandbox: Sandbox, resource: str, service: str, rule: Doc) -> list[str]:
    """The scalable target's bounds, its tracking policies (requests counted on the service's
    own target group) and its scheduled actions, against the file."""
    aas, out = _client(sandbox, "application-autoscaling"), []
    target = {"ServiceNamespace": "ecs", "ResourceId": resource, "ScalableDimension": "ecs:service:DesiredCount"}
    found = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[resource])["ScalableTargets"]
    # The file's bounds, or those a scheduled action set (fire_schedules): `up` keeps those.
    allowed = {(rule["min"], rule["max"])} | {_window(rule, a) for a in rule.get("scheduled", [])}
    if not found or (found[0]["MinCapacity"], found[0]["MaxCapacity"]) not in allowed:
        return [f"{service} scalable target {found}"]
    if rule.get("scheduled"):
        tags = aas.list_tags_for_resource(ResourceARN=found[0]["ScalableTargetARN"])["Tags"]
        if tags.get("spotecs:bounds") != f"min={rule['min']},max={rule['max']}":
            out.append(f"{service} remembers bounds {tags}")
    policies = aas.describe_scaling_policies(**target)["ScalingPolicies"]
    tracked = {}
    for p in policies:
        spec = p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
        tracked[spec["PredefinedMetricType"]] = spec.get("ResourceLabel", "")
    if sorted(tracked) != sorted(METRICS[t["metric"]] for t in rule.get("target_tracking", [])):
        out.append(f"{service} tracking {sorted(tracked)}")
    label = tracked.get(METRICS["requests"])
    if label is not None and f"/targetgroup/{service}/" not in label:
        out.append(f"{service} requests counted on {label}")
    actions = {
        a["ScheduledActionName"]: (
            a["Schedule"],
            a.get("Timezone") or "UTC",
            a.get("ScalableTargetAction", {}).get("MinCapacity"),
        )
        for a in aas.describe_scheduled_actions(**target)["ScheduledActions"]
    }
    wanted = {
        f"{service}-{a['name']}": (a["schedule"], a.get("timezone", "UTC"), a.get("min"))
        for a in rule.get("scheduled", [])
    }
    if actions != wanted:
        out.append(f"{service} scheduled actions {actions}")
    return out


def _window(rule: Doc, action: Doc) -> tuple[int, int]:
    """The bounds in force while a scheduled action's window lasts."""
    return action.get("min", rule["min"]), action.get("max", rule["max"])


def fire_schedules(sandbox: Sandbox, doc: Doc) -> None:
    """Each service's first scheduled action takes effect, as Application Auto Scaling applies
    it at its time (the sandbox runs no schedule): the next plan must not call that drift."""
    aas = _client(sandbox, "application-autoscaling")
    for name, svc in doc["services"].items():
        rule = svc.get("scaling") or {}
        if rule.get("scheduled"):
            lo, hi = _window(rule, rule["scheduled"][0])
            aas.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=f"service/{doc['cluster']['name']}/{doc['stack']}-{name}",
                ScalableDimension="ecs:service:DesiredCount",
                MinCapacity=lo,
                MaxCapacity=hi,
            )


def orphans(sandbox: Sandbox, doc: Doc) -> list[str]:
    """Everything tagged as the stack's that the file does not account for: each kind by the
    name the file gives it (a security group by the name AWS holds for the tagged id)."""
    stack, cluster, region = doc["stack"], doc["cluster"]["name"], doc["region"]
    services = {f"{stack}-{n}" for n in doc["services"]}
    web = {f"{stack}-{n}" for n, s in doc["services"].items() if "container_port" in s}
    scaled = {f"{stack}-{n}" for n, s in doc["services"].items() if s.get("scaling")}
    logs = {f"/ecs/{stack}/{n}" for n in doc["services"]}
    allowed: list[str] = [
        rf"tagged:.*:cluster/{re.escape(cluster)}$",
        rf"launch-template:{stack}-instances$",
        rf"auto-scaling-group:{stack}-instances$",
        rf"capacity-provider:{stack}-instances-\w+$",
        rf"iam-role:{stack}-{region}-ecs-(instance|execution)$",
        rf"instance-profile:{stack}-{region}-ecs-instance$",
        rf"security-group:{stack}-instances$",
    ]
    allowed += [rf"tagged:.*:service/{re.escape(cluster)}/{s}$" for s in services]
    allowed += [rf"tagged:.*:task-definition/{s}:\d+$" for s in services]
    allowed += [rf"tagged:.*:log-group:{re.escape(g)}$" for g in logs]
    allowed += [rf"scalable-target:service/{re.escape(cluster)}/{s}$" for s in scaled]
    allowed += [rf"tagged:.*:alarm:{s}-.*" for s in scaled]
    # The access-log bucket only while the file has access logs (into spotecs's bucket) and a
    # load balancer: once they are off (or no service is web), `up` deletes it.
    logs_bucket = (doc.get("load_balancer") or {}).get("access_logs")
    if web and logs_bucket is not None and not logs_bucket.get("bucket"):
        allowed += [rf"tagged:arn:aws:s3:::{re.escape(_logs_bucket(doc))}$"]
    if web:
        allowed += [rf"tagged:.*:loadbalancer/app/{stack}/\w+$", rf"listener:{stack}:(80|443)$"]
        allowed += [rf"security-group:{stack}-lb$"]
        allowed += [rf"tagged:.*:targetgroup/{s}/\w+$" for s in web]
    live = inventory(lambda service: _client(sandbox, service), stack)
    groups = {r.rsplit("/", 1)[-1]: r for r in live if ":security-group/" in r}
    named: list[str] = []
    if groups:
        described = _client(sandbox, "ec2").describe_security_groups(GroupIds=sorted(groups))["SecurityGroups"]
        named = [f"security-group:{g['GroupName']}" for g in described]
    extra = [r for r in [*(live - set(groups.values())), *named] if not any(re.match(p, r) for p in allowed)]
    return sorted(extra + [f"two of {r}" for r in set(named) if named.count(r) > 1])


# ----------------------------------------------------------------------------- the walk


@dataclass
class Walk:
    seed: int
    steps: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # the catalogue entry of each step
    failure: str = ""


MARKER = "walk-marker"  # a log stream `teardown --keep-logs` must keep, and `up` must not lose


def _teardown_keeping_logs(sandbox: Sandbox, path: Path, doc: Doc) -> tuple[str, str] | None:
    """`teardown --keep-logs` with the file as it is: exit 0, only the services' log groups
    left, each with the stream written into it before. None when all of that holds."""
    logs, stack = _client(sandbox, "logs"), doc["stack"]
    for name in doc["services"]:
        group = f"/ecs/{stack}/{name}"
        if not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=MARKER)["logStreams"]:
            logs.create_log_stream(logGroupName=group, logStreamName=MARKER)
        doc.setdefault("_marked", {})[group] = True
    down = spotecs_cli(sandbox, "teardown", "-f", str(path), "--yes", "--keep-logs")
    if down.code != 0:
        return "teardown --keep-logs failed", down.output
    bucket = f"tagged:arn:aws:s3:::{_logs_bucket(doc)}"
    left = sorted(
        r for r in inventory(lambda service: _client(sandbox, service), stack) if ":log-group:" not in r and r != bucket
    )
    if left:
        return f"teardown --keep-logs left {left}", down.output
    lost = _lost_markers(sandbox, doc)
    return (f"teardown --keep-logs lost {lost}", down.output) if lost else None


def _logs_bucket(doc: Doc) -> str:
    """The access-log bucket spotecs makes (names.access_log_bucket; the sandbox's account)."""
    return f"{doc['stack']}-alb-logs-123456789012"


def _up_keeping_logs(sandbox: Sandbox, path: Path, doc: Doc) -> tuple[str, str] | None:
    """`up --keep-logs` once access logs are off: exit 0, the bucket kept with what it holds, and
    the next plan with the flag empty (kept is not a change). None when all of that holds."""
    s3, bucket = _client(sandbox, "s3"), _logs_bucket(doc)
    s3.put_object(Bucket=bucket, Key=f"AWSLogs/{MARKER}", Body=b"GET / 200")
    kept = spotecs_cli(sandbox, "up", "-f", str(path), "--yes", "--keep-logs")
    if kept.code != 0:
        return f"up --keep-logs exited {kept.code}", kept.output
    if [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] != [f"AWSLogs/{MARKER}"]:
        return "up --keep-logs did not keep the access-log bucket's logs", kept.output
    again = spotecs_cli(sandbox, "up", "-f", str(path), "--dry-run", "--detailed-exitcode", "--keep-logs")
    return ("the next plan with --keep-logs is not empty", again.output) if again.code != 0 else None


def _lost_markers(sandbox: Sandbox, doc: Doc) -> list[str]:
    """The log groups of the file's services whose marker stream (if one was written) is gone."""
    logs, out = _client(sandbox, "logs"), []
    for name in doc["services"]:
        group = f"/ecs/{doc['stack']}/{name}"
        if (
            doc.get("_marked", {}).get(group)
            and not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=MARKER)["logStreams"]
        ):
            out.append(f"log group {group} lost its stream {MARKER}")
    return out


def setup(sandbox: Sandbox, stack: str) -> Doc:
    """The article's file as a document, renamed, with a certificate and a secret the edits use."""
    from moto.acm.models import CertBundle

    pem = CertBundle.generate_cert(f"{stack}.example.com", account_id="123456789012", region="us-east-1")
    cert = _client(sandbox, "acm").import_certificate(Certificate=pem.cert, PrivateKey=pem.key)["CertificateArn"]
    _client(sandbox, "ssm").put_parameter(Name=f"/{stack}/token", Value="s3cret", Type="SecureString")
    doc: Doc = yaml.safe_load((ROOT / "examples" / "article.yaml").read_text())
    doc["stack"] = stack
    doc["cluster"]["name"] = f"{stack}-cluster"
    doc["_certificate"] = cert
    doc["_secret"] = f"arn:aws:ssm:us-east-1:123456789012:parameter/{stack}/token"
    return doc


def walk(sandbox: Sandbox, tmp: Path, seed: int, edits: int = 25) -> Walk:
    """Bring the stack up, apply `edits` random edits one `up` at a time, check after each,
    then tear down. Returns the edits done and the first failure ("" if none)."""
    rng = random.Random(seed)
    stack = f"cv{seed}"
    doc = setup(sandbox, stack)
    path = tmp / f"{stack}.yaml"
    result = Walk(seed)

    def fail(what: str, out: str = "") -> Walk:
        result.failure = f"seed {seed}, after {result.steps}: {what}\n{out[-3000:]}"
        return result

    _write(path, doc)
    first = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
    if first.code != 0:
        return fail("first up failed", first.output)
    deck: list[Callable[[Doc, random.Random], str]] = []
    while len(result.steps) < edits:
        # Drawn without replacement from the top of the deck, the catalogue reshuffled when
        # spent. A kind that does not apply to the stack as it is (a web edit while no service
        # is web) stays on top, tried first at each later step; when none in the deck applies,
        # a new round goes under them. So a walk of len(CATALOGUE) edits tries every kind
        # unless one never applied (the CI walk checks that its seed tried every kind).
        if not deck:
            deck = rng.sample(CATALOGUE, len(CATALOGUE))
        for at in reversed(range(len(deck))):
            candidate = copy.deepcopy(doc)
            label = deck[at](candidate, rng)
            if label and _valid(candidate):
                edit = deck.pop(at)
                break
        else:
            deck = rng.sample(CATALOGUE, len(CATALOGUE)) + deck
            continue
        result.steps.append(label)
        result.kinds.append(edit.__name__)
        _write(path, candidate)
        if label == LOGS_OFF and any("container_port" in svc for svc in doc["services"].values()):
            kept = _up_keeping_logs(sandbox, path, candidate)
            if kept:
                return fail(*kept)
        if edit is not keep_logs:
            # After access logs are turned off, the bucket `up --keep-logs` kept goes now.
            run = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
            # A cluster rename is refused before any write; the way out it names is a teardown
            # (keeping the logs), then up.
            if edit is cluster_name and (run.code != 2 or run.aws.writes() or "cluster.name:" not in run.output):
                return fail("cluster rename not refused cleanly", run.output)
        if edit in (keep_logs, cluster_name):
            gone = _teardown_keeping_logs(sandbox, path, candidate)
            if gone:
                return fail(*gone)
            run = spotecs_cli(sandbox, "up", "-f", str(path), "--yes")
        if run.code != 0:
            return fail(f"up exited {run.code}", run.output)
        doc = candidate
        # A removed service's log group goes with it: its mark too (a service re-added under
        # that name starts a new group).
        groups = {f"/ecs/{stack}/{n}" for n in doc["services"]}
        doc["_marked"] = {g: m for g, m in doc.get("_marked", {}).items() if g in groups}
        fire_schedules(sandbox, doc)
        again = spotecs_cli(sandbox, "up", "-f", str(path), "--dry-run", "--detailed-exitcode")
        if again.code != 0:
            return fail("the next plan is not empty", again.output)
        wrong = mismatches(sandbox, doc) + _lost_markers(sandbox, doc)
        if wrong:
            return fail(f"AWS differs from the file: {wrong}")
        left = orphans(sandbox, doc)
        if left:
            return fail(f"orphaned: {left}")
    down = spotecs_cli(sandbox, "teardown", "-f", str(path), "--yes")
    if down.code != 0 or inventory(lambda service: _client(sandbox, service), stack):
        return fail("final teardown left something", down.output)
    return result
