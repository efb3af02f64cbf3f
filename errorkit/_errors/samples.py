"""Sample details for a definition, made from its details' types (for reference pages and OpenAPI examples)."""

from __future__ import annotations

import enum
import types
import typing
import uuid
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from errorkit._common.exceptions import InvalidDetails
from errorkit._errors.definition import ErrorDefinition
from errorkit._errors.errors import APIError
from errorkit._errors.formats import Issue

#: A validation issue as the handlers report them, for codes whose details carry `issues`.
SAMPLE_ISSUE: Issue = {"loc": ["body", "name"], "msg": "Field required", "type": "missing"}
_SAMPLE_TIME = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def sample_details(definition: ErrorDefinition) -> dict[str, Any]:
    """Values for every detail of `definition` (optional ones included): a field's first
    `examples=` entry, else its default, else a value made from its type. They may still fail
    a field's constraints (`ge=`, `pattern=`): `sample_error` renders them unvalidated then."""
    return {name: _example(name, field) for name, field in definition.details.model_fields.items()}


def sample_error(cls: type[APIError]) -> APIError:
    """An error of class `cls` with sample details (unvalidated when they do not pass its schema)."""
    details = sample_details(cls.definition)
    try:
        return cls(**details)
    except InvalidDetails:
        return cls(_details=to_jsonable_python(details))


def _example(name: str, field: FieldInfo) -> Any:
    if field.examples:
        return field.examples[0]
    if not field.is_required() and field.default is not None:
        return field.default
    return _sample(name, field.annotation)


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
        if issubclass(annotation, BaseModel):
            return {n: _example(n, f) for n, f in annotation.model_fields.items()}
        if issubclass(annotation, uuid.UUID):
            return uuid.UUID(int=1)
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
