"""Spot interruptions sent by AWS Fault Injection Service experiments.

moto stores FIS experiment templates and walks an experiment through its states, but interrupts
nothing. Here, starting an experiment whose action is `aws:ec2:send-spot-instance-interruptions`
(https://docs.aws.amazon.com/fis/latest/userguide/fis-actions-reference.html#send-spot-instance-interruptions)
does what AWS does to each target instance, on the sandbox clock:

- at once, the rebalance recommendation and the interruption notice: the ECS agent, when the
  instance's user data enables `ECS_ENABLE_SPOT_INSTANCE_DRAINING`, sets the container instance
  DRAINING (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/spot-instance-draining.html);
  a group with capacity rebalancing launches a replacement
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-capacity-rebalancing.html);
- after `durationBeforeInterruption`, the instance is terminated; a group without capacity
  rebalancing then launches its replacement to keep its desired capacity;
- the experiment is `running` until every target is terminated, then `completed`.
An experiment whose targets are not running spot instances, or whose role FIS cannot assume or
that does not allow `ec2:SendSpotInstanceInterruptions`, fails with a reason, as FIS does.
StopExperiment before the interruption time cancels the termination (a DRAINING instance stays
DRAINING: the agent does not undo it). Replacement instances start at once (no boot time).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spotecs.sandbox.backends import backend_for
from spotecs.sandbox.clock import CLOCK
from spotecs.sandbox.instances import ecs_config, launch_as_spot

ACTION = "aws:ec2:send-spot-instance-interruptions"
Report = Callable[[str, BaseException], None]


@dataclass
class Interruption:
    instance_id: str
    terminate_at: float  # real monotonic time
    noticed: bool = False
    rebalanced: bool = False  # a replacement was launched at the notice
    terminated: bool = False


@dataclass
class Running:
    account_id: str
    region: str
    experiment: Any  # moto's Experiment
    targets: list[Interruption] = field(default_factory=list)


RUNNING: dict[str, Running] = {}


def iso_seconds(duration: str) -> int:
    """Seconds of an ISO 8601 duration such as PT2M, PT90S, PT1M30S."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", duration or "")
    if not match or not any(match.groups()):
        raise ValueError(f"'{duration}' is not an ISO 8601 duration such as PT2M")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _fail(experiment: Any, reason: str) -> None:
    experiment.STATUS_REASONS = {**type(experiment).STATUS_REASONS, "failed": reason}
    experiment.status = "failed"


def _documents(raw: Any) -> list[dict[str, Any]]:
    doc = json.loads(raw) if isinstance(raw, str) else raw
    return [doc] if isinstance(doc, dict) else []


def _allows(documents: list[dict[str, Any]], action: str) -> bool:
    for doc in documents:
        statements = doc.get("Statement", [])
        for st in statements if isinstance(statements, list) else [statements]:
            actions = st.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if st.get("Effect") == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in actions):
                return True
    return False


def role_problem(account_id: str, role_arn: str) -> str | None:
    """Why FIS could not send the interruption with this role: it must trust FIS and allow
    ec2:SendSpotInstanceInterruptions (https://docs.aws.amazon.com/fis/latest/userguide/getting-started-iam-service-role.html)."""
    iam = backend_for("iam", account_id, "aws") or backend_for("iam", account_id, "global")
    if iam is None:
        return f"FIS cannot assume role {role_arn}: it does not exist"
    try:
        role = iam.get_role_by_arn(role_arn)
    except Exception:
        return f"FIS cannot assume role {role_arn}: it does not exist"
    trust = _documents(role.assume_role_policy_document)
    principals = [st.get("Principal", {}).get("Service") for d in trust for st in d.get("Statement", [])]
    if not any(p == "fis.amazonaws.com" or (isinstance(p, list) and "fis.amazonaws.com" in p) for p in principals):
        return f"FIS cannot assume role {role_arn}: its trust policy does not name fis.amazonaws.com"
    documents = [d for raw in role.policies.values() for d in _documents(raw)]
    for policy in getattr(role, "managed_policies", {}).values():
        documents += _documents(getattr(policy, "document", None) or "{}")
    if not _allows(documents, "ec2:SendSpotInstanceInterruptions"):
        return f"role {role_arn} is not allowed ec2:SendSpotInstanceInterruptions"
    return None


