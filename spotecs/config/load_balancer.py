"""`load_balancer:` the Application Load Balancer in front of the web services."""

from __future__ import annotations

from pydantic import Field, field_validator

from spotecs.config import formats
from spotecs.config.base import Model, Seconds, accept


class AccessLogs(Model):
    bucket: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="Existing bucket; default: spotecs creates <stack>-alb-logs-<account>.",
    )
    prefix: str = "alb"
    expire_days: int = Field(30, ge=1, description="Delete log objects after this many days.")


class LoadBalancer(Model):
    certificate_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+$",
        description="ACM certificate: HTTPS on 443 and a 301 redirect from 80.",
    )
    ssl_policy: str = Field(
        "ELBSecurityPolicy-TLS13-1-2-2021-06", description="TLS 1.2+ policy for the HTTPS listener."
    )
    redirect_http: bool = Field(True, description="With a certificate, answer HTTP with 301 to HTTPS.")
    idle_timeout: Seconds = Field(60, le=4000)
    internal: bool = False
    access_logs: AccessLogs | None = None

    @field_validator("ssl_policy")
    @classmethod
    def _ssl_policy(cls, v: str) -> str:
        return accept(v, formats.ssl_policy_problems(v))
