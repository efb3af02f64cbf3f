"""Turning any exception into an error response in the kit's format."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from errorkit.errors import APIError
from errorkit.formats import ErrorContext, Issue
from errorkit.request_id import get_request_id, incoming_request_id, new_request_id

if TYPE_CHECKING:
    from errorkit.kit import ErrorKit

try:  # FastAPI is optional
    from fastapi.exceptions import RequestValidationError
except ImportError:  # pragma: no cover - exercised only without the extra
    RequestValidationError = None  # type: ignore[assignment,misc]

_NO_BODY_STATUSES = frozenset({204, 205, 304})
_REQUEST_JSON = Request.json.__code__


class ExceptionHandler:
    """The kit's Starlette exception handler; also used by errorkit's middleware."""

    def __init__(self, kit: ErrorKit) -> None:
        self.kit = kit

    def exception_classes(self) -> list[type[Exception]]:
        """What `install()` registers in Starlette's `ExceptionMiddleware`."""
        classes: list[type[Exception]] = [APIError, HTTPException, ValidationError]
        if RequestValidationError is not None:
            classes.append(RequestValidationError)
        return classes

    async def __call__(self, request: Request, exc: Exception) -> Response:
        """Starlette handler. For a crash it is only reached from `ServerErrorMiddleware`
        (a middleware added after `install()` failed), which re-raises for the server to log."""
        if isinstance(exc, HTTPException) and (exc.status_code < 400 or exc.status_code in _NO_BODY_STATUSES):
            return Response(status_code=exc.status_code, headers=exc.headers)
        error = self.error_for(exc, request.scope)
        response = self.response(error, request.scope)
        if get_request_id(request.scope) is None:
            request_id = incoming_request_id(request.scope) or new_request_id()
            response.headers["X-Request-ID"] = request_id
            if error.status >= 500:
                exc.add_note(f"errorkit request id: {request_id}")
        return response

    def error_for(self, exc: Exception, scope: Scope) -> APIError:
        """The registry error that `exc` stands for; an unknown exception is `internal_error`."""
        registry = self.kit.registry
        if isinstance(exc, APIError):
            return exc
        if isinstance(exc, HTTPException):
            return self._from_http_exception(exc)
        if RequestValidationError is not None and isinstance(exc, RequestValidationError):
            return self.kit.format.validation_error(registry, self._issues(exc.errors()))
        if isinstance(exc, ValidationError):
            issues = self._issues(exc.errors(include_url=False), prefix=("body",))
            return self.kit.format.validation_error(registry, issues)
        if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) and _raised_by_request_json(exc):
            position = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
            issue: Issue = {"loc": ["body", position], "msg": "JSON decode error", "type": "json_invalid"}
            return self.kit.format.validation_error(registry, [issue])
        if isinstance(exc, ClientDisconnect):
            return bare_error(registry.for_status(400))
        return bare_error(registry.for_status(500))

    def response(self, error: APIError, scope: Scope) -> Response:
        """The response for `error`: the format's body, its headers and `Retry-After`."""
        headers = dict(error.headers)
        if error.retry_after is not None and not any(k.lower() == "retry-after" for k in headers):
            headers["Retry-After"] = str(error.retry_after)
        if error.status in _NO_BODY_STATUSES:
            return Response(status_code=error.status, headers=headers)
        context = ErrorContext(
            request_id=get_request_id(scope),
            path=scope.get("path", ""),
            doc_url=self.kit.doc_url_for(error.definition),
        )
        body = self.kit.format.render(error, context)
        return JSONResponse(body, status_code=error.status, headers=headers, media_type=self.kit.format.media_type)

    async def answer_crash(self, exc: Exception, started: bool, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the formatted error unless a response already began; log a 5xx once.

        A response that already started cannot be replaced: the server then ends the
        connection without completing it, so the client sees a broken body, never a
        truncated one that looks whole.
        """
        error = self.error_for(exc, scope)
        if error.status >= 500 or started:
            self.log_crash(exc, scope)
        if not started:
            await self.response(error, scope)(scope, receive, send)

    def log_crash(self, exc: Exception, scope: Scope) -> None:
        """Log an unhandled exception once, with the request id, where trackers see it."""
        if isinstance(exc, ClientDisconnect):
            return
        request_id = get_request_id(scope)
        self.kit.logger.error(
            "Unhandled %s in %s %s (request id %s)",
            type(exc).__name__,
            scope.get("method", "-"),
            scope.get("path", "-"),
            request_id,
            exc_info=exc,
            extra={"request_id": request_id},
        )

    def _from_http_exception(self, exc: HTTPException) -> APIError:
        error = bare_error(self.kit.registry.for_status(exc.status_code))
        if isinstance(exc.detail, str):
            if exc.detail and exc.detail != _starlette_default_detail(exc.status_code):
                error.message = exc.detail
        else:  # FastAPI allows any JSON-able detail: keep it as data
            error.details = {"detail": to_jsonable_python(exc.detail)}
        if exc.headers:
            error.headers.update(exc.headers)
        return error

    def _issues(self, errors: Iterable[Mapping[str, Any]], prefix: tuple[str, ...] = ()) -> list[Issue]:
        with_input = self.kit.validation_input
        issues: list[Issue] = []
        for e in errors:
            issue: Issue = {"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
            if with_input and "input" in e:
                issue["input"] = e["input"]
            issues.append(issue)
        return issues


def _starlette_default_detail(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def bare_error(cls: type[APIError]) -> APIError:
    """An instance of `cls` with no details, for errors errorkit produces from a bare status."""
    try:
        return cls()
    except TypeError:  # details are required: render the definition without them
        error = APIError.__new__(cls)
        error.details, error.headers, error.retry_after = {}, {}, None
        error.message = cls.definition.format_message({})
        Exception.__init__(error, error.message)
        return error


def _raised_by_request_json(exc: BaseException) -> bool:
    """True when the exception came out of Starlette's `Request.json()`: the client's body."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is _REQUEST_JSON:
            return True
        tb = tb.tb_next
    return False
