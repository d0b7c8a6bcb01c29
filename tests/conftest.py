"""Shared fixtures: dummy credentials, moto in-process, a run context whose waits do not sleep,
and a helper to plan + apply a list of steps."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from moto import mock_aws

from spotecs.aws import Aws, AwsOptions
from spotecs.config import Stack
from spotecs.engine.apply import Result, apply
from spotecs.engine.model import Plan
from spotecs.engine.plan import plan
from spotecs.steps import build
from spotecs.steps.base import Context, Step, Timeouts

REGION = "us-east-1"

MINIMAL: dict[str, Any] = {
    "stack": "demo",
    "region": REGION,
    "instances": {"types": ["t3.small"]},
    "services": {"api": {"image": "bitnami/node-example:0.0.1", "container_port": 3000}},
}


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture(scope="session", autouse=True)
def _aws_managed_policies_for_the_aws_partition_only() -> Iterator[None]:
    """Test speed only: moto builds IAM for all six partitions on every reset, each loading
    ~1,600 AWS-managed policies. spotecs runs in the `aws` partition; elsewhere load none."""
    from moto.iam.models import IAMBackend

    original = IAMBackend._init_aws_policies

    def aws_partition_only(self: IAMBackend) -> list[Any]:
        return original(self) if self.region_name == "aws" else []

    IAMBackend._init_aws_policies = aws_partition_only  # type: ignore[method-assign]
    yield
    IAMBackend._init_aws_policies = original  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader() -> Iterator[None]:
    """Test speed only: each run makes a new boto3 Session, and every session parses the
    service models again (0.3 s for EC2 alone). Tests share one botocore session, hence one
    model cache, whenever no profile is asked for and the region is explicit."""
    import boto3
    import botocore.session

    shared = botocore.session.get_session()
    real = boto3.Session
    # Each boto3 Session registers boto3's handlers (S3 transfer methods...) on its botocore
    # session; registered twice on the shared one, every later S3 client fails to build.
    register = real._register_default_handlers
    done: list[bool] = []

    def register_once(self: boto3.Session) -> None:
        if self._session is shared:
            if done:
                return
            done.append(True)
        register(self)

    def session(profile_name: str | None = None, region_name: str | None = None, **kw: Any) -> boto3.Session:
        if profile_name is None and region_name is not None and not kw:
            return real(region_name=region_name, botocore_session=shared)
        return real(profile_name=profile_name, region_name=region_name, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(real, "_register_default_handlers", register_once)
        mp.setattr("spotecs.aws.boto3.Session", session)
        yield


@pytest.fixture
def moto() -> Iterator[None]:
    """moto in-process, with the sandbox's fills for what moto drops (the same behaviour as the
    end-to-end tests' server, whichever runs first)."""
    from spotecs.sandbox import fills

    fills.install()
    with mock_aws():
        yield


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_stack(**overrides: Any) -> Stack:
    """The minimal stack, with nested overrides merged in: make_stack(instances={"min": 2})."""
    return Stack.model_validate(deep_merge(MINIMAL, overrides))


def make_ctx(stack: Stack | None = None) -> Context:
    """A context on moto (start it with the `moto` fixture first); waits never sleep."""
    return Context(
        stack=stack or make_stack(), aws=Aws(AwsOptions(region=REGION)), timeouts=Timeouts(default=5, delay=0)
    )


def converge(steps: Sequence[Step], ctx: Context, *, destroy: bool = False) -> tuple[Plan, Result]:
    """Plan then apply (like `up --yes`); returns both. Fails the test on an apply failure."""
    ctx.outputs.clear()
    the_plan = plan(steps, ctx, destroy=destroy)
    result = apply(the_plan, steps, ctx)
    assert not result.failed, {k: repr(e) for k, e in result.failed.items()}
    assert not result.skipped
    return the_plan, result


def replan(steps: Sequence[Step], stack: Stack) -> Plan:
    """A fresh run's plan (new context, nothing cached)."""
    ctx = make_ctx(stack)
    return plan(steps, ctx)


def with_upstreams(steps: dict[str, Step], keys: Sequence[str]) -> list[Step]:
    """The steps named by `keys` plus every upstream they need, in the order of `steps`."""
    wanted: set[str] = set()
    todo = list(keys)
    while todo:
        k = todo.pop()
        if k not in wanted:
            wanted.add(k)
            todo.extend(steps[k].depends_on)
    return [s for k, s in steps.items() if k in wanted]


def steps_for(stack: Stack, keep: Callable[[Step], bool] = lambda s: True) -> list[Step]:
    """The stack's steps, filtered, plus every upstream the kept ones need."""
    all_steps = {s.key: s for s in build(stack, REGION)}
    return with_upstreams(all_steps, [k for k, s in all_steps.items() if keep(s)])
