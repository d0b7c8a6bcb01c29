"""`spotecs status` on moto in-process with the sandbox's fills and simulated agent: every section
of the JSON document on a fleet with a known mix (on-demand base 1 + 20 %), a drifted
resource, a draining instance, a disconnected agent, failed scaling activities and a missing
price; exit codes; read-only; the AWS calls at 30/100 and 300/1,000 instances/tasks.
The Pricing API (absent from moto) is botocore's Stubber."""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from click.testing import CliRunner
from rich.console import Console

import spotecs.up
from spotecs import render_status
from spotecs.aws import Aws, AwsOptions
from spotecs.cli import cli
from spotecs.config import Stack
from spotecs.engine.plan import plan
from spotecs.render import Env
from spotecs.sandbox import fills
from spotecs.sandbox.agent import SimulatedAgent
from spotecs.schedule import next_run
from spotecs.status import StackMissing, StatusOptions, collect, status
from spotecs.steps import build
from spotecs.steps.base import Context, Timeouts
from spotecs.up import Run, with_orphans
from tests.helpers import MINIMAL, REGION, converge, deep_merge

ACCOUNT = "123456789012"
FLEET: dict[str, Any] = {
    "instances": {
        "types": ["t3.small", "t3.medium"],
        "on_demand_base": 1,
        "on_demand_percent": 20,
        "min": 1,
        "max": 400,
        "desired": 6,
    },
    "services": {
        "api": {
            "cpu": 128,
            "memory_soft": 128,
            "memory_hard": 256,
            "desired_count": 3,
            "deployment": {"min_healthy_percent": 50, "max_percent": 200},
            "scaling": {
                "min": 2,
                "max": 10,
                "target_tracking": [{"metric": "cpu", "target": 70}],
                "scheduled": [
                    {"name": "burst", "schedule": "cron(0 8 ? * TUE *)", "timezone": "Europe/Dublin", "min": 5}
                ],
            },
        }
    },
}
PRICES = {"t3.small": 0.0208, "t3.medium": 0.0416}
GROUP = "demo-instances"
CLUSTER = "demo"


def fleet_dict(**over: Any) -> dict[str, Any]:
    return deep_merge(deep_merge(MINIMAL, FLEET), over)


def fleet_stack(**over: Any) -> Stack:
    return Stack.model_validate(fleet_dict(**over))


def deploy(stack: Stack) -> SimulatedAgent:
    """Converge the stack on moto and let the simulated agent register, mark spot and place."""
    ctx = Context(stack=stack, aws=Aws(AwsOptions(region=REGION)), timeouts=Timeouts(default=5, delay=0))
    ctx.wait_for_services = False
    converge(build(stack, REGION), ctx)
    agent = SimulatedAgent()
    agent.tick()
    agent.tick()
    return agent


def new_run(stack: Stack) -> Run:
    aws = Aws(AwsOptions(region=REGION))
    ctx = Context(stack=stack, aws=aws, timeouts=Timeouts(default=5, delay=0))
    return Run(stack, aws, ctx, build(stack, REGION))


def product(price: float) -> str:
    dim = {"unit": "Hrs", "pricePerUnit": {"USD": f"{price:.10f}"}}
    return json.dumps({"terms": {"OnDemand": {"T": {"priceDimensions": {"D": dim}}}}})


def stub_pricing(aws: Aws, prices: dict[str, float | None], runs: int = 1) -> Stubber:
    """One GetProducts answer per type, in the stack file's order, for `runs` looks; None:
    access denied."""
    stubber = Stubber(aws.client("pricing", region="us-east-1"))
    for price in list(prices.values()) * runs:
        if price is None:
            stubber.add_client_error(
                "get_products", "AccessDeniedException", "not authorized to perform: pricing:GetProducts", 400
            )
        else:
            stubber.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [product(price)]})
    stubber.activate()
    return stubber


def ecs_backend() -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[ACCOUNT][REGION]


def asg_group() -> Any:
    from moto.autoscaling.models import autoscaling_backends

    return autoscaling_backends[ACCOUNT][REGION].autoscaling_groups[GROUP]


