"""Safe defaults and the stated reasons to give one up (`opt_outs:`, `services.<name>.not_secret`).

Refused unless the file opts out with a reason (at least a few words, kept in the file for the
next reader):
- containers reaching the instance metadata (IMDSv2 hop limit 2): with bridge networking every
  task could read the instance role's credentials;
- an HTTPS listener on a policy older than TLS 1.2, or HTTP not redirected when a certificate
  is given;
- an access-log bucket (one the file names) that is not private and encrypted (checked against
  AWS at plan time, in the load balancer step);
- an environment variable whose name says it holds a secret, with a literal value: it would be
  stored in plain text in the task definition, readable by anyone who may describe it;
- instances taking traffic from anywhere but the load balancer's security group
  (`instances.ingress`): each task listens on a host port anyone in that range could reach,
  around the load balancer's TLS, headers and health checks.
What looks like a secret and which TLS policies are older than 1.2 are decided in `formats`,
next to the other value rules; this module decides what is refused and what opts out.
IMDSv2 tokens required and the encrypted root volume are not settings at all: nothing in the
file can weaken them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints

from spotecs.config import formats
from spotecs.config.base import Model, Problem

if TYPE_CHECKING:
    from spotecs.config.stack import Stack

Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=10),
    Field(description="Why: at least a few words, for the next reader of the file."),
]


class OptOuts(Model):
    imds_hop_limit_2: Reason | None = Field(
        None,
        description="Let containers reach the instance metadata (hop limit 2), and so the instance role's "
        "credentials; default hop limit 1 (the ECS agent, on the host network, is unaffected).",
    )
    tls_below_1_2: Reason | None = Field(None, description="Allow an ssl_policy that accepts TLS 1.0 or 1.1.")
    http_not_redirected: Reason | None = Field(
        None, description="Serve plain HTTP beside HTTPS (redirect_http: false with a certificate)."
    )
    access_log_bucket_not_private: Reason | None = Field(
        None, description="Write access logs to a named bucket that is not private or not encrypted."
    )
    instance_ingress: Reason | None = Field(
        None,
        description="Let the instances take the traffic of instances.ingress, besides the load balancer's.",
    )


def problems(stack: Stack) -> Iterator[Problem]:
    lb, opt = stack.load_balancer, stack.opt_outs
    if lb.certificate_arn and stack.web_services():
        if formats.tls_below_1_2(lb.ssl_policy) and not opt.tls_below_1_2:
            yield (
                "load_balancer.ssl_policy",
                f"{lb.ssl_policy} accepts TLS older than 1.2; use a TLS 1.2+ policy (e.g. "
                "ELBSecurityPolicy-TLS13-1-2-2021-06), or state why under opt_outs.tls_below_1_2",
            )
        if not lb.redirect_http and not opt.http_not_redirected:
            yield (
                "load_balancer.redirect_http",
                "with a certificate, plain HTTP is redirected to HTTPS; state why it should not be "
                "under opt_outs.http_not_redirected",
            )
    if stack.instances.ingress and not opt.instance_ingress:
        yield (
            "instances.ingress",
            "the instances take traffic only from the load balancer's security group; state why they "
            "should take more under opt_outs.instance_ingress",
        )
    for name, svc in stack.services.items():
        where = f"services.{name}"
        for var, problem in formats.secret_literal_problems(svc.environment, svc.not_secret, where).items():
            yield (f"{where}.environment.{var}", problem)
        for var in svc.not_secret:
            if var not in svc.environment:
                yield (f"services.{name}.not_secret.{var}", f"names no variable of services.{name}.environment")
