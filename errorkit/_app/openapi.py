"""The OpenAPI document of an errorkit app: every operation's error responses, from the registry.

Each operation declares what it can answer: the codes its endpoint and dependencies list with
`raises()`, what the installed stages add (auth's 401/403 and its security schemes, the
limiter's 429 and `X-RateLimit-*` headers, idempotency's `Idempotency-Key` parameter and its
400/409/413/422), request validation in the kit's format (instead of FastAPI's default 422),
and 500 everywhere. The body schema is the kit format's `schema()`, with one example per
code. The document is computed once, on first use, and never changed afterwards.

The same per-operation errors make an app's reference page (`app_errors`, `app_reference`): the
codes the app can answer with, and the routes that return each.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.schemas import SchemaGenerator

from errorkit._app.gateway import GatewayMiddleware
from errorkit._app.handlers import ExceptionHandler
from errorkit._app.startup import Startup
from errorkit._common.refusal import Refusal
from errorkit._errors.declared import declared
from errorkit._errors.errors import APIError
from errorkit._errors.formats import Issue
from errorkit._errors.reference import Block, Reference, ReferencePage
from errorkit._errors.samples import SAMPLE_ISSUE
from errorkit._stages.auth import APIKeyAuth
from errorkit._stages.concurrency import ConcurrencyLimit
from errorkit._stages.idempotency import Idempotency
from errorkit._stages.permissions import PERMISSIONS_MARK, dependency_calls, route_permissions
from errorkit._stages.quotas import Quotas
from errorkit._stages.ratelimit import RateLimiter
from errorkit._stages.routes import routes_of
from errorkit.catalogs.generic import GENERIC
from errorkit.catalogs.traffic import STAGE_CODES

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


#: An operation and the error classes it can answer with.
OperationErrors = tuple[Operation, list[type[APIError]]]


class ErrorDocumentation:
    """Adds the error responses of every operation to an OpenAPI document."""

    def __init__(self, handler: ExceptionHandler, stages: Stages) -> None:
        self.handler = handler
        self.registry = handler.registry
        self.stages = stages
        self.reference = Reference(handler.registry, handler.format, doc_url=handler.doc_url)
        self.schema_name = ERROR_SCHEMA  # (or "ErrorkitError" when the document has an "Error" of its own)
        self.schema_ref = f"#/components/schemas/{ERROR_SCHEMA}"
        #: After `apply()`: each documented operation, with the classes it can answer with.
        self.operation_errors: list[OperationErrors] = []

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

        self.operation_errors = []
        for operation in operations:
            item = document.setdefault("paths", {}).get(operation.path, {}).get(operation.method)
            if item is not None:
                self.operation_errors.append((operation, self._operation(item, operation)))
        if self.stages.handles_errors:
            _drop_unused(document, _FASTAPI_VALIDATION)
        return copy.deepcopy(document)  # no object shared with another document or this module

    def errors_of(self, operation: Operation, item: dict[str, Any] | None = None) -> list[type[APIError]]:
        """The classes an operation can answer with: its stages' refusals, what it declares, its
        validation errors (`item`: its entry in the document, which may say it takes a body) and 500."""
        classes = [self.handler.refusal_class(r) for r in self._refusals(operation)]
        classes += [self.registry[e] if isinstance(e, str) else e for e in operation.declared]
        if self.stages.handles_errors:  # (else validation errors and 500s are the app's own, in its shape)
            classes += self._validation_classes(operation, item or {})
            classes.append(self.registry.for_status(500))
        return classes

    def _refusals(self, operation: Operation) -> list[Refusal]:
        method, path = operation.method.upper(), operation.path
        auth, limiter, idempotency = self.stages.auth, self.stages.limiter, self.stages.idempotency
        refusals: list[Refusal] = []
        if auth is not None:
            refusals += auth.route_refusals(path, operation.permissions)
        if limiter is not None:
            refusals += limiter.route_refusals(method, path)
        for stage in self.stages.inner:
            refusals += stage.route_refusals(method, path)
        if idempotency is not None and idempotency.guards(method, path):
            refusals += idempotency.route_refusals(method, path)
        return refusals

    def _operation(self, item: dict[str, Any], operation: Operation) -> list[type[APIError]]:
        method, path = operation.method.upper(), operation.path
        auth = self.stages.auth
        limiter = self.stages.limiter
        idempotency = self.stages.idempotency

        if auth is not None and auth.route_refusals(path, operation.permissions):
            own = item.get("security") or [{}]  # the API key, and whatever the route asks for itself (both apply)
            item["security"] = [{**need, scheme: []} for need in own for scheme in ("apiKeyHeader", "bearer")]
        if idempotency is not None and idempotency.guards(method, path):
            _add_parameter(item, _idempotency_parameter(idempotency.required.matches(path)))
        classes = self.errors_of(operation, item)

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
        return classes

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
            _FASTAPI_ERRORS[app] = docs.operation_errors
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
        self._errors: dict[int, list[OperationErrors]] = {}
        _GENERATORS.setdefault(handler, []).append(weakref.ref(self))  # (the kit's reference pages read its documents)

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

            docs = ErrorDocumentation(self.handler, Stages.of(app))
            document = self._documents[id(app)] = docs.apply(document, starlette_operations(app))
            self._errors[id(app)] = docs.operation_errors
        return document

    def operation_errors(self, app: Starlette) -> list[OperationErrors]:
        """Each operation of `app`'s document, with the error classes it can answer with."""
        self.document(app)
        return self._errors[id(app)]

    def route(self, path: str = "/openapi.json") -> Route:
        """A route serving the document as JSON (left out of the document itself)."""

        async def endpoint(request: Request) -> Response:
            return JSONResponse(self.document(request.app))

        return Route(path, endpoint, include_in_schema=False)


