"""AWS access: errors read "Failed to <intent>: <AWS message>", not-found codes return None,
clients come from the run (cached, adaptive retries, --endpoint-url), every call is recorded
with its API parameters, and the retry/wait/poll helpers never sleep in tests (a fake clock)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from spotecs import aws
from spotecs.aws import Aws, AwsOptions, Call, call, owned_by, tag_dict, tag_list, tags_from_list
from spotecs.errors import AwsError, UsageError, WaitTimeout
from tests.helpers import REGION, make_ctx


def client_error(code: str, message: str = "it went wrong", op: str = "DoThing") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


class FakeClock:
    """Stands in for `time` in spotecs.aws: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(aws, "time", fake)
    return fake


# ----------------------------------------------------------------------------- call


def test_call_error_reads_failed_to_intent_with_aws_message(moto: None) -> None:
    iam = Aws(AwsOptions(region=REGION)).client("iam")
    with pytest.raises(AwsError) as info:
        call("describe IAM role nope", iam.get_role, RoleName="nope")
    assert str(info.value) == "Failed to describe IAM role nope: Role nope not found (NoSuchEntity)"
    assert info.value.code == "NoSuchEntity"
    assert info.value.intent == "describe IAM role nope"


def test_call_missing_code_returns_none(moto: None) -> None:
    iam = Aws(AwsOptions(region=REGION)).client("iam")
    assert call("describe IAM role nope", iam.get_role, missing=("NoSuchEntity",), RoleName="nope") is None


def test_call_other_code_is_not_swallowed_by_missing(moto: None) -> None:
    logs = Aws(AwsOptions(region=REGION)).client("logs")
    with pytest.raises(AwsError, match=r"^Failed to delete log group x: "):
        call("delete log group x", logs.delete_log_group, missing=("NoSuchEntity",), logGroupName="x")


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("Throttling", "Rate exceeded", "Failed to do it: Rate exceeded (Throttling)"),
        (
            "InvalidGroup.NotFound",
            "InvalidGroup.NotFound: no such group",
            "Failed to do it: InvalidGroup.NotFound: no such group",
        ),
        ("AccessDenied", "", "Failed to do it: AccessDenied"),
    ],
)
def test_call_message_shapes(code: str, message: str, expected: str) -> None:
    def fail() -> None:
        raise client_error(code, message)

    with pytest.raises(AwsError) as info:
        call("do it", fail)
    assert str(info.value) == expected


def test_call_botocore_error_is_an_aws_error() -> None:
    def fail() -> None:
        raise EndpointConnectionError(endpoint_url="http://localhost:1")

    with pytest.raises(AwsError, match=r"^Failed to reach it: Could not connect"):
        call("reach it", fail)


def test_call_passes_keyword_arguments_and_returns_result() -> None:
    assert call("add", lambda **kw: kw["a"] + kw["b"], a=1, b=2) == 3


# ----------------------------------------------------------------------------- paginate


def test_paginate_collects_every_page(moto: None) -> None:
    a = Aws(AwsOptions(region=REGION))
    logs = a.client("logs")
    for i in range(3):
        logs.create_log_group(logGroupName=f"/g/{i}")
    before = len(a.calls)
    got = list(
        aws.paginate("list log groups", logs, "describe_log_groups", "logGroups", PaginationConfig={"PageSize": 1})
    )
    assert [g["logGroupName"] for g in got] == ["/g/0", "/g/1", "/g/2"]
    assert len([c for c in a.calls[before:] if c.operation == "DescribeLogGroups"]) >= 3


def test_paginate_error_reads_failed_to_intent(moto: None) -> None:
    iam = Aws(AwsOptions(region=REGION)).client("iam")
    with pytest.raises(AwsError) as info:
        list(
            aws.paginate(
                "list policies of role nope", iam, "list_attached_role_policies", "AttachedPolicies", RoleName="nope"
            )
        )
    assert str(info.value).startswith("Failed to list policies of role nope: ")
    assert info.value.code == "NoSuchEntity"


def test_paginate_connection_error_reads_failed_to_intent() -> None:
    a = Aws(AwsOptions(region=REGION, endpoint_url="http://127.0.0.1:9", max_attempts=0))
    with pytest.raises(AwsError, match=r"^Failed to list log groups: Could not connect"):
        list(aws.paginate("list log groups", a.client("logs"), "describe_log_groups", "logGroups"))


