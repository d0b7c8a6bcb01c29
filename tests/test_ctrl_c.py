"""Ctrl-C during `up` and `teardown`: the first stops starting new steps and new AWS calls,
lets the calls in flight finish, says what was applied and what was not, releases the lock and
exits 130; a second stops at once. The next run converges. Core steps only (as in test_cli)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import boto3
import pytest

from spotecs import names
from spotecs.aws import Aws
from tests.helpers import REGION, core_sessions, spotecs_cmd


class Interrupter:
    """A botocore hook that interrupts the run at its n-th write call (before it is sent)."""

    def __init__(self, at: int, how: str = "raise", runs: list[Aws] | None = None) -> None:
        self.at = at
        self.how = how
        self.runs = runs if runs is not None else []
        self.writes = 0
        self.fired = 0

    def __call__(self, model: Any, **_: Any) -> None:
        if model.name.startswith(("Describe", "List", "Get")) or model.name in ("PutParameter", "DeleteParameter"):
            return
        self.writes += 1
        if self.writes != self.at:
            return
        self.fired += 1
        if self.how == "raise":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends: the main thread's handler
        if self.how == "twice":
            # Signals do not queue: send the second once the first was handled.
            assert self.runs[0].stopping.wait(10)
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[Aws]:
    return core_sessions(monkeypatch)


def interrupt_at(monkeypatch: pytest.MonkeyPatch, hook: Interrupter) -> None:
    real = Aws.client

    def client(self: Aws, service: str) -> Any:
        c = real(self, service)
        c.meta.events.register("before-call", hook, unique_id="test-interrupter")
        return c

    monkeypatch.setattr(Aws, "client", client)


def lock_left(runs: list[Aws]) -> bool:
    ssm = boto3.client("ssm", region_name=REGION)
    return bool(ssm.get_parameters(Names=[names.lock_parameter("demo")])["Parameters"])


@pytest.mark.parametrize("how", ["raise", "signal"])
@pytest.mark.parametrize("at", [1, 4, 9])
def test_first_ctrl_c_during_up_stops_cleanly_and_the_next_up_converges(
    moto: None, runs: list[Aws], stack_file: Path, monkeypatch: pytest.MonkeyPatch, at: int, how: str
) -> None:
    hook = Interrupter(at, how)
    with monkeypatch.context() as m:
        interrupt_at(m, hook)
        code, out, err = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert hook.fired == 1
    assert code == 130, err
    assert "Apply interrupted." in out and "not started" in out
    assert err.strip().splitlines()[-1] == (
        "Error: apply interrupted: run the same command again to continue from where it stopped"
    )
    writes = [c.operation for c in runs[0].writes()]
    # Nothing was called after the interruption but what was already in flight (at most one
    # call per running step: the pool has 8 workers).
    assert at - 1 <= len(writes) <= at - 1 + 8
    assert not lock_left(runs)

    code, out, err = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert code == 0, err
    runs.clear()
    code, out, _ = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert code == 0 and "No changes." in out
    assert [c.operation for a in runs for c in a.writes()] == []


def test_second_ctrl_c_stops_at_once(
    moto: None, runs: list[Aws], stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = Interrupter(3, "twice", runs)
    with monkeypatch.context() as m:
        interrupt_at(m, hook)
        code, out, err = spotecs_cmd("up", "-f", str(stack_file), "--yes")
    assert code == 130
    assert err.strip().splitlines()[-1].startswith("Interrupted:"), (out, err, hook.fired)
    assert "Apply interrupted." not in out  # no summary: the second Ctrl-C does not wait
    assert spotecs_cmd("up", "-f", str(stack_file), "--yes")[0] in (0, 1)  # the lock may be left...
    if lock_left(runs):  # ...and force-unlock breaks it
        assert spotecs_cmd("force-unlock", "-f", str(stack_file), "--yes")[0] == 0
    assert spotecs_cmd("up", "-f", str(stack_file), "--yes")[0] == 0


def test_ctrl_c_during_teardown_stops_and_the_next_teardown_finishes(
    moto: None, runs: list[Aws], stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert spotecs_cmd("up", "-f", str(stack_file), "--yes")[0] == 0
    with monkeypatch.context() as m:
        interrupt_at(m, Interrupter(2))
        code, out, err = spotecs_cmd("teardown", "-f", str(stack_file), "--yes")
    assert code == 130 and "Teardown interrupted." in out
    assert "teardown interrupted: run the same command again" in err
    assert not lock_left(runs)
    assert spotecs_cmd("teardown", "-f", str(stack_file), "--yes")[0] == 0
    assert "Nothing to delete" in spotecs_cmd("teardown", "-f", str(stack_file), "--yes")[1]
