"""The HTTPS listener's certificate and TLS policy: a data source. What the file names must exist
as AWS takes it (an ISSUED ACM certificate of the stack's region, a TLS policy Elastic Load
Balancing knows), or `check` says so before any write.

A data source, not the listeners' check: its two reads then leave with the plan's first round,
beside every other read, instead of one round trip after them all; and a teardown, which has no
checks, makes neither."""

from __future__ import annotations

from typing import Any

from spotecs import checks
from spotecs.steps.base import Context, DataSource


class Certificate(DataSource):
    """Outputs: status (ACM's, None when not found in the stack's region), ssl_policy_known."""

    kind = "certificate"

    def __init__(self, arn: str) -> None:
        super().__init__("certificate", arn)

    def read(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.stack.load_balancer
        assert cfg.certificate_arn
        # Neither needs the other: one round trip, not two.
        status, known = ctx.at_once(
            lambda: _certificate_status(ctx, str(cfg.certificate_arn)),
            lambda: _ssl_policy_known(ctx, cfg.ssl_policy),
        )
        return {"status": status, "ssl_policy_known": known}

    def check(self, ctx: Context, current: dict[str, Any] | None) -> list[str]:
        cfg = ctx.stack.load_balancer
        assert cfg.certificate_arn and current is not None
        problems = checks.certificate_problems(cfg.certificate_arn, ctx.region, current["status"])
        if not current["ssl_policy_known"]:
            problems.append(
                f"load_balancer.ssl_policy: {cfg.ssl_policy} is not a TLS policy of Elastic Load Balancing "
                "(see `aws elbv2 describe-ssl-policies`)"
            )
        return problems


def _certificate_status(ctx: Context, arn: str) -> str | None:
    if arn.split(":")[3] != ctx.region:
        return None  # ACM in this region cannot see it; certificate_problems says why
    got = ctx.call(
        "describe the load balancer's certificate",
        ctx.client("acm").describe_certificate,
        missing=("ResourceNotFoundException", "ValidationException"),
        CertificateArn=arn,
    )
    return None if got is None else str(got["Certificate"].get("Status"))


def _ssl_policy_known(ctx: Context, policy: str) -> bool:
    got = ctx.call(
        f"describe TLS policy {policy}",
        ctx.client("elbv2").describe_ssl_policies,
        missing=("SSLPolicyNotFound",),
        Names=[policy],
    )
    return bool(got and got.get("SslPolicies"))
