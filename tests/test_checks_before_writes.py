"""Everything knowable before a write is checked before the first write: `spotecs up` on a whole
stack (every layer, moto in-process) with one bad fact at a time exits 2 with one line naming
the field, and makes no write call at all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

import spotecs.up
from spotecs.aws import Aws, AwsOptions
from spotecs.cli import cli
from spotecs.render import Env
from spotecs.steps.base import Timeouts
from tests.helpers import MINIMAL, REGION, deep_merge, issued_certificate

OTHER_REGION_CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
MISSING_CERT = f"arn:aws:acm:{REGION}:123456789012:certificate/99999999-8888-7777-6666-555555555555"


def _pending_certificate() -> dict[str, Any]:
    arn = boto3.client("acm", region_name=REGION).request_certificate(DomainName="api.example.com")
    return {"load_balancer": {"certificate_arn": arn["CertificateArn"]}}


def _issued_certificate(**lb: Any) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        return {"load_balancer": {"certificate_arn": issued_certificate(), **lb}}

    return make


def _default_vpc() -> tuple[str, list[dict[str, Any]]]:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    return vpc, ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]


def _one_zone() -> dict[str, Any]:
    vpc, subnets = _default_vpc()
    return {"network": {"vpc_id": vpc, "subnets": [subnets[0]["SubnetId"]]}}


def _missing_subnet() -> dict[str, Any]:
    vpc, subnets = _default_vpc()
    return {"network": {"vpc_id": vpc, "subnets": [subnets[0]["SubnetId"], "subnet-0123456789abcdef0"]}}


CASES: list[tuple[str, Callable[[], dict[str, Any]], str]] = [
    (
        "certificate-missing",
        lambda: {"load_balancer": {"certificate_arn": MISSING_CERT}},
        f"load_balancer.certificate_arn: no ACM certificate {MISSING_CERT} in {REGION}",
    ),
    (
        "certificate-pending",
        _pending_certificate,
        "load_balancer.certificate_arn: the certificate is PENDING_VALIDATION, not ISSUED",
    ),
    (
        "certificate-other-region",
        lambda: {"load_balancer": {"certificate_arn": OTHER_REGION_CERT}},
        f"load_balancer.certificate_arn: the certificate is in eu-west-1 but the stack is in {REGION}",
    ),
    (
        "ssl-policy",
        _issued_certificate(ssl_policy="ELBSecurityPolicy-FS-1-2-Res-2019-08"),  # listed, not in this region
        "load_balancer.ssl_policy: ELBSecurityPolicy-FS-1-2-Res-2019-08 is not a TLS policy",
    ),
    ("key-pair", lambda: {"instances": {"key_pair": "nope"}}, "instances.key_pair: no key pair named 'nope'"),
    ("vpc", lambda: {"network": {"vpc_id": "vpc-0123456789abcdef0"}}, "network.vpc_id: vpc-0123456789abcdef0"),
    ("subnet", _missing_subnet, "network.subnets: subnet-0123456789abcdef0 not found"),
    ("one-zone", _one_zone, "network.subnets: an Application Load Balancer needs subnets in at least two"),
    (
        "ami",
        lambda: {"instances": {"ami": "ami-0123456789abcdef0"}},
        "instances.ami: ami-0123456789abcdef0 does not exist",
    ),
]


def _up(tmp_path: Path, doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, list[Aws]]:
    sessions: list[Aws] = []
    real = spotecs.up.Aws

    def recording(options: AwsOptions) -> Aws:
        sessions.append(real(options))
        return sessions[-1]

    monkeypatch.setattr(spotecs.up, "Aws", recording)
    path = tmp_path / "spotecs.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    # Wide consoles: a problem is one line however long the ARN in it.
    env = Env(console=Console(width=1000), err=Console(stderr=True, width=1000), stdin_isatty=False)
    monkeypatch.setattr(spotecs.up, "Timeouts", lambda: Timeouts(default=5, delay=0))
    result = CliRunner().invoke(cli, ["up", "-f", str(path), "--yes", "--no-wait"], obj=env)
    return result.exit_code, result.output, sessions


@pytest.mark.usefixtures("moto")
@pytest.mark.parametrize(("case", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_fact_exit_2_one_line_no_write(
    case: str, make: Callable[[], dict[str, Any]], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, sessions = _up(tmp_path, deep_merge(MINIMAL, make()), monkeypatch)
    assert code == 2, out
    problems = [line for line in out.splitlines() if expected in line]
    assert len(problems) == 1, out
    field = expected.split(":")[0]
    assert [line for line in out.splitlines() if field + ":" in line] == problems, out
    assert sessions and all(a.writes() == [] for a in sessions)
    assert any(a.calls for a in sessions)  # the facts were read from AWS


@pytest.mark.usefixtures("moto")
def test_an_issued_certificate_of_the_region_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = deep_merge(MINIMAL, _issued_certificate()())
    code, out, sessions = _up(tmp_path, {**doc, "stack": "certok"}, monkeypatch)
    assert code == 0, out
    assert "load_balancer.certificate_arn" not in out
    created = [c.params for a in sessions for c in a.calls if c.operation == "CreateListener"]
    assert sorted(c["Port"] for c in created) == [80, 443]
