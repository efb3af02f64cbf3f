"""The OpenAPI document of an errorkit app: every operation's error responses, from the registry.

Each operation declares what it can answer: the codes its endpoint and dependencies list with
`raises()`, what the installed stages add (auth's 401/403 and its security schemes, the
limiter's 429 and `X-RateLimit-*` headers, idempotency's `Idempotency-Key` parameter and its
400/409/413/422), request validation in the kit's format (instead of FastAPI's default 422),
and 500 everywhere. The body schema is the kit format's `schema()`, with one example per
code. The document is computed once, on first use, and never changed afterwards.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from errorkit._app.gateway import GatewayMiddleware
from errorkit._app.handlers import ExceptionHandler
from errorkit._app.startup import Startup
from errorkit._common.refusal import Refusal
from errorkit._errors.declared import declared
from errorkit._errors.errors import APIError
from errorkit._errors.formats import Issue
from errorkit._errors.reference import Reference
from errorkit._errors.samples import SAMPLE_ISSUE
from errorkit._stages.auth import APIKeyAuth
from errorkit._stages.concurrency import ConcurrencyLimit
from errorkit._stages.idempotency import Idempotency
from errorkit._stages.permissions import PERMISSIONS_MARK, dependency_calls, route_permissions
from errorkit._stages.quotas import Quotas
from errorkit._stages.ratelimit import RateLimiter
from errorkit._stages.routes import routes_of

ERROR_SCHEMA = "Error"
_STRING = {"type": "string"}
_INTEGER = {"type": "integer"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_ALWAYS_HEADERS = {
    "X-Request-ID": {"description": "The request's id, also in error bodies.", "required": True, "schema": _STRING},
}
_ERROR_HEADERS = {
    "x-should-retry": {
        "description": "`true` when retrying may succeed, `false` when it will not (read by the OpenAI and "
        "Anthropic SDKs).",
        "required": True,
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
}
_RETRY_HEADERS = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": _INTEGER},
    "retry-after-ms": {"description": "Milliseconds to wait before retrying.", "schema": _INTEGER},
}


@dataclass(frozen=True)
class Stages:
    """The stages installed on an app (read from its gateway middleware)."""

    auth: APIKeyAuth | None = None
    limiter: RateLimiter | None = None
    idempotency: Idempotency | None = None
    inner: tuple[ConcurrencyLimit | Quotas, ...] = ()
    handles_errors: bool = True  # False: install(handlers=False), the app's own handlers answer the rest

    @classmethod
    def of(cls, app: Starlette) -> Stages:
        for middleware in app.user_middleware:
            if middleware.cls is GatewayMiddleware:  # type: ignore[comparison-overlap]  # (Starlette types cls a factory)
                auth = middleware.kwargs.get("auth")
                limiter = middleware.kwargs.get("limiter")
                idempotency = middleware.kwargs.get("idempotency")
                inner = cast("Sequence[object]", middleware.kwargs.get("inner", ()))

                return cls(  # stages of other classes describe nothing
                    auth if isinstance(auth, APIKeyAuth) else None,
                    limiter if isinstance(limiter, RateLimiter) else None,
                    idempotency if isinstance(idempotency, Idempotency) else None,
                    tuple(stage for stage in inner if isinstance(stage, ConcurrencyLimit | Quotas)),
                    middleware.kwargs.get("handles_errors", True) is not False,
                )
        return cls()


@dataclass(frozen=True)
class Operation:
    """One operation of the document, and what its route declares."""

    path: str
    method: str  # lower case, as in the document
    declared: tuple[str | type[APIError], ...]
    permissions: tuple[str, ...] | None  # asked by auth.require()/requires(); None without one
    has_body: bool
    has_parameters: bool


class ErrorDocumentation:
    """Adds the error responses of every operation to an OpenAPI document."""

    def __init__(self, handler: ExceptionHandler, stages: Stages) -> None:
        self.handler = handler
        self.registry = handler.registry
        self.stages = stages
        self.reference = Reference(handler.registry, handler.format, doc_url=handler.doc_url)
        self.schema_name = ERROR_SCHEMA  # (or "ErrorkitError" when the document has an "Error" of its own)
        self.schema_ref = f"#/components/schemas/{ERROR_SCHEMA}"

    def apply(self, document: dict[str, Any], operations: Iterable[Operation]) -> dict[str, Any]:
        """A copy of `document` with every operation's errors, headers, parameters and security."""
        document = copy.deepcopy(document)
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        ours = self.handler.format.schema()
        # an app's own model called "Error" keeps its name
        self.schema_name = ERROR_SCHEMA if schemas.get(ERROR_SCHEMA, ours) == ours else "ErrorkitError"
        schemas[self.schema_name] = ours
        self.schema_ref = f"#/components/schemas/{self.schema_name}"

        auth = self.stages.auth
        if auth is not None:
            components.setdefault("securitySchemes", {}).update(
                {
                    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                    "bearer": {"type": "http", "scheme": "bearer"},
                }
            )

        for operation in operations:
            item = document.setdefault("paths", {}).get(operation.path, {}).get(operation.method)
            if item is not None:
                self._operation(item, operation)
        if self.stages.handles_errors:
            _drop_unused(document, _FASTAPI_VALIDATION)
        return copy.deepcopy(document)  # no object shared with another document or this module

    def _operation(self, item: dict[str, Any], operation: Operation) -> None:
        method, path = operation.method.upper(), operation.path
        auth = self.stages.auth
        limiter = self.stages.limiter
        idempotency = self.stages.idempotency

        refusals: list[Refusal] = []
        if auth is not None:
            auth_refusals = auth.route_refusals(path, operation.permissions)
            refusals += auth_refusals
            if auth_refusals:  # the API key, and whatever the route asks for itself (both apply)
                own = item.get("security") or [{}]
                item["security"] = [{**need, scheme: []} for need in own for scheme in ("apiKeyHeader", "bearer")]
        if limiter is not None:
            refusals += limiter.route_refusals(method, path)
        for stage in self.stages.inner:
            refusals += stage.route_refusals(method, path)
        if idempotency is not None and idempotency.guards(method, path):
            refusals += idempotency.route_refusals(method, path)
            _add_parameter(item, _idempotency_parameter(idempotency.required.matches(path)))

        classes = [self.handler.refusal_class(r) for r in refusals]
        classes += [self.registry[e] if isinstance(e, str) else e for e in operation.declared]
        if self.stages.handles_errors:  # (else validation errors and 500s are the app's own, in its shape)
            classes += self._validation_classes(operation, item)
            classes.append(self.registry.for_status(500))

        rate_headers = {} if limiter is None else limiter.route_headers(method, path)
        responses = {str(status): r for status, r in item.get("responses", {}).items()}  # YAML reads 201 as a number
        for code, group in _by_status(classes).items():
            responses[str(code)] = self._response(code, group, path, responses.get(str(code)), rate_headers)
        if self.stages.handles_errors and "422" in responses and _is_fastapi_validation(responses["422"]):
            del responses["422"]  # the kit's validation errors are documented with their own status

        item["responses"] = responses = dict(sorted(responses.items()))
        for status, response in responses.items():
            if status.startswith(("2", "3")):
                response.setdefault("headers", {}).update(_ALWAYS_HEADERS | _header_objects(rate_headers))

    def _validation_classes(self, operation: Operation, item: dict[str, Any]) -> list[type[APIError]]:
        """What a failed validation of this operation's parameters or body becomes in the kit's format."""
        format, registry = self.handler.format, self.registry
        found: list[type[APIError]] = []
        if operation.has_parameters:
            issue: Issue = {**SAMPLE_ISSUE, "loc": ["query", "name"]}
            found.append(type(format.validation_error(registry, [issue])))
        if operation.has_body or "requestBody" in item:  # (a Starlette endpoint validates the body it documents)
            found.append(type(format.validation_error(registry, [SAMPLE_ISSUE])))
            json_invalid: Issue = {"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}
            found.append(type(format.validation_error(registry, [json_invalid])))
        return found

    def _response(
        self,
        status: int,
        classes: Sequence[type[APIError]],
        path: str,
        existing: dict[str, Any] | None,
        rate_headers: dict[str, str],
    ) -> dict[str, Any]:
        definitions = [cls.definition for cls in classes]
        examples = {
            cls.definition.code: {"summary": cls.definition.message, "value": self.reference.sample_body(cls, path)}
            for cls in classes
        }

        headers = _ALWAYS_HEADERS | _ERROR_HEADERS | _header_objects(rate_headers)
        if status in (429, 503) or any(d.retryable and d.retry_after for d in definitions):
            headers = headers | _RETRY_HEADERS
        if status == 401 and self.stages.auth is not None:
            headers = headers | {"WWW-Authenticate": {"description": "The Bearer challenge.", "schema": _STRING}}

        description = "; ".join(f"`{d.code}`: {d.message}" for d in definitions)
        if existing is not None and not _is_fastapi_validation(existing) and existing.get("description"):
            description = f"{existing['description']} ({description})"

        media_type = self.handler.format.media_type
        ours = {"schema": {"$ref": self.schema_ref}, "examples": examples}
        content: dict[str, Any] = {media_type: ours}
        if existing is not None and _is_fastapi_validation(existing) and not self.stages.handles_errors:
            # FastAPI answers its own validation errors (handlers=False): both bodies may come back
            description = f"{existing['description']}; {description}"
            theirs = existing["content"]["application/json"]["schema"]
            if media_type == "application/json":
                content = {media_type: {**ours, "schema": {"oneOf": [theirs, ours["schema"]]}}}
            else:
                content = {"application/json": {"schema": theirs}, media_type: ours}
        return {
            "description": description,
            "headers": {**(existing or {}).get("headers", {}), **headers},
            "content": content,
        }


def _by_status(classes: Iterable[type[APIError]]) -> dict[int, list[type[APIError]]]:
    grouped: dict[int, dict[str, type[APIError]]] = {}
    for cls in classes:
        grouped.setdefault(cls.definition.status, {}).setdefault(cls.definition.code, cls)
    return {status: list(grouped[status].values()) for status in sorted(grouped)}


def _header_objects(described: dict[str, str]) -> dict[str, Any]:
    return {name: {"description": text, "schema": _STRING} for name, text in described.items()}


def _idempotency_parameter(required: bool) -> dict[str, Any]:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": required,
        "description": "A unique value (a UUID) that makes retries safe: the same key within 24 hours "
        "replays the first response instead of running the request again.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]*[!-~][ -~]*$"},
    }