@pytest.fixture
def fleet(moto: None) -> Iterator[Stack]:
    stack = fleet_stack()
    deploy(stack)
    yield stack


def test_status_of_a_fleet_healthy_then_in_trouble(fleet: Stack, tmp_path: Path) -> None:
    """One fleet (a deploy costs seconds): every section while healthy, the CLI's JSON and exit
    code, the watch loop; then trouble in every section, and the exit code again."""
    path = _write(tmp_path)
    doc = check_healthy(fleet)
    check_cli(path, expected_exit=0)
    check_watch(path, doc)
    check_trouble(fleet)
    check_service_scaling(fleet)
    check_cli(path, expected_exit=1)


def check_healthy(fleet: Stack) -> dict[str, Any]:
    run = new_run(fleet)
    stub_pricing(run.aws, PRICES)
    doc = collect(run)

    assert {"resources", "fleet", "services", "scaling", "cost", "warnings"} <= doc.keys()
    assert doc["healthy"], doc["warnings"]
    assert {r["state"] for r in doc["resources"]} == {"in sync"}
    group = next(r for r in doc["resources"] if r["key"] == "auto-scaling-group")
    assert group["id"].startswith("arn:aws:autoscaling:")

    # Fleet: 6 instances, base 1 + 20 % of the 5 above it (1) on-demand: 2 on-demand, 4 spot.
    rows = doc["fleet"]["instances"]
    ec2 = boto3.client("ec2", region_name=REGION)
    lifecycle = {
        i["InstanceId"]: i.get("InstanceLifecycle", "on-demand")
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    assert all(r["lifecycle"] == lifecycle[r["id"]] for r in rows)
    totals = doc["fleet"]["totals"]
    assert (totals["instances"], totals["spot"], totals["on_demand"]) == (6, 4, 2)
    assert totals["expected_on_demand"] == 2
    assert totals["configured"] == {"on_demand_base": 1, "on_demand_percent": 20}
    assert sum(sum(r["tasks"].values()) for r in rows) == 3
    assert all(set(r["tasks"]) <= {"api"} for r in rows)
    busy = next(r for r in rows if r["tasks"])
    assert busy["free_cpu"] == busy["cpu"] - 128 * busy["tasks"]["api"]
    assert all(r["ecs_status"] == "ACTIVE" and r["agent_connected"] for r in rows)
    assert all(r["ami"] == doc["fleet"]["latest_ami"] and not r["ami_outdated"] for r in rows)

    # Services: counts, the deployment, events, healthy targets.
    (svc,) = doc["services"]
    assert (svc["desired"], svc["running"], svc["pending"]) == (3, 3, 0)
    assert svc["deployments"][0]["status"] == "PRIMARY"
    assert svc["deployments"][0]["rollout_state"] == "COMPLETED"
    assert any("steady state" in e["message"] for e in svc["events"])
    assert len(svc["targets"]) == 3 and {t["state"] for t in svc["targets"]} == {"healthy"}

    # Scaling: the group, the capacity provider, the service's policies, the schedule.
    sc = doc["scaling"]
    assert (sc["group"]["min"], sc["group"]["desired"], sc["group"]["max"], sc["group"]["in_service"]) == (1, 6, 400, 6)
    assert sc["capacity_provider"]["target_capacity"] == 100
    (ssc,) = sc["services"]
    assert (ssc["min"], ssc["max"], ssc["set_by"]) == (2, 10, None)
    (policy,) = ssc["policies"]
    assert policy["alarms"] and all(a["state"] for a in policy["alarms"])
    (burst,) = ssc["scheduled"]
    assert burst["next_run"].tzinfo is not None and burst["next_run"].strftime("%a %H:%M") == "Tue 08:00"
    launches = [a for a in sc["activities"] if a["scaler"] == "group"]
    assert len(launches) == 6 and all(a["status"] == "Successful" for a in launches)

    # Cost: sample spot prices vary by zone and time; on-demand from the (stubbed) Pricing API.
    cost = doc["cost"]
    small = next(t for t in cost["types"] if t["type"] == "t3.small")
    assert small["on_demand"] == 0.0208
    spot_now = {z["zone"]: z["spot_now"] for z in small["zones"]}
    assert len(set(spot_now.values())) > 1
    assert all(2.29 <= 0.0208 / p <= 3.41 for p in spot_now.values())  # the article: 2.3x to 3.4x
    assert cost["sample"] and "sample prices (sandbox)" in cost["sources"]
    spot_rows = [i for i in cost["instances"] if i["lifecycle"] == "spot"]
    assert all(i["hourly"] == spot_now[i["zone"]] for i in spot_rows)
    expected = sum(i["hourly"] for i in cost["instances"])
    assert cost["fleet_hourly"] == round(expected, 4)
    assert cost["on_demand_hourly"] == round(6 * 0.0208, 4)
    assert cost["savings_ratio"] == round(6 * 0.0208 / expected, 2)
    assert cost["fleet_monthly"] == round(expected * 730, 4)
    assert doc["warnings"] == []
    assert not run.aws.writes()
    return doc


def _drain_and_disconnect() -> tuple[str, str]:
    """Drain one instance (the group began terminating it 15 minutes ago) and cut another's
    agent; returns their EC2 ids."""
    ecs = boto3.client("ecs", region_name=REGION)
    arns = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    cis = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)["containerInstances"]
    draining, cut = cis[0], cis[1]
    ecs.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[draining["containerInstanceArn"]], status="DRAINING"
    )
    fills.record_activity(asg_group(), "InProgress", f"Terminating EC2 instance: {draining['ec2InstanceId']}")
    asg_group()._spotecs_activities[0]["start"] = datetime.now(UTC) - timedelta(minutes=15)
    ecs_backend().container_instances[CLUSTER][cut["containerInstanceArn"].rsplit("/", 1)[-1]].agent_connected = False
    return draining["ec2InstanceId"], cut["ec2InstanceId"]


