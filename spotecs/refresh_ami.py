"""`spotecs refresh-ami`: move the fleet to the newest ECS-optimized AMI without dropping a request.

A new launch template version, identical to the default one but for the image, made the
default; then an Instance Refresh of the group that launches the new instances before the old
ones go (minimum healthy 100 %, maximum 200 %), skips the instances already on the new version
and refreshes the ones protected from scale-in, the capacity provider's managed draining moving
their tasks off first. Safe to run from a scheduler: nothing to do is a no-op (exit 0, no
write), and `--check` only reports (exit 3 when a newer AMI is available)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spotecs import aws, names
from spotecs import fleet_images as fleet
from spotecs.aws import AwsOptions
from spotecs.config import AMI_ALIASES, Stack
from spotecs.errors import AwsError, ExitCode, Interrupted, SpotecsError, UsageError, WaitTimeout
from spotecs.fleet_images import Fleet
from spotecs.refresh_view import RefreshView, ServiceCount, describe_plan, report_doc, report_text
from spotecs.render import Env, json_document
from spotecs.steps.ami import describe_images
from spotecs.steps.launch_template import normalise, template_data
from spotecs.up import Run, RunOptions, confirm, locked, prepare

# Launch before terminating: the group may double while new instances warm up.
MAX_HEALTHY = 200
# A refresh replaces instances batch by batch, each waiting for its warm-up and draining.
REFRESH_BUDGET = 3 * 3600
FAILED = ("Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed")


@dataclass(frozen=True)
class RefreshOptions:
    file: Path
    aws: AwsOptions
    check: bool = False
    yes: bool = False
    dry_run: bool = False
    min_healthy: int = 100
    wait: bool = True
    cancel: bool = False
    output: str = "text"


def refresh_ami(env: Env, opts: RefreshOptions, timeouts: Any = None) -> ExitCode:
    """With `-o json`, one document with the common head (render.json_document): the report,
    and the refresh started or followed."""
    with json_document(env, opts.output == "json", command="refresh-ami") as doc:
        return _refresh_ami(env, opts, timeouts, doc)


def _refresh_ami(env: Env, opts: RefreshOptions, timeouts: Any, doc: dict[str, Any]) -> ExitCode:
    run = prepare(RunOptions(file=opts.file, aws=opts.aws, yes=opts.yes, output=opts.output), timeouts)
    stack = run.stack
    doc.update(stack=stack.stack, region=run.region)
    say = env.err if opts.output == "json" else env.console
    if stack.instances.ami not in AMI_ALIASES:
        message = (
            f"{opts.file}: instances.ami pins {stack.instances.ami}; refresh-ami follows an AMI alias "
            f"({', '.join(AMI_ALIASES)}). Change instances.ami and run `spotecs up` to move to another image."
        )
        if opts.check:
            doc.update({"pinned": stack.instances.ami, "up_to_date": True})
            say.print(message, markup=False)
            return ExitCode.OK
        raise UsageError(message)
    # A new template version or a refresh beside an `up` or a teardown would race them: held
    # like theirs. Reporting (--check) and --dry-run write nothing and take none.
    read_only = RunOptions(file=opts.file, aws=opts.aws, dry_run=opts.check or opts.dry_run)
    with locked(run, read_only, "refresh-ami"):
        return _refresh(env, run, opts, doc)


def _refresh(env: Env, run: Run, opts: RefreshOptions, doc: dict[str, Any]) -> ExitCode:
    stack = run.stack
    say = env.err if opts.output == "json" else env.console
    if opts.cancel:
        return _cancel(env, run, opts, doc)
    facts = fleet.read(run.aws, stack)
    if facts.template_id is None or facts.group_arn is None:
        raise SpotecsError(
            f"stack {stack.stack} has no launch template or auto scaling group {facts.group} in {run.region}: "
            "nothing to refresh (create the stack with `spotecs up`)"
        )
    if opts.check:
        doc.update(report_doc(stack, facts))
        report_text(say, stack, run.region, facts, opts.file)
        return ExitCode.OK if facts.up_to_date else ExitCode.NEWER_AMI
    active = fleet.active_refresh(run.aws, facts.group)
    if active is not None:
        say.print(
            f"An instance refresh of {facts.group} is already {active['Status']} "
            f"({active.get('PercentageComplete', 0)}% done, id {active['InstanceRefreshId']}): not starting another.",
            markup=False,
        )
        if not opts.wait or opts.dry_run:
            doc.update({**report_doc(stack, facts), "refresh": _refresh_doc(active)})
            return ExitCode.OK
        return _watch(env, run, opts, facts, active["InstanceRefreshId"], doc)
    if facts.latest is None:
        raise SpotecsError(f"no ECS-optimized image for {stack.instances.ami} in {run.region}")
    if facts.up_to_date:
        doc.update(report_doc(stack, facts))
        say.print(
            f"Up to date: launch template {facts.template} and its {len(facts.instances)} instance(s) run "
            f"{facts.latest.image_id} ({facts.latest.name}), the latest {stack.instances.ami} image. Nothing to do.",
            markup=False,
        )
        return ExitCode.OK
    provider, draining = fleet.draining_provider(run.aws, stack.cluster_name, facts.group_arn)
    if not draining:
        where = f"capacity provider {provider}" if provider else f"cluster {stack.cluster_name}"
        raise SpotecsError(
            f"managed draining is off on {where}: an instance refresh would stop the tasks of each instance it "
            "replaces without moving them first. Set capacity_provider.managed_draining: true (the default), run "
            "`spotecs up`, then run refresh-ami again."
        )
    warmup = stack.capacity_provider.instance_warmup
    describe_plan(say, stack, run.region, facts, opts.min_healthy, _max_healthy(opts), warmup, provider or "")
    if opts.dry_run:
        doc.update({**report_doc(stack, facts), "dry_run": True})
        return ExitCode.OK
    confirm(env, RunOptions(file=opts.file, aws=opts.aws, yes=opts.yes), "\nRefresh the fleet?")
    if facts.template_image != facts.latest.image_id:
        version = _new_version(run, facts)
        say.print(f"Launch template {facts.template}: version {version} ({facts.latest.image_id}) is the default.")
    refresh_id = _start(run, opts, facts, warmup)
    say.print(f"Instance refresh {refresh_id} of {facts.group} started.", markup=False)
    if not opts.wait:
        doc.update({**report_doc(stack, facts), "refresh": {"id": refresh_id, "status": "Pending"}})
        say.print(_how_to_follow(opts, refresh_id), markup=False)
        return ExitCode.OK
    return _watch(env, run, opts, facts, refresh_id, doc)


def _max_healthy(opts: RefreshOptions) -> int:
    # AWS allows at most 100 points between the two percentages.
    return min(MAX_HEALTHY, opts.min_healthy + 100)


def _new_version(run: Run, facts: Fleet) -> int:
    """A version equal to the default one but for the image (and a root volume that still fits
    the image), sent in full: moto ignores SourceVersion, and the same data is what `up` would
    ask for, so a later `up` plans no change."""
    assert facts.latest is not None and facts.template_id is not None
    image = describe_images(run.aws, [facts.latest.image_id]).get(facts.latest.image_id, {})
    root = image.get("RootDeviceName")
    root_size = next(
        (
            m.get("Ebs", {}).get("VolumeSize", 0)
            for m in image.get("BlockDeviceMappings", [])
            if m.get("DeviceName") == root
        ),
        0,
    )
    current = normalise(facts.data)
    desired = {
        **current,
        "image_id": facts.latest.image_id,
        "root_volume": {
            **current["root_volume"],
            "device": root or current["root_volume"]["device"],
            "size_gib": max(run.stack.instances.disk_gib, int(root_size or 0)),
        },
    }
    ec2 = run.aws.client("ec2")
    version = int(
        aws.call(
            f"create a new version of launch template {facts.template}",
            ec2.create_launch_template_version,
            LaunchTemplateId=facts.template_id,
            VersionDescription=f"spotecs refresh-ami: {facts.latest.name}"[:255],
            LaunchTemplateData=template_data(desired),
        )["LaunchTemplateVersion"]["VersionNumber"]
    )
    aws.call(
        f"make version {version} the default of launch template {facts.template}",
        ec2.modify_launch_template,
        LaunchTemplateId=facts.template_id,
        DefaultVersion=str(version),
    )
    return version


def _start(run: Run, opts: RefreshOptions, facts: Fleet, warmup: int) -> str:
    try:
        got = aws.call(
            f"start an instance refresh of {facts.group}",
            run.aws.client("autoscaling").start_instance_refresh,
            AutoScalingGroupName=facts.group,
            Strategy="Rolling",
            Preferences={
                "MinHealthyPercentage": opts.min_healthy,
                "MaxHealthyPercentage": _max_healthy(opts),
                # Long enough for the ECS agent to register: an instance counts once it can take tasks.
                "InstanceWarmup": warmup,
                "SkipMatching": True,
                # Managed termination protection protects every instance; managed draining moves
                # the tasks off each one before it goes.
                "ScaleInProtectedInstances": "Refresh",
                "StandbyInstances": "Ignore",
            },
        )
    except AwsError as e:
        if e.code != "InstanceRefreshInProgress":
            raise
        active = fleet.active_refresh(run.aws, facts.group)  # started by someone else meanwhile
        if active is None:
            raise
        return str(active["InstanceRefreshId"])
    return str(got["InstanceRefreshId"])


def _cancel(env: Env, run: Run, opts: RefreshOptions, doc: dict[str, Any]) -> ExitCode:
    group = names.auto_scaling_group(run.stack.stack)
    say = env.err if opts.output == "json" else env.console
    active = fleet.active_refresh(run.aws, group)
    if active is None or active["Status"] == "Cancelling":
        state = "is already being cancelled" if active else "is in progress"
        say.print(
            f"No instance refresh of {group} {state}: nothing to cancel."
            if not active
            else f"The instance refresh of {group} {state}.",
            markup=False,
        )
        doc.update({"refresh": _refresh_doc(active) if active else None})
        if active is None or not opts.wait:
            return ExitCode.OK
        return _watch(env, run, opts, None, active["InstanceRefreshId"], doc)
    say.print(
        f"Instance refresh {active['InstanceRefreshId']} of {group} is {active['Status']} "
        f"({active.get('PercentageComplete', 0)}% done). Cancelling keeps the instances already replaced.",
        markup=False,
    )
    if opts.dry_run:
        return ExitCode.OK
    confirm(env, RunOptions(file=opts.file, aws=opts.aws, yes=opts.yes), "\nCancel it?")
    try:
        aws.call(
            f"cancel the instance refresh of {group}",
            run.aws.client("autoscaling").cancel_instance_refresh,
            AutoScalingGroupName=group,
        )
    except AwsError as e:
        if e.code != "ActiveInstanceRefreshNotFound":  # finished meanwhile
            raise
    if not opts.wait:
        doc.update({"refresh": {**_refresh_doc(active), "status": "Cancelling"}})
        return ExitCode.OK
    return _watch(env, run, opts, None, active["InstanceRefreshId"], doc)


def _watch(
    env: Env, run: Run, opts: RefreshOptions, facts: Fleet | None, refresh_id: str, doc: dict[str, Any]
) -> ExitCode:
    """Follow a refresh to its end: its progress and the services' counts, live."""
    group = names.auto_scaling_group(run.stack.stack)
    counts = _ServiceCounts(run)
    view = RefreshView(env)
    started = time.monotonic()
    try:
        with view.running():
            while True:
                found = fleet.refreshes(run.aws, group, refresh_id)
                if not found:
                    raise SpotecsError(f"instance refresh {refresh_id} of {group} is gone")
                refresh = found[0]
                view.update(refresh, counts.read())
                status = refresh["Status"]
                if status == "Successful" or (status == "Cancelled" and opts.cancel):
                    break
                if status in FAILED:
                    raise SpotecsError(_failure(run, group, refresh))
                if time.monotonic() - started > REFRESH_BUDGET:
                    raise WaitTimeout(
                        f"instance refresh {refresh_id} of {group}", REFRESH_BUDGET, _how_to_follow(opts, refresh_id)
                    )
                time.sleep(run.ctx.timeouts.delay)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {_how_to_follow(opts, refresh_id)}") from None
    say = env.err if opts.output == "json" else env.console
    result: dict[str, Any] = {"refresh": _refresh_doc(refresh)}
    if status == "Successful" and facts is not None:
        after = fleet.read(run.aws, run.stack)
        result = {**report_doc(run.stack, after), "refresh": _refresh_doc(refresh)}
        on_latest = f"{len(after.instances) - len(after.outdated)} of {len(after.instances)} instance(s) run "
        say.print(
            f"Instance refresh {refresh_id} succeeded"
            + (f": {on_latest}{after.latest.image_id}." if after.latest else "."),
            markup=False,
        )
    else:
        say.print(f"Instance refresh {refresh_id}: {status}.", markup=False)
    doc.update(result)
    return ExitCode.OK


