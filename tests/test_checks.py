"""Pre-flight checks: the pure functions (table-driven), the config-level rules they rely on,
and the plan on moto: every problem at once, exit 2, nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from spotecs import checks
from spotecs.config import parse
from spotecs.engine.plan import plan
from spotecs.errors import CheckError, ConfigError, ExitCode
from tests.helpers import compute_steps, make_ctx, make_stack


def fact(vcpus: int, memory_mib: int, arch: str = "x86_64", burstable: bool = True) -> dict[str, Any]:
    return {
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "architectures": [arch],
        "burstable": burstable,
        "ebs_optimized": "default",
    }


FACTS = {
    "t3.small": fact(2, 2048),
    "t3.medium": fact(2, 4096),
    "m5.large": fact(2, 8192, burstable=False),
    "m5.xlarge": fact(4, 16384, burstable=False),
    "t4g.small": fact(2, 2048, "arm64"),
}


# --------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    ("total", "reserved", "usable"),
    [
        (2048, 0, 1792),  # 256 MiB floor
        (4096, 0, 3840),  # 6% = 246 < 256
        (8192, 0, 7700),  # 6% = 492
        (16384, 0, 15400),  # 6% = 983.04, rounded up
        (2048, 100, 1692),  # plus ECS_RESERVED_MEMORY
        (256, 0, 0),
    ],
)
def test_usable_memory(total: int, reserved: int, usable: int) -> None:
    assert checks.usable_memory_mib(total, reserved) == usable


@pytest.mark.parametrize(
    ("types", "arch", "ami", "expected"),
    [
        (["t3.small", "m5.large"], "x86_64", "al2023", []),
        (
            ["t3.small", "x9.huge"],
            "x86_64",
            "al2023",
            ["instances.types[1]: x9.huge is not an EC2 instance type offered in this region"],
        ),
        (
            ["t4g.small"],
            "x86_64",
            "al2023",
            [
                "instances.types[0]: t4g.small runs arm64 but the AMI (al2023) is x86_64: use x86_64 instance types, "
                "or set instances.ami: al2023-arm64"
            ],
        ),
        (
            ["t3.small"],
            "arm64",
            "al2-arm64",
            [
                "instances.types[0]: t3.small runs x86_64 but the AMI (al2-arm64) is arm64: use arm64 instance types, "
                "or set instances.ami: al2"
            ],
        ),
        (
            ["t4g.small"],
            "x86_64",
            "ami-0123456789abcdef0",
            [
                "instances.types[0]: t4g.small runs arm64 but the AMI (ami-0123456789abcdef0) is x86_64: use x86_64 "
                "instance types or an AMI built for them"
            ],
        ),
        (["t4g.small"], None, "al2023", []),  # the AMI is unknown: its own problem is reported instead
    ],
)
def test_instance_type_problems(types: list[str], arch: str | None, ami: str, expected: list[str]) -> None:
    assert checks.instance_type_problems(types, FACTS, arch, ami) == expected


@pytest.mark.parametrize(
    ("types", "service", "ecs_agent", "bad"),
    [
        (["t3.small"], {"cpu": 256, "memory_soft": 256}, {}, None),
        (["t3.small"], {"cpu": 2048, "memory_soft": 1792, "memory_hard": 2000}, {}, None),  # exactly fits
        (["t3.small"], {"cpu": 2049, "memory_soft": 256}, {}, "t3.small (2048 CPU units, 1792 MiB usable)"),
        (["t3.small"], {"memory_soft": 1793, "memory_hard": 2000}, {}, "t3.small (2048 CPU units, 1792 MiB usable)"),
        (
            ["t3.small"],
            {"memory_soft": 1792, "memory_hard": 2000},
            {"ECS_RESERVED_MEMORY": "64"},
            "t3.small (2048 CPU units, 1728 MiB usable)",
        ),
        # the hard limit is what placement uses when there is no soft limit
        (["t3.medium"], {"memory_soft": None, "memory_hard": 3900}, {}, "t3.medium (2048 CPU units, 3840 MiB usable)"),
        # the smallest type decides, whatever the order
        (["m5.xlarge", "t3.small"], {"cpu": 4096, "memory_soft": 512}, {}, "t3.small (2048 CPU units"),
    ],
)
def test_task_fit(types: list[str], service: dict[str, Any], ecs_agent: dict[str, str], bad: str | None) -> None:
    stack = make_stack(instances={"types": types, "ecs_agent": ecs_agent}, services={"api": service})
    problems = checks.task_fit_problems(stack, FACTS)
    if bad is None:
        assert problems == []
    else:
        (problem,) = problems
        assert problem.startswith("services.api: the task needs")
        assert bad in problem
        assert "m5.xlarge" not in problem


def test_task_fit_names_each_service_once_with_every_type_too_small() -> None:
    stack = make_stack(
        instances={"types": ["t3.small", "t3.medium", "m5.xlarge"]},
        services={
            "api": {"memory_soft": 3000, "memory_hard": 3000},
            "worker": {"image": "w", "cpu": 128, "memory_soft": 128},
        },
    )
    (problem,) = checks.task_fit_problems(stack, FACTS)
    assert problem.startswith("services.api: the task needs 256 CPU units and 3000 MiB")
    assert "t3.small" in problem and "t3.medium" not in problem


# --------------------------------------------------------------------------- config-level rules

BASE = """
stack: demo
services:
  api: {image: nginx, container_port: 80, deregistration_delay: 0}
