"""What every section of the stack file shares: the frozen model base, durations, and the way a
model reports every rule it breaks at once (`Problems`), which the loader spreads into one
`file:line: path: message` each."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# The spot interruption notice: AWS reclaims the instance two minutes after it.
SPOT_NOTICE_SECONDS = 120

# A problem a model finds in itself: (path relative to the model, dotted; message).
Problem = tuple[str, str]


class Problems(ValueError):
    """Every rule a model breaks. pydantic keeps the exception in the error's `ctx`, so the
    loader can report each problem on its own line, at its own path."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" if path else message for path, message in problems))


M = TypeVar("M")


def accept(value: M, problems: Iterable[str], path: str = "") -> M:
    """`value` when a formats check found nothing, else every problem at the field."""
    found = [(path, p) for p in problems]
    if found:
        raise Problems(found)
    return value


def enforce(model: M, problems: Iterable[Problem]) -> M:
    found = list(problems)
    if found:
        raise Problems(found)
    return model


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION = re.compile(r"^\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def parse_duration(value: Any) -> Any:
    """`90`, `"90s"`, `"1m"`, `"1m30s"` -> seconds. Anything else is left for pydantic to reject."""
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return int(text)
        m = _DURATION.match(text)
        if m and (m.group(1) or m.group(2)):
            return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
        raise ValueError(f"'{value}' is not a duration: use seconds (90) or e.g. '1m', '90s', '1m30s'")
    return value


Seconds = Annotated[int, BeforeValidator(parse_duration), Field(ge=0)]

# Keys that would put registry credentials in plain text into user data or a task definition
# (readable by anyone who can describe them).
CREDENTIAL_KEYS = {"ECS_ENGINE_AUTH_DATA", "ECS_ENGINE_AUTH_TYPE"}
CREDENTIALS_HINT = (
    "registry credentials must not go into user data; store them in Secrets "
    "Manager and set services.<name>.repository_credentials to the secret's ARN"
)
