"""`services.<name>.secrets`: where each secret comes from, in every form ECS accepts, and the IAM
resources that let the execution role read it (the policy must match the secret's real ARN, or
the task stops with "ResourceInitializationError: unable to pull secrets").

Forms (ECS "Pass sensitive data to a container"):
- a Secrets Manager secret ARN, `arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf`;
- the same with a JSON key, version stage and version id: `...:secret:<name>-AbCdEf:<key>::`;
- a Secrets Manager ARN without its 6-character suffix: `...:secret:<name>`;
- an SSM parameter ARN, `arn:aws:ssm:<region>:<account>:parameter/<name>`;
- an SSM parameter name in the stack's region: `/path/name` or `name`.
Each may carry a customer-managed `kms_key` (its key ARN), or the service one for all its
secrets: the role then may decrypt with that key, and no other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field, field_validator

from spotecs.config.base import Model

ACCEPTED = (
    "accepted: a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf), "
    "optionally with :<json-key>:<version-stage>:<version-id>, or without its 6-character suffix; an SSM "
    "parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>); or an SSM parameter name (/path/name)"
)
KMS_KEY = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$"
KMS_ACCEPTED = "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>); IAM cannot grant Decrypt by alias"

_SECRET_ARN = re.compile(
    r"^(?P<arn>arn:(?P<partition>aws[a-z-]*):secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+)"
    r"(?::(?P<key>[^:]*)(?::(?P<stage>[^:]*)(?::(?P<version>[^:]*))?)?)?$"
)
_PARAMETER_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_.\-/]+$")
_PARAMETER_NAME = re.compile(r"^/?[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*$")
# Secrets Manager appends "-" and 6 random characters to a secret's name to make its ARN.
_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


@dataclass(frozen=True)
class Source:
    """Where one secret is read from, and what IAM must allow for it."""

    service: str  # "secretsmanager" | "ssm"
    resources: tuple[str, ...]  # IAM resource patterns matching the real ARN


def source(value_from: str, region: str, account: str, partition: str = "aws") -> Source:
    """The IAM resources for `value_from` (one of the accepted forms; the model checked it)."""
    m = _SECRET_ARN.match(value_from)
    if m:
        arn = m.group("arn")  # the JSON key, stage and version are not part of the resource
        # Without the suffix the real ARN is `<arn>-XXXXXX`. (A name that itself ends in "-" and
        # 6 letters or digits reads as a complete ARN: name such a secret by its full ARN.)
        return Source("secretsmanager", (arn,) if _SUFFIX.search(arn) else (f"{arn}-??????",))
    if value_from.startswith("arn:"):
        return Source("ssm", (value_from,))
    return Source("ssm", (f"arn:{partition}:ssm:{region}:{account}:parameter/{value_from.lstrip('/')}",))


def problem(value_from: str) -> str | None:
    if _SECRET_ARN.match(value_from) or _PARAMETER_ARN.match(value_from):
        return None
    if not value_from.startswith("arn:") and _PARAMETER_NAME.match(value_from) and len(value_from) <= 2048:
        return None
    return f"'{value_from}' is not a secret reference ECS accepts; {ACCEPTED}"


class SecretRef(Model):
    value_from: str = Field(description="Where the secret is: any accepted form (see `secrets`).")
    kms_key: str | None = Field(
        None, description="The customer-managed KMS key the secret is encrypted with (key ARN)."
    )

    @field_validator("value_from")
    @classmethod
    def _form(cls, v: str) -> str:
        found = problem(v)
        if found:
            raise ValueError(found)
        return v

    @field_validator("kms_key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        return check_key(v)


def check_key(v: str | None) -> str | None:
    if v is not None and not re.match(KMS_KEY, v):
        raise ValueError(f"'{v}' is not {KMS_ACCEPTED}")
    return v
