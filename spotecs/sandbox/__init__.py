"""A local AWS sandbox: moto's server plus a simulated ECS agent.

moto is an optional extra (``pip install 'spotecs[sandbox]'``), so nothing here imports it
at import time: ``Sandbox`` is resolved on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spotecs.sandbox.agent import SimulatedAgent, TickSummary
    from spotecs.sandbox.server import Sandbox

__all__ = ["Sandbox", "SimulatedAgent", "TickSummary"]


def __getattr__(name: str) -> Any:
    # PEP 562 lazy export: importing spotecs.sandbox must stay cheap and moto-free.
    if name == "Sandbox":
        from spotecs.sandbox.server import Sandbox

        return Sandbox
    if name in ("SimulatedAgent", "TickSummary"):
        from spotecs.sandbox import agent

        return getattr(agent, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
