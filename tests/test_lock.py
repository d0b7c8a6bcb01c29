"""The per-stack run lock (spotecs/lock.py): one run at a time, the holder named, released
whatever ends the run, broken by force-unlock. `up` runs the core steps only (as in test_cli)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from rich.console import Console

import spotecs.up
from spotecs import lock, names
from spotecs.aws import Aws, AwsOptions
from spotecs.errors import AwsError, LockHeld
from spotecs.render import Env
from spotecs.steps.log_group import LogGroup
from tests.helpers import REGION, core_sessions, spotecs_cmd

PARAM = names.lock_parameter("demo")


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[Aws]:
    return core_sessions(monkeypatch)


def ssm() -> Any:
    return boto3.client("ssm", region_name=REGION)


def lock_value() -> dict[str, Any] | None:
    try:
        return json.loads(ssm().get_parameter(Name=PARAM)["Parameter"]["Value"])
    except ssm().exceptions.ParameterNotFound:
        return None


def left_by_a_killed_process(minutes: int = 42) -> lock.Holder:
    """A lock as a run killed with SIGKILL leaves it: nobody will release it."""
    since = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="seconds")
    holder = replace(lock.Holder.me("spotecs up -f prod.yaml"), user="ana", host="ci-7", pid=31337, since=since)
    ssm().put_parameter(Name=PARAM, Value=json.dumps(asdict(holder)), Type="String")
    return holder


# ----------------------------------------------------------------------------- the lock itself


def test_acquire_records_the_holder_and_a_second_acquire_is_refused(moto: None) -> None:
    a = Aws(AwsOptions(region=REGION))
    me = lock.acquire(a, "demo", "spotecs up -f spotecs.yaml")
    value = lock_value()
    assert value is not None
    assert {k: value[k] for k in ("user", "host", "pid", "command")} == {
        "user": me.user,
        "host": me.host,
        "pid": me.pid,
        "command": "spotecs up -f spotecs.yaml",
    }
    assert datetime.fromisoformat(value["since"]) <= datetime.now(UTC)
    with pytest.raises(LockHeld, match=rf"stack demo is locked by another run: {me.user}@{me.host} \(pid {me.pid}"):
        lock.acquire(Aws(AwsOptions(region=REGION)), "demo", "spotecs teardown")
    lock.release(a, "demo", me)
    assert lock_value() is None
    assert lock.acquire(a, "demo", "spotecs up") is not None  # free again


def test_release_leaves_a_lock_another_run_took_after_a_force_unlock(moto: None) -> None:
    a = Aws(AwsOptions(region=REGION))
    first = lock.acquire(a, "demo", "spotecs up")
    assert lock.force_unlock(a, "demo", first.token)
    second = lock.acquire(a, "demo", "spotecs teardown")
    lock.release(a, "demo", first)  # the first run ends late: the lock is not its own any more
    assert lock_value() == asdict(second)


def test_how_long_held_is_named() -> None:
    since = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    holder = lock.Holder("ana", "ci-7", 31337, "spotecs up", since.isoformat(), "t")
    assert holder.describe(now=since + timedelta(minutes=3, seconds=12)).endswith(" for 3m12s")
    assert holder.describe(now=since + timedelta(hours=2, minutes=5)).endswith(" for 2h05m")


# ----------------------------------------------------------------------------- commands


def test_up_refused_while_a_killed_process_holds_the_lock_then_force_unlock(
    moto: None, runs: list[Aws], stack_file: Path
) -> None:
    holder = left_by_a_killed_process(minutes=42)
    code, out, err = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert code == 1
    assert "stack demo is locked by another run: ana@ci-7 (pid 31337, `spotecs up -f prod.yaml`" in err
    assert " for 42m" in err and "spotecs force-unlock" in err
    assert err.count("\n") == 1
    assert [c.operation for a in runs for c in a.writes()] == []  # refused before any change
    assert lock_value() == asdict(holder)  # somebody else's lock is never released by us

    code, out, err = spotecs_cmd("force-unlock", "-f", str(stack_file))
    assert code == 2 and "pass --yes to break the lock" in err
    code, out, err = spotecs_cmd("force-unlock", "-f", str(stack_file), tty=True, answer=False)
    assert code == 1 and err == "Force-unlock cancelled.\n" and lock_value() is not None
    code, out, err = spotecs_cmd("force-unlock", "-f", str(stack_file), "--yes")
    assert code == 0, err
    assert "locked by ana@ci-7 (pid 31337" in out and "Lock of stack demo broken" in out
    assert lock_value() is None
    assert spotecs_cmd("force-unlock", "-f", str(stack_file), "--yes")[1] == "Stack demo in us-east-1 is not locked.\n"

    code, out, err = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert code == 0, err
    assert lock_value() is None  # released on success


def test_dry_run_takes_no_lock_and_is_not_refused(moto: None, runs: list[Aws], stack_file: Path) -> None:
    left_by_a_killed_process()
    code, _, err = spotecs_cmd("up", "-f", str(stack_file), "--dry-run")
    assert code == 0, err
    assert not [c for a in runs for c in a.calls if c.is_lock]


def test_lock_released_when_the_apply_fails(
    moto: None, runs: list[Aws], stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: LogGroup, ctx: Any, desired: dict[str, Any]) -> dict[str, Any]:
        raise AwsError("create log group", "AccessDenied")

    monkeypatch.setattr(LogGroup, "create", denied)
    code, _, err = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert code == 1 and "apply did not finish" in err
    assert lock_value() is None


def test_lock_released_on_ctrl_c(
    moto: None, runs: list[Aws], stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(run: Any, **kwargs: Any) -> Any:
        assert lock_value() is not None  # held while planning
        raise KeyboardInterrupt

    monkeypatch.setattr(spotecs.up, "plan_run", interrupted)
    code, _, _ = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert code == 130
    assert lock_value() is None


def _release_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(aws: Aws, stack: str, me: lock.Holder) -> None:
        raise AwsError(f"release the lock of stack {stack}", "AccessDeniedException: ssm:DeleteParameter")

    monkeypatch.setattr(lock, "release", denied)


def test_a_lock_left_after_success_is_an_error_naming_force_unlock(
    moto: None, runs: list[Aws], stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _release_denied(monkeypatch)
    code, out, err = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert "Apply complete!" in out + err
    assert code == 1, "the next run would be refused: this one must not look clean"
    assert "ssm:DeleteParameter" in err and "spotecs force-unlock" in err
    assert lock_value() is not None


def test_a_lock_left_after_a_failure_is_said_after_the_runs_own_error(
    moto: None, runs: list[Aws], stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _release_denied(monkeypatch)

    def denied(self: LogGroup, ctx: Any, desired: dict[str, Any]) -> dict[str, Any]:
        raise AwsError("create log group", "AccessDenied")

    monkeypatch.setattr(LogGroup, "create", denied)
    code, _, err = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert code == 1
    assert err.index("apply did not finish") < err.index("could not be released") < err.index("spotecs force-unlock")
    ssm().delete_parameter(Name=PARAM)
    code, out, _ = spotecs_cmd("up", "-f", str(stack_file), "--yes", "-o", "json")
    error = json.loads(out)["error"]
    assert code == 1 and error.index("apply did not finish") < error.index("spotecs force-unlock")


def test_teardown_holds_the_lock_and_removes_it_last(moto: None, runs: list[Aws], stack_file: Path) -> None:
    assert spotecs_cmd("up", "-f", str(stack_file), "--yes")[0] == 0
    runs.clear()
    code, _, err = spotecs_cmd("teardown", "-f", str(stack_file), "--yes")
    assert code == 0, err
    calls = runs[0].calls
    assert calls[0].operation == "PutParameter" and calls[0].params["Name"] == PARAM
    assert (calls[-1].operation, calls[-1].params["Name"]) == ("DeleteParameter", PARAM)
    assert lock_value() is None


# ----------------------------------------------------------------------------- two runs at once


@pytest.fixture
def first_run_paused(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The first run to plan waits (holding the lock) until the test lets it go."""
    planning, go = threading.Event(), threading.Event()
    real = spotecs.up.plan_run

    def paused(run: Any, **kwargs: Any) -> Any:
        if not planning.is_set():
            planning.set()
            assert go.wait(30)
        return real(run, **kwargs)

    monkeypatch.setattr(spotecs.up, "plan_run", paused)
    yield planning, go
    go.set()


