"""Shared fixtures: dummy credentials, moto in-process (with the sandbox's fills), AWS clients on
it, the compute layer stood in for the workload's tests, and the CLI's recorded runs. The
helpers they use, and every other shared helper, are in tests/helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import spotecs.up
from spotecs.aws import Aws, AwsOptions
from spotecs.steps.base import Timeouts
from tests.helpers import ACCOUNT, CLUSTER, MINIMAL, PROVIDER, REGION, Runs, StandIn, inject, make_ctx, stack_file


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
    """Test speed only: moto builds IAM for all six partitions on every reset, each parsing and
    building ~1,600 AWS-managed policies. spotecs runs in the `aws` partition; elsewhere load
    none. The policies are built once per account, and each reset gets its own copies (what a
    reset changes of one, its attachment count, is the copy's own)."""
    import copy

    from moto.iam import models

    original = models.IAMBackend._init_aws_policies
    built: dict[str, list[Any]] = {}

    def aws_partition_only(self: models.IAMBackend) -> list[Any]:
        if self.region_name != "aws" or not models.load_iam_aws_managed_policies():
            return []
        if self.account_id not in built:
            built[self.account_id] = original(self)
        return [copy.copy(p) for p in built[self.account_id]]

    models.IAMBackend._init_aws_policies = aws_partition_only  # type: ignore[method-assign]
    yield
    models.IAMBackend._init_aws_policies = original  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def _tagging_api_skips_aws_public_parameters() -> Iterator[None]:
    """Test speed only: each plan's tagging-API read makes moto ask the tags of every SSM
    parameter, AWS's public /aws/service/ ones included (hundreds once an AMI alias is read). They
    are AWS's, never tagged by the account and never listed: skip them without asking."""
    from moto.core.resource_tagging import TaggedResource
    from moto.ssm.models import SimpleSystemManagerBackend

    original = SimpleSystemManagerBackend.iter_tagged_resources

    def iter_tagged_resources(self: SimpleSystemManagerBackend) -> Iterator[TaggedResource]:
        # moto's own listing, over the backend as it would be without them.
        yield from original(_WithoutPublicParameters(self))  # type: ignore[arg-type]

    class _WithoutPublicParameters:
        def __init__(self, backend: SimpleSystemManagerBackend) -> None:
            self._backend = backend
            self._parameters = [n for n in backend._parameters if not n.startswith("/aws/service/")]

        def __getattr__(self, name: str) -> Any:
            return getattr(self._backend, name)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SimpleSystemManagerBackend, "iter_tagged_resources", iter_tagged_resources)
        yield


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

    # Building a client's class (a method and a docstring per operation: 700 for EC2) is most of
    # what a client costs once the models are cached: one class per service and per session's
    # events (what the class gets from the session's handlers), built once.
    import weakref

    from botocore.client import ClientCreator

    make_class = ClientCreator._create_client_class
    classes: weakref.WeakKeyDictionary[Any, dict[str, type]] = weakref.WeakKeyDictionary()

    def client_class(self: ClientCreator, service_name: str, service_model: Any) -> type:
        built = classes.setdefault(self._event_emitter, {})
        key = f"{service_name}/{service_model.api_version}"
        if key not in built:
            built[key] = make_class(self, service_name, service_model)
        return built[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(real, "_register_default_handlers", register_once)
        mp.setattr("spotecs.aws.boto3.Session", session)
        mp.setattr(ClientCreator, "_create_client_class", client_class)
        yield


@pytest.fixture
def moto() -> Iterator[None]:
    """moto in-process, with the sandbox's fills for what moto drops and its rules for what moto
    forgives (the same behaviour as the end-to-end tests' server, whichever runs first). The
    account has the service-linked roles, as one that has used ECS before (`fresh_account`: none);
    nothing lags (exact call counts; tests/test_real_aws.py turns the lag on)."""
    from spotecs.sandbox import rules

    rules.install()
    rules.STRICT.lag = 0
    rules.STRICT.reset()
    with mock_aws():
        rules.linked_roles_exist(ACCOUNT)
        yield


@pytest.fixture
def fresh_account(moto: None) -> None:
    """An account that has never used ECS: no service-linked roles."""
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT]["aws"]
    for role_id, role in list(backend.roles.items()):
        if role.path.startswith("/aws-service-role/"):
            del backend.roles[role_id]


@pytest.fixture
def ec2(moto: None) -> Any:
    return make_ctx().client("ec2")


@pytest.fixture
def iam(moto: None) -> Any:
    return make_ctx().client("iam")


@pytest.fixture
def logs(moto: None) -> Any:
    return make_ctx().client("logs")


@pytest.fixture
def compute(moto: None) -> dict[str, StandIn]:
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = ecs.create_cluster(clusterName=CLUSTER)["cluster"]
    for name in (PROVIDER, f"{PROVIDER}-2"):
        ecs.create_capacity_provider(
            name=name,
            autoScalingGroupProvider={
                "autoScalingGroupArn": f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:x:"
                f"autoScalingGroupName/{name}"
            },
        )
    ecs.put_cluster_capacity_providers(
        cluster=CLUSTER, capacityProviders=[PROVIDER, f"{PROVIDER}-2"], defaultCapacityProviderStrategy=[]
    )
    return {
        "cluster": StandIn("cluster", {"name": CLUSTER, "arn": cluster["clusterArn"]}),
        "capacity-provider": StandIn("capacity-provider", {"name": PROVIDER}),
    }


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    recorded = Runs()

    class Faulty(Aws):
        def client(self, service: str) -> Any:
            fresh = service not in self._clients
            client = super().client(service)
            if fresh:
                for fault in recorded.faults:
                    if fault.service == service:
                        inject(client, fault)
            return client

    def opened(options: AwsOptions) -> Aws:
        aws = Faulty(options)
        recorded.sessions.append(aws)
        return aws

    monkeypatch.setattr(spotecs.up, "Aws", opened)
    # Real waits, without the sleeping: every wait is still bounded (5 polls or 5 s).
    monkeypatch.setattr(spotecs.up, "Timeouts", lambda: Timeouts(default=5, delay=0))
    return recorded


@pytest.fixture(name="stack_file")
def minimal_stack_file(tmp_path: Path) -> Path:
    """The minimal stack (helpers.MINIMAL) written to tmp_path/spotecs.yaml."""
    return stack_file(tmp_path, MINIMAL)
