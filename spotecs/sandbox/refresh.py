"""Auto Scaling Instance Refresh and scaling activities, which moto does not implement.

The API (StartInstanceRefresh, DescribeInstanceRefreshes, CancelInstanceRefresh,
DescribeScalingActivities) is served by methods added to moto's AutoScalingResponse (see
fills.install); the refresh itself is advanced by the simulated agent's tick (`advance`), the
way AWS advances it in the background. It follows
https://docs.aws.amazon.com/autoscaling/ec2/userguide/instance-refresh-overview.html and
https://docs.aws.amazon.com/autoscaling/ec2/userguide/understand-instance-refresh-default-values.html:

- the instances to replace are fixed at the start: those not launched from the group's launch
  template version in force (with SkipMatching; every instance without it), protected ones
  included with ScaleInProtectedInstances=Refresh, left out with Ignore, waited for with Wait;
- new instances (of the default version, the group's `$Default`) are launched while the group
  stays within MaxHealthyPercentage of its desired capacity; an old one is taken out only while
  the healthy instances stay at or above MinHealthyPercentage; a new instance counts as healthy
  once its warm-up is over, which here is when the ECS agent has registered it (the seconds of
  InstanceWarmup are not waited: the sandbox has no boot time to cover);
- with the capacity provider's managed draining (ECS's default), an instance being replaced is
  set DRAINING first and terminated once no task runs on it; the services' scheduler (see
  draining.py, shared with spot interruptions) starts replacements elsewhere before stopping
  the tasks it holds
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/managed-instance-draining.html);
- statuses Pending → InProgress → Successful | Failed, Cancelling → Cancelled; one refresh at a
  time per group (InstanceRefreshInProgress); PercentageComplete and InstancesToUpdate as AWS
  reports them.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spotecs.sandbox.instances import GONE_STATES, Report, ecs_config

ACTIVE = ("Pending", "InProgress", "Cancelling")
_REFRESHES = "_spotecs_refreshes"
# Stamped on moto's Instance at launch: the launch template version it was launched from (AWS
# reports it in DescribeAutoScalingInstances; SkipMatching compares it).
LAUNCHED_VERSION = "_spotecs_launch_template_version"


@dataclass
class Refresh:
    id: str
    group: str
    preferences: dict[str, Any]
    to_replace: list[str]
    version: int | None
    status: str = "Pending"
    reason: str = ""
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    end: datetime | None = None
    launched: list[str] = field(default_factory=list)
    draining: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)

    @property
    def percentage(self) -> int:
        if not self.to_replace:
            return 100 if self.status == "Successful" else 0
        return 100 * len(self.replaced) // len(self.to_replace)

    def describe(self) -> dict[str, Any]:
        left = len(self.to_replace) - len(self.replaced)
        out: dict[str, Any] = {
            "InstanceRefreshId": self.id,
            "AutoScalingGroupName": self.group,
            "Status": self.status,
            "StartTime": self.start,
            "PercentageComplete": self.percentage,
            "InstancesToUpdate": left,
            "ProgressDetails": {"LivePoolProgress": {"PercentageComplete": self.percentage, "InstancesToUpdate": left}},
            "Preferences": self.preferences,
        }
        if self.reason:
            out["StatusReason"] = self.reason
        if self.end is not None:
            out["EndTime"] = self.end
        return out

    def finish(self, status: str, reason: str = "") -> None:
        self.status, self.reason, self.end = status, reason, datetime.now(UTC)


def _errors() -> tuple[type[Exception], type[Exception], type[Exception]]:
    from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError

    class InstanceRefreshInProgress(AutoscalingClientError):
        code = "InstanceRefreshInProgress"
        message = "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh."

    class ActiveInstanceRefreshNotFound(AutoscalingClientError):
        code = "ActiveInstanceRefreshNotFound"

    return ValidationError, InstanceRefreshInProgress, ActiveInstanceRefreshNotFound


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def refreshes(group: Any) -> list[Refresh]:
    if not hasattr(group, _REFRESHES):
        setattr(group, _REFRESHES, [])
    found: list[Refresh] = getattr(group, _REFRESHES)
    return found


def activity(group: Any, description: str, cause: str, failure: str = "") -> None:
    """Record a scaling activity (fills.record_activity: DescribeScalingActivities serves them)."""
    from spotecs.sandbox.fills import record_activity

    now = datetime.now(UTC)
    record_activity(
        group, "Failed" if failure else "Successful", description, f"At {now:%Y-%m-%dT%H:%M:%SZ} {cause}", failure
    )


def version_in_force(group: Any) -> int | None:
    """The launch template version number the group launches now ($Default/$Latest resolved)."""
    template = group.ec2_launch_template
    if template is None:
        return None
    return int(template.get_version(group.launch_template_version).number)


def _matches(group: Any, instance: Any, version: int | None) -> bool:
    launched = getattr(instance, LAUNCHED_VERSION, None)
    if launched is not None:
        return bool(launched == version)
    # Launched before the sandbox stamped versions: compare what the version would launch.
    return bool(version is not None and instance.image_id == group.ec2_launch_template.get_version(version).image_id)


# --------------------------------------------------------------------------- the API


def start(backend: Any, params: dict[str, Any]) -> str:
    validation, in_progress, _ = _errors()
    name = params.get("AutoScalingGroupName")
    group = backend.autoscaling_groups.get(name)
    if group is None:
        raise validation(f"AutoScalingGroup name not found - AutoScalingGroup {name} not found")
    if any(r.status in ACTIVE for r in refreshes(group)):
        raise in_progress()
    prefs = dict(params.get("Preferences") or {})
    low = int(prefs.get("MinHealthyPercentage", 90))
    high = int(prefs.get("MaxHealthyPercentage", 100))
    if not 0 <= low <= 100 or not 100 <= high <= 200 or high - low > 100 or (low == 100 and high == 100):
        raise validation(
            "MinHealthyPercentage must be 0-100 and MaxHealthyPercentage 100-200, at most 100 apart, and not both 100"
        )
    preferences = {
        "MinHealthyPercentage": low,
        "MaxHealthyPercentage": high,
        "InstanceWarmup": int(prefs.get("InstanceWarmup", group.health_check_grace_period or 0)),
        "SkipMatching": _bool(prefs.get("SkipMatching")),
        "AutoRollback": _bool(prefs.get("AutoRollback")),
        "ScaleInProtectedInstances": prefs.get("ScaleInProtectedInstances", "Ignore"),
        "StandbyInstances": prefs.get("StandbyInstances", "Ignore"),
    }
    version = version_in_force(group)
    to_replace = []
    for state in group.instance_states:
        if state.instance.state in GONE_STATES or state.lifecycle_state != "InService":
            continue
        if preferences["SkipMatching"] and _matches(group, state.instance, version):
            continue
        if state.protected_from_scale_in and preferences["ScaleInProtectedInstances"] == "Ignore":
            continue
        to_replace.append(state.instance.id)
    refresh = Refresh(str(uuid.uuid4()), group.name, preferences, to_replace, version)
    refreshes(group).insert(0, refresh)
    return refresh.id


def describe(backend: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    group = backend.autoscaling_groups.get(params.get("AutoScalingGroupName"))
    if group is None:
        return []
    wanted = set(params.get("InstanceRefreshIds") or [])
    found = [r.describe() for r in refreshes(group) if not wanted or r.id in wanted]
    return found[: int(params.get("MaxRecords") or 50)]


def cancel(backend: Any, params: dict[str, Any]) -> str:
    validation, _, not_found = _errors()
    name = params.get("AutoScalingGroupName")
    group = backend.autoscaling_groups.get(name)
    if group is None:
        raise validation(f"AutoScalingGroup name not found - AutoScalingGroup {name} not found")
    active = next((r for r in refreshes(group) if r.status in ("Pending", "InProgress")), None)
    if active is None:
        raise not_found(f"No in progress or pending Instance Refresh found for Auto Scaling group {name}")
    active.status = "Cancelling"
    return active.id


# --------------------------------------------------------------------------- the simulation


def advance(asg: Any, ecs: Any | None, report: Report) -> None:
    """One step of every active refresh in this region (called by the agent's tick)."""
    for group in list(asg.autoscaling_groups.values()):
        for refresh in refreshes(group):
            if refresh.status not in ACTIVE:
                continue
            try:
                _advance(asg, group, refresh, ecs)
            except Exception as exc:
                report(f"instance refresh {refresh.id} of {group.name}", exc)


def _advance(asg: Any, group: Any, refresh: Refresh, ecs: Any | None) -> None:
    if refresh.status == "Cancelling":
        _cancel(asg, group, refresh, ecs)
        return
    refresh.status = "InProgress"
    live = {s.instance.id: s for s in group.instance_states if s.instance.state not in GONE_STATES}
    for instance_id in list(refresh.draining):  # 1. take out the drained ones
        if instance_id not in live or _tasks_on(ecs, instance_id) == 0:
            _terminate(asg, group, instance_id, live)
            refresh.draining.remove(instance_id)
            refresh.replaced.append(instance_id)
    lost = [i for i in refresh.to_replace if i not in live and i not in refresh.replaced]
    refresh.replaced += lost  # gone meanwhile (spot interruption): nothing left to replace

    prefs = refresh.preferences
    desired = int(group.desired_capacity or 0)
    at_least = math.ceil(desired * prefs["MinHealthyPercentage"] / 100)
    at_most = max(desired * prefs["MaxHealthyPercentage"] // 100, desired)
    missing = len(refresh.to_replace) - len(refresh.launched)
    room = at_most - len(live)
    if missing > 0 and room > 0:  # 2. launch replacements within the maximum
        try:
            new = _launch(group, min(missing, room))
        except Exception as exc:  # e.g. the template's image is gone: AWS fails the refresh
            reason = getattr(exc, "message", None) or str(exc)
            activity(group, "Launching a new EC2 instance", "an instance refresh launched an instance.", reason)
            refresh.finish("Failed", f"Launching a new EC2 instance failed: {reason}")
            return
        refresh.launched += new
        live.update({s.instance.id: s for s in group.instance_states if s.instance.id in new})

    healthy = [
        i for i in live if i not in refresh.draining and (i not in refresh.launched or _ready(live[i].instance, ecs))
    ]
    waiting_all = [i for i in refresh.to_replace if i in live and i not in refresh.draining]
    waiting = waiting_all
    if prefs["ScaleInProtectedInstances"] == "Wait":
        waiting = [i for i in waiting if not live[i].protected_from_scale_in]
    for instance_id in waiting[: max(len(healthy) - at_least, 0)]:  # 3. drain within the minimum
        refresh.draining.append(instance_id)
        if not _drain(ecs, group, instance_id):
            _terminate(asg, group, instance_id, live)
            refresh.draining.remove(instance_id)
            refresh.replaced.append(instance_id)

    pending_new = [i for i in refresh.launched if i in live and not _ready(live[i].instance, ecs)]
    if len(refresh.replaced) >= len(refresh.to_replace) and not refresh.draining and not pending_new:
        refresh.finish("Successful")
    elif prefs["ScaleInProtectedInstances"] == "Wait" and any(live[i].protected_from_scale_in for i in waiting_all):
        refresh.reason = "Waiting for instances with scale-in protection to be unprotected"


def _cancel(asg: Any, group: Any, refresh: Refresh, ecs: Any | None) -> None:
    """Stop replacing: instances being drained go back to work; replacements not needed to keep
    the desired capacity are terminated."""
    for instance_id in refresh.draining:
        _set_container_status(ecs, instance_id, "ACTIVE")
    refresh.draining.clear()
    live = {s.instance.id: s for s in group.instance_states if s.instance.state not in GONE_STATES}
    extra = len(live) - int(group.desired_capacity or 0)
    for instance_id in reversed(refresh.launched):
        if extra <= 0:
            break
        if instance_id in live:
            _terminate(asg, group, instance_id, live)
            extra -= 1
    refresh.finish("Cancelled", "Instance Refresh was cancelled by the user.")


def _launch(group: Any, count: int) -> list[str]:
    image = group.image_id
    if image not in group.autoscaling_backend.ec2_backend.amis:
        # moto launches from any image id; EC2 refuses one that does not exist (any more).
        raise ValueError(f"The image id '[{image}]' does not exist")
    before = {s.instance.id for s in group.instance_states}
    group.replace_autoscaling_group_instances(count, group.get_propagated_tags())
    new = [s.instance.id for s in group.instance_states if s.instance.id not in before]
    for instance_id in new:
        activity(
            group,
            f"Launching a new EC2 instance: {instance_id}",
            "an instance was launched in response to an instance refresh.",
        )
    return new


def _terminate(asg: Any, group: Any, instance_id: str, live: dict[str, Any]) -> None:
    # Not moto's terminate_instance: it would set the desired capacity again and launch or
    # terminate others to match it in the middle of the refresh.
    group.instance_states = [s for s in group.instance_states if s.instance.id != instance_id]
    live.pop(instance_id, None)
    asg.ec2_backend.terminate_instances([instance_id])
    activity(
        group,
        f"Terminating EC2 instance: {instance_id}",
        f"an instance was taken out of service in response to an instance refresh. Instance {instance_id} "
        "was replaced.",
    )


def _container_instance(ecs: Any | None, instance_id: str) -> Any | None:
    if ecs is None:
        return None
    for cluster_name, instances in list(ecs.container_instances.items()):
        if cluster_name not in ecs.clusters:
            continue
        for ci in list(instances.values()):
            if ci.ec2_instance_id == instance_id:
                return ci
    return None


def _ready(instance: Any, ecs: Any | None) -> bool:
    """Warm-up over: running and, when its user data names an existing cluster, registered."""
    if instance.state != "running":
        return False
    cluster = ecs_config(instance).get("ECS_CLUSTER")
    if ecs is None or not cluster or cluster not in ecs.clusters:
        return True
    ci = _container_instance(ecs, instance.id)
    return ci is not None and ci.status == "ACTIVE"


def _managed_draining(ecs: Any | None, group: Any) -> bool:
    if ecs is None:
        return False
    for provider in list(ecs.capacity_providers.values()):
        asg = provider.auto_scaling_group_provider or {}
        if str(asg.get("autoScalingGroupArn", "")).endswith(f"autoScalingGroupName/{group.name}"):
            return asg.get("managedDraining", "ENABLED") == "ENABLED"
    return False


def _drain(ecs: Any | None, group: Any, instance_id: str) -> bool:
    """Set the instance's container instance DRAINING (managed draining); False when it has none
    or draining is off, and the instance is to be terminated at once."""
    if not _managed_draining(ecs, group):
        return False
    return _set_container_status(ecs, instance_id, "DRAINING")


def _set_container_status(ecs: Any | None, instance_id: str, status: str) -> bool:
    ci = _container_instance(ecs, instance_id)
    if ci is None:
        return False
    ci.status = status
    return True


def _tasks_on(ecs: Any | None, instance_id: str) -> int:
    ci = _container_instance(ecs, instance_id)
    if ecs is None or ci is None:
        return 0
    return sum(
        1
        for tasks in list(ecs.tasks.values())
        for t in list(tasks.values())
        if t.container_instance_arn == ci.container_instance_arn and t.last_status != "STOPPED"
    )


def stamp_launched_version(original: Any) -> Any:
    """Wrap moto's replace_autoscaling_group_instances so each instance remembers the launch
    template version it was launched from."""

    def replace_autoscaling_group_instances(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        before = {s.instance.id for s in self.instance_states}
        original(self, count_needed, propagated_tags)
        version = version_in_force(self)
        for state in self.instance_states:
            if state.instance.id not in before:
                setattr(state.instance, LAUNCHED_VERSION, version)

    replace_autoscaling_group_instances.__wrapped__ = original  # type: ignore[attr-defined]
    return replace_autoscaling_group_instances


def install_api(response_class: Any) -> None:
    """Add the four actions to moto's AutoScalingResponse (idempotent)."""
    from moto.core.responses import ActionResult

    def start_instance_refresh(self: Any) -> Any:
        return ActionResult({"InstanceRefreshId": start(self.autoscaling_backend, self._get_params())})

    def describe_instance_refreshes(self: Any) -> Any:
        return ActionResult({"InstanceRefreshes": describe(self.autoscaling_backend, self._get_params())})

    def cancel_instance_refresh(self: Any) -> Any:
        return ActionResult({"InstanceRefreshId": cancel(self.autoscaling_backend, self._get_params())})

    for fn in (
        start_instance_refresh,
        describe_instance_refreshes,
        cancel_instance_refresh,
    ):
        if not getattr(getattr(response_class, fn.__name__, None), "_spotecs_fill", False):
            fn._spotecs_fill = True  # type: ignore[attr-defined]
            setattr(response_class, fn.__name__, fn)
