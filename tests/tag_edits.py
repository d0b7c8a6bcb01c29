"""One edit of the stack file's `tags:` for each kind's test (issue 10): a tag changed, one added,
one dropped, with values that cannot pass by accident. After it, the resource must hold exactly
the new set (plus the stack's own tags), reached with the kind's tag and untag calls only."""

from __future__ import annotations

from spotecs.engine.model import Action, Plan

BEFORE = {"team": "payments", "cost-center": "cc-17"}
AFTER = {"team": "billing", "owner": "ops"}


def planned_as_tags_only(the_plan: Plan, key: str) -> None:
    """The step `key` is an in-place UPDATE of its tags and of nothing else."""
    change = the_plan.get(key)
    assert change.action is Action.UPDATE, change.action
    assert change.changed_fields() == {"tags"}, change.diffs


def holds_the_edit(tags: dict[str, str], stack: str = "demo") -> None:
    """What AWS holds after the edit: the changed and the added tag, not the dropped one."""
    assert tags["team"] == "billing" and tags["owner"] == "ops", tags
    assert "cost-center" not in tags, tags
    assert tags["spotecs:stack"] == stack and tags["spotecs:managed"] == "true", tags
