"""A task definition per service: EC2, bridge networking, one container with a dynamic host
port, logs to the service's log group. Versioned: a new revision is registered only when the
content really differs, so `read` normalises what AWS fills in (defaults, order, empty lists)."""

from __future__ import annotations

from typing import Any

from spotecs import names
from spotecs.aws import tag_list, tags_from_list
from spotecs.engine.model import Action, Change
from spotecs.steps.base import Context, Step
from spotecs.steps.tagging import desired_tags, held_tags, retag

HEALTH_CHECK_DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}


def normalise_container(c: dict[str, Any]) -> dict[str, Any]:
    """The container fields spotecs sets, in one canonical shape for both sides of the diff.
    Every key is always present (None when unset) so a field removed from the stack file shows."""
    ports = sorted(
        (
            {
                "containerPort": p["containerPort"],
                "hostPort": p.get("hostPort", 0),
                "protocol": p.get("protocol", "tcp"),
            }
            for p in c.get("portMappings") or []
        ),
        key=lambda p: (p["containerPort"], p["protocol"]),
    )
    hc = c.get("healthCheck")
    log = c.get("logConfiguration")
    return {
        "name": c.get("name"),
        "image": c.get("image"),
        "cpu": c.get("cpu"),
        "memory": c.get("memory"),
        "memoryReservation": c.get("memoryReservation"),
        "essential": c.get("essential", True),
        "portMappings": ports or None,
        "command": c.get("command") or None,
        "environment": sorted(
            ({"name": e["name"], "value": e.get("value", "")} for e in c.get("environment") or []),
            key=lambda e: e["name"],
        )
        or None,
        "secrets": sorted(
            ({"name": s["name"], "valueFrom": s["valueFrom"]} for s in c.get("secrets") or []), key=lambda s: s["name"]
        )
        or None,
        "repositoryCredentials": (
            {"credentialsParameter": c["repositoryCredentials"]["credentialsParameter"]}
            if c.get("repositoryCredentials")
            else None
        ),
        "healthCheck": {"command": hc["command"], **{k: hc.get(k, d) for k, d in HEALTH_CHECK_DEFAULTS.items()}}
        if hc
        else None,
        "stopTimeout": c.get("stopTimeout"),
        "logConfiguration": {"logDriver": log["logDriver"], "options": dict(sorted(log.get("options", {}).items()))}
        if log
        else None,
    }