def _add_parameter(item: dict[str, Any], parameter: dict[str, Any]) -> None:
    parameters = item.setdefault("parameters", [])
    name = parameter["name"].lower()
    if not any(p.get("name", "").lower() == name and p.get("in") == "header" for p in parameters):
        parameters.append(parameter)


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _drop_unused(document: dict[str, Any], names: Sequence[str]) -> None:
    """Remove component schemas nothing refers to any more (FastAPI's validation models)."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in names:
        if name in schemas:
            rest = {k: v for k, v in schemas.items() if k != name}
            elsewhere = repr({**document, "components": {"schemas": rest}})
            if f"#/components/schemas/{name}" not in elsewhere:
                del schemas[name]


# -- FastAPI ----------------------------------------------------------------------------------


def fastapi_operations(app: Any) -> Iterator[Operation]:
    """The operations of a FastAPI app's routes, with what their endpoints and dependencies declare."""
    from fastapi.routing import APIRoute

    # (an included router's routes are laid out as their contexts: an APIRoute's fields, with the prefix)
    routes: list[Any] = list(routes_of(app))
    for route in routes:
        if not isinstance(getattr(route, "original_route", route), APIRoute) or not route.include_in_schema:
            continue
        calls = [route.endpoint, *dependency_calls(route.dependant)]
        marks = tuple(error for call in calls for error in declared(call))
        permissions = route_permissions(route)
        has_parameters = _has_parameters(route.dependant)

        for method in sorted(route.methods or ()):
            yield Operation(
                route.path_format, method.lower(), marks, permissions, route.body_field is not None, has_parameters
            )


