"""Field-level diff and the one pure function that chooses a step's action."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from spotecs.engine.model import Action, FieldDiff, Unknown, Whole

# Fields a versioned resource changes in place, without a new version: AWS tags the launch
# template, or the task definition revision, not its content.
IN_PLACE = frozenset({"tags"})


def diff(desired: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[FieldDiff]:
    """Differences for the keys of `desired` only: `current` may carry extra facts (ids, ARNs)
    that are outputs, not settings. Nested dicts are compared key by key (a Whole one with its
    keys: a key only AWS holds is a change); lists as a whole."""
    out: list[FieldDiff] = []
    for key, want in desired.items():
        if key.startswith("_"):
            continue
        path = f"{prefix}{key}"
        have = current.get(key)
        if isinstance(want, dict) and isinstance(have, dict) and not isinstance(want, Unknown | Whole):
            out.extend(diff(want, have, prefix=f"{path}."))
        elif not _equal(want, have):
            out.append(FieldDiff(path, have, want))
    return out


def _equal(want: Any, have: Any) -> bool:
    if isinstance(want, Unknown):
        return False
    if isinstance(want, list) and isinstance(have, list):
        return len(want) == len(have) and all(_equal(w, h) for w, h in zip(want, have, strict=True))
    if isinstance(want, dict) and isinstance(have, dict):
        return not diff(want, have) and want.keys() == have.keys()
    if want is None and have in (None, "", [], {}):
        return True
    return bool(want == have)


def choose_action(
    desired: dict[str, Any] | None,
    current: dict[str, Any] | None,
    replace_on: Collection[str] = (),
    versioned: bool = False,
) -> tuple[Action, list[FieldDiff]]:
    """Terraform's getAction: absent -> create; wanted gone -> delete; equal -> no-op;
    a change to a field that cannot be updated in place -> replace; versioned -> new version
    (unless only IN_PLACE fields change); else update."""
    if desired is None:
        return (Action.DELETE, []) if current is not None else (Action.NOOP, [])
    if current is None:
        return Action.CREATE, []
    diffs = diff(desired, current)
    if not diffs:
        return Action.NOOP, []
    marked = [FieldDiff(d.path, d.old, d.new, d.path.split(".")[0] in replace_on) for d in diffs]
    if any(d.forces_replace for d in marked):
        return Action.REPLACE, marked
    new_version = versioned and any(d.path.split(".")[0] not in IN_PLACE for d in marked)
    return (Action.NEW_VERSION if new_version else Action.UPDATE), marked