# ----------------------------------------------------------------------------- retry_on


def test_retry_on_listed_code_until_success(clock: FakeClock) -> None:
    answers: list[Any] = [client_error("DependencyViolation"), client_error("DependencyViolation"), "ok"]
    statuses: list[str] = []

    def flaky() -> Any:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    got = aws.retry_on(
        "delete group", flaky, codes=("DependencyViolation",), timeout=600, delay=5, report=statuses.append
    )
    assert got == "ok"
    assert clock.sleeps == [1, 2]  # exponential backoff from one second
    assert statuses == ["retrying: DependencyViolation"] * 2


def test_retry_on_other_code_fails_at_once(clock: FakeClock) -> None:
    def fail() -> None:
        raise client_error("AccessDenied", "no")

    with pytest.raises(AwsError, match=r"^Failed to delete group: no"):
        aws.retry_on("delete group", fail, codes=("DependencyViolation",), timeout=600, delay=5)
    assert clock.sleeps == []


def test_retry_on_gives_up_after_timeout(clock: FakeClock) -> None:
    attempts = []

    def fail() -> None:
        attempts.append(clock.now)
        raise client_error("DependencyViolation", "has dependent object")

    with pytest.raises(WaitTimeout) as info:
        aws.retry_on("delete group", fail, codes=("DependencyViolation",), timeout=30, delay=5)
    assert attempts == [0, 1, 3, 7, 15]  # the next wait (16 s) would pass the 30 s budget
    assert str(info.value).startswith("Timed out after 15s waiting for delete group (has dependent object")


def test_retry_on_backoff_is_capped(clock: FakeClock) -> None:
    fails = [client_error("ResourceInUse")] * 6

    def flaky() -> str:
        if fails:
            raise fails.pop()
        return "done"

    aws.retry_on("x", flaky, codes=("ResourceInUse",), timeout=10_000, delay=5)
    assert clock.sleeps == [1, 2, 4, 8, 16, 30]


def test_retry_on_missing_code_returns_none(clock: FakeClock) -> None:
    def gone() -> None:
        raise client_error("InvalidGroup.NotFound")

    assert (
        aws.retry_on("delete", gone, codes=("DependencyViolation",), timeout=30, missing=("InvalidGroup.NotFound",))
        is None
    )


# ----------------------------------------------------------------------------- wait / poll


class RecordingWaiter:
    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.kwargs: dict[str, Any] = {}

    def wait(self, WaiterConfig: dict[str, Any], **kwargs: Any) -> None:
        self.config, self.kwargs = WaiterConfig, kwargs


@pytest.mark.parametrize(("delay", "timeout", "attempts"), [(5, 600, 120), (15, 10, 1), (0, 7, 7)])
def test_wait_turns_timeout_into_attempts(delay: float, timeout: float, attempts: int) -> None:
    w = RecordingWaiter()
    aws.wait("the thing", object(), w, delay=delay, timeout=timeout, Name="x")  # type: ignore[arg-type]
    assert w.config == {"Delay": delay, "MaxAttempts": attempts}
    assert w.kwargs == {"Name": "x"}


def test_wait_by_name_succeeds(moto: None) -> None:
    ec2 = Aws(AwsOptions(region=REGION)).client("ec2")
    gid = ec2.create_security_group(GroupName="g", Description="d")["GroupId"]
    aws.wait("security group g", ec2, "security_group_exists", delay=0, timeout=3, GroupIds=[gid])


def test_wait_times_out(moto: None) -> None:
    ec2 = Aws(AwsOptions(region=REGION)).client("ec2")
    with pytest.raises(WaitTimeout, match=r"^Timed out after 3s waiting for security group g$"):
        aws.wait(
            "security group g", ec2, "security_group_exists", delay=0, timeout=3, GroupIds=["sg-0123456789abcdef0"]
        )


def test_wait_terminal_failure_reads_failed_to_wait(moto: None) -> None:
    ec2 = Aws(AwsOptions(region=REGION)).client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[iid])
    with pytest.raises(AwsError, match=r"^Failed to wait for instance running: .*terminal failure"):
        aws.wait("instance running", ec2, "instance_running", delay=0, timeout=3, InstanceIds=[iid])