def _has_parameters(dependant: Any) -> bool:
    """Whether the route or one of its dependencies takes a path, query, header or cookie parameter."""
    if dependant.path_params or dependant.query_params or dependant.header_params or dependant.cookie_params:
        return True
    return any(_has_parameters(d) for d in dependant.dependencies)


def install_fastapi(app: Any, handler: ExceptionHandler, startup: Startup | None = None) -> None:
    """Make `app.openapi()` return FastAPI's document with the errors added (computed once; the route
    checks run first, so `errorkit.limit(...)` marks are documented even before the app starts)."""
    original = app.openapi
    app.openapi_schema = None  # a document FastAPI made before install() lacks the errors

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            if startup is not None:
                startup.check_late(app)
            document = original()
            docs = ErrorDocumentation(handler, Stages.of(app))
            app.openapi_schema = docs.apply(document, fastapi_operations(app))
        schema: dict[str, Any] = app.openapi_schema
        return schema

    app.openapi = openapi


# -- Starlette --------------------------------------------------------------------------------


class ErrorSchemaGenerator(SchemaGenerator):
    """Starlette's `SchemaGenerator` (operations from YAML docstrings), with the kit's errors added.

    `models`: pydantic models put in `components.schemas` for docstrings to `$ref`.
    """

    def __init__(self, base_schema: dict[str, Any], handler: ExceptionHandler, models: Sequence[type[Any]] = ()):
        super().__init__(base_schema)
        self.handler = handler
        self.models = models
        self._documents: dict[int, dict[str, Any]] = {}

    def document(self, app: Starlette) -> dict[str, Any]:
        """The document of `app` (computed once per app)."""
        document = self._documents.get(id(app))
        if document is None:
            document = self.get_schema(app.routes)
            if self.models:
                from pydantic.json_schema import models_json_schema

                _, definitions = models_json_schema(
                    [(m, "validation") for m in self.models], ref_template="#/components/schemas/{model}"
                )
                document.setdefault("components", {}).setdefault("schemas", {}).update(definitions.get("$defs", {}))

            operations = [
                Operation(
                    e.path,
                    e.http_method,
                    declared(e.func),
                    getattr(e.func, PERMISSIONS_MARK, None),
                    False,
                    False,  # Starlette does not validate parameters
                )
                for e in self.get_endpoints(app.routes)
            ]
            docs = ErrorDocumentation(self.handler, Stages.of(app))
            document = self._documents[id(app)] = docs.apply(document, operations)
        return document

    def route(self, path: str = "/openapi.json") -> Route:
        """A route serving the document as JSON (left out of the document itself)."""

        async def endpoint(request: Request) -> Response:
            return JSONResponse(self.document(request.app))

        return Route(path, endpoint, include_in_schema=False)
