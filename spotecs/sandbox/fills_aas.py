"""Fills for moto's Application Auto Scaling: the tag API of scalable targets, which moto 5.2
lacks, and the alarms of step scaling policies, which it leaves out.

TagResource, UntagResource and ListTagsForResource take a scalable target's ARN
(https://docs.aws.amazon.com/autoscaling/application/APIReference/API_TagResource.html,
https://docs.aws.amazon.com/autoscaling/application/APIReference/API_ListTagsForResource.html);
an unknown ARN is refused with ResourceNotFoundException. RegisterScalableTarget's `Tags` are
applied to a new target only: "If you specify tags for an existing scalable target, they are
ignored" (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html).
moto has no such operations and drops `Tags`. The tags live on moto's target object.

DescribeScalingPolicies lists each policy's `Alarms`, "the CloudWatch alarms associated with the
scaling policy" (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_ScalingPolicy.html,
each an Alarm of AlarmName and AlarmARN:
https://docs.aws.amazon.com/autoscaling/application/APIReference/API_Alarm.html). A step scaling
policy is associated with an alarm by the alarm naming the policy's ARN in its actions
(https://docs.aws.amazon.com/autoscaling/application/userguide/create-step-scaling-policy-cli.html):
moto lists the alarms it made for a target tracking policy only, and none for a step policy, so
`status` said "no alarm" for every step policy. The sandbox adds the region's alarms whose
AlarmActions, OKActions or InsufficientDataActions name the policy's ARN.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

TAGS = "_spotecs_tags"  # on moto's FakeScalableTarget


def _target(backend: Any, arn: str) -> Any:
    from moto.core.exceptions import JsonRESTError

    for by_resource in backend.targets.values():
        for target in by_resource.values():
            if target.arn == arn:
                return target
    raise JsonRESTError("ResourceNotFoundException", f"No scalable target found for {arn}")


def tag_resource(self: Any) -> str:
    target = _target(self.applicationautoscaling_backend, self._get_param("ResourceARN"))
    setattr(target, TAGS, {**getattr(target, TAGS, {}), **(self._get_param("Tags") or {})})
    return "{}"


def untag_resource(self: Any) -> str:
    target = _target(self.applicationautoscaling_backend, self._get_param("ResourceARN"))
    drop = set(self._get_param("TagKeys") or [])
    setattr(target, TAGS, {k: v for k, v in getattr(target, TAGS, {}).items() if k not in drop})
    return "{}"


def list_tags_for_resource(self: Any) -> str:
    target = _target(self.applicationautoscaling_backend, self._get_param("ResourceARN"))
    return json.dumps({"Tags": dict(getattr(target, TAGS, {}))})


def register_scalable_target_keeping_tags(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """RegisterScalableTarget stores its `Tags` on a new target (AWS ignores them on an update)."""

    def register_scalable_target(self: Any) -> Any:
        result = original(self)
        tags = self._get_param("Tags")
        if tags:
            target = _target(self.applicationautoscaling_backend, json.loads(result)["ScalableTargetARN"])
            if not hasattr(target, TAGS):
                setattr(target, TAGS, dict(tags))
        return result

    register_scalable_target.__wrapped__ = original  # type: ignore[attr-defined]
    return register_scalable_target


def _alarms_acting_on(account: str, region: str, policy_arn: str) -> list[dict[str, str]]:
    from moto.cloudwatch.models import cloudwatch_backends

    return [
        {"AlarmName": a.name, "AlarmARN": a.alarm_arn}
        for a in list(cloudwatch_backends[account][region].alarms.values())
        if policy_arn in (*a.alarm_actions, *a.ok_actions, *a.insufficient_data_actions)
    ]


def describe_scaling_policies_with_alarms(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """DescribeScalingPolicies lists the alarms that act on each policy (moto: none for a step policy)."""

    def describe_scaling_policies(self: Any) -> str:
        answer = json.loads(original(self))
        for policy in answer.get("ScalingPolicies", []):
            listed = {a["AlarmARN"] for a in policy.get("Alarms") or []}
            extra = [
                a
                for a in _alarms_acting_on(self.current_account, self.region, policy["PolicyARN"])
                if a["AlarmARN"] not in listed
            ]
            policy["Alarms"] = [*(policy.get("Alarms") or []), *extra]
        return json.dumps(answer)

    describe_scaling_policies.__wrapped__ = original  # type: ignore[attr-defined]
    return describe_scaling_policies


def install(wrap: Callable[[type, str, Callable[[Any], Any]], None]) -> None:
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse as Response

    wrap(Response, "register_scalable_target", register_scalable_target_keeping_tags)
    wrap(Response, "describe_scaling_policies", describe_scaling_policies_with_alarms)
    for name, handler in (
        ("tag_resource", tag_resource),
        ("untag_resource", untag_resource),
        ("list_tags_for_resource", list_tags_for_resource),
    ):
        if not hasattr(Response, name):
            setattr(Response, name, handler)
