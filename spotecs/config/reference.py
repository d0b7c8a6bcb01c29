"""The stack file's reference, generated from the models: the JSON Schema (for editors) and the
Markdown table in the README (`spotecs schema --markdown`; a test keeps the README in sync)."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel

from spotecs.config.base import parse_duration
from spotecs.config.loader import inner_model
from spotecs.config.stack import Stack


def json_schema() -> dict[str, Any]:
    schema = Stack.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "spotecs stack file"
    return schema


def _type_name(annotation: Any) -> str:
    """A short, human name for a field's type: `int`, `duration`, `list of str`, `a \\| b`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        meta = args[1:]
        if any(getattr(m, "func", None) is parse_duration for m in meta):
            return "duration (s, or 1m, 90s)"
        return _type_name(args[0])
    if origin is Literal:
        return " \\| ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} → {_type_name(args[1])}"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def reference_rows(model: type[BaseModel] = Stack, prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(path, type, default, description) for every field of the stack file, depth first."""
    for name, f in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = inner_model(f.annotation)
        origin = getattr(f.annotation, "__origin__", None)
        if f.is_required():
            default = "required"
        elif f.default_factory is not None:
            made = f.default_factory()  # type: ignore[call-arg]
            default = "" if isinstance(made, BaseModel) else json.dumps(made, default=lambda m: m.model_dump())
        else:
            default = json.dumps(f.default)
        if inner is not None and origin is dict:
            yield path, f"mapping of name → {inner.__name__}", default, f.description or ""
            yield from reference_rows(inner, f"{path}.<name>.")
        elif inner is not None and origin is list:
            yield path, f"list of {inner.__name__}", default, f.description or ""
            yield from reference_rows(inner, f"{path}[].")
        elif inner is not None:
            if default and default not in ("", "null"):
                yield path, inner.__name__, default, f.description or ""
            yield from reference_rows(inner, f"{path}.")
        elif any(getattr(m, "func", None) is parse_duration for m in f.metadata):
            yield path, "duration (s, or 1m, 90s)", default, f.description or ""
        else:
            yield path, _type_name(f.annotation), default, f.description or ""


def reference_markdown() -> str:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for path, kind, default, doc in reference_rows():
        cells = [f"`{path}`", kind, default.replace("|", "\\|"), doc.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