def check_trouble(fleet: Stack) -> None:
    boto3.client("autoscaling", region_name=REGION).update_auto_scaling_group(AutoScalingGroupName=GROUP, MaxSize=25)
    draining, cut = _drain_and_disconnect()
    fills.record_activity(
        asg_group(),
        "Failed",
        "Launching a new EC2 instance. Status Reason: insufficient capacity.",
        message="We currently do not have sufficient t3.small capacity in the Availability Zone you requested.",
    )
    run = new_run(fleet)
    stub_pricing(run.aws, {"t3.small": None, "t3.medium": 0.0416})
    doc = collect(run)

    group = next(r for r in doc["resources"] if r["key"] == "auto-scaling-group")
    assert (group["state"], group["drift"]) == ("drifted", ["max"])
    rows = {r["id"]: r for r in doc["fleet"]["instances"]}
    assert rows[draining]["ecs_status"] == "DRAINING"
    assert rows[cut]["agent_connected"] is False
    first = doc["scaling"]["activities"][0]
    assert first["status"] == "Failed" and "sufficient t3.small capacity" in first["message"]

    # The on-demand price of t3.small is unreadable: unknown with its reason, the rest shows.
    small = next(t for t in doc["cost"]["types"] if t["type"] == "t3.small")
    assert small["on_demand"] is None and "not authorized" in small["on_demand_problem"]
    assert small["zones"] and all(z["spot_now"] for z in small["zones"])
    od_rows = [i for i in doc["cost"]["instances"] if i["lifecycle"] == "on-demand"]
    assert od_rows and all(i["hourly"] is None for i in od_rows)
    assert all(i["hourly"] for i in doc["cost"]["instances"] if i["lifecycle"] == "spot")
    assert doc["cost"]["fleet_hourly"] is None and doc["cost"]["savings_ratio"] is None
    assert next(t for t in doc["cost"]["types"] if t["type"] == "t3.medium")["on_demand"] == 0.0416

    by_subject = Counter((w["severity"], w["subject"]) for w in doc["warnings"])
    assert by_subject[("warning", "auto scaling group demo-instances")] == 1
    assert by_subject[("error", f"instance {draining}")] == 1
    assert by_subject[("error", f"instance {cut}")] == 1
    assert by_subject[("warning", "group scaling")] == 1
    assert all(w["action"] for w in doc["warnings"])
    assert not doc["healthy"]
    assert not run.aws.writes()

    text = io.StringIO()
    render_status.show(Env(console=Console(file=text, width=200)), doc)
    screen = text.getvalue()
    for line in ("Resources", "Fleet", "Services", "Scaling", "Cost", "Warnings", "drifted (max)", "DRAINING"):
        assert line in screen
    assert "agent disconnected" in screen and "unknown (not authorized" in screen


