"""The sandbox's injected latency (issue 15): `spotecs sandbox --latency-ms N` and
SPOTECS_SANDBOX_LATENCY_MS (read by `--sandbox` too) add N ms to every request, spent outside
the request lock as a network round trip would be. Bad values are usage errors (exit 2)."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from spotecs.errors import UsageError
from spotecs.sandbox import Sandbox
from spotecs.sandbox.server import LATENCY_ENV, latency_from_env
from tests.helpers import MINIMAL
from tests.helpers import stack_file as write_stack
from tests.test_cli import invoke


def test_latency_comes_from_the_variable_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LATENCY_ENV, raising=False)
    assert latency_from_env() == 0
    monkeypatch.setenv(LATENCY_ENV, "37.5")
    assert latency_from_env() == 37.5
    for bad in ("fast", "-1", "nan", "60001"):
        monkeypatch.setenv(LATENCY_ENV, bad)
        with pytest.raises(UsageError, match=f"^{LATENCY_ENV}: '{bad}' is not a number of milliseconds"):
            latency_from_env()


def test_every_request_waits_at_least_the_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    # A lower bound only (the sleep guarantees it): never an upper bound on a loaded machine.
    monkeypatch.setenv(LATENCY_ENV, "150")
    with Sandbox(agent_interval=None) as box:
        assert box.latency_ms == 150
        sts = box.client("sts")
        start = time.monotonic()
        for _ in range(2):
            sts.get_caller_identity()
        assert time.monotonic() - start >= 0.3
    with Sandbox(agent_interval=None, latency_ms=0) as box:
        assert box.latency_ms == 0


def test_a_bad_latency_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, io_ = invoke(["sandbox", "--latency-ms", "-5"])
    assert result.exit_code == 2
    assert "--latency-ms" in result.output and "Sandbox listening" not in io_.stdout

    monkeypatch.setenv(LATENCY_ENV, "soon")
    result, io_ = invoke(["up", "--sandbox", "-f", str(write_stack(tmp_path, MINIMAL)), "--yes"])
    assert result.exit_code == 2
    assert io_.stderr == f"Error: {LATENCY_ENV}: 'soon' is not a number of milliseconds from 0 to 60000\n"


def test_answers_are_sent_without_nagle_delay() -> None:
    # werkzeug sends an answer's headers and body apart: with Nagle's algorithm the body would wait
    # up to 40 ms for the client's delayed acknowledgement, a delay AWS does not add.
    with Sandbox(agent_interval=None, latency_ms=0) as box:
        handler = box._server._server.RequestHandlerClass  # type: ignore[attr-defined]
        assert handler.disable_nagle_algorithm is True
        assert box.client("sts").get_caller_identity()["Account"]


def test_half_the_latency_is_spent_before_the_request_is_handled_and_half_after() -> None:
    # As a round trip is spent: all of it before the answer made the sandbox (one request at a
    # time) handle a round of requests just as the next round arrived. Lower bounds only.
    from spotecs.sandbox.server import _Delayed

    handled: list[float] = []

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        handled.append(time.monotonic())
        return [b"answer"]

    start = time.monotonic()
    assert _Delayed(app, 300)({}, None) == [b"answer"]
    end = time.monotonic()
    assert handled[0] - start >= 0.15
    assert end - handled[0] >= 0.15


@pytest.mark.parametrize("lag", [0, 3])
def test_the_lag_option_sets_how_long_a_new_resource_stays_unseen(lag: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # `spotecs sandbox --lag N` runs until Ctrl-C: the wait is where a user's commands would run,
    # so the probe runs there, then stops the sandbox as Ctrl-C would.
    import threading

    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    refusals: list[int] = []

    real_wait = threading.Event.wait

    def probe(self: threading.Event, timeout: float | None = None) -> bool:
        if sys._getframe(1).f_code.co_name != "sandbox":  # the server's own waits
            return real_wait(self, timeout)
        ec2 = boto3.client(
            "ec2",
            endpoint_url="http://127.0.0.1:" + str(port["n"]),
            region_name="us-east-1",
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
            config=Config(retries={"max_attempts": 1}),
        )
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        group = ec2.create_security_group(GroupName=f"lag-probe-{lag}", Description="probe", VpcId=vpc)["GroupId"]
        rule = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        refused = 0
        for _ in range(lag + 1):
            try:
                ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])
                break
            except ClientError as e:
                assert e.response["Error"]["Code"] == "InvalidGroup.NotFound"
                refused += 1
        refusals.append(refused)
        raise KeyboardInterrupt

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = {"n": s.getsockname()[1]}
    monkeypatch.setattr(threading.Event, "wait", probe)
    result, io_ = invoke(["sandbox", "--port", str(port["n"]), "--lag", str(lag), "--latency-ms", "0"])
    assert result.exit_code == 0, result.output
    assert refusals == [lag]
    assert "Sandbox stopped." in io_.stdout


def test_a_lag_out_of_range_is_one_line_exit_2() -> None:
    result, io_ = invoke(["sandbox", "--lag", "11"])
    assert result.exit_code == 2
    assert "--lag" in result.output and "Sandbox listening" not in io_.stdout
