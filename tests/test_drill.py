"""`spotecs drill` on the sandbox: FIS interruptions, the simulated agent's draining, and the
sandbox load balancer answering the probe from target health. The sandbox clock runs 40 times
faster than AWS (the 2-minute notice lasts 3 s: slow enough that a busy machine still drains in
time, as a real one would), so a drill takes seconds."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import spotecs.drill
import spotecs.teardown
import spotecs.up
from spotecs.aws import AwsOptions
from spotecs.cli import cli
from spotecs.lock import stack_lock
from spotecs.render import Env
from spotecs.sandbox import Sandbox
from spotecs.steps.base import Timeouts
from tests.test_e2e import stack_file

FACTOR = 40
FAST = Timeouts(default=120, delay=0.1)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(agent_interval=0.1, clock_factor=FACTOR) as box:
        yield box


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spotecs.drill, "POLL_SECONDS", 0.1)
    monkeypatch.setattr(spotecs.up, "Timeouts", lambda: FAST)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), obj=Env(stdin_isatty=False))


def deploy(sandbox: Sandbox, directory: Path, name: str, **replace: str) -> Path:
    path = stack_file(directory, name, **replace)
    result = invoke("up", "-f", str(path), "--endpoint-url", sandbox.endpoint_url, "--yes")
    assert result.exit_code == 0, result.output
    return path


def drill(sandbox: Sandbox, path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = invoke("drill", "-f", str(path), "--endpoint-url", sandbox.endpoint_url, "--yes", "-o", "json", *args)
    doc = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.exit_code, doc, result.output


ALL_SPOT = {"on_demand_percent: 50": "on_demand_percent: 0"}


def test_article_stack_recovers_with_zero_failed_probes(sandbox: Sandbox, tmp_path: Path) -> None:
    path = deploy(sandbox, tmp_path, "drill-article")
    code, doc, output = drill(sandbox, path, "--probe-lb")
    assert code == 0, output
    assert doc["ok"] and doc["problems"] == []
    probe = doc["probe"]
    assert probe["url"].startswith("http://127.0.0.1:")
    assert probe["requests"] >= 5 and probe["failures"] == 0
    assert set(probe["by_class"]) == {"2xx"}
    times = {row["phase"]: row["seconds"] for row in doc["timeline"]}
    [chosen] = doc["plan"]["instances"]
    # With 50 % on demand, the one spot instance may run no task: then its task phases do not apply.
    skipped = set() if chosen["tasks"] else {"targets_draining", "tasks_moved", "targets_deregistered"}
    assert {row["phase"] for row in doc["timeline"] if not row["applies"]} == skipped
    assert bool(doc["plan"]["notes"]) == bool(skipped)
    assert [p for p, t in times.items() if t is None and p not in skipped] == [], times
    assert times["notice"] <= times["draining"] <= times["terminated"] <= times["recovered"]
    assert doc["recovery_seconds"] is not None and doc["recovery_seconds"] <= doc["budget_seconds"]
    assert doc["services"]["demo-api"]["min_running"] >= doc["services"]["demo-api"]["min_healthy"] == 1  # 50 % of 2
    assert doc["experiment"]["status"] == "completed"
    # Capacity Rebalancing replaced the spot instance with a spot instance: the mix is kept.
    ec2 = sandbox.client("ec2")
    found = ec2.describe_instances(Filters=[{"Name": "tag:spotecs:stack", "Values": ["drill-article"]}])
    running = [i for r in found["Reservations"] for i in r["Instances"] if i["State"]["Name"] == "running"]
    assert sorted(i.get("InstanceLifecycle", "on-demand") for i in running) == ["on-demand", "spot"]


def test_draining_moves_the_tasks_before_the_instance_goes(sandbox: Sandbox, tmp_path: Path) -> None:
    path = deploy(sandbox, tmp_path, "drill-spot", **ALL_SPOT)
    [lb] = sandbox.client("elbv2").describe_load_balancers(Names=["drill-spot"])["LoadBalancers"]
    code, doc, output = drill(sandbox, path, "--probe", f"http://{lb['DNSName']}/")
    assert code == 0, output
    [chosen] = doc["plan"]["instances"]
    assert chosen["tasks"] == {"demo-api": 2}, "the instance running the most tasks is the one interrupted"
    times = {row["phase"]: row["seconds"] for row in doc["timeline"]}
    assert times["tasks_moved"] <= times["targets_deregistered"] <= times["terminated"]
    assert doc["probe"]["failures"] == 0
    ecs = sandbox.client("ecs")
    stopped = ecs.list_tasks(cluster="drill-spot-cluster", desiredStatus="STOPPED")["taskArns"]
    reasons = {t["stoppedReason"] for t in ecs.describe_tasks(cluster="drill-spot-cluster", tasks=stopped)["tasks"]}
    assert reasons == {"Task stopped because the container instance is draining."}


def test_without_spot_draining_probes_fail_and_the_drill_exits_1(sandbox: Sandbox, tmp_path: Path) -> None:
    path = deploy(sandbox, tmp_path, "drill-nodrain", **ALL_SPOT)
    ec2 = sandbox.client("ec2")
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:spotecs:stack", "Values": ["drill-nodrain"]}])
    for r in reservations["Reservations"]:
        for inst in r["Instances"]:
            data = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
            script = base64.b64decode(data["UserData"]["Value"]).decode()
            assert "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true" in script
            off = script.replace("ECS_ENABLE_SPOT_INSTANCE_DRAINING=true", "ECS_ENABLE_SPOT_INSTANCE_DRAINING=false")
            ec2.modify_instance_attribute(
                InstanceId=inst["InstanceId"], UserData={"Value": base64.b64encode(off.encode())}
            )
    code, doc, output = drill(sandbox, path, "--probe-lb")
    assert code == 1, output
    assert doc["probe"]["failures"] > 0
    assert set(doc["probe"]["by_class"]) - {"2xx"} == {"5xx"}
    assert any("never set DRAINING" in p for p in doc["problems"]), doc["problems"]
    assert any("probe request(s) failed" in p for p in doc["problems"])
    assert {row["phase"]: row["seconds"] for row in doc["timeline"]}["draining"] is None


def test_a_drill_below_the_minimum_healthy_share_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    path = deploy(sandbox, tmp_path, "drill-refuse", **ALL_SPOT)
    code, doc, output = drill(sandbox, path, "--dry-run")
    assert code == 0, output
    assert [i["tasks"] for i in doc["plan"]["instances"]] == [{"demo-api": 2}]
    assert "experiment" not in doc

    result = invoke("drill", "-f", str(path), "--endpoint-url", sandbox.endpoint_url, "--yes", "--percent", "100")
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())  # the error console may wrap long lines
    assert "refusing to interrupt" in text
    assert "service demo-api would fall to 0 running task(s), below its minimum healthy 1 (50% of 2)" in text
    fis = sandbox.client("fis")
    assert not [
        t
        for t in fis.list_experiment_templates()["experimentTemplates"]
        if t["tags"].get("spotecs:stack") == "drill-refuse"
    ]

    # A drill takes the stack's lock (a dry run does not); the JSON document has the common head.
    run = spotecs.up.prepare(spotecs.up.RunOptions(file=path, aws=AwsOptions(endpoint_url=sandbox.endpoint_url)))
    with stack_lock(run.aws, "drill-refuse", "spotecs up -f other.yaml"):
        code, doc, output = drill(sandbox, path)
        assert code == 1, output
        assert "stack drill-refuse is locked by another run" in " ".join(output.split())
        assert (doc["command"], doc["stack"], "plan" in doc) == ("drill", "drill-refuse", False)
        assert "is locked by another run" in doc["error"]
        code, doc, output = drill(sandbox, path, "--dry-run")
        assert code == 0, output
        assert (doc["command"], doc["error"]) == ("drill", None)


def test_fis_template_and_role_are_the_stacks_and_teardown_removes_them(sandbox: Sandbox, tmp_path: Path) -> None:
    path = deploy(sandbox, tmp_path, "drill-down", **ALL_SPOT)
    code, _, output = drill(sandbox, path)
    assert code == 0, output
    fis, iam = sandbox.client("fis"), sandbox.client("iam")
    [template] = [
        t
        for t in fis.list_experiment_templates()["experimentTemplates"]
        if t["tags"].get("spotecs:stack") == "drill-down"
    ]
    full = fis.get_experiment_template(id=template["id"])["experimentTemplate"]
    [action] = full["actions"].values()
    assert action["actionId"] == "aws:ec2:send-spot-instance-interruptions"
    assert action["parameters"] == {"durationBeforeInterruption": "PT2M"}
    assert full["roleArn"].endswith(":role/drill-down-us-east-1-fis-drill")
    [policy_name] = iam.list_role_policies(RoleName="drill-down-us-east-1-fis-drill")["PolicyNames"]
    policy = iam.get_role_policy(RoleName="drill-down-us-east-1-fis-drill", PolicyName=policy_name)["PolicyDocument"]
    actions = sorted(a for s in policy["Statement"] for a in s["Action"])
    assert actions == ["ec2:DescribeInstances", "ec2:SendSpotInstanceInterruptions"]
    [send] = [s for s in policy["Statement"] if s["Action"] == ["ec2:SendSpotInstanceInterruptions"]]
    assert send["Condition"] == {"StringEquals": {"aws:ResourceTag/spotecs:stack": "drill-down"}}

    result = invoke("teardown", "-f", str(path), "--endpoint-url", sandbox.endpoint_url, "--yes")
    assert result.exit_code == 0, result.output
    assert "FIS experiment template drill-down-spot-drill" in result.output
    assert not [
        t
        for t in fis.list_experiment_templates()["experimentTemplates"]
        if t["tags"].get("spotecs:stack") == "drill-down"
    ]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="drill-down-us-east-1-fis-drill")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--instances", "1", "--percent", "10"], "--instances and --percent cannot be used together"),
        (["--instances", "0"], "--instances: must be at least 1"),
        (["--percent", "150"], "--percent: must be between 1 and 100"),
        (["--probe", "ftp://x"], "--probe: 'ftp://x' is not an http:// or https:// URL"),
        (["--budget", "soon"], "--budget: 'soon' is not a duration"),
    ],
)
def test_bad_options_exit_2_before_any_aws_call(tmp_path: Path, args: list[str], message: str) -> None:
    path = stack_file(tmp_path, "drill-bad")
    result = invoke("drill", "-f", str(path), "--yes", "--endpoint-url", "http://127.0.0.1:9", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_ctrl_c_stops_the_experiment_and_says_so(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = deploy(sandbox, tmp_path, "drill-ctrlc", **ALL_SPOT)
    real = spotecs.drill.read_fleet
    looks: list[int] = []

    def read_then_interrupt(*args: Any) -> Any:
        looks.append(1)
        if len(looks) == 2:  # the first look is the plan's; the second is the watch's
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(spotecs.drill, "read_fleet", read_then_interrupt)
    result = invoke("drill", "-f", str(path), "--endpoint-url", sandbox.endpoint_url, "--yes")
    assert result.exit_code == 130, result.output
    assert "Interrupted: stopped FIS experiment" in result.output
    fis = sandbox.client("fis")
    [experiment] = [e for e in fis.list_experiments()["experiments"] if e["tags"].get("spotecs:stack") == "drill-ctrlc"]
    assert fis.get_experiment(id=experiment["id"])["experiment"]["state"]["status"] in ("stopping", "stopped")


def test_an_experiment_aws_fails_is_reported_with_its_reason(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = deploy(sandbox, tmp_path, "drill-fails")  # 50 % on demand: one instance is not spot
    real = spotecs.drill.choose

    def the_on_demand_one(fleet: Any, count: Any, percent: Any) -> Any:
        real(fleet, count, percent)
        return [i for i in fleet.instances.values() if not i.spot][:1]

    monkeypatch.setattr(spotecs.drill, "choose", the_on_demand_one)
    code, doc, output = drill(sandbox, path)
    assert code == 1, output
    assert doc["experiment"]["status"] == "failed"
    [problem, *_] = doc["problems"]
    assert problem.startswith("the FIS experiment failed: Target resolution failed: i-")
    assert "is not a running spot instance" in problem


def test_the_sandbox_fails_an_experiment_whose_role_fis_could_not_use(moto: None) -> None:
    import boto3

    from spotecs.sandbox.interruptions import role_problem

    iam = boto3.client("iam", region_name="us-east-1")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "fis.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    arn = iam.create_role(RoleName="fis-r", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    account = arn.split(":")[4]
    assert role_problem(account, arn) == f"role {arn} is not allowed ec2:SendSpotInstanceInterruptions"
    allow = {"Effect": "Allow", "Action": ["ec2:SendSpotInstanceInterruptions"], "Resource": "*"}
    iam.put_role_policy(
        RoleName="fis-r", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]})
    )
    assert role_problem(account, arn) is None
    assert "does not exist" in (role_problem(account, arn.replace("fis-r", "nope")) or "")
