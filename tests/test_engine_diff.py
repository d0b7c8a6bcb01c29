"""engine/diff.py: the field diff and the one pure function choosing an action (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from spotecs.engine.diff import choose_action, diff
from spotecs.engine.model import Action, Unknown, Whole, has_unknown

U = Unknown("x.id")

DIFFS = [
    ("equal", {"a": 1}, {"a": 1}, []),
    ("changed-scalar", {"a": 2}, {"a": 1}, [("a", 1, 2)]),
    ("missing-in-current", {"a": 1}, {}, [("a", None, 1)]),
    ("current-extras-are-outputs", {"a": 1}, {"a": 1, "id": "i-1", "arn": "arn:x"}, []),
    ("metadata-keys-ignored", {"a": 1, "_note": "x"}, {"a": 1, "_owned": False}, []),
    (
        "nested-key-by-key",
        {"hc": {"path": "/", "interval": 30}},
        {"hc": {"path": "/x", "interval": 30}},
        [("hc.path", "/x", "/")],
    ),
    ("nested-two-changes", {"n": {"a": 1, "b": 2}}, {"n": {"a": 0, "b": 0}}, [("n.a", 0, 1), ("n.b", 0, 2)]),
    ("list-as-a-whole", {"l": [1, 2]}, {"l": [2, 1]}, [("l", [2, 1], [1, 2])]),
    ("list-equal", {"l": [{"k": 1}]}, {"l": [{"k": 1}]}, []),
    (
        "list-of-dicts-extra-key-differs",
        {"l": [{"k": 1}]},
        {"l": [{"k": 1, "x": 2}]},
        [("l", [{"k": 1, "x": 2}], [{"k": 1}])],
    ),
    ("none-matches-empty", {"a": None, "b": None, "c": None, "d": None}, {"a": "", "b": [], "c": {}}, []),
    ("none-vs-value", {"a": None}, {"a": 30}, [("a", 30, None)]),
    ("zero-is-not-none", {"a": None}, {"a": 0}, [("a", 0, None)]),
    ("dict-vs-scalar", {"a": {"x": 1}}, {"a": None}, [("a", None, {"x": 1})]),
]


@pytest.mark.parametrize(("desired", "current", "expected"), [d[1:] for d in DIFFS], ids=[d[0] for d in DIFFS])
def test_diff(desired: dict[str, Any], current: dict[str, Any], expected: list[tuple[str, Any, Any]]) -> None:
    assert [(d.path, d.old, d.new) for d in diff(desired, current)] == expected


def test_unknown_is_always_a_change() -> None:
    (d,) = diff({"vpc": U}, {"vpc": "vpc-1"})
    assert d.path == "vpc" and d.new is U
    assert diff({"l": [U]}, {"l": ["x"]})[0].path == "l"
    assert U != U  # an unknown value never equals anything, itself included
    assert repr(U) == "(known after apply)"
    assert has_unknown({"a": [{"b": U}]}) and not has_unknown({"a": [{"b": 1}]})


# (id, desired, current, replace_on, versioned, action, forced paths)
CHOICES = [
    ("absent-create", {"a": 1}, None, (), False, Action.CREATE, []),
    ("absent-nothing-wanted", None, None, (), False, Action.NOOP, []),
    ("wanted-gone-delete", None, {"a": 1}, (), False, Action.DELETE, []),
    ("equal-noop", {"a": 1}, {"a": 1, "id": "x"}, (), False, Action.NOOP, []),
    ("change-update", {"a": 2}, {"a": 1}, (), False, Action.UPDATE, []),
    ("change-versioned", {"a": 2}, {"a": 1}, (), True, Action.NEW_VERSION, []),
    ("replace-field", {"a": 2, "b": 1}, {"a": 1, "b": 0}, ("a",), False, Action.REPLACE, ["a"]),
    ("replace-wins-over-version", {"a": 2}, {"a": 1}, ("a",), True, Action.REPLACE, ["a"]),
    ("nested-replace-by-top-field", {"n": {"x": 2}}, {"n": {"x": 1}}, ("n",), False, Action.REPLACE, ["n.x"]),
    ("other-field-no-replace", {"a": 1, "b": 2}, {"a": 1, "b": 1}, ("a",), False, Action.UPDATE, []),
    ("unknown-update", {"a": U}, {"a": "x"}, (), False, Action.UPDATE, []),
    ("unknown-in-replace-field", {"a": U}, {"a": "x"}, ("a",), False, Action.REPLACE, ["a"]),
]


@pytest.mark.parametrize(
    ("desired", "current", "replace_on", "versioned", "action", "forced"),
    [c[1:] for c in CHOICES],
    ids=[c[0] for c in CHOICES],
)
def test_choose_action(
    desired: dict[str, Any] | None,
    current: dict[str, Any] | None,
    replace_on: tuple[str, ...],
    versioned: bool,
    action: Action,
    forced: list[str],
) -> None:
    got, diffs = choose_action(desired, current, replace_on, versioned)
    assert got is action
    assert [d.path for d in diffs if d.forces_replace] == forced


def test_whole_dict_reports_a_key_only_aws_holds() -> None:
    want = {"tags": Whole({"team": "billing"})}
    have = {"tags": {"team": "billing", "cost-center": "cc-17"}}
    assert [(d.path, d.old, d.new) for d in diff(want, have)] == [("tags", have["tags"], want["tags"])]
    # a plain nested dict is compared by the file's keys only: AWS's extra facts are no change
    assert diff({"hc": {"path": "/"}}, {"hc": {"path": "/", "matcher": "200"}}) == []
    assert diff(want, {"tags": {"team": "billing"}}) == []


def test_versioned_step_changes_only_its_tags_in_place() -> None:
    have = {"image": "nginx:1", "tags": {"team": "payments"}}
    tags_only = {"image": "nginx:1", "tags": Whole({"team": "billing"})}
    assert choose_action(tags_only, have, versioned=True)[0] is Action.UPDATE
    both = {"image": "nginx:2", "tags": Whole({"team": "billing"})}
    assert choose_action(both, have, versioned=True)[0] is Action.NEW_VERSION
