"""The exception apps raise (`APIError`) and the exceptions errorkit raises at them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

if TYPE_CHECKING:
    from errorkit.registry import ErrorDefinition


class APIError(Exception):
    """An error of the API's catalog, raised by a handler and rendered by the kit.

    Classes come from `define()` (one class per code); instances validate their
    details on construction, so a wrong or missing detail fails where it is raised.
    """

    definition: ClassVar[ErrorDefinition]

    def __init__(self, **details: Any) -> None:
        definition = getattr(type(self), "definition", None)
        if definition is None:
            raise TypeError("APIError is a base class: raise a class made by define(), or kit.error(code, **details)")
        self.details: dict[str, Any] = definition.validate_details(details)
        self.message: str = definition.format_message(self.details)
        self.headers: dict[str, str] = {}
        self.retry_after: int | None = _retry_after(definition, self.details)
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return self.definition.code

    @property
    def status(self) -> int:
        return self.definition.status

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, details={self.details!r})"


def _retry_after(definition: ErrorDefinition, details: dict[str, Any]) -> int | None:
    """Seconds a client should wait: from the details when they say, else the default."""
    seconds: float | None = details.get("retry_after_seconds", definition.retry_after)
    if seconds is None or not definition.retryable:
        return None
    return max(1, math.ceil(seconds))


class InvalidDetails(TypeError):
    """Details given to an error do not match its declared schema (a bug in the app)."""

    def __init__(self, code: str, error: ValidationError) -> None:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(details)'}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        super().__init__(f"invalid details for error {code!r}: {problems}")
        self.code = code


class DuplicateCode(ValueError):
    """A code was declared twice with different definitions."""


class UnknownCode(LookupError):
    """`kit.error(code)` was given a code the registry does not hold."""