def test_two_concurrent_ups_one_is_refused_and_the_stack_ends_consistent(
    moto: None, runs: list[Aws], stack_file: Path, first_run_paused: tuple[threading.Event, threading.Event]
) -> None:
    planning, go = first_run_paused
    results: dict[str, Any] = {}

    def first() -> None:
        out = io.StringIO()
        env = Env(console=Console(file=out), err=Console(file=out), stdin_isatty=False)
        opts = spotecs.up.RunOptions(file=stack_file, aws=AwsOptions(region=REGION), yes=True)
        try:
            results["first"] = spotecs.up.up(env, opts)
        except BaseException as e:
            results["first"] = e

    t = threading.Thread(target=first)
    t.start()
    assert planning.wait(30)
    code, _, err = spotecs_cmd("up", "-f", str(stack_file), "--yes")  # the second run, meanwhile
    assert code == 1 and "stack demo is locked by another run" in err and "`spotecs up -f " in err
    go.set()
    t.join(60)
    assert not isinstance(results["first"], BaseException), results["first"]
    assert lock_value() is None
    runs.clear()
    code, out, _ = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert code == 0 and "No changes." in out
    assert [c.operation for a in runs for c in a.writes()] == []


def test_refresh_ami_refused_while_the_lock_is_held_and_check_or_dry_run_take_none(
    moto: None, runs: list[Aws], stack_file: Path
) -> None:
    holder = left_by_a_killed_process(minutes=7)
    code, _, err = spotecs_cmd("refresh-ami", "-f", str(stack_file), "--yes")
    assert code == 1
    assert "stack demo is locked by another run: ana@ci-7 (pid 31337, `spotecs up -f prod.yaml`" in err
    assert " for 7m" in err and err.count("\n") == 1
    assert [c.operation for a in runs for c in a.calls if not c.is_lock] == []  # refused before any read
    assert lock_value() == asdict(holder)
    for flag in ("--check", "--dry-run"):
        runs.clear()
        code, _, err = spotecs_cmd("refresh-ami", "-f", str(stack_file), flag)
        assert code == 1 and "nothing to refresh" in err, err  # it went on to read the (absent) fleet
        assert not [c for a in runs for c in a.calls if c.is_lock]


def test_refresh_ami_holds_the_lock_while_it_writes(
    moto: None, runs: list[Aws], stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spotecs.refresh_ami

    seen: list[dict[str, Any] | None] = []

    def refresh(env: Any, run: Any, opts: Any, doc: Any) -> int:
        seen.append(lock_value())
        raise AwsError("start an instance refresh of demo-instances", "AccessDenied")

    monkeypatch.setattr(spotecs.refresh_ami, "_refresh", refresh)
    code, _, err = spotecs_cmd("refresh-ami", "-f", str(stack_file), "--yes")
    assert code == 1 and "AccessDenied" in err
    assert seen and seen[0] is not None and seen[0]["command"] == f"spotecs refresh-ami -f {stack_file}"
    assert lock_value() is None  # released on failure
