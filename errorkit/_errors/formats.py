"""Error body formats: the `detail`/`code` shape, the `{"error": ...}` envelope, RFC 9457.

A format is a small class: `render()` turns an error into a JSON-ready body,
`validation_error()` chooses which registry error a failed request validation becomes,
`schema()` describes the body for OpenAPI and `parse()` reads one back (for clients).
Subclass `Format` for your own shape and pass an instance to `ErrorKit(format=...)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar, NotRequired, TypedDict

from errorkit._errors.errors import APIError
from errorkit._errors.registry import Registry


class Issue(TypedDict):
    """One field-level validation failure, in pydantic's and FastAPI's vocabulary."""

    loc: list[str | int]
    msg: str
    type: str
    input: NotRequired[Any]  # only with ErrorKit(validation_input=True)


#: Locations of request parameters; anything else (or nothing) counts as the body.
PARAMETER_LOCATIONS = frozenset({"path", "query", "header", "cookie"})


#: JSON Schema of one validation issue (`Issue`).
ISSUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["loc", "msg", "type"],
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "type": {"type": "string"},
        "input": {},
    },
}
_STRING: dict[str, Any] = {"type": "string"}


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """What an error body says, read back by `Format.parse` (None where the format has no such field)."""

    code: str | None
    message: str | None
    details: dict[str, Any]
    request_id: str | None
    doc_url: str | None = None


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
    #: Whether bodies show an error's details (a refusal's own sentence stands in where they do not).
    shows_details: ClassVar[bool] = True

    @abstractmethod
    def render(self, error: APIError, context: ErrorContext) -> dict[str, Any]:
        """The JSON body for `error`."""

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of this format's bodies (OpenAPI's `components.schemas`); any object by default."""
        return {"type": "object"}

    def parse(self, body: Any) -> ParsedBody | None:
        """Read a body of this format back; None when `body` is not one. Override it with `render`."""
        return None

    def validation_error(self, registry: Registry, issues: Sequence[Issue]) -> APIError:
        """The error a failed request validation becomes (422 `validation_error` by default).

        A body that is not JSON at all is `invalid_json` (400): a malformed request rather
        than a field-level failure.
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
    shows_details = False

    def render(self, error: APIError, context: ErrorContext) -> dict[str, Any]:
        issues = error.details.get("issues")
        body: dict[str, Any] = (
            {"detail": issues} if issues is not None else {"detail": error.message, "code": error.code}
        )
        if context.request_id is not None:
            body["request_id"] = context.request_id
        return body

    def schema(self) -> dict[str, Any]:
        return {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["detail", "code"],
                    "properties": {"detail": _STRING, "code": _STRING, "request_id": _STRING},
                },
                {
                    "type": "object",
                    "required": ["detail"],
                    "properties": {"detail": {"type": "array", "items": ISSUE_SCHEMA}, "request_id": _STRING},
                },
            ]
        }

    def parse(self, body: Any) -> ParsedBody | None:
        if not isinstance(body, dict) or "detail" not in body:
            return None

        detail = body["detail"]
        request_id = _text(body.get("request_id"))
        if isinstance(detail, list):  # the validation shape: no code, the issues are the details
            return ParsedBody(None, None, {"issues": detail}, request_id)
        return ParsedBody(_text(body.get("code")), _text(detail), {}, request_id)


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

    def schema(self) -> dict[str, Any]:
        inner = {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": _STRING,
                "message": _STRING,
                "doc_url": _STRING,
                "details": {"type": "object"},
                "request_id": _STRING,
            },
        }
        return {"type": "object", "required": ["error"], "properties": {"error": inner}}

    def parse(self, body: Any) -> ParsedBody | None:
        inner = body.get("error") if isinstance(body, dict) else None
        if not isinstance(inner, dict) or "code" not in inner:
            return None

        details = inner.get("details")
        return ParsedBody(
            _text(inner["code"]),
            _text(inner.get("message")),
            dict(details) if isinstance(details, dict) else {},
            _text(inner.get("request_id")),
            _text(inner.get("doc_url")),
        )

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

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["type", "title", "status"],
            "properties": {
                "type": _STRING,
                "title": _STRING,
                "status": {"type": "integer"},
                "detail": _STRING,
                "instance": _STRING,
                "code": _STRING,
                "details": {"type": "object"},
                "request_id": _STRING,
            },
        }

    def parse(self, body: Any) -> ParsedBody | None:
        if not isinstance(body, dict) or "status" not in body or "title" not in body:
            return None

        details = body.get("details")
        doc_url = _text(body.get("type"))
        return ParsedBody(
            _text(body.get("code")),
            _text(body.get("detail")),
            dict(details) if isinstance(details, dict) else {},
            _text(body.get("request_id")),
            None if doc_url == "about:blank" else doc_url,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def status_phrase(status: int) -> str:
    """The RFC 9110 reason phrase of a status, the same on every Python version."""
    try:
        return _PHRASES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_PHRASES = {413: "Content Too Large", 422: "Unprocessable Entity"}  # as the documents spell them


#: Formats selectable by name in `ErrorKit(format=...)`.
FORMATS: dict[str, type[Format]] = {cls.name: cls for cls in (DetailFormat, EnvelopeFormat, ProblemFormat)}
