"""The fault-injection property (tests/faults.py) over 30 seeded schedules: up with faults → up
→ the clean run's resources, one of each → teardown with faults → teardown → nothing left.
bench/soak.py runs more seeds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

import spotecs.up
from spotecs.aws import AwsOptions
from spotecs.steps.base import Timeouts
from tests import faults
from tests.helpers import REGION

SEEDS = range(30)


@pytest.fixture(scope="module")
def shared_moto() -> Iterator[None]:
    """One moto for all the schedules: each ends with nothing of its stack left (that is the
    property), so the next starts clean; a fresh moto per schedule would double the time."""
    from spotecs.sandbox import rules

    rules.install()  # and the fills; as the `moto` fixture: nothing lags, the roles exist
    rules.STRICT.lag = 0
    rules.STRICT.reset()
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            mp.delenv(var, raising=False)
        for var, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        }.items():
            mp.setenv(var, value)
        with mock_aws():
            rules.linked_roles_exist("123456789012")
            yield


@pytest.fixture(scope="module")
def clean(shared_moto: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any, Any]]:
    path = tmp_path_factory.mktemp("faults") / "stack.yaml"
    path.write_text(yaml.safe_dump(faults.PROPERTY_STACK, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("spotecs.up.Timeouts", lambda: Timeouts(default=5, delay=0))
        inventory, calls = faults.clean_run(path, mp)
        yield path, inventory, calls


@pytest.mark.parametrize("seed", SEEDS)
def test_property_holds_for_the_schedule(
    seed: int, clean: tuple[Path, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, inventory, calls = clean
    monkeypatch.setattr("spotecs.up.Timeouts", lambda: Timeouts(default=5, delay=0))
    out = faults.check_schedule(seed, path, monkeypatch, inventory, calls)
    assert out.ok, out
    assert out.injected > 0


def test_the_clean_run_has_one_of_everything(clean: tuple[Path, Any, Any]) -> None:
    _, inventory, (up_calls, down_calls) = clean
    assert inventory["launch template version"] == inventory["task definition revision"] == 1
    assert all(
        inventory[k] == 1
        for k in ("load balancer", "auto scaling group", "capacity provider", "service", "scalable target", "alarm")
    )
    assert up_calls > 50 and down_calls > 50  # the schedules place faults among all of them


def test_schedules_are_replayable_and_cover_every_kind() -> None:
    assert str(faults.Schedule.seeded(7, 100)) == str(faults.Schedule.seeded(7, 100))
    kinds = {(f.kind, f.final, f.after) for s in SEEDS for f in faults.Schedule.seeded(s, 100).faults.values()}
    for kind in faults.KINDS:
        assert (kind, False, False) in kinds and (kind, True, False) in kinds
    assert ("crash", False, False) in kinds and ("crash", False, True) in kinds


@contextmanager
def one_client(schedule: faults.Schedule, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[faults.Injector, Any]]:
    with faults.injected(schedule, monkeypatch) as inj:
        yield inj, spotecs.up.Aws(AwsOptions(region=REGION)).client("logs")


@pytest.mark.parametrize("kind", faults.KINDS)
def test_a_transient_fault_is_retried_and_a_final_one_reaches_the_caller(
    kind: str, moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = faults.Schedule(0, {0: faults.Fault(kind), 1: faults.Fault(kind, final=True)})
    with one_client(schedule, monkeypatch) as (inj, logs):
        if kind == "lost":  # done, answer lost, sent again: a create without a token is refused
            with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=f"/{kind}/first")
        else:
            logs.create_log_group(logGroupName=f"/{kind}/first")
        with pytest.raises((ClientError, EndpointConnectionError, ReadTimeoutError)):
            logs.create_log_group(logGroupName=f"/{kind}/second")
    got = boto3.client("logs", region_name=REGION).describe_log_groups(logGroupNamePrefix=f"/{kind}/")["logGroups"]
    # A final lost answer is a call AWS did: the group is there though the caller got an error.
    assert [g["logGroupName"] for g in got] == [f"/{kind}/first", *([f"/{kind}/second"] if kind == "lost" else [])]
    assert [k for k, _, _ in inj.injected] == [0, 1]


def test_a_crash_stops_every_later_call(moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with one_client(faults.Schedule(0, {0: faults.Fault("crash", after=True)}), monkeypatch) as (_, logs):
        with pytest.raises(faults.Crash):
            logs.create_log_group(logGroupName="/done-then-died")
        with pytest.raises(faults.Crash):
            logs.describe_log_groups()
    got = boto3.client("logs", region_name=REGION).describe_log_groups(logGroupNamePrefix="/done-then-died")
    assert len(got["logGroups"]) == 1