def _failure(run: Run, group: str, refresh: dict[str, Any]) -> str:
    lines = [
        f"instance refresh {refresh['InstanceRefreshId']} of {group} ended {refresh['Status']}: "
        f"{refresh.get('StatusReason') or 'no reason given'}"
    ]
    activities = fleet.last_activities(run.aws, group)
    if activities:
        lines.append("last scaling activities:")
        lines += [
            f"  {a.get('StartTime')} {a.get('StatusCode')}: {a.get('Description')}"
            + (f" ({a['StatusMessage']})" if a.get("StatusMessage") else "")
            for a in activities
        ]
    return "\n".join(lines)


def _how_to_follow(opts: RefreshOptions, refresh_id: str) -> str:
    return (
        f"instance refresh {refresh_id} keeps running on AWS. Follow it with `spotecs status -f {opts.file}` "
        f"(or `spotecs refresh-ami -f {opts.file}`, which reports it); cancel it with "
        f"`spotecs refresh-ami -f {opts.file} --cancel`."
    )


def _refresh_doc(refresh: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": refresh.get("InstanceRefreshId"),
        "status": refresh.get("Status"),
        "status_reason": refresh.get("StatusReason"),
        "percentage_complete": refresh.get("PercentageComplete"),
        "instances_to_update": refresh.get("InstancesToUpdate"),
    }