instances:
"""


@pytest.mark.parametrize(
    ("instances", "path", "message"),
    [
        ("  on_demand_percent: 101", "instances.on_demand_percent", "less than or equal to 100"),
        ("  on_demand_percent: -1", "instances.on_demand_percent", "greater than or equal to 0"),
        ("  {on_demand_base: 5, max: 4}", "instances.on_demand_base", "must not exceed max (4)"),
        ("  {min: 3, max: 2}", "instances.min", "must not exceed max (2)"),
        ("  {min: 1, max: 4, desired: 5}", "instances.desired", "between min (1) and max (4)"),
        ("  {min: 2, max: 4, desired: 1}", "instances.desired", "between min (2) and max (4)"),
        ("  container_stop_timeout: 3m", "instances.container_stop_timeout", "longer than the 2-minute spot notice"),
        ("  container_stop_timeout: 121", "instances.container_stop_timeout", "at most 120s"),
    ],
)
def test_config_rejects(instances: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(BASE + instances)
    assert err.value.path == path
    assert message in err.value.message
    assert err.value.exit_code is ExitCode.USAGE


@pytest.mark.parametrize(
    "instances",
    [
        "  {on_demand_percent: 0}",
        "  {on_demand_percent: 100}",
        "  {on_demand_base: 4, max: 4}",
        "  {min: 0, max: 1, desired: 0}",
        "  {container_stop_timeout: 2m}",
    ],
)
def test_config_accepts_the_edges(instances: str) -> None:
    parse(BASE + instances)


# --------------------------------------------------------------------------- at plan time, on moto


@pytest.mark.usefixtures("moto")
def test_every_problem_is_reported_before_any_write() -> None:
    stack = make_stack(
        instances={"types": ["t3.small", "x9.huge", "t4g.small"], "key_pair": "nope"},
        services={"api": {"cpu": 4096}},
    )
    ctx = make_ctx(stack)
    with pytest.raises(CheckError) as err:
        plan(compute_steps(stack), ctx)
    problems = err.value.problems
    assert problems == [
        "instances.types[1]: x9.huge is not an EC2 instance type offered in this region",
        "instances.types[2]: t4g.small runs arm64 but the AMI (al2023) is x86_64: use x86_64 instance types, "
        "or set instances.ami: al2023-arm64",
        problems[2],
        "instances.key_pair: no key pair named 'nope' in us-east-1",
    ]
    assert problems[2].startswith(
        "services.api: the task needs 4096 CPU units and 256 MiB but does not fit on "
        "t3.small (2048 CPU units, 1792 MiB usable), t4g.small (2048 CPU units"
    )
    assert err.value.exit_code == 2
    assert ctx.aws.writes() == []


@pytest.mark.usefixtures("moto")
def test_an_unknown_ami_is_a_problem_not_a_crash() -> None:
    stack = make_stack(instances={"ami": "ami-0123456789abcdef0"})
    ctx = make_ctx(stack)
    with pytest.raises(CheckError) as err:
        plan(compute_steps(stack), ctx)
    assert err.value.problems == [
        "instances.ami: ami-0123456789abcdef0 does not exist in us-east-1 (or is not shared with you)"
    ]
    assert ctx.aws.writes() == []


@pytest.mark.usefixtures("moto")
def test_a_workable_stack_has_no_problems() -> None:
    stack = make_stack(
        instances={"types": ["t3.medium", "t3a.medium", "m5.large"]},
        services={"api": {"cpu": 2048, "memory_soft": 3500, "memory_hard": 4000}},
    )
    plan(compute_steps(stack), make_ctx(stack))
