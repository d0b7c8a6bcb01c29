"""YAML text -> `Stack`, or one `ConfigError` carrying every problem of the file, each as
`file:line: path: message`. Nothing here calls AWS."""

from __future__ import annotations

import difflib
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from spotecs import names
from spotecs.config.base import Problems
from spotecs.config.stack import Stack, line_in, split_path
from spotecs.errors import ConfigError


class _LineLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys (YAML silently keeps the last one)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` merge keys are flattened by construct_mapping below
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            continue  # construct_mapping reports it as "found unhashable key", with its line
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _key_lines(node: yaml.Node, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], int]]:
    """Yield (path, line) for every key in the document, so errors can name a line."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            yield path, key_node.start_mark.line + 1
            yield from _key_lines(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = (*prefix, str(i))
            yield path, item.start_mark.line + 1
            yield from _key_lines(item, path)


def model_for(path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that owns the field at `path`, to suggest near names for unknown keys."""
    model: Any = Stack
    for part in path[:-1]:
        if model is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            # inside a dict (services.<name>) or list: keep the value type
            continue
        model = inner_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def inner_model(annotation: Any) -> Any:
    """Peel Optional/list/dict down to a BaseModel class, if there is one."""
    stack = [annotation]
    while stack:
        t = stack.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
        stack.extend(getattr(t, "__args__", ()))
    return None


def _suggestion(loc: tuple[str | int, ...]) -> str | None:
    owner = model_for(loc)
    names = list(owner.model_fields) if owner else []
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    return close[0] if close else None


def _message(err: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        close = _suggestion(loc)
        return f"unknown key (did you mean '{close}'?)" if close else "unknown key"
    if kind == "missing":
        return "required, but missing"
    msg = str(err["msg"])
    if kind in ("value_error", "assertion_error"):
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    elif kind == "string_pattern_mismatch":
        msg = f"'{err.get('input')}' is not valid here (expected {err['ctx']['pattern']})"
    return msg[:1].lower() + msg[1:] if not msg[:2].isupper() else msg


def _problems(e: ValidationError) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """(path, message, is-an-unknown-key) for every error pydantic collected."""
    for err in e.errors():
        # pydantic marks a bad dict key (services.<Name>) with a "[key]" step: the name is the path.
        loc = tuple(p for p in err["loc"] if p != "[key]")
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, Problems):
            for rel, message in cause.problems:
                yield tuple(str(p) for p in (*loc, *split_path(rel))), message, False
        else:
            yield tuple(str(p) for p in loc), _message(err, loc), err["type"] == "extra_forbidden"


def _errors(e: ValidationError, file: str, lines: dict[tuple[str, ...], int]) -> list[ConfigError]:
    found = list(_problems(e))
    # A typo'd required key shows both as unknown and as missing: the typo is the useful line.
    guessed = {(*path[:-1], s) for path, _, unknown in found if unknown and (s := _suggestion(path))}
    found = [f for f in found if not (f[1] == "required, but missing" and f[0] in guessed)]
    # An unknown key is the likeliest cause of everything else, so it comes first; then file order.
    found.sort(key=lambda f: (not f[2], line_in(lines, f[0]) or 0))
    unique = dict.fromkeys((".".join(path), message) for path, message, _ in found)
    return [
        ConfigError(message, path=path, file=file, line=line_in(lines, split_path(path))) for path, message in unique
    ]


def parse(text: str, *, file: str = "<stack>") -> Stack:
    """Turn YAML text into a Stack, or raise ConfigError naming every problem's line and field."""
    try:
        root = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"YAML syntax error: {e.problem or e.context}", file=f"{file}{line}") from None
    if data is None:
        raise ConfigError("the file is empty; a stack needs at least 'stack' and 'services'", file=file)
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys (stack, services, ...)", file=file)
    lines = dict(_key_lines(root)) if root is not None else {}
    try:
        stack = Stack.model_validate(data)
    except ValidationError as e:
        raise ConfigError.of(_errors(e, file, lines)) from None
    return stack.located(file, lines)


def check_region(stack: Stack, region: str) -> None:
    """The names that carry the region (IAM roles), once it is known: `--region` or AWS_REGION
    may name another region than the file. Before any AWS call, like every other check."""
    errors = [
        ConfigError(message, path=field, file=stack.file, line=stack.line_of(field))
        for field, message in names.problems(stack, region)
    ]
    if errors:
        raise ConfigError.of(errors)


def load(path: str | Path) -> Stack:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file; pass the stack file with -f FILE", file=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a stack file", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", file=str(p)) from None
    return parse(text, file=str(p))
