"""`network:` the VPC and subnets (default: the account's default VPC and all its subnets)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field, model_validator

from spotecs.config.base import Model, Problem, enforce


class Network(Model):
    vpc_id: str | None = Field(
        None, pattern=r"^vpc-[0-9a-f]+$", description="VPC to use; default: the account's default VPC."
    )
    subnets: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]] = Field(
        default_factory=list,
        description="Subnets for instances and the load balancer; default: every subnet of the VPC.",
    )

    @model_validator(mode="after")
    def _rules(self) -> Network:
        return enforce(self, self._problems())

    def _problems(self) -> Iterator[Problem]:
        if self.subnets and not self.vpc_id:
            yield "subnets", "set network.vpc_id too when naming subnets"
