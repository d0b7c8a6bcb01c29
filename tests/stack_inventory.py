"""Everything AWS holds of one stack, read with plain boto3 calls, independently of the steps:
the Resource Groups Tagging API plus the per-service lists for what moto's tagging API misses
(launch templates, groups, capacity providers, listeners, IAM, scalable targets). The fleet
(instances, their attached volumes) and the tasks are counted by their group and service; a
volume of the stack's attached to nothing is a leftover. Tests use it
to prove a teardown left nothing and that an `up` orphaned nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

STACK_TAG = "spotecs:stack"

Client = Callable[[str], Any]


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t.get("Key", t.get("key", "")): t.get("Value", t.get("value", "")) for t in items or []}


def inventory(client: Client, stack: str) -> set[str]:
    """`kind:name-or-id` of every live resource tagged `spotecs:stack=<stack>`."""
    found: set[str] = set()
    tagging = client("resourcegroupstaggingapi")
    for page in tagging.get_paginator("get_resources").paginate(TagFilters=[{"Key": STACK_TAG, "Values": [stack]}]):
        for r in page["ResourceTagMappingList"]:
            arn = r["ResourceARN"]
            if ":instance/" in arn or ":task/" in arn or ":container-instance/" in arn:
                continue  # the fleet and the tasks: counted by their group and service
            if ":volume/" in arn:  # kept below unless attached (an instance's: counted by its group)
                found.add(f"volume-candidate:{arn.rsplit('/', 1)[-1]}")
                continue
            if ":launch-template/" in arn:
                continue  # listed by name below
            if ":capacity-provider/" in arn:  # kept below if ACTIVE (ECS keeps a deleted one INACTIVE)
                found.add(f"capacity-provider-candidate:{arn.rsplit('/', 1)[-1]}")
                continue
            if ":listener/" in arn or ":listener-rule/" in arn:
                continue  # listed by their load balancer and port below; a rule goes with its listener
            found.add(f"tagged:{arn}")
    # moto lists task definitions in the tagging API even once deregistered.
    ecs = client("ecs")
    for arn in [a for a in found if ":task-definition/" in a]:
        td = ecs.describe_task_definition(taskDefinition=arn.removeprefix("tagged:"))["taskDefinition"]
        if td["status"] != "ACTIVE":
            found.discard(arn)
    for arn in [a for a in found if ":service/" in a]:
        cluster, name = arn.rsplit("/", 2)[-2:]
        services = ecs.describe_services(cluster=cluster, services=[name])["services"]
        if not services or services[0]["status"] != "ACTIVE":
            found.discard(arn)
    # Scaling outlives a deleted cluster's services: it is the stack's when its cluster is.
    stack_clusters = {a.rsplit("/", 1)[-1] for a in found if ":cluster/" in a}
    for arn in [a for a in found if ":cluster/" in a]:
        described = ecs.describe_clusters(clusters=[arn.removeprefix("tagged:")])["clusters"]
        if not described or described[0]["status"] != "ACTIVE":
            found.discard(arn)
        else:
            for cp in described[0].get("capacityProviders", []):
                found.add(f"capacity-provider-candidate:{cp}")
    ec2 = client("ec2")
    volumes = sorted(n.split(":", 1)[1] for n in found if n.startswith("volume-candidate:"))
    found = {f for f in found if not f.startswith("volume-candidate:")}
    for v in ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": volumes}])["Volumes"] if volumes else []:
        if v["State"] != "in-use":
            found.add(f"volume:{v['VolumeId']}")
    for t in ec2.describe_launch_templates(Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [stack]}])[
        "LaunchTemplates"
    ]:
        found.add(f"launch-template:{t['LaunchTemplateName']}")
    asg = client("autoscaling")
    for page in asg.get_paginator("describe_auto_scaling_groups").paginate():
        for g in page["AutoScalingGroups"]:
            if _tags(g.get("Tags")).get(STACK_TAG) == stack:
                found.add(f"auto-scaling-group:{g['AutoScalingGroupName']}")
    names = sorted(n.split(":", 1)[1] for n in found if n.startswith("capacity-provider-candidate:"))
    for cp in ecs.describe_capacity_providers(capacityProviders=names)["capacityProviders"] if names else []:
        if cp["status"] == "ACTIVE" and _tags(cp.get("tags")).get(STACK_TAG) == stack:
            found.add(f"capacity-provider:{cp['name']}")
    found = {f for f in found if not f.startswith("capacity-provider-candidate:")}
    elbv2 = client("elbv2")
    for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
        tags = elbv2.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"][0]["Tags"]
        if _tags(tags).get(STACK_TAG) == stack:
            for ln in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
                found.add(f"listener:{lb['LoadBalancerName']}:{ln['Port']}")
    iam = client("iam")
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if role["Path"].startswith("/aws-service-role/"):
                continue
            tags = iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
            if _tags(tags).get(STACK_TAG) == stack:
                found.add(f"iam-role:{role['RoleName']}")
    for page in iam.get_paginator("list_instance_profiles").paginate():
        for prof in page["InstanceProfiles"]:
            if _tags(prof.get("Tags")).get(STACK_TAG) == stack or prof["InstanceProfileName"].startswith(f"{stack}-"):
                found.add(f"instance-profile:{prof['InstanceProfileName']}")
    scaling = client("application-autoscaling")
    for t in scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]:
        if t["ResourceId"].split("/")[1] in stack_clusters:
            found.add(f"scalable-target:{t['ResourceId']}")
    return found