class _ServiceCounts:
    """Running/desired tasks and healthy targets of the stack's services (a few reads a poll)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        stack: Stack = run.stack
        self.services = {names.service(stack.stack, s): s for s in stack.services}
        self.target_groups: dict[str, str] | None = None  # service name -> ARN, looked up once

    def read(self) -> list[ServiceCount]:
        ecs = self.run.aws.client("ecs")
        found: dict[str, dict[str, Any]] = {}
        wanted = list(self.services)
        for start in range(0, len(wanted), 10):  # DescribeServices takes 10 at most
            got = aws.call(
                "describe the stack's services",
                ecs.describe_services,
                cluster=self.run.stack.cluster_name,
                services=wanted[start : start + 10],
            )
            found.update({s["serviceName"]: s for s in got.get("services", [])})
        healthy = self._healthy_targets()
        return [
            ServiceCount(
                name,
                int(found.get(name, {}).get("runningCount", 0)),
                int(found.get(name, {}).get("desiredCount", 0)),
                healthy.get(name),
            )
            for name in wanted
        ]

    def _healthy_targets(self) -> dict[str, int]:
        elbv2 = self.run.aws.client("elbv2")
        if self.target_groups is None:
            self.target_groups = {}
            for name, svc in self.services.items():
                if self.run.stack.services[svc].container_port is None:
                    continue
                got = aws.call(
                    f"describe target group {name}",
                    elbv2.describe_target_groups,
                    missing=("TargetGroupNotFound",),
                    Names=[names.target_group(self.run.stack.stack, svc)],
                )
                if got and got.get("TargetGroups"):
                    self.target_groups[name] = got["TargetGroups"][0]["TargetGroupArn"]
        out = {}
        for name, arn in self.target_groups.items():
            health = aws.call(f"describe the targets of {name}", elbv2.describe_target_health, TargetGroupArn=arn)
            out[name] = sum(
                1 for t in health.get("TargetHealthDescriptions", []) if t["TargetHealth"]["State"] == "healthy"
            )
        return out
