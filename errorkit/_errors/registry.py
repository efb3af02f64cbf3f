"""The registry: error classes by code, and which code stands for a bare HTTP status."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Any, Unpack

from errorkit._common.exceptions import DuplicateCode, UnknownCode
from errorkit._errors.definition import DefinitionFields, ErrorDefinition, make_definition
from errorkit._errors.errors import APIError, error_class


class Registry:
    """Error classes by code, and which code stands for a bare HTTP status.

    A registry can name its format and doc URL template; the built-in catalogs do, so that one
    line (`ErrorKit(catalog=catalogs.ENVELOPE_API)`) answers as the reference they reproduce.
    `fallback` answers a code or a bare status this registry lacks (`registry["validation_error"]`,
    a crash's 500), without making its codes this registry's: they are not listed, and defining one
    of them here is no duplicate.
    """

    def __init__(
        self,
        name: str,
        *,
        include: Iterable[Registry] = (),
        format: str | None = None,
        doc_url: str | None = None,
        fallback: Registry | None = None,
    ) -> None:
        self.name = name
        self.format = format
        self.doc_url = doc_url
        self.fallback = fallback
        self._classes: dict[str, type[APIError]] = {}
        self._origin: dict[str, str] = {}
        self._own: set[str] = set()  # the codes added here without an origin: `define()`d on this registry
        self._status_codes: dict[int, str] = {}

        for other in include:
            self.include(other)

    def define(self, code: str, **fields: Unpack[DefinitionFields]) -> type[APIError]:
        """Declare a code and return its exception class; the fields are `ErrorKit.define()`'s."""
        return self.add(error_class(make_definition(code, **fields)))

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
        if origin is None:
            self._own.add(definition.code)
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
                copy.add(cls, origin=None if code in self._own else self._origin[code])
        copy._status_codes = {s: c for s, c in self._status_codes.items() if c not in codes}
        return copy

    def own_codes(self) -> frozenset[str]:
        """The codes defined on this registry itself (`define()`, `add()` without an origin), not those
        `include()` brought: a kit's own codes are those `kit.define()` added, whatever its catalog's name."""
        return frozenset(self._own)

    def map_status(self, status: int, code: str) -> None:
        """Use `code` for a bare HTTP `status` (an HTTPException, the router's 404, ...)."""
        self[code]  # must exist
        self._status_codes[status] = code

    def for_status(self, status: int) -> type[APIError]:
        """The class that stands for a bare HTTP status."""
        code = self._status_codes.get(status)
        if code is not None:
            return self._classes[code]
        if self.fallback is not None:
            return self.fallback.for_status(status)
        return _fallback_class(status)

    def error(self, code: str, /, **details: Any) -> APIError:
        """An instance of the error `code`, ready to raise."""
        return self[code](**details)

    def status_error(
        self,
        status: int,
        *,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> APIError:
        """The error for a bare HTTP status (an `HTTPException`, the router's 404, a stage's 413).

        Its details are not validated: the code's declared details may be required, but a
        bare status carries none (or, from FastAPI, a JSON `detail` kept as data).
        """
        cls = self.for_status(status)
        return cls(message=message, headers=headers, retry_after=retry_after, _details=details or {})

    def __getitem__(self, code: str) -> type[APIError]:
        try:
            return self._classes[code]
        except KeyError:
            if self.fallback is not None and code in self.fallback:
                return self.fallback[code]
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
