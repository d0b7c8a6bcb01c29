"""Read the ECS agent configuration out of an instance's user data, like the real agent."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

# Matches `echo ECS_CLUSTER=x >> /etc/ecs/ecs.config`, `echo "ECS_CLUSTER=x" >> ...`,
# `export ECS_CLUSTER=x` and plain `ECS_CLUSTER=x` lines (heredocs, cloud-init write_files).
_ECS_LINE = re.compile(r"""^\s*(?:echo\s+(?:-e\s+)?|export\s+)?["']?(ECS_[A-Z0-9_]+)=["']?([^"'\s>]*)""")


def decode_user_data(raw: Any) -> str:
    """Return user data as text; moto stores it as Base64EncodedString, str or bytes."""
    if raw is None:
        return ""
    if not isinstance(raw, str | bytes) and callable(getattr(raw, "decode", None)):
        return str(raw.decode())  # moto.core.types.Base64EncodedString
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        # Not base64: assume it is already the script itself.
        return data.decode("utf-8", errors="replace")


def parse_ecs_config(script: str) -> dict[str, str]:
    """ECS_* settings written by the script; later lines win, as in /etc/ecs/ecs.config."""
    config: dict[str, str] = {}
    for line in script.splitlines():
        match = _ECS_LINE.match(line)
        if match and match.group(2):
            config[match.group(1)] = match.group(2)
    return config