def check_service_scaling(fleet: Stack) -> None:
    from moto.applicationautoscaling.models import applicationautoscaling_backends

    resource = f"service/{CLUSTER}/demo-api"
    aas = boto3.client("application-autoscaling", region_name=REGION)
    aas.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension="ecs:service:DesiredCount", MinCapacity=5
    )
    backend = applicationautoscaling_backends[ACCOUNT][REGION]
    (target,) = backend.describe_scalable_targets("ecs", [resource], "ecs:service:DesiredCount")
    fills.record_activity(target, "Failed", "Setting desired count to 5.", message="Quota exceeded")
    run = new_run(fleet)
    stub_pricing(run.aws, PRICES)
    doc = collect(run)
    (ssc,) = doc["scaling"]["services"]
    assert (ssc["min"], ssc["set_by"]) == (5, "demo-api-burst")
    failed = doc["scaling"]["activities"][0]
    assert (failed["scaler"], failed["status"], failed["message"]) == ("service api", "Failed", "Quota exceeded")
    assert ("warning", "service api scaling") in {(w["severity"], w["subject"]) for w in doc["warnings"]}


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "spotecs.yaml"
    path.write_text(yaml.safe_dump(fleet_dict()))
    return path


def invoke(args: list[str], prices: dict[str, float | None]) -> tuple[Any, list[Aws]]:
    opened: list[Aws] = []

    class Stubbed(Aws):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            opened.append(self)
            stub_pricing(self, prices)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spotecs.up, "Aws", Stubbed)
        result = CliRunner().invoke(cli, ["status", *args], obj=Env(stdin_isatty=False))
    return result, opened


def check_cli(path: Path, expected_exit: int) -> None:
    result, (aws,) = invoke(["-f", str(path), "-o", "json"], PRICES)
    assert result.exit_code == expected_exit, result.output
    doc = json.loads(result.stdout)  # the whole of stdout is one document
    assert {"resources", "fleet", "services", "scaling", "cost", "warnings"} <= doc.keys()
    assert doc["fleet"]["totals"]["spot"] == 4
    assert doc["healthy"] is (expected_exit == 0)
    assert not aws.writes()


def test_missing_stack_is_one_line_and_exit_1(moto: None, tmp_path: Path) -> None:
    path = _write(tmp_path)
    result, (aws,) = invoke(["-f", str(path)], {})
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "stack demo does not exist in us-east-1" in result.output
    assert not aws.writes()

    # Half built: the cluster alone. What exists shows; the rest is missing; exit 1.
    tags = [{"key": "spotecs:stack", "value": "demo"}, {"key": "spotecs:managed", "value": "true"}]
    boto3.client("ecs", region_name=REGION).create_cluster(clusterName=CLUSTER, tags=tags)
    result, (aws,) = invoke(["-f", str(path), "-o", "json"], PRICES)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    states = {r["key"]: r["state"] for r in doc["resources"]}
    assert states.pop("cluster") in ("in sync", "drifted")  # created by hand, without its settings
    assert set(states.values()) == {"missing"}
    assert doc["fleet"]["instances"] == [] and doc["services"][0]["exists"] is False
    assert doc["problems"] == []
    assert [w["subject"] for w in doc["warnings"] if w["severity"] == "error"] == ["resources"]
    assert not aws.writes()