def start(backend: Any, experiment: Any) -> None:
    """Called when moto has recorded a new experiment: resolve targets, schedule interruptions."""
    experiment._transitions = []  # its state is driven here, not by moto's describe counter
    experiment.status = "initiating"
    if problem := role_problem(backend.account_id, experiment.role_arn):
        return _fail(experiment, problem)
    ec2 = backend_for("ec2", backend.account_id, backend.region_name)
    running = Running(backend.account_id, backend.region_name, experiment)
    for name, action in experiment.actions.items():
        if action.get("actionId") != ACTION:
            return _fail(experiment, f"action {name}: the sandbox only simulates {ACTION}")
        try:
            seconds = iso_seconds((action.get("parameters") or {}).get("durationBeforeInterruption", "PT2M"))
        except ValueError as e:
            return _fail(experiment, f"action {name}: durationBeforeInterruption: {e}")
        if not 120 <= seconds <= 900:
            return _fail(experiment, f"action {name}: durationBeforeInterruption must be 2 to 15 minutes")
        for target_name in (action.get("targets") or {}).values():
            target = experiment.targets.get(target_name) or {}
            arns = target.get("resourceArns") or []
            if target.get("resourceType") != "aws:ec2:spot-instance" or not arns:
                return _fail(experiment, f"target {target_name}: the sandbox resolves aws:ec2:spot-instance ARNs only")
            for arn in arns:
                instance_id = arn.rsplit("/", 1)[-1]
                instance = ec2.get_instance_by_id(instance_id) if ec2 is not None else None
                if instance is None or instance.state != "running" or instance.lifecycle != "spot":
                    return _fail(
                        experiment,
                        f"Target resolution failed: {instance_id} is not a running spot instance",
                    )
                running.targets.append(Interruption(instance_id, CLOCK.after(seconds)))
    if not running.targets:
        return _fail(experiment, "Target resolution returned no resources")
    experiment.status = "running"
    RUNNING[experiment.id] = running


def advance(report: Report) -> None:
    """One pass: notices, capacity rebalancing, terminations, experiment states."""
    for experiment_id, running in list(RUNNING.items()):
        try:
            _advance(running)
        except Exception as exc:
            report(f"FIS experiment {experiment_id}", exc)
        if running.experiment.status in ("completed", "stopped", "failed"):
            del RUNNING[experiment_id]


def _advance(running: Running) -> None:
    experiment = running.experiment
    ec2: Any = backend_for("ec2", running.account_id, running.region)
    ecs = backend_for("ecs", running.account_id, running.region)
    asg: Any = backend_for("autoscaling", running.account_id, running.region)
    if experiment.status == "stopping":
        experiment.status = "stopped"
        return
    now = CLOCK.now()
    for target in running.targets:
        instance = ec2.get_instance_by_id(target.instance_id)
        group = getattr(instance, "autoscaling_group", None)
        if not target.noticed:
            target.noticed = True
            _notice(ecs, instance)
            if group is not None and group.capacity_rebalance:
                group.desired_capacity += 1  # the replacement is launched before the old one goes
                before = {s.instance.id for s in group.instance_states}
                group.replace_autoscaling_group_instances(1, group.get_propagated_tags())
                for state in group.instance_states:
                    if state.instance.id not in before:
                        launch_as_spot(state.instance)
                target.rebalanced = True
        if not target.terminated and now >= target.terminate_at:
            target.terminated = True
            in_group = group is not None and any(s.instance.id == instance.id for s in group.instance_states)
            if in_group:
                # Rebalanced: the replacement exists, so the group shrinks back; else it relaunches.
                asg.terminate_instance(instance.id, should_decrement=target.rebalanced)
            else:
                ec2.terminate_instances([instance.id])
    if all(t.terminated for t in running.targets):
        experiment.status = "completed"


def _notice(ecs: Any, instance: Any) -> None:
    if ecs is None or ecs_config(instance).get("ECS_ENABLE_SPOT_INSTANCE_DRAINING", "").lower() != "true":
        return
    for cluster_name, instances in list(ecs.container_instances.items()):
        for ci in list(instances.values()):
            if ci.ec2_instance_id == instance.id and ci.status == "ACTIVE":
                ecs.update_container_instances_state(cluster_name, [ci.container_instance_arn], "DRAINING")
