"""render.py: how a plan is shown (the reason of a consequential replacement, structured values
field by field, values whole, notes of values AWS owns)."""

from __future__ import annotations

import io

from rich.console import Console

from spotecs.engine.model import Action, Change, Plan
from spotecs.render import plan_json, plan_text


def test_the_reason_is_shown_in_the_plan() -> None:
    change = Change("listeners", "listeners", "demo :80", Action.REPLACE, reason="load balancer replaced")
    out = io.StringIO()
    plan_text(Console(file=out, width=200, no_color=True), Plan([change]), "demo", "us-east-1")
    assert "-/+ listeners demo :80 (replace: load balancer replaced)" in out.getvalue()
    assert '"reason": "load balancer replaced"' in plan_json(Plan([change]))
