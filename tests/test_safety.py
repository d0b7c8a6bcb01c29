"""Secrets and safe defaults (issue 13): what the stack file may not do without a stated reason,
and secret values kept out of every output."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from rich.console import Console

import spotecs.up
from spotecs.aws import Aws, AwsOptions
from spotecs.cli import cli
from spotecs.config import parse
from spotecs.errors import ConfigError
from spotecs.render import Env
from spotecs.steps.base import Timeouts
from tests.conftest import REGION

BASE = """\
stack: demo
region: us-east-1
instances:
  types: [t3.small]
services:
  api:
    image: app:1
    container_port: 3000
"""
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/abc"


def _svc(extra: str) -> str:
    return BASE + textwrap.indent(textwrap.dedent(extra).strip("\n"), "    ") + "\n"


def _errors(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse(text)
    return str(e.value)


@pytest.mark.parametrize(
    "name", ["DB_PASSWORD", "API_KEY", "github_token", "CLIENT_SECRET", "PRIVATE_KEY", "DB_PASS", "AWS_ACCESS_KEY_ID"]
)
def test_a_secret_looking_variable_with_a_literal_value_is_refused_without_its_value(name: str) -> None:
    message = _errors(_svc(f"environment: {{{name}: hunter2-literal}}"))
    assert f"services.api.environment.{name}" in message
    assert "services.api.secrets" in message and f"services.api.not_secret.{name}" in message
    assert "hunter2-literal" not in message


def test_a_variable_that_only_looks_secret_passes_with_a_stated_reason() -> None:
    stack = parse(
        _svc("environment: {TOKEN_HEADER: X-Auth}\nnot_secret: {TOKEN_HEADER: 'the name of a header, not a token'}")
    )
    assert stack.services["api"].environment == {"TOKEN_HEADER": "X-Auth"}
    assert "at least 10 characters" in _errors(
        _svc("environment: {TOKEN_HEADER: X-Auth}\nnot_secret: {TOKEN_HEADER: ok}")
    )
    assert "names no variable" in _errors(_svc("not_secret: {OTHER: 'a reason long enough'}"))


def test_ordinary_variables_are_fine() -> None:
    assert parse(_svc("environment: {NODE_ENV: production, PORT: 3000}")).services["api"].environment["PORT"] == "3000"


def test_tls_below_1_2_and_http_not_redirected_need_a_reason() -> None:
    weak = BASE + f"load_balancer: {{certificate_arn: {CERT}, ssl_policy: ELBSecurityPolicy-2016-08}}\n"
    assert "load_balancer.ssl_policy" in _errors(weak) and "opt_outs.tls_below_1_2" in _errors(weak)
    parse(weak + "opt_outs: {tls_below_1_2: 'legacy clients on Android 4 still call us'}\n")
    plain = BASE + f"load_balancer: {{certificate_arn: {CERT}, redirect_http: false}}\n"
    assert "opt_outs.http_not_redirected" in _errors(plain)
    parse(plain + "opt_outs: {http_not_redirected: 'a health probe that cannot follow redirects'}\n")
    for policy in (
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
        "ELBSecurityPolicy-FS-1-2-2019-08",
    ):
        parse(BASE + f"load_balancer: {{certificate_arn: {CERT}, ssl_policy: {policy}}}\n")


def _ingress(rule: str) -> str:
    return BASE.replace("  types: [t3.small]\n", f"  types: [t3.small]\n  ingress: [{rule}]\n")


def test_instances_take_other_traffic_than_the_load_balancers_only_with_a_reason() -> None:
    ssh = _ingress("{port: 22, source: 10.20.0.0/16}")
    message = _errors(ssh)
    assert "instances.ingress: the instances take traffic only from the load balancer's security group" in message
    assert "opt_outs.instance_ingress" in message
    stack = parse(ssh + "opt_outs: {instance_ingress: 'SSH from the bastion during incidents'}\n")
    assert [(r.port, r.last_port, r.protocol, r.source) for r in stack.instances.ingress] == [
        (22, 22, "tcp", "10.20.0.0/16")
    ]
    reason = "opt_outs: {instance_ingress: 'metrics scraped by the monitoring hosts'}\n"
    for rule, fragment in (
        ("{port: 22, source: 10.20.0.1/16}", "is not a CIDR block as AWS writes it (did you mean 10.20.0.0/16?)"),
        ("{port: 22, source: bastion}", "'bastion' is neither a CIDR block"),
        ("{port: 9100, to_port: 9000, source: sg-0123456789abcdef0}", "to_port: must not be below port (9100)"),
        ("{port: 70000, source: 10.0.0.0/8}", "instances.ingress.0.port"),
        ("{port: 22, protocol: icmp, source: 10.0.0.0/8}", "instances.ingress.0.protocol"),
    ):
        assert fragment in _errors(_ingress(rule) + reason), rule


def test_an_opt_out_needs_words_not_a_flag() -> None:
    assert "opt_outs.imds_hop_limit_2" in _errors(BASE + "opt_outs: {imds_hop_limit_2: yes}\n")
    assert "opt_outs.whatever" in _errors(BASE + "opt_outs: {whatever: 'a reason long enough'}\n")


# ----------------------------------------------------------------------------- no secret in any output

SECRET_VALUE = "pa55-Wr0ng-h0rse-b4ttery"  # what Secrets Manager holds: never read, never shown


def _run(path: Path, *args: str) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=250, no_color=True, highlight=False)

    def session(options: AwsOptions) -> Aws:
        return Aws(options)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spotecs.up, "Aws", session)
        mp.setattr(spotecs.up, "Timeouts", lambda: Timeouts(default=5, delay=0))
        result = CliRunner().invoke(cli, [*args, "-f", str(path)], obj=Env(console=console, err=console))
    return buf.getvalue() + result.output + (repr(result.exception) if result.exception else "")


def test_no_output_ever_holds_a_secret_value(moto: None, tmp_path: Path) -> None:
    sm = boto3.client("secretsmanager", region_name=REGION)
    arn = sm.create_secret(Name="demo/db", SecretString=json.dumps({"password": SECRET_VALUE}))["ARN"]
    boto3.client("ssm", region_name=REGION).put_parameter(Name="/demo/token", Value=SECRET_VALUE, Type="SecureString")
    path = tmp_path / "spotecs.yaml"
    path.write_text(_svc(f"secrets: {{DB_PASSWORD: '{arn}:password::', API_TOKEN: /demo/token}}"))
    outputs = [
        _run(path, "up", "--dry-run"),
        _run(path, "up", "--dry-run", "-o", "json"),
        _run(path, "up", "--yes", "--no-wait"),
        _run(path, "up", "--dry-run", "--detailed-exitcode"),
        _run(path, "teardown", "--dry-run", "-o", "json"),
        _run(path, "teardown", "--yes"),
    ]
    assert "Apply complete" in outputs[2], outputs[2]
    for out in outputs:
        assert SECRET_VALUE not in out
    # And the refusal of a literal never echoes it, in text or JSON-ish forms.
    path.write_text(_svc(f"environment: {{DB_PASSWORD: {SECRET_VALUE}}}"))
    for out in (_run(path, "up", "--dry-run"), _run(path, "validate")):
        assert "services.api.environment.DB_PASSWORD" in out and SECRET_VALUE not in out