def test_bad_usage_exits_2_before_any_call(tmp_path: Path) -> None:
    result, opened = invoke(["-f", str(tmp_path / "none.yaml")], {})
    assert result.exit_code == 2 and not opened
    result, opened = invoke(["--watch", "-o", "json"], {})
    assert result.exit_code == 2 and "--watch" in result.output and not opened
    result, opened = invoke(["--watch", "0"], {})
    assert result.exit_code == 2 and not opened


def check_watch(path: Path, doc: dict[str, Any]) -> None:
    """`status --watch 7` off a terminal prints each look until Ctrl-C, then exits 0; on a
    terminal the same loop redraws in place (rich Live)."""
    naps: list[float] = []
    opened: list[Aws] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) % 2 == 0:
            raise KeyboardInterrupt

    class Stubbed(Aws):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            opened.append(self)
            stub_pricing(self, PRICES, runs=2)

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spotecs.up, "Aws", Stubbed)
        code = status(
            Env(console=Console(file=out, width=200)),
            StatusOptions(file=path, aws=AwsOptions(region=REGION), watch=7),
            sleep=sleep,
        )
    assert code == 0 and naps == [7, 7]
    assert out.getvalue().count("Fleet") == 2
    (aws,) = opened  # one session for every look
    assert sum(1 for c in aws.calls if c.operation == "DescribeContainerInstances") == 2
    assert not aws.writes()

    looks: list[int] = []
    live = io.StringIO()

    def look() -> dict[str, Any]:
        looks.append(1)
        return doc

    code = render_status.watch(Env(console=Console(file=live, width=200, force_terminal=True)), look, 3, sleep)
    assert code == 0 and len(looks) == 2 and naps[2:] == [3, 3]
    assert "Fleet" in live.getvalue()


def drift_reads(stack: Stack) -> int:
    run = new_run(stack)
    with_orphans(run)
    plan(run.steps, run.ctx)
    return len(run.aws.calls)


def test_calls_grow_with_hundreds_not_with_instances(moto: None) -> None:
    """The budget at 30 instances / 100 tasks, then on the same stack grown to 300 / 1,000."""
    stack = fleet_stack(instances={"types": ["t3.small"], "desired": 2})
    agent = deploy(stack)
    floor = drift_reads(stack)
    for instances, tasks in ((30, 100), (300, 1000)):
        boto3.client("autoscaling", region_name=REGION).set_desired_capacity(
            AutoScalingGroupName=GROUP, DesiredCapacity=instances
        )
        agent.tick()
        boto3.client("ecs", region_name=REGION).update_service(cluster=CLUSTER, service="demo-api", desiredCount=tasks)
        agent.tick()
        check_budget(stack, floor, instances, tasks)


def check_budget(stack: Stack, floor: int, instances: int, tasks: int) -> None:

    run = new_run(stack)
    stub_pricing(run.aws, {"t3.small": 0.0208})
    doc = collect(run)
    assert len(doc["fleet"]["instances"]) == instances
    assert sum(sum(r["tasks"].values()) for r in doc["fleet"]["instances"]) == tasks
    assert not run.aws.writes()
    ops = Counter(c.operation for c in run.aws.calls)
    assert ops["DescribeTasks"] == math.ceil(tasks / 100) >= ops["ListTasks"]  # moto lists all in one page
    assert ops["DescribeContainerInstances"] == math.ceil(instances / 100) >= ops["ListContainerInstances"]
    assert ops["DescribeInstances"] == 1 and ops["DescribeSpotPriceHistory"] == 1 and ops["GetProducts"] == 1
    budget = floor + 2 * math.ceil(tasks / 100) + 2 * math.ceil(instances / 100) + 10
    assert len(run.aws.calls) <= budget, (len(run.aws.calls), budget, floor, ops)


