"""Rule: the agent reads a task's secrets with the task's execution role, as ECS does, before any
container starts. When the role's policies do not allow one of them (or the secret does not
exist), ECS stops the task with "ResourceInitializationError: unable to pull secrets or registry
auth: ..." (ECS "Stopped tasks error codes"; "Secrets Manager / Systems Manager permissions for
the task execution role"). moto starts the task anyway.

Only Allow statements are evaluated (no Deny, no conditions): spotecs's policies have neither.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

_SECRET = re.compile(r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:([A-Za-z0-9/_+=.@-]+))(?::.*)?$")


def _statements(role: Any, iam: Any) -> list[dict[str, Any]]:
    documents: list[Any] = list(role.policies.values())
    for arn in role.managed_policies:
        policy = iam.managed_policies.get(arn)
        if policy is not None:
            documents.append(getattr(policy, "document", None) or "{}")
    out: list[dict[str, Any]] = []
    for doc in documents:
        body = json.loads(doc) if isinstance(doc, str) else doc
        statements = body.get("Statement", [])
        out += [statements] if isinstance(statements, dict) else statements
    return out


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _allowed(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    return any(
        s.get("Effect") == "Allow"
        and any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _listed(s.get("Action")))
        and any(fnmatch.fnmatchcase(resource, r) for r in _listed(s.get("Resource")))
        for s in statements
    )


def _secret_arn(account: str, region: str, value_from: str) -> tuple[str, str, str | None]:
    """(action, real ARN, why it cannot be found or None)."""
    m = _SECRET.match(value_from)
    if m:
        from moto.secretsmanager.models import secretsmanager_backends

        store = secretsmanager_backends[account][region].secrets
        for key in (m.group(1), m.group(2)):
            if key in store:
                return "secretsmanager:GetSecretValue", str(store[key].arn), None
        return (
            "secretsmanager:GetSecretValue",
            m.group(1),
            "ResourceNotFoundException: Secrets Manager can't find the specified secret.",
        )
    if value_from.startswith("arn:"):
        return "ssm:GetParameters", value_from, None
    return "ssm:GetParameters", f"arn:aws:ssm:{region}:{account}:parameter/{value_from.lstrip('/')}", None


def refusal(account: str, region: str, td: Any) -> str | None:
    """The stopped reason ECS gives a task of `td` whose secrets its execution role cannot read."""
    wanted = [s["valueFrom"] for c in td.container_definitions for s in c.get("secrets") or []]
    wanted += [
        c["repositoryCredentials"]["credentialsParameter"]
        for c in td.container_definitions
        if (c.get("repositoryCredentials") or {}).get("credentialsParameter")
    ]
    if not wanted:
        return None
    from moto.iam.models import iam_backends

    iam = iam_backends[account]["aws"]
    role_name = str(getattr(td, "execution_role_arn", "") or "").rsplit("/", 1)[-1]
    role = next((r for r in iam.roles.values() if r.name == role_name), None)
    prefix = (
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed:"
    )
    if role is None:
        return f"{prefix} the task has no execution role that ECS can assume"
    statements = _statements(role, iam)
    for value_from in wanted:
        action, arn, missing = _secret_arn(account, region, value_from)
        service = "asm" if action.startswith("secretsmanager") else "ssm"
        if missing:
            return f"{prefix} unable to retrieve secret from {service}: {missing}"
        if not _allowed(statements, action, arn):
            return (
                f"{prefix} unable to retrieve secret from {service}: service call has been retried 1 time(s): "
                f"AccessDeniedException: User: arn:aws:sts::{account}:assumed-role/{role.name}/ecs-agent is not "
                f"authorized to perform: {action} on resource: {arn}"
            )
    return None