class TaskDefinition(Step):
    kind = "task definition"
    versioned = True
    version_outputs = frozenset({"arn", "revision"})

    def __init__(self, stack: str, service: str, task_role: bool = False) -> None:
        super().__init__(
            f"task-definition:{service}",
            names.task_family(stack, service),
            ("iam:execution-role", f"log-group:{service}", *((f"iam:task-role:{service}",) if task_role else ())),
        )
        self.service = service

    def desired(self, ctx: Context) -> dict[str, Any]:
        svc = ctx.stack.services[self.service]
        c: dict[str, Any] = {
            "name": self.service,
            "image": svc.image,
            "cpu": svc.cpu,
            "memory": svc.memory_hard,
            "memoryReservation": svc.memory_soft,
            "essential": True,
            # Host port 0: ECS picks a free port per task, so several tasks share an instance.
            "portMappings": [{"containerPort": svc.container_port, "hostPort": 0, "protocol": "tcp"}]
            if svc.container_port
            else None,
            "command": svc.command,
            "environment": [{"name": k, "value": v} for k, v in svc.environment.items()],
            "secrets": [{"name": k, "valueFrom": ref} for k, (ref, _) in svc.secret_refs().items()],
            "repositoryCredentials": {"credentialsParameter": svc.repository_credentials}
            if svc.repository_credentials
            else None,
            "stopTimeout": ctx.stack.stop_timeout(self.service),
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": names.log_group(ctx.name, self.service),
                    "awslogs-region": ctx.region,
                    "awslogs-stream-prefix": self.service,
                },
            },
        }
        if (hc := svc.container_health_check) is not None:
            c["healthCheck"] = {
                "command": hc.command,
                "interval": hc.interval,
                "timeout": hc.timeout,
                "retries": hc.retries,
                "startPeriod": hc.start_period,
            }
        return {
            "execution_role": ctx.output("iam:execution-role", "arn"),
            "task_role": ctx.output(f"iam:task-role:{self.service}", "arn") if svc.task_role else None,
            "network_mode": "bridge",
            "requires_compatibilities": ["EC2"],
            "container": normalise_container(c),
            # Tagged on the revision: a tags-only edit retags the current one (diff.IN_PLACE).
            "tags": desired_tags(ctx),
        }

    def read(self, ctx: Context) -> dict[str, Any] | None:
        # By family: ECS answers with its latest ACTIVE revision, so no listing first
        # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTaskDefinition.html);
        # a family with none left is a ClientException.
        got = ctx.call(
            f"describe task definition {self.name}",
            ctx.client("ecs").describe_task_definition,
            missing=("ClientException",),
            taskDefinition=self.name,
            include=["TAGS"],
        )
        if got is None or got["taskDefinition"].get("status", "ACTIVE") != "ACTIVE":
            return None
        td = got["taskDefinition"]
        containers = td.get("containerDefinitions", [])
        tags = tags_from_list(got.get("tags"))
        return {
            "execution_role": td.get("executionRoleArn"),
            "task_role": td.get("taskRoleArn"),
            "network_mode": td.get("networkMode"),
            "requires_compatibilities": sorted(td.get("requiresCompatibilities", [])),
            # A definition someone edited to hold several containers must not compare equal.
            "container": normalise_container(containers[0]) if len(containers) == 1 else containers,
            "arn": td["taskDefinitionArn"],
            "family": self.name,
            "revision": td["revision"],
            "tags": held_tags(tags),
            "_owned": ctx.owned(tags),
        }

    def create(self, ctx: Context, desired: dict[str, Any], after: int = 0) -> dict[str, Any]:
        container = {k: v for k, v in desired["container"].items() if v is not None}
        got = ctx.call(
            f"register task definition {self.name}",
            ctx.client("ecs").register_task_definition,
            family=self.name,
            executionRoleArn=desired["execution_role"],
            **({"taskRoleArn": desired["task_role"]} if desired.get("task_role") else {}),
            networkMode=desired["network_mode"],
            requiresCompatibilities=desired["requires_compatibilities"],
            containerDefinitions=[container],
            tags=tag_list(desired["tags"], "key", "value"),
        )
        td = got["taskDefinition"]
        if got.get("ResponseMetadata", {}).get("RetryAttempts"):
            # RegisterTaskDefinition takes no idempotency token: a request sent again after a lost
            # answer registered a revision of its own. Keep the one answered, drop its twins.
            self._drop_twins(ctx, desired, keep=td["revision"], after=after)
        return {"arn": td["taskDefinitionArn"], "family": self.name, "revision": td["revision"]}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        if change.action is Action.UPDATE:  # only tags changed: the current revision keeps serving
            retag(
                ctx,
                "ecs",
                f"task definition {_family_revision(current['arn'])}",
                current["arn"],
                desired["tags"],
                current.get("tags"),
            )
            return {"arn": current["arn"], "family": self.name, "revision": current["revision"]}
        # A new revision; older ones stay ACTIVE so a circuit-breaker rollback can use them.
        return self.create(ctx, desired, after=int(current.get("revision") or 0))

    def _drop_twins(self, ctx: Context, desired: dict[str, Any], keep: int, after: int) -> None:
        """Deregister the revisions newer than `after`, other than `keep`, that equal `desired`."""
        ecs = ctx.client("ecs")
        for arn in self._active_revisions(ctx):
            if _revision(arn) == keep or _revision(arn) <= after:
                continue
            td = ctx.call(f"describe task definition {arn}", ecs.describe_task_definition, taskDefinition=arn)
            containers = td["taskDefinition"].get("containerDefinitions", [])
            same = (
                len(containers) == 1
                and normalise_container(containers[0]) == desired["container"]
                and td["taskDefinition"].get("executionRoleArn") == desired["execution_role"]
                and td["taskDefinition"].get("taskRoleArn") == desired.get("task_role")
            )
            if same:
                ctx.call(
                    f"deregister task definition {arn.rsplit('/', 1)[-1]} (a twin of revision {keep})",
                    ecs.deregister_task_definition,
                    missing=("ClientException",),
                    taskDefinition=arn,
                )

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        ecs = ctx.client("ecs")
        for arn in sorted(self._active_revisions(ctx), key=_revision):
            ctx.call(
                f"deregister task definition {arn.rsplit('/', 1)[-1]}",
                ecs.deregister_task_definition,
                missing=("ClientException",),
                taskDefinition=arn,
            )

    def _active_revisions(self, ctx: Context) -> list[str]:
        arns = ctx.paginate(
            f"list revisions of task definition {self.name}",
            "ecs",
            "list_task_definitions",
            "taskDefinitionArns",
            familyPrefix=self.name,
            status="ACTIVE",
        )
        # familyPrefix is a prefix on some APIs: keep exactly this family.
        return [a for a in arns if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == self.name]


def _family_revision(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _revision(arn: str) -> int:
    return int(arn.rsplit(":", 1)[-1])