@pytest.mark.parametrize(
    ("schedule", "tz", "now", "expected"),
    [
        ("cron(0 8 ? * TUE *)", "Europe/Dublin", "2026-11-30T12:00:00+00:00", "2026-12-01T08:00:00+00:00"),
        ("cron(0 8 ? * TUE *)", "Europe/Dublin", "2026-12-01T08:00:00+00:00", "2026-12-08T08:00:00+00:00"),
        ("cron(30 6 1 * ? *)", "America/New_York", "2026-07-15T00:00:00+00:00", "2026-08-01T06:30:00-04:00"),
        ("cron(0/15 * * * ? *)", "UTC", "2026-11-30T12:07:00+00:00", "2026-11-30T12:15:00+00:00"),
        ("cron(0 9 ? * MON-FRI *)", "Asia/Tokyo", "2026-11-28T00:00:00+00:00", "2026-11-30T09:00:00+09:00"),
        ("at(2027-01-02T03:04:05)", "UTC", "2026-11-30T12:00:00+00:00", "2027-01-02T03:04:00+00:00"),
        ("at(2020-01-02T03:04:05)", "UTC", "2026-11-30T12:00:00+00:00", None),
        ("rate(5 minutes)", "UTC", "2026-11-30T12:00:00+00:00", None),
        ("cron(0 8 L * ? *)", "UTC", "2026-11-30T12:00:00+00:00", None),
    ],
)
def test_next_run_of_a_scheduled_action(schedule: str, tz: str, now: str, expected: str | None) -> None:
    got = next_run(schedule, tz, datetime.fromisoformat(now))
    if expected is None:
        assert got is None
    else:
        assert got is not None and got.replace(second=0) == datetime.fromisoformat(expected)
        assert str(got.tzinfo) == tz


def test_sparkline_shape() -> None:
    assert render_status.sparkline([1.0, 2.0, 3.0, None]) == "▁▅█ "
    assert render_status.sparkline([2.0, 2.0]) == "▁▁"
    assert render_status.under([0.007, 0.008], 0.02) == "$0.0070 to $0.0080 = 35-40 % of on-demand"


def test_stack_missing_error_is_failure() -> None:
    assert StackMissing("x").exit_code == 1


def test_sandbox_sample_spot_prices_stay_in_the_articles_range_and_move() -> None:
    from spotecs.sandbox import prices as sample

    start = datetime(2026, 11, 1, tzinfo=UTC)
    zones = [f"us-east-1{z}" for z in "abcdef"]
    for itype, od in sample.SAMPLE_ON_DEMAND.items():
        seen = {(z, n): sample.spot_price(itype, z, start + timedelta(hours=3 * n)) for z in zones for n in range(56)}
        assert all(2.29 <= od / p <= 3.41 for p in seen.values()), itype
        assert len({seen[(z, 0)] for z in zones}) > 1  # by zone
        assert len({p for (z, _), p in seen.items() if z == zones[0]}) > 5  # over a week
    rows = sample.spot_history(["t3.small"], zones[:2], start, start + timedelta(days=7))
    assert {r["AvailabilityZone"] for r in rows} == set(zones[:2])
    assert rows == sorted(rows, key=lambda r: r["Timestamp"], reverse=True)


def _instance(n: int, **over: Any) -> dict[str, Any]:
    row = {
        "id": f"i-0{n}23456789abcdef0",
        "type": "m6i.large",
        "zone": "eu-west-1c",
        "lifecycle": "spot",
        "launch_template_version": "1",
        "ami": "ami-0fac451d91e95f35c",
        "ami_outdated": False,
        "health": "Healthy",
        "protected": True,
        "ecs_status": "ACTIVE",
        "agent_connected": True,
        "tasks": {"api": 3, "worker": 2},
        "free_cpu": 1536,
        "free_memory_mib": 7296,
        "uptime_s": 552,
    }
    return {**row, **over}


def _fleet_doc(rows: list[dict[str, Any]]) -> dict[str, Any]:
    totals = {"instances": len(rows), "spot": 1, "on_demand": len(rows) - 1, "spot_share": 0.25}
    totals |= {"configured": {"on_demand_base": 1, "on_demand_percent": 20}, "expected_spot_share": 0.4}
    return {
        "fleet": {"instances": rows, "totals": totals},
        "cost": {"instances": [{"id": r["id"], "hourly": 0.0329} for r in rows[1:]]},
    }