def test_poll_until_done_reports_each_status(clock: FakeClock) -> None:
    states = iter([(False, "1 of 3 running"), (False, "2 of 3 running"), (True, "3 of 3 running")])
    seen: list[str] = []
    aws.poll("tasks", lambda: next(states), timeout=600, delay=5, report=seen.append)
    assert seen == ["1 of 3 running", "2 of 3 running", "3 of 3 running"]
    assert clock.sleeps == [5, 5]


def test_poll_timeout_names_what_status_and_hint(clock: FakeClock) -> None:
    checks = []

    def never() -> tuple[bool, str]:
        checks.append(clock.now)
        return False, "0 of 2 healthy"

    with pytest.raises(WaitTimeout) as info:
        aws.poll("service api", never, timeout=10, delay=3, hint="see the service events")
    assert str(info.value) == ("Timed out after 10s waiting for service api (0 of 2 healthy). see the service events")
    assert checks == [0, 3, 6, 9, 12]


# ----------------------------------------------------------------------------- clients


def test_client_is_cached_per_service() -> None:
    a = Aws(AwsOptions(region=REGION))
    assert a.client("ecs") is a.client("ecs")
    assert a.client("ecs") is not a.client("ec2")


def test_clients_created_concurrently_are_one_per_service() -> None:
    a = Aws(AwsOptions(region=REGION))
    barrier = threading.Barrier(8)

    def get(_: int) -> Any:
        barrier.wait(timeout=10)
        return a.client("logs")

    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(get, range(8)))
    assert all(c is clients[0] for c in clients)


def test_client_has_adaptive_retries_and_user_agent() -> None:
    c = Aws(AwsOptions(region=REGION, max_attempts=4)).client("ecs")
    assert c.meta.config.retries["mode"] == "adaptive"
    assert c.meta.config.retries["total_max_attempts"] == 5  # botocore: max_attempts retries + the first call
    assert "spotecs/" in c.meta.config.user_agent_extra


def test_endpoint_url_option_is_honoured() -> None:
    a = Aws(AwsOptions(region="eu-west-3", endpoint_url="http://127.0.0.1:5000"))
    assert a.client("ecs").meta.endpoint_url == "http://127.0.0.1:5000"
    assert a.client("ecs").meta.region_name == "eu-west-3"


def test_aws_endpoint_url_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert Aws(AwsOptions(region=REGION)).client("iam").meta.endpoint_url == "http://127.0.0.1:4566"


def test_region_comes_from_options_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Aws(AwsOptions(region="ap-south-1")).region == "ap-south-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.delenv("AWS_REGION")
    assert Aws(AwsOptions()).region == "eu-central-1"


def test_no_region_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(UsageError, match="no region"):
        Aws(AwsOptions()).client("ecs")


def test_unknown_profile_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"^--profile: .*nope"):
        Aws(AwsOptions(profile="nope")).client("ecs")


# ----------------------------------------------------------------------------- recorded calls


def test_calls_are_recorded_with_api_parameters(moto: None) -> None:
    a = Aws(AwsOptions(region=REGION))
    a.client("logs").create_log_group(logGroupName="/x", tags={"a": "b"})
    a.client("logs").describe_log_groups(logGroupNamePrefix="/x")
    assert a.calls == [
        Call("logs", "CreateLogGroup", {"logGroupName": "/x", "tags": {"a": "b"}}),
        Call("logs", "DescribeLogGroups", {"logGroupNamePrefix": "/x"}),
    ]
    assert a.writes() == [a.calls[0]]


def test_failed_calls_are_recorded_too(moto: None) -> None:
    a = Aws(AwsOptions(region=REGION))
    with pytest.raises(AwsError):
        call("delete role", a.client("iam").delete_role, RoleName="nope")
    assert [(c.service, c.operation) for c in a.calls] == [("iam", "DeleteRole")]