def starlette_operations(app: Starlette) -> list[Operation]:
    """The operations of a Starlette app's routes (those in its schema), with what their endpoints declare."""
    return [
        Operation(
            e.path,
            e.http_method,
            declared(e.func),
            getattr(e.func, PERMISSIONS_MARK, None),
            False,
            False,  # Starlette does not validate parameters
        )
        for e in SchemaGenerator({}).get_endpoints(app.routes)
    ]


#: The operations of each FastAPI app's document with their errors, recorded when the document is made.
_FASTAPI_ERRORS: weakref.WeakKeyDictionary[Any, list[OperationErrors]] = weakref.WeakKeyDictionary()
#: The document generators made for each kit's handler (`kit.schemas()`), held weakly (each holds its handler).
_GENERATORS: weakref.WeakKeyDictionary[ExceptionHandler, list[weakref.ref[ErrorSchemaGenerator]]] = (
    weakref.WeakKeyDictionary()
)


# -- An app's reference page ------------------------------------------------------------------

#: Codes errorkit's stages refuse with, whichever catalog defines them: an app's page lists one only
#: where a stage installed on that app answers with it (or a route declares it).
STAGE_VOCABULARY = frozenset(
    {definition.code for definition in STAGE_CODES} | {"authentication_required", "rate_limited", "service_unavailable"}
)


@dataclass(frozen=True)
class AppErrors:
    """What an app can answer with, for its reference page."""

    classes: tuple[type[APIError], ...]
    returned_by: dict[str, tuple[str, ...]]  # code -> operations ("POST /widgets"), where a document says
    operations: tuple[str, ...]  # every operation of the document (none without one)


def installed_handler(app: object) -> ExceptionHandler | None:
    """The handler of the kit installed on `app` (`kit.install(app)`); None when none is."""
    for middleware in getattr(app, "user_middleware", ()):
        if middleware.cls is GatewayMiddleware:
            handler = middleware.kwargs.get("handler")
            return handler if isinstance(handler, ExceptionHandler) else None
    return None


