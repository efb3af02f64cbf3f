"""`APIError`: the exception apps raise, one subclass per declared code."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from errorkit._common.exceptions import ErrorkitError
from errorkit._errors.definition import ErrorDefinition, class_name


class APIError(ErrorkitError):
    """An error of the API's catalog, raised by a handler and rendered by the kit.

    Classes come from `define()` (one class per code). An instance gets everything at
    construction and is not changed afterwards: its details (validated against the code's
    schema, so a wrong or missing detail fails where it is raised), and optionally
    `message=` (instead of the definition's), `headers=` (sent with the response) and
    `retry_after=` (seconds, sent as `Retry-After`; by default from a `retry_after_seconds`
    detail or the definition).
    """

    definition: ClassVar[ErrorDefinition]
    __slots__ = ("_details", "_headers", "_message", "_request_id", "_response_headers", "_retry_after")

    def __init__(
        self,
        *,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: int | None = None,
        _details: Mapping[str, Any] | None = None,
        **details: Any,
    ) -> None:
        definition = getattr(type(self), "definition", None)
        if definition is None:
            raise TypeError("APIError is a base class: raise a class made by define(), or kit.error(code, **details)")

        # `_details` (JSON-ready, not validated) is for errorkit's own status errors: see Registry.status_error
        checked = dict(_details) if _details is not None else definition.validate_details(details)
        self._details: dict[str, Any] = checked
        self._message: str = message if message is not None else definition.format_message(checked)
        self._headers: dict[str, str] = dict(headers) if headers else {}
        self._retry_after = retry_after if retry_after is not None else _retry_after(definition, checked)
        self._request_id: str | None = None  # these two are set by errorkit.client, on an error read from a response
        self._response_headers: Mapping[str, str] = {}
        super().__init__(self._message)

    @property
    def code(self) -> str:
        return self.definition.code

    @property
    def status(self) -> int:
        return self.definition.status

    @property
    def details(self) -> dict[str, Any]:
        """The validated details, JSON-ready (a copy: errors do not change once built)."""
        return dict(self._details)

    @property
    def message(self) -> str:
        return self._message

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent with this error's response (a copy)."""
        return dict(self._headers)

    @property
    def retry_after(self) -> int | None:
        """Seconds for `Retry-After`, or None."""
        return self._retry_after

    @property
    def request_id(self) -> str | None:
        """The request id a server sent with this error (`errorkit.client`); None for one raised here."""
        return self._request_id

    @property
    def response_headers(self) -> Mapping[str, str]:
        """The headers of the response this error was read from (`errorkit.client`); empty for one raised here.

        Not `headers`, which are sent with this error's own response: re-raising an error read
        from another service sends none of that service's headers.
        """
        return self._response_headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, details={self._details!r})"


def _retry_after(definition: ErrorDefinition, details: Mapping[str, Any]) -> int | None:
    """Seconds a client should wait: from the details when they say, else the default."""
    seconds: float | None = details.get("retry_after_seconds", definition.retry_after)
    if seconds is None or not definition.retryable:
        return None
    return max(1, math.ceil(seconds))


def error_class(definition: ErrorDefinition) -> type[APIError]:
    """The exception class of a definition (what `define()` returns)."""
    return type(
        class_name(definition.code),
        (APIError,),
        {"definition": definition, "__module__": "errorkit.defined", "__doc__": definition.when, "__slots__": ()},
    )