@pytest.mark.parametrize(
    ("operation", "is_write"),
    [
        ("DescribeSecurityGroups", False),
        ("ListTagsLogGroup", False),
        ("GetRole", False),
        ("GetCallerIdentity", False),
        ("LookupEvents", False),
        ("SearchResources", False),
        ("CreateRole", True),
        ("PutRetentionPolicy", True),
        ("AuthorizeSecurityGroupIngress", True),
        ("DeleteLogGroup", True),
        ("TagResource", True),
        ("UpdateService", True),
        ("RegisterTaskDefinition", True),
        ("AttachRolePolicy", True),
        ("RunInstances", True),
    ],
)
def test_is_write(operation: str, is_write: bool) -> None:
    assert Call("x", operation, {}).is_write is is_write


# ----------------------------------------------------------------------------- tags


def test_tag_dict_adds_ownership_tags_that_extras_cannot_override() -> None:
    assert tag_dict("demo", {"team": "web", "spotecs:stack": "other"}) == {
        "team": "web",
        "spotecs:stack": "demo",
        "spotecs:managed": "true",
    }


def test_tag_list_shapes() -> None:
    tags = {"b": "2", "a": "1"}
    assert tag_list(tags) == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    assert tag_list(tags, "key", "value") == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]


def test_tags_from_list_reads_both_shapes() -> None:
    assert tags_from_list([{"Key": "a", "Value": "1"}, {"key": "b", "value": "2"}, {"Key": "c"}]) == {
        "a": "1",
        "b": "2",
        "c": "",
    }
    assert tags_from_list(None) == {}


@pytest.mark.parametrize(
    ("tags", "owned"),
    [
        ({"spotecs:stack": "demo", "spotecs:managed": "true"}, True),
        ({"spotecs:stack": "demo", "spotecs:managed": "true", "x": "y"}, True),
        ({"spotecs:stack": "other", "spotecs:managed": "true"}, False),
        ({"spotecs:stack": "demo"}, False),
        ({"spotecs:stack": "demo", "spotecs:managed": "false"}, False),
        ({}, False),
    ],
)
def test_owned_by(tags: dict[str, str], owned: bool) -> None:
    assert owned_by(tags, "demo") is owned


# ----------------------------------------------------------------------------- the run context


def test_context_clients_come_from_the_run(moto: None) -> None:
    ctx = make_ctx()
    assert ctx.client("ecs") is ctx.aws.client("ecs")
    assert ctx.for_step("x").client("ecs") is ctx.aws.client("ecs")
    assert ctx.region == REGION


def test_context_call_uses_the_intent(moto: None) -> None:
    ctx = make_ctx()
    with pytest.raises(AwsError, match=r"^Failed to describe IAM role x: "):
        ctx.call("describe IAM role x", ctx.client("iam").get_role, RoleName="x")


def test_context_account_id_is_looked_up_once(moto: None) -> None:
    ctx = make_ctx()
    assert ctx.account_id == ctx.for_step("other").account_id == "123456789012"
    assert [c.operation for c in ctx.aws.calls] == ["GetCallerIdentity"]


def test_context_tags_include_stack_tags(moto: None) -> None:
    from tests.helpers import make_stack

    ctx = make_ctx(make_stack(tags={"team": "web"}))
    assert ctx.tags(Name="n") == {"team": "web", "Name": "n", "spotecs:stack": "demo", "spotecs:managed": "true"}
    assert ctx.owned(ctx.tags())
    assert not ctx.owned({"team": "web"})


def test_context_retry_reports_to_the_step(clock: FakeClock) -> None:
    statuses: list[tuple[str, str]] = []
    ctx = make_ctx()
    ctx.on_status = lambda key, status: statuses.append((key, status))
    answers: list[Any] = [client_error("ResourceInUse"), "ok"]

    def flaky() -> Any:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    assert ctx.for_step("cluster").retry("delete cluster", flaky, codes=("ResourceInUse",)) == "ok"
    assert statuses == [("cluster", "retrying: ResourceInUse")]


def test_an_unreachable_endpoint_fails_after_two_attempts_not_the_throttling_budget() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        a = Aws(AwsOptions(region=REGION, endpoint_url=f"http://127.0.0.1:{port}", max_attempts=10))
        ecs = a.client("ecs")
        sent: list[str] = []
        ecs.meta.events.register("before-send", lambda **kw: sent.append("send"))
        with pytest.raises(AwsError, match=r"^Failed to list clusters: Could not connect to the endpoint URL"):
            call("list clusters", ecs.list_clusters)
    assert len(sent) == aws.CONNECT_ATTEMPTS == 2
