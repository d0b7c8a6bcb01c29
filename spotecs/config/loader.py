"""YAML text -> `Stack`, or one `ConfigError` carrying every problem of the file, each as
`file:line: path: message`. Nothing here calls AWS."""

from __future__ import annotations

import difflib
import re
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

# Bounds on what a stack file may be, checked before anything is built from it: a stack file is
# a few kilobytes, a few hundred values, eight levels deep. A YAML alias bomb ("billion laughs")
# is small on disk but expands to billions of values for whatever walks it.
MAX_FILE_BYTES = 1_000_000
MAX_VALUES = 20_000
MAX_DEPTH = 32


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


def _measure(root: yaml.Node) -> tuple[int, int]:
    """(values, depth) of the document with every alias expanded, without expanding any: an
    aliased node is measured once and counted each time it is used."""
    seen: dict[int, tuple[int, int]] = {}

    def measure(node: yaml.Node) -> tuple[int, int]:
        if id(node) in seen:
            return seen[id(node)]
        seen[id(node)] = (MAX_VALUES + 1, 0)  # a node that contains itself counts as too many
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        values, depth = 1, 0
        for child in children:
            v, d = measure(child)
            values, depth = min(values + v, MAX_VALUES + 1), max(depth, d)
        seen[id(node)] = (values, depth + 1)
        return seen[id(node)]

    return measure(root)


def _flow_depth_exceeds(text: str, limit: int) -> bool:
    """Whether `[`/`{` nest deeper than `limit` (outside quotes and comments). PyYAML's scanner
    slows down quadratically with flow depth, so this is looked at before it runs."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, quote, comment = 0, "", False
    for c in text:
        if comment:
            comment = c != "\n"
        elif quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#":
            comment = True
        elif c in "[{":
            depth += 1
            if depth > limit:
                return True
        elif c in "]}":
            depth = max(0, depth - 1)
    return False


def _printable(text: str) -> str:
    """Control characters from the file (terminal escapes) shown, never sent to the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _syntax_error(e: yaml.MarkedYAMLError, file: str) -> ConfigError:
    mark = e.problem_mark or e.context_mark
    line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
    problem = str(e.problem or e.context)
    tag = re.match(r"could not determine a constructor for the tag '(.*)'", problem)
    if tag:
        message = f"YAML tag '{tag.group(1)}' is not allowed: a stack file holds plain values only"
    else:
        message = f"YAML syntax error: {problem}"
    return ConfigError(_printable(message), file=f"{file}{line}")


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
    value = err.get("input")
    if kind in ("model_type", "dict_type", "list_type"):
        # pydantic's "valid dictionary or instance of LoadBalancer": the class is ours, not the user's.
        listed = kind == "list_type"
        if value is None:  # `load_balancer:` left with nothing under it once its lines were removed
            return "empty (YAML reads a key with nothing under it as null): write its " + (
                "items under it (or [] for none)" if listed else "settings under it (or {} for none)"
            )
        return f"should be {'a list' if listed else 'a mapping (key: value lines)'}, not {_shape(value)}"
    if kind in ("value_error", "assertion_error"):
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    elif kind == "string_pattern_mismatch":
        msg = f"'{err.get('input')}' is not valid here (expected {err['ctx']['pattern']})"
    elif kind == "string_type" and isinstance(err.get("input"), bool | int | float | None):
        # `cost-center: 1234`, `billable: yes`, `version: 1.10` (read as 1.1): text only when quoted.
        value = err.get("input")
        if value is None:
            what = "empty (null)"
        else:
            what = f"the boolean {str(value).lower()}" if isinstance(value, bool) else f"the number {value}"
        msg = f"{msg}: YAML reads this unquoted value as {what}; write it in quotes"
    return msg[:1].lower() + msg[1:] if not msg[:2].isupper() else msg


def _shape(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    return "a list" if isinstance(value, list) else "a mapping"


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
    unique = dict.fromkeys((_printable(".".join(path)), _printable(message)) for path, message, _ in found)
    return [
        ConfigError(message, path=path, file=file, line=line_in(lines, split_path(path))) for path, message in unique
    ]


def _document(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """The composed document (for lines) and its data, refusing what would be costly to build."""
    too_deep = ConfigError(f"the document is nested deeper than {MAX_DEPTH} levels", file=file)
    if _flow_depth_exceeds(text, MAX_DEPTH):
        raise too_deep
    loader = _LineLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        values, depth = _measure(root)
        if values > MAX_VALUES:
            raise ConfigError(
                f"YAML aliases expand to more than {MAX_VALUES} values; a stack file needs far fewer "
                "(write the repeated values out, or share them with fewer aliases)",
                file=file,
            )
        if depth > MAX_DEPTH:
            raise too_deep
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as e:
        raise _syntax_error(e, file) from None
    except RecursionError:
        raise too_deep from None
    finally:
        loader.dispose()


def parse(text: str, *, file: str = "<stack>") -> Stack:
    """Turn YAML text into a Stack, or raise ConfigError naming every problem's line and field."""
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(f"{len(text)} characters; a stack file is at most {MAX_FILE_BYTES} bytes", file=file)
    root, data = _document(text, file)
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
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                f"is {size / 1e6:.1f} MB; a stack file is at most {MAX_FILE_BYTES / 1e6:.0f} MB", file=str(p)
            )
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file; pass the stack file with -f FILE", file=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a stack file", file=str(p)) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", file=str(p)) from None
    try:
        text = raw[:MAX_FILE_BYTES].decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"cannot read: is not UTF-8 text: byte 0x{raw[e.start]:02x} on line {line}; save it as UTF-8",
            file=str(p),
        ) from None
    return parse(text, file=str(p))