@pytest.mark.parametrize("width", [120, 80])
@pytest.mark.parametrize("refreshing", [False, True])
def test_the_fleet_table_fits_120_and_80_columns_folding_no_id(width: int, refreshing: bool) -> None:
    rows = [
        _instance(1, lifecycle="on-demand"),
        _instance(2),
        _instance(3, ecs_status="DRAINING", agent_connected=False, zone="ap-southeast-2a", type="c6gn.16xlarge"),
    ]
    if refreshing:  # a refresh under way: two template versions and AMIs
        rows[0] |= {"ami_outdated": True}
        rows[2] |= {"launch_template_version": "2", "ami": "ami-0aaaaaaaaaaaaaaaa"}
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None, emoji=False)
    console.print(render_status.fleet(_fleet_doc(rows), True))
    text = out.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    words = {w for line in lines for w in line.split()}
    # Ids, types, zones and prices whole; secondary facts wrap at spaces, never inside a word.
    for r in rows:
        assert {r["id"], r["type"], r["zone"]} <= words
    assert {"on-demand", "$0.0329", "protected", "DRAINING,", "disconnected", "1536/7296", "unknown"} <= words
    if refreshing:
        assert {"v1", "v2", "(old"} <= words
        assert all(any(ami in line for line in lines) for ami in ("ami-0fac451d91e95f35c", "ami-0aaaaaaaaaaaaaaaa"))
    else:  # one version and AMI: said once, under the table
        assert text.count("ami-0fac451d91e95f35c") == 1 and "v1" in words
    # Narrow, an instance's type and zone go under its id.
    if width == 80:
        id_line = next(line for line in lines if rows[1]["id"] in line)
        assert rows[1]["zone"] not in id_line and rows[1]["type"] not in id_line


def test_a_steady_fleet_is_a_line_per_instance_at_120_columns() -> None:
    rows = [_instance(1, lifecycle="on-demand", tasks={"api": 3}), _instance(2, tasks={"worker": 2})]
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    console.print(render_status.fleet(_fleet_doc(rows), True))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 120
    for r in rows:
        (line,) = (line for line in lines if r["id"] in line)
        assert all(fact in line for fact in (r["type"], r["zone"], "Healthy, protected", "1536/7296", "9m"))
    assert len(lines) == 2 + 1 + len(rows) + 2  # title, header, rule, rows, a caption of two lines


def test_status_off_a_terminal_keeps_to_the_width_columns_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _fleet_doc([_instance(1), _instance(2)])
    monkeypatch.setattr(render_status, "screen", render_status.fleet)  # the Fleet table is the widest part
    monkeypatch.setenv("COLUMNS", "120")
    out = io.StringIO()
    render_status.show(Env(console=Console(file=out, width=120)), doc)
    assert max(len(line) for line in out.getvalue().splitlines()) <= 120
    monkeypatch.delenv("COLUMNS")
    out = io.StringIO()
    render_status.show(Env(console=Console(file=out, width=80)), doc)  # a pipe: columns kept whole
    assert max(len(line) for line in out.getvalue().splitlines()) > 80


