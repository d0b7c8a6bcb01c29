"""engine/model.py: what a Plan says about its changes."""

from __future__ import annotations

from spotecs.engine.model import Action, Change, Plan


def test_plan_summary_counts() -> None:
    p = Plan(
        [
            Change(str(i), "thing", str(i), a)
            for i, a in enumerate(
                [
                    Action.CREATE,
                    Action.CREATE,
                    Action.UPDATE,
                    Action.NEW_VERSION,
                    Action.REPLACE,
                    Action.DELETE,
                    Action.NOOP,
                ]
            )
        ]
    )
    assert p.counts() == {"add": 2, "change": 2, "replace": 1, "destroy": 1}
    assert p.summary() == "Plan: 2 to add, 2 to change, 1 to replace, 1 to destroy."
    assert p.has_changes
    assert not Plan([Change("a", "thing", "a", Action.NOOP)]).has_changes
    assert p.get("4").action is Action.REPLACE
