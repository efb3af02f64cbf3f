"""`raises()`: the errors an endpoint or a dependency declares, for the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from errorkit._errors.errors import APIError

F = TypeVar("F", bound=Callable[..., Any])
#: The attribute `raises()` leaves on what it decorates.
RAISES_MARK = "__errorkit_raises__"


def raises(*errors: str | type[APIError]) -> Callable[[F], F]:
    """Declare the errors a route can answer with, by code or class, for its OpenAPI responses.

    Put it under the route decorator (`@app.get(...)` then `@raises("campaign_locked")`), on a
    Starlette endpoint, or on a FastAPI dependency: every route using that dependency declares
    them too. The function is returned unchanged, with the codes noted on it.
    """
    for error in errors:
        if not isinstance(error, str) and not (isinstance(error, type) and issubclass(error, APIError)):
            raise TypeError(f"raises() takes error codes or APIError classes, not {error!r}")

    def mark(function: F) -> F:
        setattr(function, RAISES_MARK, (*declared(function), *errors))
        return function

    return mark


def declared(function: object) -> tuple[str | type[APIError], ...]:
    """The errors `raises()` noted on `function` (none when it was not decorated)."""
    return tuple(getattr(function, RAISES_MARK, ()))