@pytest.mark.parametrize("width", [120, 80])
def test_a_policy_s_alarms_go_a_line_each_under_it_never_back_at_the_margin(width: int) -> None:
    high = "TargetTracking-service/DemoApiClusterProd/demo-api-demo-api-AlarmHigh-d3185706-61f5-4236-bb0a-f6de31114ef3"
    low = "TargetTracking-service/DemoApiClusterProd/demo-api-demo-api-AlarmLow-6b8125c9-906d-4ebf-be1d-9fb8c3ff0016"
    policies = [
        {"name": "demo-api-track-cpu", "alarms": [{"name": high, "state": "OK"}, {"name": low, "state": "ALARM"}]},
        {"name": "demo-worker-step-queue", "alarms": [{"name": "demo-worker-step-queue", "state": "OK"}]},
    ]
    doc = {
        "scaling": {
            "group": {"name": "demo-instances", "min": 1, "desired": 2, "max": 4, "in_service": 2},
            "capacity_provider": {"name": "demo-instances-7a919501", "target_capacity": 90, "current_capacity": None},
            "services": [
                {"service": "api", "min": 1, "max": 10, "set_by": None, "policies": policies, "scheduled": []}
            ],
            "activities": [],
        }
    }
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=True, color_system=None).print(render_status.scaling(doc, True))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    start = lines.index("  policy demo-api-track-cpu:")
    under = lines[start + 1 : lines.index("  policy demo-worker-step-queue: demo-worker-step-queue OK")]
    assert under and all(line.startswith("    ") for line in under), lines
    assert "".join(line.strip() for line in under) == f"{high} OK{low} ALARM"
    if width == 120:
        assert under == [f"    {high} OK", f"    {low} ALARM"]


def test_status_off_a_terminal_ends_no_line_with_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _fleet_doc([_instance(1, tasks={"api": 3, "worker": 2, "cron": 1}), _instance(2, tasks={})])
    monkeypatch.setattr(render_status, "screen", render_status.fleet)
    out = io.StringIO()
    render_status.show(Env(console=Console(file=out, width=80)), doc)
    lines = out.getvalue().splitlines()
    # A pipe or a file gets no table padding after the last word (diffs, `grep 'healthy$'`).
    assert lines and [line for line in lines if line != line.rstrip()] == []
    assert any("i-0123456789abcdef0" in line for line in lines)


def test_status_off_a_terminal_never_folds_a_long_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    group = (
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:a849e22d-71a2-45eb-9fff-0a8a1cc2abac"
        ":autoScalingGroupName/demo-api-instances"
    )
    rows = [
        ("auto scaling group", "demo-api-instances", group),
        ("service auto scaling", "service/DemoApiClusterProd/demo-api-demo-api", None),
    ]
    doc = {"resources": [{"kind": k, "name": n, "id": i, "state": "in sync", "drift": []} for k, n, i in rows]}
    monkeypatch.setattr(render_status, "screen", render_status.resources)
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    render_status.show(Env(console=Console(file=out, width=80)), doc)  # a pipe
    lines = out.getvalue().splitlines()
    # One line per resource, whatever the names' lengths: a pipe has no width to fold to.
    assert len(lines) == 1 + 1 + len(rows), lines
    assert any(group in line and line.endswith("in sync") for line in lines)


@pytest.mark.parametrize("width", [120, 80])
def test_the_services_table_fits_120_and_80_columns_folding_no_id(width: int) -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 12, 1, 1, 11, tzinfo=UTC)
    service = {
        "service": "demo-api",
        "exists": True,
        "running": 2,
        "desired": 2,
        "pending": 0,
        "deployments": [
            {"status": "PRIMARY", "task_definition": "demo-api-demo-api:4", "rollout_state": "COMPLETED"}
            | {"running": 2, "desired": 2, "age_s": 75}
        ],
        "targets": [
            {"id": "i-d77389da13558a32b", "port": port, "state": "healthy", "reason": None} for port in (32768, 32769)
        ],
        "events": [{"at": at, "message": "(service demo-api-demo-api) has reached a steady state."}],
    }
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    console.print(render_status.services({"services": [service]}, True))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    words = {w for line in lines for w in line.split()}
    assert {"demo-api", "demo-api-demo-api:4", "i-d77389da13558a32b:32768", "i-d77389da13558a32b:32769"} <= words
    assert {"2026-12-01", "01:11", "healthy", "running"} <= words
    if width == 120:  # the events, prose, get room for a phrase, not a column a word wide
        assert any("2026-12-01 01:11 has reached a" in line for line in lines), lines
    # The row is the service: its events do not repeat "(service demo-api-demo-api)".
    assert "(service" not in out.getvalue() and "steady" in words
