"""`spotecs refresh-ami` end to end: the real CLI against the sandbox (moto's server with the
simulated ECS agent and the sandbox's Instance Refresh). The agent ticks only inside
`ticking()`, so a test decides when AWS "moves": a refresh started outside it stays Pending."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import spotecs.up
from spotecs.aws import Aws
from spotecs.cli import cli
from spotecs.render import Env
from spotecs.sandbox import Sandbox
from spotecs.sandbox.amis import publish_ami
from spotecs.steps.base import Timeouts
from tests.test_e2e import stack_file

FAST = Timeouts(default=120, delay=0.05)
REGION = "us-east-1"


@dataclass
class CliRun:
    code: int
    output: str  # stdout and stderr, as a terminal shows them
    stdout: str
    aws: Aws | None

    def sent(self, operation: str) -> list[dict[str, Any]]:
        assert self.aws is not None
        return [c.params for c in self.aws.calls if c.operation == operation]

    def writes(self) -> list[str]:
        assert self.aws is not None
        return [c.operation for c in self.aws.writes()]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    # AWS's delays (deregistration delays while instances drain) 20 times faster.
    with Sandbox(agent_interval=None, clock_factor=20) as box:
        yield box


@contextmanager
def ticking(sandbox: Sandbox, every: float = 0.05, once: Callable[[], bool] = lambda: True) -> Iterator[None]:
    """The agent (and so AWS's background work: instance refreshes) runs while inside, from the
    moment `once()` is true."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            if once():
                sandbox.tick()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def run_cli(sandbox: Sandbox, *args: str, opened: list[Aws] | None = None) -> CliRun:
    """`spotecs <args> --endpoint-url <sandbox>`, stdin not a terminal; records the run's calls
    (its session is appended to `opened`, for a test to watch while it runs)."""
    opened = [] if opened is None else opened

    class Recording(Aws):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            opened.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spotecs.up, "Aws", Recording)
        mp.setattr(spotecs.up, "Timeouts", lambda: FAST)
        result = CliRunner().invoke(cli, [*args, "--endpoint-url", sandbox.endpoint_url], obj=Env(stdin_isatty=False))
    return CliRun(result.exit_code, result.output, result.stdout, opened[0] if opened else None)


def deploy(sandbox: Sandbox, directory: Path, name: str, **replace: str) -> Path:
    path = stack_file(directory, name, **replace)
    with ticking(sandbox):
        run = run_cli(sandbox, "up", "-f", str(path), "--yes")
    assert run.code == 0, run.output
    return path


def images(sandbox: Sandbox, name: str) -> tuple[str, list[str]]:
    """(the template's default AMI, the AMI of each instance of the group)."""
    ec2 = sandbox.client("ec2")
    [version] = ec2.describe_launch_template_versions(LaunchTemplateName=f"{name}-instances", Versions=["$Default"])[
        "LaunchTemplateVersions"
    ]
    [group] = sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"{name}-instances"])[
        "AutoScalingGroups"
    ]
    ids = [i["InstanceId"] for i in group["Instances"]]
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
    return version["LaunchTemplateData"]["ImageId"], [i["ImageId"] for r in reservations for i in r["Instances"]]


