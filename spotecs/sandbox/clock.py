"""The sandbox's clock: AWS's delays (the 2-minute spot notice, deregistration delays, health
check intervals) divided by a factor, so a spot interruption drill takes seconds, not minutes.

`SPOTECS_SANDBOX_CLOCK=60` (or `Sandbox(clock_factor=60)`) makes one real second stand for one
simulated minute. The default, 1, keeps AWS's real durations. Only the simulations the sandbox
adds (interruptions, draining, target health) follow it; moto's own behaviour is instantaneous.
"""

from __future__ import annotations

import os
import time

FACTOR_ENV = "SPOTECS_SANDBOX_CLOCK"


class SimClock:
    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def now(self) -> float:
        """Real monotonic seconds (deadlines are kept in real time)."""
        return time.monotonic()

    def after(self, simulated_seconds: float) -> float:
        """The real monotonic time at which `simulated_seconds` of AWS time will have passed."""
        return self.now() + simulated_seconds / self.factor


def _factor_from_env() -> float:
    raw = os.environ.get(FACTOR_ENV, "1")
    try:
        factor = float(raw)
    except ValueError:
        raise RuntimeError(f"{FACTOR_ENV}: '{raw}' is not a number (e.g. 60: one real second per minute)") from None
    if factor <= 0:
        raise RuntimeError(f"{FACTOR_ENV}: must be positive, not {raw}")
    return factor


CLOCK = SimClock(_factor_from_env())
