"""A newer ECS-optimized AMI, published on demand (tests and demos of `spotecs refresh-ami`).

moto serves the `/aws/service/ecs/optimized-ami/...` SSM parameters from a fixed snapshot and
refuses PutParameter on them, as AWS does: AWS publishes a new release under the same
parameter name, as a new parameter version
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/retrieve-ecs-optimized_AMI.html).
`publish_ami` does the same here: it registers the next release of the alias's image (a copy of
the current one with the next build date in its name and a later creation date) and points the
alias's `image_id` parameter at it, version + 1.

Over HTTP (a running `spotecs sandbox`), `POST /_spotecs/publish-ami?alias=al2023&region=...`
does the same and answers `{"image_id": ..., "name": ...}` (see server.py)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from spotecs.config import AMI_ALIASES

DEFAULT_ACCOUNT = "123456789012"  # moto's default account, the one dummy credentials map to


def publish_ami(alias: str = "al2023", region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT) -> str:
    """Publish the next release of `alias`'s ECS-optimized image; returns the new image id."""
    from moto.backends import get_backend
    from moto.ec2.utils import random_ami_id
    from moto.ssm.models import Parameter

    if alias not in AMI_ALIASES:
        raise ValueError(f"unknown AMI alias {alias!r}: one of {', '.join(AMI_ALIASES)}")
    name = AMI_ALIASES[alias]
    ssm: Any = get_backend("ssm")[account_id][region]
    ec2: Any = get_backend("ec2")[account_id][region]
    ssm._parameters._check_loading_status(name)  # moto loads the snapshot on first read
    versions: list[Any] = ssm._parameters[name]
    if not versions:
        raise ValueError(f"the sandbox has no {name} in {region}")
    current = versions[-1]
    # The newest release that still exists (a test may have deregistered the latest).
    source = next((ec2.amis[v.value] for v in reversed(versions) if v.value in ec2.amis), None)
    if source is None:
        raise ValueError(f"no image of {name} exists any more in {region}")
    image = copy.copy(source)  # same architecture, root device and block devices
    image.id = random_ami_id()
    image.name = _next_name(source.name or alias)
    image.creation_date = _later(source.creation_date)
    ec2.amis[image.id] = image
    now = datetime.now(UTC)
    versions.append(
        Parameter(  # type: ignore[abstract]
            account_id=account_id,
            name=name,
            value=image.id,
            parameter_type=current.parameter_type,
            description=current.description,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=now,
            version=int(current.version) + 1,
            data_type=current.data_type,
        )
    )
    return str(image.id)


def _next_name(name: str) -> str:
    """`...-hvm-2023.0.20260922-kernel-6.1-x86_64` -> `...-hvm-2023.0.20260923-kernel-6.1-x86_64`."""
    match = re.search(r"(?<!\d)(20\d{6})(?!\d)", name)
    if not match:
        return f"{name}-next"
    day = datetime.strptime(match.group(1), "%Y%m%d") + timedelta(days=1)
    return f"{name[: match.start(1)]}{day:%Y%m%d}{name[match.end(1) :]}"


def _later(created: Any) -> datetime:
    """A creation date after `created` and not before now (EC2 orders releases by it)."""
    now = datetime.now(UTC).replace(microsecond=0)
    if isinstance(created, str):
        created = datetime.fromisoformat(created.replace("Z", "+00:00"))
    if isinstance(created, datetime):
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return max(now, created + timedelta(seconds=1))
    return now