class Sampler:
    """Running tasks and healthy targets of each service, read from the sandbox while a refresh
    runs (each read is one consistent snapshot: requests and agent ticks never interleave)."""

    def __init__(self, sandbox: Sandbox, cluster: str, services: list[str]) -> None:
        self.ecs = sandbox.client("ecs")
        self.cluster, self.services = cluster, services
        self.samples: list[dict[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            sample = {}
            for service in self.services:
                arns = self.ecs.list_tasks(cluster=self.cluster, serviceName=service, desiredStatus="RUNNING")[
                    "taskArns"
                ]
                sample[service] = len(arns)
            self.samples.append(sample)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- the whole story


# A worker beside the article's web service: 3 tasks that must keep running (minimum healthy 100 %).
WORKER = """services:
  worker:
    image: busybox:1.36
    command: [sleep, "86400"]
    cpu: 128
    memory_soft: 128
    desired_count: 3
"""


def test_outdated_fleet_is_refreshed_without_dropping_tasks(sandbox: Sandbox, tmp_path: Path) -> None:
    name = "refresh-story"
    path = deploy(sandbox, tmp_path, name, **{"services:\n": WORKER})
    old, running = images(sandbox, name)
    assert running == [old, old]

    # Already current: nothing to do, no write; --check says 0.
    current = run_cli(sandbox, "refresh-ami", "-f", str(path), "--yes")
    assert current.code == 0 and "Up to date" in current.output and current.writes() == []
    assert run_cli(sandbox, "refresh-ami", "-f", str(path), "--check").code == 0

    # AWS publishes a new image: `up` is not drifted, it only notes it; --check says 3.
    newer = publish_ami("al2023", REGION)
    plan = run_cli(sandbox, "up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert plan.code == 0, plan.output
    assert newer in plan.output and "refresh-ami" in plan.output
    check = run_cli(sandbox, "refresh-ami", "-f", str(path), "--check", "-o", "json")
    assert check.code == 3, check.output
    report = json.loads(check.stdout)
    head = (report["command"], report["stack"], report["region"], report["error"])
    assert head == ("refresh-ami", name, REGION, None)
    assert report["launch_template"]["image"]["image_id"] == old and report["latest"]["image_id"] == newer
    assert report["instances"] == {"total": 2, "on_older_image": 2, "by_image": report["instances"]["by_image"]}
    assert check.writes() == []

    # The refresh: a new default version (only the image differs), then an Instance Refresh.
    services = {f"{name}-demo-api": 2, f"{name}-worker": 3}
    with ticking(sandbox), Sampler(sandbox, f"{name}-cluster", list(services)) as sampler:
        done = run_cli(sandbox, "refresh-ami", "-f", str(path), "--yes")
    assert done.code == 0, done.output
    [new_version] = done.sent("CreateLaunchTemplateVersion")
    assert new_version["LaunchTemplateData"]["ImageId"] == newer
    [started] = done.sent("StartInstanceRefresh")
    prefs = started["Preferences"]
    assert (prefs["MinHealthyPercentage"], prefs["MaxHealthyPercentage"]) == (100, 200)
    assert prefs["SkipMatching"] is True and prefs["ScaleInProtectedInstances"] == "Refresh"
    assert prefs["InstanceWarmup"] == 300

    template, running = images(sandbox, name)
    assert template == newer and running == [newer, newer]
    # Each service (minimum healthy 100 %) never ran fewer tasks than it wants.
    assert len(sampler.samples) > 5
    for service, desired in services.items():
        assert min(s[service] for s in sampler.samples) >= desired, (service, sampler.samples)

    # Afterwards: `up` plans no change, --check says 0, and a new run does nothing.
    after = run_cli(sandbox, "up", "-f", str(path), "--dry-run", "--detailed-exitcode")
    assert after.code == 0 and "No changes" in after.output, after.output
    assert run_cli(sandbox, "refresh-ami", "-f", str(path), "--check").code == 0
    again = run_cli(sandbox, "refresh-ami", "-f", str(path), "--yes")
    assert again.code == 0 and again.writes() == []


# --------------------------------------------------------------------------- one refresh at a time


def test_a_refresh_in_progress_is_reported_not_doubled_then_cancelled(sandbox: Sandbox, tmp_path: Path) -> None:
    name = "refresh-cancel"
    path = deploy(sandbox, tmp_path, name)
    publish_ami("al2023", REGION)
    group = f"{name}-instances"
    asg = sandbox.client("autoscaling")

    # The agent is not ticking: the refresh stays Pending between the commands.
    first = run_cli(sandbox, "refresh-ami", "-f", str(path), "--yes", "--no-wait")
    assert first.code == 0, first.output
    assert len(first.sent("StartInstanceRefresh")) == 1 and "spotecs refresh-ami" in first.output
    second = run_cli(sandbox, "refresh-ami", "-f", str(path), "--yes", "--no-wait")
    assert second.code == 0 and "already Pending" in second.output, second.output
    assert second.writes() == []
    assert len(asg.describe_instance_refreshes(AutoScalingGroupName=group)["InstanceRefreshes"]) == 1

    cancelled = run_cli(sandbox, "refresh-ami", "-f", str(path), "--cancel", "--yes", "--no-wait")
    assert cancelled.code == 0, cancelled.output
    assert cancelled.sent("CancelInstanceRefresh") == [{"AutoScalingGroupName": group}]
    [refresh] = asg.describe_instance_refreshes(AutoScalingGroupName=group)["InstanceRefreshes"]
    assert refresh["Status"] == "Cancelling"
    again = run_cli(sandbox, "refresh-ami", "-f", str(path), "--cancel", "--yes", "--no-wait")
    assert again.code == 0 and "being cancelled" in again.output and again.writes() == []
    sandbox.tick()
    [refresh] = asg.describe_instance_refreshes(AutoScalingGroupName=group)["InstanceRefreshes"]
    assert refresh["Status"] == "Cancelled"
    # Back to the desired capacity, every task still running.
    [g] = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    assert len(g["Instances"]) == g["DesiredCapacity"] == 2

    nothing = run_cli(sandbox, "refresh-ami", "-f", str(path), "--cancel", "--yes")
    assert nothing.code == 0 and "nothing to cancel" in nothing.output and nothing.writes() == []


def test_a_failed_refresh_exits_1_with_the_reason_and_the_last_activities(sandbox: Sandbox, tmp_path: Path) -> None:
    name = "refresh-failed"
    path = deploy(sandbox, tmp_path, name)
    newer = publish_ami("al2023", REGION)
    started = run_cli(sandbox, "refresh-ami", "-f", str(path), "--yes", "--no-wait")
    assert started.code == 0, started.output
    # The image is withdrawn before the refresh launches anything: launches fail, so does the refresh.
    sandbox.client("ec2").deregister_image(ImageId=newer)
    opened: list[Aws] = []

    def watching() -> bool:  # AWS moves once the command follows the refresh, not before
        calls = opened[0].calls if opened else []
        return any(c.operation == "DescribeInstanceRefreshes" and "InstanceRefreshIds" in c.params for c in calls)

    with ticking(sandbox, once=watching):
        watched = run_cli(sandbox, "refresh-ami", "-f", str(path), "--yes", opened=opened)
    assert watched.code == 1, watched.output
    assert "already Pending" in watched.output and watched.sent("StartInstanceRefresh") == []
    assert "ended Failed: Launching a new EC2 instance failed" in watched.output and newer in watched.output
    assert "last scaling activities" in watched.output and "Failed: Launching a new EC2 instance" in watched.output
    publish_ami("al2023", REGION)  # the next tests' stacks need an image that exists


# --------------------------------------------------------------------------- refusals


def test_an_explicit_ami_id_is_pinned(sandbox: Sandbox, tmp_path: Path) -> None:
    path = stack_file(tmp_path, "refresh-pinned", **{"ami: al2023": "ami: ami-0123456789abcdef0"})
    check = run_cli(sandbox, "refresh-ami", "-f", str(path), "--check")
    assert check.code == 0 and "pins ami-0123456789abcdef0" in check.output
    assert check.aws is not None and check.aws.calls == []
    refused = run_cli(sandbox, "refresh-ami", "-f", str(path), "--yes")
    assert refused.code == 2 and "instances.ami pins" in refused.output
    assert refused.aws is not None and refused.aws.calls == []


def test_refuses_without_managed_draining(sandbox: Sandbox, tmp_path: Path) -> None:
    path = deploy(
        sandbox,
        tmp_path,
        "refresh-nodrain",
        **{"managed_termination_protection: true": "managed_termination_protection: true\n  managed_draining: false"},
    )
    publish_ami("al2023", REGION)
    refused = run_cli(sandbox, "refresh-ami", "-f", str(path), "--yes")
    assert refused.code == 1 and "managed draining is off" in refused.output, refused.output
    assert refused.writes() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-healthy", "101"], "--min-healthy"),
        (["--check", "--cancel"], "--check and --cancel"),
        (["-o", "json"], "--output json needs"),
    ],
)
def test_bad_options_exit_2_before_any_call(sandbox: Sandbox, tmp_path: Path, args: list[str], message: str) -> None:
    path = stack_file(tmp_path, "refresh-options")
    run = run_cli(sandbox, "refresh-ami", "-f", str(path), *args)
    assert run.code == 2 and message in run.output and run.aws is None


def test_no_stack_is_a_clear_failure(sandbox: Sandbox, tmp_path: Path) -> None:
    path = stack_file(tmp_path, "refresh-absent")
    run = run_cli(sandbox, "refresh-ami", "-f", str(path), "--check")
    assert run.code == 1 and "spotecs up" in run.output and run.writes() == []


# --------------------------------------------------------------------------- the sandbox's refresh


def test_sandbox_refresh_skips_matching_and_ignores_protected_instances(sandbox: Sandbox, tmp_path: Path) -> None:
    name = "refresh-prefs"
    deploy(sandbox, tmp_path, name)
    group = f"{name}-instances"
    asg = sandbox.client("autoscaling")

    # Every instance already runs the version in force: nothing to replace.
    matching = asg.start_instance_refresh(AutoScalingGroupName=group, Preferences={"SkipMatching": True})
    sandbox.tick()
    [refresh] = asg.describe_instance_refreshes(
        AutoScalingGroupName=group, InstanceRefreshIds=[matching["InstanceRefreshId"]]
    )["InstanceRefreshes"]
    assert (refresh["Status"], refresh["PercentageComplete"], refresh["InstancesToUpdate"]) == ("Successful", 100, 0)

    # Without SkipMatching but ignoring protected instances (all are, in the article): none either.
    ignored = asg.start_instance_refresh(
        AutoScalingGroupName=group,
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 150, "ScaleInProtectedInstances": "Ignore"},
    )
    [refresh] = asg.describe_instance_refreshes(
        AutoScalingGroupName=group, InstanceRefreshIds=[ignored["InstanceRefreshId"]]
    )["InstanceRefreshes"]
    assert refresh["Status"] == "Pending" and refresh["InstancesToUpdate"] == 0
    assert refresh["Preferences"]["MaxHealthyPercentage"] == 150
    with pytest.raises(asg.exceptions.InstanceRefreshInProgressFault):
        asg.start_instance_refresh(AutoScalingGroupName=group)
    sandbox.tick()
    with pytest.raises(asg.exceptions.ActiveInstanceRefreshNotFoundFault):
        asg.cancel_instance_refresh(AutoScalingGroupName=group)


