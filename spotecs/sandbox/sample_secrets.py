"""Sample secrets: the sandbox holds a Secrets Manager secret at each ARN the examples name, so
the simulated agent (which reads a task's secrets with its execution role, secrets_access.py)
starts the tasks of `examples/production.yaml`. Their values say they are samples, and they
exist only in the sandbox; against real AWS, the stack file names secrets of your own.

A secret's ARN is its name, a hyphen and 6 random characters
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html#iam-resources);
the sample keeps the suffix the example's ARN shows.
"""

from __future__ import annotations

SAMPLE_SECRET_ARNS = ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/database-url-AbCdEf",)
SAMPLE_VALUE = "sample value of the spotecs sandbox, not a real secret"


def install() -> None:
    """Put each sample secret into moto's Secrets Manager state (idempotent)."""
    from moto.secretsmanager.models import secretsmanager_backends

    for arn in SAMPLE_SECRET_ARNS:
        _, _, _, region, account, _, name_and_suffix = arn.split(":", 6)
        backend = secretsmanager_backends[account][region]
        if arn in backend.secrets:
            continue
        name = name_and_suffix[: -len("-AbCdEf")]
        backend.create_secret(
            name, SAMPLE_VALUE, None, "sample secret of the spotecs sandbox", None, None, None, [], False
        )
        backend.secrets[name].arn = arn
