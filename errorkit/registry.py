"""Error definitions and the registry that holds them; `define()` returns exception classes."""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from errorkit.errors import APIError, DuplicateCode, InvalidDetails, UnknownCode

#: Details given as `{"name": type}` (required) or `{"name": (type, default)}`, or a model.
DetailsSpec = Mapping[str, Any] | type[BaseModel] | None

_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


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
        retryable=status in _RETRYABLE_STATUSES if retryable is None else retryable,
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
        f"{_class_name(code)}Details",
        __config__=ConfigDict(extra="forbid", strict=True),
        **fields,
    )


def _class_name(code: str) -> str:
    return "".join(part.capitalize() for part in code.split("_"))


def error_class(definition: ErrorDefinition) -> type[APIError]:
    """The exception class of a definition (what `define()` returns)."""
    return type(
        _class_name(definition.code),
        (APIError,),
        {"definition": definition, "__module__": "errorkit.defined", "__doc__": definition.when},
    )


class Registry:
    """Error classes by code, and which code stands for a bare HTTP status.

    A registry can name the format and doc URL template of the document it
    reproduces; the built-in catalogs do, so one line selects a document.
    """

    def __init__(
        self,
        name: str,
        *,
        include: Iterable[Registry] = (),
        format: str | None = None,
        doc_url: str | None = None,
    ) -> None:
        self.name = name
        self.format = format
        self.doc_url = doc_url
        self._classes: dict[str, type[APIError]] = {}
        self._origin: dict[str, str] = {}
        self._status_codes: dict[int, str] = {}
        for other in include:
            self.include(other)

    def define(self, code: str, **spec: Any) -> type[APIError]:
        """Declare a code; see `make_definition` for the accepted fields."""
        return self.add(error_class(make_definition(code, **spec)))

    def add(self, cls: type[APIError], *, origin: str | None = None) -> type[APIError]:
        """Register a class; the same definition again is a no-op, a different one an error."""
        definition = cls.definition
        existing = self._classes.get(definition.code)
        if existing is not None:
            if existing.definition.describe() == definition.describe():
                return existing
            raise DuplicateCode(_duplicate_message(existing.definition, definition, self._origin[definition.code]))
        self._classes[definition.code] = cls
        self._origin[definition.code] = origin or self.name
        return cls

    def include(self, other: Registry) -> None:
        """Add every code of `other`; its status mapping fills statuses not yet mapped."""
        for code, cls in other._classes.items():
            self.add(cls, origin=other._origin[code])
        for status, code in other._status_codes.items():
            self._status_codes.setdefault(status, code)

    def without(self, *codes: str) -> Registry:
        """A copy of this registry lacking `codes` (for catalogs that redefine them)."""
        copy = Registry(self.name, format=self.format, doc_url=self.doc_url)
        for code, cls in self._classes.items():
            if code not in codes:
                copy.add(cls, origin=self._origin[code])
        copy._status_codes = {s: c for s, c in self._status_codes.items() if c not in codes}
        return copy

    def map_status(self, status: int, code: str) -> None:
        """Use `code` for a bare HTTP `status` (an HTTPException, the router's 404, ...)."""
        self[code]  # must exist
        self._status_codes[status] = code

    def for_status(self, status: int) -> type[APIError]:
        """The class that stands for a bare HTTP status."""
        code = self._status_codes.get(status)
        if code is not None:
            return self._classes[code]
        return _fallback_class(status)

    def error(self, code: str, /, **details: Any) -> APIError:
        """An instance of the error `code`, ready to raise."""
        return self[code](**details)

    def __getitem__(self, code: str) -> type[APIError]:
        try:
            return self._classes[code]
        except KeyError:
            close = difflib.get_close_matches(code, self._classes, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownCode(f"no error code {code!r} in registry {self.name!r}{hint}") from None

    def __contains__(self, code: object) -> bool:
        return code in self._classes

    def __iter__(self) -> Iterator[ErrorDefinition]:
        return (cls.definition for cls in self._classes.values())

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"<Registry {self.name!r}: {len(self)} codes>"


def _duplicate_message(old: ErrorDefinition, new: ErrorDefinition, origin: str) -> str:
    names = ("status", "message", "when", "fix", "group", "doc_url", "title", "retryable", "retry_after", "details")
    differences = [
        f"{name} {theirs!r} here vs {ours!r} there"
        for name, ours, theirs in zip(names, old.describe(), new.describe(), strict=True)
        if ours != theirs
    ]
    return (
        f"error code {new.code!r} is already defined by {origin!r} with a different definition "
        f"({'; '.join(differences)}); pick another code or declare it identically"
    )


_FALLBACKS: dict[int, type[APIError]] = {}


def _fallback_class(status: int) -> type[APIError]:
    """A plain class for a status no registry maps (e.g. 418), named after its phrase."""
    cls = _FALLBACKS.get(status)
    if cls is None:
        try:
            phrase = HTTPStatus(status).phrase
            code = re.sub(r"[^a-z0-9]+", "_", phrase.lower().replace("'", "")).strip("_")
        except ValueError:
            phrase, code = "HTTP Error", f"http_{status}"
        cls = _FALLBACKS[status] = error_class(make_definition(code, status=status, message=phrase))
    return cls
