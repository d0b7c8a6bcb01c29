"""steps/fis.py: the drill's FIS role and experiment template, through their lifecycle (moto stores
FIS templates; the drill itself runs on the sandbox, in test_drill.py)."""

from __future__ import annotations

import json

import boto3

from spotecs.engine.model import Action
from spotecs.steps import fis
from tests.helpers import REGION, converge, make_ctx, make_stack, replan

ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0aaa"
OTHER = "arn:aws:ec2:us-east-1:123456789012:instance/i-0bbb"


def test_fis_role_and_template_create_noop_update_delete(moto: None) -> None:
    stack = make_stack()
    the_plan, _ = converge(fis.steps("demo", REGION, [ARN]), make_ctx(stack))
    assert {c.key: c.action for c in the_plan.changes} == {"fis-role": Action.CREATE, "fis-template": Action.CREATE}

    client = boto3.client("fis", region_name=REGION)
    [summary] = client.list_experiment_templates()["experimentTemplates"]
    assert summary["tags"] == {"Name": "demo-spot-drill", "spotecs:stack": "demo", "spotecs:managed": "true"}
    template = client.get_experiment_template(id=summary["id"])["experimentTemplate"]
    assert template["targets"]["StackSpotInstances"]["resourceArns"] == [ARN]
    assert template["roleArn"].endswith(":role/demo-us-east-1-fis-drill")
    assert template["stopConditions"] == [{"source": "none"}]
    iam = boto3.client("iam", region_name=REGION)
    trust = iam.get_role(RoleName="demo-us-east-1-fis-drill")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "fis.amazonaws.com"}

    assert not replan(fis.steps("demo", REGION, [ARN]), stack).has_changes

    again = replan(fis.steps("demo", REGION, [OTHER, ARN]), stack)
    assert {c.key: c.action for c in again.changes if c.is_change} == {"fis-template": Action.UPDATE}
    converge(fis.steps("demo", REGION, [OTHER, ARN]), make_ctx(stack))
    template = client.get_experiment_template(id=summary["id"])["experimentTemplate"]
    assert sorted(template["targets"]["StackSpotInstances"]["resourceArns"]) == [ARN, OTHER]

    gone, _ = converge(fis.steps("demo", REGION), make_ctx(stack), destroy=True)
    assert {c.key: c.action for c in gone.changes} == {"fis-role": Action.DELETE, "fis-template": Action.DELETE}
    assert client.list_experiment_templates()["experimentTemplates"] == []
    again_gone, _ = converge(fis.steps("demo", REGION), make_ctx(stack), destroy=True)
    assert all(not c.is_change for c in again_gone.changes)
