"""Error body formats: the `detail`/`code` shape, the `{"error": ...}` envelope, RFC 9457.

A format is a small class: `render()` turns an error into a JSON-ready body, and
`validation_error()` chooses which registry error a failed request validation becomes.
Subclass `Format` for your own shape and pass an instance to `ErrorKit(format=...)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar, NotRequired, TypedDict

from errorkit._errors import APIError
from errorkit._registry import Registry


class Issue(TypedDict):
    """One field-level validation failure, in pydantic's and FastAPI's vocabulary."""

    loc: list[str | int]
    msg: str
    type: str
    input: NotRequired[Any]  # only with ErrorKit(validation_input=True)


#: Locations of request parameters; anything else (or nothing) counts as the body.
PARAMETER_LOCATIONS = frozenset({"path", "query", "header", "cookie"})


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What a format may show about the request an error belongs to."""

    request_id: str | None
    path: str
    doc_url: str | None


class Format(ABC):
    """Base class of body formats."""

    name: ClassVar[str] = ""
    media_type: ClassVar[str] = "application/json"

    @abstractmethod
    def render(self, error: APIError, context: ErrorContext) -> dict[str, Any]:
        """The JSON body for `error`."""

    def validation_error(self, registry: Registry, issues: Sequence[Issue]) -> APIError:
        """The error a failed request validation becomes (422 `validation_error` by default).

        A body that is not JSON at all is `invalid_json` (400): the first document's
        "malformed request" rather than a field-level failure.
        """
        if _is_malformed_body(issues):
            return registry.error("invalid_json")
        return registry.error("validation_error", issues=list(issues))


def _is_malformed_body(issues: Sequence[Issue]) -> bool:
    return bool(issues) and all(issue["type"] == "json_invalid" for issue in issues)


class DetailFormat(Format):
    """`{"detail": "<message>", "code": "<code>"}`; validation: `{"detail": [issues]}`.

    Any error whose details carry `issues` renders as the array shape, so clients of
    FastAPI's own validation responses keep working. Other details are not shown.
    """

    name = "detail"

    def render(self, error: APIError, context: ErrorContext) -> dict[str, Any]:
        issues = error.details.get("issues")
        body: dict[str, Any] = (
            {"detail": issues} if issues is not None else {"detail": error.message, "code": error.code}
        )
        if context.request_id is not None:
            body["request_id"] = context.request_id
        return body


class EnvelopeFormat(Format):
    """`{"error": {"code", "message", "doc_url", "details"}}`; validation is a 400.

    Body failures are `invalid_request_body`, parameter failures
    `invalid_request_parameters`, each with the `issues` array in `details`.
    `doc_url` and `details` are left out when there is nothing to put in them.
    """

    name = "envelope"

    def render(self, error: APIError, context: ErrorContext) -> dict[str, Any]:
        inner: dict[str, Any] = {"code": error.code, "message": error.message}
        if context.doc_url is not None:
            inner["doc_url"] = context.doc_url
        if error.details:
            inner["details"] = error.details
        if context.request_id is not None:
            inner["request_id"] = context.request_id
        return {"error": inner}

    def validation_error(self, registry: Registry, issues: Sequence[Issue]) -> APIError:
        if issues and all(issue["loc"] and issue["loc"][0] in PARAMETER_LOCATIONS for issue in issues):
            return registry.error("invalid_request_parameters", issues=list(issues))
        return registry.error("invalid_request_body", issues=list(issues))


class ProblemFormat(Format):
    """RFC 9457 `application/problem+json`, with `code`, `details` and `request_id` members.

    `type` is the doc URL (`about:blank` when there is none, with the status phrase
    as `title`, as the RFC asks); `instance` is the request path.
    """

    name = "problem"
    media_type = "application/problem+json"

    def render(self, error: APIError, context: ErrorContext) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": context.doc_url or "about:blank",
            "title": error.definition.title if context.doc_url else status_phrase(error.status),
            "status": error.status,
            "detail": error.message,
            "instance": context.path,
            "code": error.code,
        }
        if error.details:
            body["details"] = error.details
        if context.request_id is not None:
            body["request_id"] = context.request_id
        return body


def status_phrase(status: int) -> str:
    """The RFC 9110 reason phrase of a status, the same on every Python version."""
    try:
        return _PHRASES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_PHRASES = {413: "Content Too Large", 422: "Unprocessable Entity"}  # as the documents spell them


#: Formats selectable by name in `ErrorKit(format=...)`.
FORMATS: dict[str, type[Format]] = {cls.name: cls for cls in (DetailFormat, EnvelopeFormat, ProblemFormat)}
