"""The resources `spotecs drill` needs: an AWS FIS experiment template that sends spot
interruptions to chosen instances, and the role FIS assumes to send them. They belong to the
stack (named from it, tagged as its own) but are made by the first drill, not by `up`; the drill
points the template at the instances it chose each time; `teardown` deletes both (orphans.py).

The role has the least privilege the action needs
(https://docs.aws.amazon.com/fis/latest/userguide/fis-actions-reference.html#send-spot-instance-interruptions):
`ec2:SendSpotInstanceInterruptions` on the stack's own instances only (by their propagated
`spotecs:stack` tag), and `ec2:DescribeInstances`, which has no resource-level permissions.
"""

from __future__ import annotations

import uuid
from typing import Any

from spotecs import names
from spotecs.aws import STACK_TAG
from spotecs.engine.model import Change
from spotecs.steps.base import Context, Step
from spotecs.steps.iam import Role

ACTION = "aws:ec2:send-spot-instance-interruptions"
NOTICE = "PT2M"  # what AWS gives a real spot interruption
TARGET = "StackSpotInstances"
POLICY = "spotecs-spot-interruptions"
ROLE_KEY = "fis-role"
TEMPLATE_KEY = "fis-template"


class FisRole(Role):
    def __init__(self, stack: str, region: str) -> None:
        super().__init__(ROLE_KEY, names.fis_role(stack, region), "fis.amazonaws.com", [])
        self.region = region

    def inline(self, ctx: Context) -> dict[str, Any]:
        statements = [
            {
                "Effect": "Allow",
                "Action": ["ec2:SendSpotInstanceInterruptions"],
                "Resource": f"arn:aws:ec2:{self.region}:*:instance/*",
                "Condition": {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": ctx.name}},
            },
            {"Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*"},
        ]
        return {POLICY: {"Version": "2012-10-17", "Statement": statements}}


def find_template(ctx: Context, name: str) -> dict[str, Any] | None:
    """The experiment template tagged `Name=<name>` (owned or not), in full."""
    fis = ctx.client("fis")
    token: str | None = None
    while True:
        page = ctx.call(
            "list FIS experiment templates",
            fis.list_experiment_templates,
            **({"nextToken": token} if token else {}),
        )
        for summary in page.get("experimentTemplates", []):
            if summary.get("tags", {}).get("Name") == name:
                return dict(
                    ctx.call(
                        f"describe FIS experiment template {name}",
                        fis.get_experiment_template,
                        id=summary["id"],
                    )["experimentTemplate"]
                )
        token = page.get("nextToken")
        if not token:
            return None


class FisTemplate(Step):
    kind = "FIS experiment template"

    def __init__(self, stack: str, instance_arns: list[str] | None = None) -> None:
        super().__init__(TEMPLATE_KEY, names.fis_template(stack), (ROLE_KEY,))
        self.instance_arns = sorted(instance_arns or [])

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "description": f"spotecs drill: spot interruption of stack {ctx.name} instances",
            "role_arn": ctx.output(ROLE_KEY, "arn"),
            "targets": {
                TARGET: {
                    "resourceType": "aws:ec2:spot-instance",
                    "resourceArns": self.instance_arns,
                    "selectionMode": "ALL",
                }
            },
            "actions": {
                "interrupt": {
                    "actionId": ACTION,
                    "parameters": {"durationBeforeInterruption": NOTICE},
                    "targets": {"SpotInstances": TARGET},
                }
            },
        }

    def read(self, ctx: Context) -> dict[str, Any] | None:
        found = find_template(ctx, self.name)
        if found is None:
            return None
        targets = {
            k: {f: v.get(f) for f in ("resourceType", "resourceArns", "selectionMode")}
            for k, v in (found.get("targets") or {}).items()
        }
        for t in targets.values():
            t["resourceArns"] = sorted(t["resourceArns"] or [])
        actions = {
            k: {f: v.get(f) for f in ("actionId", "parameters", "targets")}
            for k, v in (found.get("actions") or {}).items()
        }
        return {
            "description": found.get("description"),
            "role_arn": found.get("roleArn"),
            "targets": targets,
            "actions": actions,
            "id": found["id"],
            "_owned": ctx.owned(found.get("tags") or {}),
        }

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        made = ctx.call(
            f"create FIS experiment template {self.name}",
            ctx.client("fis").create_experiment_template,
            clientToken=str(uuid.uuid4()),
            description=desired["description"],
            roleArn=desired["role_arn"],
            targets=desired["targets"],
            actions=desired["actions"],
            stopConditions=[{"source": "none"}],
            tags=ctx.tags(Name=self.name),
        )["experimentTemplate"]
        return {"id": made["id"]}

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        ctx.call(
            f"update FIS experiment template {self.name}",
            ctx.client("fis").update_experiment_template,
            id=current["id"],
            description=desired["description"],
            roleArn=desired["role_arn"],
            targets=desired["targets"],
            actions=desired["actions"],
        )
        return {"id": current["id"]}

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        ctx.call(
            f"delete FIS experiment template {self.name}",
            ctx.client("fis").delete_experiment_template,
            missing=("ResourceNotFoundException",),
            id=current["id"],
        )


def steps(stack: str, region: str, instance_arns: list[str] | None = None) -> list[Step]:
    return [FisRole(stack, region), FisTemplate(stack, instance_arns)]