def app_errors(app: Starlette, handler: ExceptionHandler) -> AppErrors:
    """Every error `app` can answer with, through the kit of `handler` installed on it.

    - what its routes can answer: the refusals of the stages installed (where they apply), the
      codes routes declare with `raises()`, request validation in the kit's format;
    - what the handlers answer for any request (no route is named for these): 404 for an unknown
      path, 405 for a method a path does not serve, 500, and (a Starlette app validates bodies
      itself) body validation and malformed JSON;
    - the codes the kit defines (`kit.define`);
    - the catalog's own codes (not the generic statuses, not the stages' codes), unless a route
      declares codes with `raises()`: then the routes' declarations say which of them the app uses.

    Where the app has an OpenAPI document (FastAPI; a Starlette app's `kit.schemas()`), each code
    also names the operations that return it; the document is made once, and read from its cache.
    """
    stages = Stages.of(app)
    registry, format = handler.registry, handler.format
    fastapi = _is_fastapi(app)
    documented = _documented(app, handler, fastapi)
    docs = ErrorDocumentation(handler, stages)
    walked = [(op, docs.errors_of(op)) for op in (fastapi_operations(app) if fastapi else starlette_operations(app))]

    found: dict[str, type[APIError]] = {}
    for _, classes in [*(documented or []), *walked]:
        for cls in classes:
            found.setdefault(cls.definition.code, cls)

    returned_by: dict[str, list[str]] = {}
    for operation, classes in documented or []:
        name = f"{operation.method.upper()} {operation.path}"
        for cls in classes:
            routes = returned_by.setdefault(cls.definition.code, [])
            if name not in routes:
                routes.append(name)

    answered: list[type[APIError]] = []
    if stages.handles_errors:
        answered += [registry.for_status(404), registry.for_status(405), registry.for_status(500)]
        if not fastapi:
            json_invalid: Issue = {"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}
            answered += [type(format.validation_error(registry, issues)) for issues in ([SAMPLE_ISSUE], [json_invalid])]
    for cls in answered:  # (from any request: no route is named for them)
        found.setdefault(cls.definition.code, cls)
        returned_by.pop(cls.definition.code, None)

    declares = any(operation.declared for operation, _ in [*(documented or []), *walked])
    origins: dict[str, str] = registry._origin  # (which registry defined each code: the kit's own are "app")
    for definition in registry:
        code, cls = definition.code, registry[definition.code]
        own = origins.get(code) == registry.name
        generic = code in GENERIC and GENERIC[code] is cls
        if own or (not declares and not generic and code not in STAGE_VOCABULARY):
            found.setdefault(code, cls)

    operations = tuple(f"{op.method.upper()} {op.path}" for op, _ in documented or [])
    return AppErrors(
        tuple(found.values()),
        {code: tuple(routes) for code, routes in returned_by.items()},
        tuple(dict.fromkeys(operations)),
    )


def app_reference(app: Starlette, handler: ExceptionHandler, page: ReferencePage | None = None) -> Reference:
    """The reference page of `app` (see `app_errors` for what it lists), in the kit's format."""
    errors = app_errors(app, handler)
    summary: list[Block] = ["The errors this API can return, by HTTP status, each under its code."]
    if errors.returned_by:
        summary.append(
            "\u201cReturned by\u201d names the routes that can return a code; "
            "a code without it can come from any request."
        )
    return Reference(
        handler.registry,
        handler.format,
        doc_url=handler.doc_url,
        page=page,
        defaults=STAGE_CODES,
        listed=errors.classes,
        returned_by=errors.returned_by,
        operations=errors.operations,
        summary=summary,
    )


class ReferenceRouter(Router):
    """The router `kit.reference_app()` returns, knowing its kit's handler and page text
    (`errorkit docs module:app` renders the page an app mounts, with its text)."""

    def __init__(self, routes: Sequence[BaseRoute], handler: ExceptionHandler, page: ReferencePage | None) -> None:
        super().__init__(list(routes))
        self.handler = handler
        self.page = page


def mounted_page(app: Starlette, handler: ExceptionHandler) -> ReferencePage | None:
    """The page text of the reference `app` mounts for the kit of `handler` (None when it mounts none)."""
    for route in routes_of(app):
        inner = getattr(route, "app", None)
        if isinstance(route, Mount) and isinstance(inner, ReferenceRouter) and inner.handler is handler:
            return inner.page
    return None


def _documented(app: Starlette, handler: ExceptionHandler, fastapi: bool) -> list[OperationErrors] | None:
    """The operations of `app`'s OpenAPI document with their errors (made once, then cached); None without one."""
    if fastapi:
        app.openapi()  # type: ignore[attr-defined]  # (a FastAPI app: makes the document, once)
        return _FASTAPI_ERRORS.get(app)
    for made in _GENERATORS.get(handler, ()):
        generator = made()
        if generator is not None:
            return generator.operation_errors(app)
    return None


def _is_fastapi(app: object) -> bool:
    try:
        from fastapi import FastAPI
    except ImportError:  # pragma: no cover - exercised only without the extra
        return False
    return isinstance(app, FastAPI)
