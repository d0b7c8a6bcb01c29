"""`services.<name>.scaling:` Application Auto Scaling of a service's task count: target
tracking, step scaling on a CloudWatch alarm, and scheduled actions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field, field_validator, model_validator

from spotecs.config import formats
from spotecs.config.base import Model, Problem, Seconds, accept, enforce

# ECS service quota "Tasks per service" (not adjustable): the most a service can run.
MAX_TASKS = 5000


class TargetTracking(Model):
    metric: Literal["cpu", "memory", "requests"]
    target: float = Field(gt=0, description="Percent for cpu/memory; requests per target per minute for requests.")
    scale_in_cooldown: Seconds = 300
    scale_out_cooldown: Seconds = 60
    disable_scale_in: bool = False


class Alarm(Model):
    namespace: str
    metric: str
    dimensions: dict[str, str] = Field(default_factory=dict)
    statistic: Literal["Average", "Sum", "Minimum", "Maximum", "SampleCount"] = "Average"
    period: Seconds = Field(60, ge=10)
    evaluation_periods: int = Field(1, ge=1)
    threshold: float
    comparison: Literal[
        "GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"
    ] = "GreaterThanOrEqualToThreshold"

    @field_validator("period")
    @classmethod
    def _period(cls, v: int) -> int:
        # PutMetricAlarm: "Valid values are 10, 30, and any multiple of 60."
        if v not in (10, 30) and v % 60:
            raise ValueError(f"{v}s is not an alarm period CloudWatch accepts: 10, 30 or a multiple of 60")
        return v


class StepAdjustment(Model):
    lower: float | None = Field(None, description="Lower bound, relative to the alarm threshold.")
    upper: float | None = None
    change: int


class StepScaling(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    alarm: Alarm
    adjustment_type: Literal["ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity"] = "ChangeInCapacity"
    steps: list[StepAdjustment] = Field(min_length=1)
    cooldown: Seconds = 120

    @model_validator(mode="after")
    def _rules(self) -> StepScaling:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        for a, b in zip(self.steps, self.steps[1:], strict=False):
            if a.upper is None or b.lower is None or a.upper != b.lower:
                yield "steps", "must be contiguous: each step's upper equals the next one's lower"
                return


class Scheduled(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    schedule: str = Field(
        description="cron(minutes hours day-of-month month day-of-week year), at(yyyy-mm-ddThh:mm:ss) "
        "or rate(N minutes|hours|days)",
    )
    timezone: str = Field("UTC", description="IANA time zone of the schedule, e.g. Europe/Dublin.")
    min: int | None = Field(None, ge=0, le=MAX_TASKS)
    max: int | None = Field(None, ge=0, le=MAX_TASKS)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        return accept(v, formats.schedule_problems(v))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        return accept(v, formats.timezone_problems(v))

    @model_validator(mode="after")
    def _rules(self) -> Scheduled:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        if self.min is None and self.max is None:
            yield "min", "set min, max or both"
        if self.min is not None and self.max is not None and self.min > self.max:
            yield "min", f"must not exceed max ({self.max})"


class Scaling(Model):
    min: int = Field(ge=0, le=MAX_TASKS)
    max: int = Field(ge=1, le=MAX_TASKS)
    target_tracking: list[TargetTracking] = Field(default_factory=list)
    step_scaling: list[StepScaling] = Field(default_factory=list)
    scheduled: list[Scheduled] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules(self) -> Scaling:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        if self.min > self.max:
            yield "min", f"must not exceed max ({self.max})"
        for name, items in (("step_scaling", self.step_scaling), ("scheduled", self.scheduled)):
            names = [i.name for i in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                yield name, f"names must be unique ({', '.join(dup)})"
        for metric in sorted({t.metric for t in self.target_tracking}):
            n = sum(t.metric == metric for t in self.target_tracking)
            if n > 1:
                yield "target_tracking", f"'{metric}' is listed {n} times; keep one target per metric"
