"""The shapes of service auto scaling: the requests Application Auto Scaling and CloudWatch take
for a policy, and their answers normalised into the shape of `ServiceScaling.desired`."""

from __future__ import annotations

import re
from typing import Any

from spotecs.steps.tagging import held_tags


def by_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: i["name"])


def as_float(x: Any) -> float | None:
    return None if x is None else float(x)


def step_adjustment(lower: Any, upper: Any, change: int) -> dict[str, Any]:
    return {"lower": as_float(lower), "upper": as_float(upper), "change": change}


def tracking_request(p: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"PredefinedMetricType": p["metric"]}
    if p["resource_label"]:
        spec["ResourceLabel"] = p["resource_label"]
    return {
        "TargetValue": p["target"],
        "PredefinedMetricSpecification": spec,
        "ScaleInCooldown": p["scale_in_cooldown"],
        "ScaleOutCooldown": p["scale_out_cooldown"],
        "DisableScaleIn": p["disable_scale_in"],
    }


def step_request(p: dict[str, Any]) -> dict[str, Any]:
    adjustments = []
    for s in p["steps"]:
        a: dict[str, Any] = {"ScalingAdjustment": s["change"]}
        if s["lower"] is not None:
            a["MetricIntervalLowerBound"] = s["lower"]
        if s["upper"] is not None:
            a["MetricIntervalUpperBound"] = s["upper"]
        adjustments.append(a)
    return {
        "AdjustmentType": p["adjustment_type"],
        "StepAdjustments": adjustments,
        "Cooldown": p["cooldown"],
        "MetricAggregationType": p["aggregation"],
    }


def tracking_of(p: dict[str, Any]) -> dict[str, Any]:
    c = p.get("TargetTrackingScalingPolicyConfiguration", {})
    spec = c.get("PredefinedMetricSpecification", {})
    return {
        "name": p["PolicyName"],
        "metric": spec.get("PredefinedMetricType"),
        "resource_label": spec.get("ResourceLabel"),
        "target": as_float(c.get("TargetValue")),
        "scale_in_cooldown": c.get("ScaleInCooldown"),
        "scale_out_cooldown": c.get("ScaleOutCooldown"),
        "disable_scale_in": c.get("DisableScaleIn", False),
    }


def step_policy_of(p: dict[str, Any], alarm: dict[str, Any] | None, tags: dict[str, str] | None) -> dict[str, Any]:
    """A step policy and its alarm as read; `tags`: the alarm's (ListTagsForResource)."""
    c = p.get("StepScalingPolicyConfiguration", {})
    return {
        "name": p["PolicyName"],
        "adjustment_type": c.get("AdjustmentType"),
        "steps": [
            step_adjustment(
                s.get("MetricIntervalLowerBound"), s.get("MetricIntervalUpperBound"), s["ScalingAdjustment"]
            )
            for s in c.get("StepAdjustments", [])
        ],
        "cooldown": c.get("Cooldown"),
        "aggregation": c.get("MetricAggregationType", "Average"),
        "alarm": None
        if alarm is None
        else {
            "namespace": alarm.get("Namespace"),
            "metric": alarm.get("MetricName"),
            "dimensions": sorted(
                ({"Name": d["Name"], "Value": d["Value"]} for d in alarm.get("Dimensions", [])), key=lambda d: d["Name"]
            ),
            "statistic": alarm.get("Statistic"),
            "period": alarm.get("Period"),
            "evaluation_periods": alarm.get("EvaluationPeriods"),
            "threshold": as_float(alarm.get("Threshold")),
            "comparison": alarm.get("ComparisonOperator"),
            # The alarm must still fire into this policy (a recreated policy gets a new ARN).
            "wired": p["PolicyARN"] in alarm.get("AlarmActions", []),
            "tags": held_tags(tags or {}),
        },
    }


def untagged(p: dict[str, Any]) -> dict[str, Any]:
    """A step policy without its alarm's tags: what PutScalingPolicy and PutMetricAlarm set."""
    alarm = p.get("alarm")
    return {**p, "alarm": {k: v for k, v in alarm.items() if k != "tags"}} if alarm else p


def scheduled_of(a: dict[str, Any]) -> dict[str, Any]:
    bounds = a.get("ScalableTargetAction", {})
    return {
        "name": a["ScheduledActionName"],
        "schedule": a.get("Schedule"),
        "timezone": a.get("Timezone") or "UTC",
        "min": bounds.get("MinCapacity"),
        "max": bounds.get("MaxCapacity"),
    }


# On the scalable target, the min and max spotecs last applied: "min=1,max=10". A scheduled
# action moves the live bounds for its window, so with schedules the file is diffed against
# this tag, not against the live bounds (`up` neither undoes the schedule nor reports drift).
BOUNDS_TAG = "spotecs:bounds"


def bounds_tag(lo: int, hi: int) -> dict[str, str]:
    return {BOUNDS_TAG: f"min={lo},max={hi}"}


def bounds_of_tags(tags: dict[str, str]) -> dict[str, int] | None:
    m = re.fullmatch(r"min=(\d+),max=(\d+)", tags.get(BOUNDS_TAG, ""))
    return {"min": int(m.group(1)), "max": int(m.group(2))} if m else None


def bounds_note(desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
    """Who owns the bounds in force when a schedule, not the file, set them."""
    live = (current or {}).get("in_force")
    if not current or not current.get("scheduled") or not live:
        return []
    if (live["min"], live["max"]) == (current["min"], current["max"]):
        return []
    names = ", ".join(a["name"] for a in current["scheduled"])
    return [
        f"min/max: {desired['min']}/{desired['max']} in the file, {live['min']}/{live['max']} in force: "
        f"set by a scheduled action ({names}), owned by Application Auto Scaling until the next one; "
        "the file's bounds are applied again only when changed in the file"
    ]
