"""Sample details for a definition, made from its details' types (for reference pages and OpenAPI examples)."""

from __future__ import annotations

import enum
import types
import typing
from datetime import UTC, date, datetime
from typing import Any

from errorkit._definition import ErrorDefinition

#: A validation issue as the handlers report them, for codes whose details carry `issues`.
SAMPLE_ISSUE = {"loc": ["body", "name"], "msg": "Field required", "type": "missing"}
_SAMPLE_TIME = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def sample_details(definition: ErrorDefinition) -> dict[str, Any]:
    """Python values for every detail of `definition` (optional ones included) that its schema accepts."""
    return {name: _sample(name, field.annotation) for name, field in definition.details.model_fields.items()}


def _sample(name: str, annotation: Any) -> Any:
    if name == "issues":
        return [dict(SAMPLE_ISSUE)]
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in arguments if a is not type(None)]
        return _sample(name, present[0]) if present else None
    if origin is typing.Literal:
        return arguments[0]
    if origin in (list, tuple, set, frozenset):
        return [_sample(name, arguments[0] if arguments else str)]
    if origin is dict or annotation is dict:
        return {}
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return next(iter(annotation))
        if issubclass(annotation, bool):
            return True
        if issubclass(annotation, int):
            return 1
        if issubclass(annotation, float):
            return 1.0
        if issubclass(annotation, datetime):
            return _SAMPLE_TIME
        if issubclass(annotation, date):
            return _SAMPLE_TIME.date()
    return f"<{name}>"
