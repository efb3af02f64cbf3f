"""Error definitions: everything documented about one code, checked when it is declared."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Required, TypedDict

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from errorkit._common.exceptions import InvalidDetails

#: Details given as `{"name": type}` (required) or `{"name": (type, default)}`, or a model.
DetailsSpec = Mapping[str, Any] | type[BaseModel] | None

_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Keyword arguments every error class takes besides its details.
RESERVED_DETAIL_NAMES = frozenset({"message", "headers", "retry_after"})


class _NoDetails(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


@dataclass(frozen=True, eq=False)
class ErrorDefinition:
    """Everything documented about one error code."""

    code: str
    status: int
    message: str
    when: str = ""
    fix: str = ""
    group: str = "general"
    doc_url: str | None = None
    title: str = ""
    retryable: bool = False
    retry_after: int | None = None
    details: type[BaseModel] = field(default=_NoDetails)

    @property
    def detail_fields(self) -> dict[str, bool]:
        """Detail names, each mapped to whether it is required."""
        return {name: f.is_required() for name, f in self.details.model_fields.items()}

    def validate_details(self, given: dict[str, Any]) -> dict[str, Any]:
        """Check `given` against the schema; returns the JSON-ready details (None dropped)."""
        if not given and self.details is _NoDetails:
            return {}
        try:
            model = self.details.model_validate(given)
        except ValidationError as exc:
            raise InvalidDetails(self.code, exc) from None
        return model.model_dump(mode="json", exclude_none=True)

    def doc_url_from(self, template: str | None) -> str | None:
        """Its own doc URL, else `template` (`.../errors/{code}`) filled with its code, else None."""
        if self.doc_url is not None:
            return self.doc_url
        return template.replace("{code}", self.code) if template else None

    def format_message(self, details: Mapping[str, Any]) -> str:
        if "{" not in self.message:
            return self.message
        return self.message.format_map(_Defaulting(details))

    def describe(self) -> tuple[Any, ...]:
        """A comparable summary: two definitions with the same summary are the same error."""
        schema = tuple(
            (name, repr(f.annotation), f.is_required(), repr(f.default))
            for name, f in self.details.model_fields.items()
        )

        return (
            self.status,
            self.message,
            self.when,
            self.fix,
            self.group,
            self.doc_url,
            self.title,
            self.retryable,
            self.retry_after,
            schema,
        )


class _Defaulting(dict[str, Any]):
    """Leaves an optional detail that was not given as an empty string in messages."""

    def __missing__(self, key: str) -> str:
        return ""


class DefinitionFields(TypedDict, total=False):
    """What `define()` takes besides the code (`make_definition`'s keywords), for the signatures that pass them on."""

    status: Required[int]
    message: Required[str]
    when: str
    fix: str
    details: DetailsSpec
    group: str
    doc_url: str | None
    title: str | None
    retryable: bool | None
    retry_after: int | None


def make_definition(
    code: str,
    *,
    status: int,
    message: str,
    when: str = "",
    fix: str = "",
    details: DetailsSpec = None,
    group: str = "general",
    doc_url: str | None = None,
    title: str | None = None,
    retryable: bool | None = None,
    retry_after: int | None = None,
) -> ErrorDefinition:
    """Build a definition, rejecting anything that would render garbage later."""
    if not _CODE.fullmatch(code):
        raise ValueError(f"error code {code!r} must be snake_case (a-z, 0-9 and single underscores)")
    if not 400 <= status <= 599:
        raise ValueError(f"error {code!r}: status {status} is not an HTTP error status (400-599)")

    model = _details_model(code, details)
    reserved = RESERVED_DETAIL_NAMES.intersection(model.model_fields)
    if reserved:
        raise ValueError(
            f"error {code!r}: {', '.join(sorted(reserved))} cannot be detail names "
            "(they are keyword arguments of every error: message=, headers=, retry_after=)"
        )

    for _, name, _, _ in string.Formatter().parse(message):
        if name is None:
            continue
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if root not in model.model_fields:
            raise ValueError(
                f"error {code!r}: message refers to {{{name}}}, which is not one of its details "
                f"({', '.join(model.model_fields) or 'none declared'})"
            )

    return ErrorDefinition(
        code=code,
        status=status,
        message=message,
        when=when,
        fix=fix,
        group=group,
        doc_url=doc_url,
        title=title if title is not None else code.replace("_", " ").capitalize(),
        retryable=(status in _RETRYABLE_STATUSES) if retryable is None else retryable,
        retry_after=retry_after,
        details=model,
    )


def _details_model(code: str, details: DetailsSpec) -> type[BaseModel]:
    if details is None:
        return _NoDetails
    if isinstance(details, type) and issubclass(details, BaseModel):
        return details

    fields: dict[str, Any] = {}
    for name, spec in details.items():
        fields[name] = spec if isinstance(spec, tuple) else (spec, ...)
    return create_model(
        f"{class_name(code)}Details",
        __config__=ConfigDict(extra="forbid", strict=True),
        **fields,
    )


def class_name(code: str) -> str:
    """`quota_exceeded` -> `QuotaExceeded`."""
    return "".join(part.capitalize() for part in code.split("_"))