def test_sandbox_publishes_a_newer_ami_over_http(sandbox: Sandbox) -> None:
    import urllib.request

    ssm = sandbox.client("ssm")
    name = "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    before = ssm.get_parameter(Name=name)["Parameter"]
    request = urllib.request.Request(
        f"{sandbox.endpoint_url}/_spotecs/publish-ami?alias=al2023-arm64&region={REGION}", method="POST"
    )
    with urllib.request.urlopen(request) as response:
        published = json.loads(response.read())["image_id"]
    after = ssm.get_parameter(Name=name)["Parameter"]
    assert after["Value"] == published != before["Value"] and after["Version"] == before["Version"] + 1
    [image] = sandbox.client("ec2").describe_images(ImageIds=[published])["Images"]
    assert image["Architecture"] == "arm64" and image["Name"] > "al2023-ami-ecs-hvm-2023"


def test_sandbox_draining_keeps_tasks_until_replaced(sandbox: Sandbox, tmp_path: Path) -> None:
    """Tasks on a DRAINING instance move (replacement first) and, with nowhere to go, stay while
    the service is at its minimum healthy percent."""
    name = "refresh-drain"
    # The article's 50 % would let ECS stop one task; this case is about a service held at 100 %.
    deploy(sandbox, tmp_path, name, **{"min_healthy_percent: 50": "min_healthy_percent: 100"})
    ecs, cluster, service = sandbox.client("ecs"), f"{name}-cluster", f"{name}-demo-api"
    instances = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    assert len(instances) == 2

    def hosts() -> list[str]:
        arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
        return [t["containerInstanceArn"] for t in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]]

    # Both instances draining: nowhere to move, minimum healthy 100 %: both tasks keep running.
    ecs.update_container_instances_state(cluster=cluster, containerInstances=instances, status="DRAINING")
    sandbox.tick()
    assert len(hosts()) == 2
    # One back to ACTIVE: the tasks of the other move onto it, replacement first.
    ecs.update_container_instances_state(cluster=cluster, containerInstances=instances[:1], status="ACTIVE")
    sandbox.tick()
    assert hosts() == [instances[0], instances[0]]
