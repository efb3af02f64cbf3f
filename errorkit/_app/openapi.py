"""The OpenAPI document of an errorkit app: every operation's error responses, from the registry.

Each operation declares what it can answer: the codes its endpoint and dependencies list with
`raises()`, what the installed stages add (auth's 401/403 and its security schemes, the
limiter's 429 and `X-RateLimit-*` headers, idempotency's `Idempotency-Key` parameter and its
400/409/413/422), request validation in the kit's format (instead of FastAPI's default 422),
and 500 everywhere. The body schema is the kit format's `schema()`, with one example per
code. The document is computed once, on first use, and never changed afterwards.

The same per-operation errors make an app's reference page (`app_errors`, `app_reference`): the
codes the app can answer with (from every route it serves), and, where the app publishes its
document, the routes that return each.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, Router, compile_path
from starlette.schemas import SchemaGenerator

from errorkit._app.gateway import GatewayMiddleware
from errorkit._app.handlers import ExceptionHandler
from errorkit._app.startup import Startup, same_kit
from errorkit._common.refusal import Refusal
from errorkit._errors.declared import declared
from errorkit._errors.errors import APIError
from errorkit._errors.formats import Issue
from errorkit._errors.reference import Block, Reference, ReferencePage
from errorkit._errors.samples import SAMPLE_ISSUE
from errorkit._stages.auth import APIKeyAuth
from errorkit._stages.concurrency import ConcurrencyLimit
from errorkit._stages.idempotency import Idempotency
from errorkit._stages.permissions import ENDPOINT_METHODS, route_calls, route_permissions
from errorkit._stages.quotas import Quotas
from errorkit._stages.ratelimit import RateLimiter
from errorkit._stages.routes import AppRoutes
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
        kwargs = _gateway_kwargs(app)
        if kwargs is None:
            return cls()
        auth, limiter, idempotency = kwargs.get("auth"), kwargs.get("limiter"), kwargs.get("idempotency")
        inner = cast("Sequence[object]", kwargs.get("inner", ()))
        return cls(  # stages of other classes describe nothing
            auth if isinstance(auth, APIKeyAuth) else None,
            limiter if isinstance(limiter, RateLimiter) else None,
            idempotency if isinstance(idempotency, Idempotency) else None,
            tuple(stage for stage in inner if isinstance(stage, ConcurrencyLimit | Quotas)),
            kwargs.get("handles_errors", True) is not False,
        )


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


# -- Every operation an app serves ---------------------------------------------------------------


def app_operations(app: object, handler: ExceptionHandler) -> list[Operation]:
    """Every operation `app` serves for the kit of `handler`, with what its endpoint (and, in FastAPI, its
    dependencies) declare.

    The routes are those the start-up checks see (`AppRoutes`): through mounts and FastAPI's included
    routers (not into a mounted app with a kit of its own: its codes are that kit's), and those left
    out of the OpenAPI document (`include_in_schema=False`) too, since they answer all the same. A
    document picks its own operations out of them by path and method.
    """
    operations: list[Operation] = []
    for served in AppRoutes(app, enters=same_kit(handler.registry)).served:
        route = served.route
        path = compile_path(served.template)[1]  # (as documents write it: `{id}`, not `{id:int}`)
        dependant = getattr(route, "dependant", None)
        if dependant is not None:  # a FastAPI route: the methods it declares, its parameters and body validated
            marks = tuple(error for call in route_calls(route) for error in declared(call))
            permissions, has_body = route_permissions(route), getattr(route, "body_field", None) is not None
            operations += [
                Operation(path, method.lower(), marks, permissions, has_body, _has_parameters(dependant))
                for method in sorted(served.methods or ())
            ]
            continue

        # a Starlette route: as Starlette's schema generator reads it, HEAD left to GET; an endpoint class
        # (HTTPEndpoint, no methods of its route) serves the methods it has a function for
        endpoint = getattr(route, "endpoint", None)
        methods = served.methods or [m for m in ENDPOINT_METHODS if hasattr(endpoint, m.lower())]
        for method in sorted(set(methods) - {"HEAD"}):
            calls = route_calls(route, method)
            marks = tuple(error for call in calls for error in declared(call))
            operations.append(Operation(path, method.lower(), marks, route_permissions(route, method), False, False))
    return operations


def _has_parameters(dependant: Any) -> bool:
    """Whether the route or one of its dependencies takes a path, query, header or cookie parameter."""
    if dependant.path_params or dependant.query_params or dependant.header_params or dependant.cookie_params:
        return True
    return any(_has_parameters(d) for d in dependant.dependencies)


# -- FastAPI ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    """A document the kit made, with each of its operations' errors: one entry, so that no reader sees
    the one without the other."""

    document: dict[str, Any]
    errors: list[OperationErrors]


#: The document made for each FastAPI app (its `openapi()`), held as long as the app lives.
_FASTAPI_DOCUMENTS: weakref.WeakKeyDictionary[Any, Made] = weakref.WeakKeyDictionary()


def install_fastapi(app: Any, handler: ExceptionHandler, startup: Startup | None = None) -> None:
    """Make `app.openapi()` return FastAPI's document with the errors added (computed once; the route
    checks run first, so `errorkit.limit(...)` marks are documented even before the app starts).

    Only a finished document is ever published in `app.openapi_schema`: FastAPI's own `openapi()`
    stores its document there first, so it is taken back until the errors are in (a failure leaves
    none, and the next call tries again, rather than serving a document without its errors).
    """
    original = app.openapi
    app.openapi_schema = None  # a document FastAPI made before install() lacks the errors
    lock = threading.Lock()  # (one document: a second thread waits for it, and never reads FastAPI's own)
    made: list[Made] = []

    def published() -> bool:
        return bool(made) and app.openapi_schema is made[0].document  # (anything else there is remade)

    def openapi() -> dict[str, Any]:
        if published():
            return made[0].document
        with lock:
            if not published():
                if startup is not None:
                    startup.check_routes_once(app)
                document = original()
                app.openapi_schema = None  # (FastAPI's openapi() stored its own there: not served without the errors)
                docs = ErrorDocumentation(handler, Stages.of(app))
                made[:] = [Made(docs.apply(document, app_operations(app, handler)), docs.operation_errors)]
                _FASTAPI_DOCUMENTS[app] = made[0]  # (before the document is published: a page finds its errors)
                app.openapi_schema = made[0].document
            return made[0].document

    app.openapi = openapi


def is_fastapi(app: object) -> bool:
    """Whether `app` is a FastAPI app (False without FastAPI installed)."""
    try:
        from fastapi import FastAPI
    except ImportError:  # pragma: no cover - exercised only without the extra
        return False
    return isinstance(app, FastAPI)


# -- Starlette --------------------------------------------------------------------------------


class ErrorSchemaGenerator(SchemaGenerator):
    """Starlette's `SchemaGenerator` (operations from YAML docstrings), with the kit's errors added.

    `models`: pydantic models put in `components.schemas` for docstrings to `$ref`. An app publishes
    the document by having `route()` among its routes; the document is made once per app.
    """

    def __init__(self, base_schema: dict[str, Any], handler: ExceptionHandler, models: Sequence[type[Any]] = ()):
        super().__init__(base_schema)
        self.handler = handler
        self.models = models
        self._made: weakref.WeakKeyDictionary[Starlette, Made] = weakref.WeakKeyDictionary()  # (while the app lives)

    def document(self, app: Starlette) -> dict[str, Any]:
        """The document of `app` (computed once per app)."""
        return self._made_for(app).document

    def operation_errors(self, app: Starlette) -> list[OperationErrors]:
        """Each operation of `app`'s document, with the error classes it can answer with."""
        return self._made_for(app).errors

    def route(self, path: str = "/openapi.json") -> Route:
        """A route serving the document as JSON (left out of the document itself)."""
        return DocumentRoute(path, self)

    def _made_for(self, app: Starlette) -> Made:
        made = self._made.get(app)
        if made is not None:
            return made

        document = self.get_schema(app.routes)
        if self.models:
            from pydantic.json_schema import models_json_schema

            _, definitions = models_json_schema(
                [(m, "validation") for m in self.models], ref_template="#/components/schemas/{model}"
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(definitions.get("$defs", {}))
        docs = ErrorDocumentation(self.handler, Stages.of(app))
        document = docs.apply(document, app_operations(app, self.handler))
        # the document and its errors stored as one entry (two threads making it keep the first made)
        return self._made.setdefault(app, Made(document, docs.operation_errors))


class DocumentRoute(Route):
    """The route serving an `ErrorSchemaGenerator`'s document: an app whose routes hold one publishes
    that document (and its reference page names the routes that return each code)."""

    def __init__(self, path: str, generator: ErrorSchemaGenerator) -> None:
        async def endpoint(request: Request) -> Response:
            return JSONResponse(generator.document(request.app))

        super().__init__(path, endpoint, include_in_schema=False)
        self.generator = generator


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
    returned_by: dict[str, tuple[str, ...]]  # code -> operations ("POST /widgets"), where the app publishes a document
    operations: tuple[str, ...]  # every operation of that document (none without one)
    anywhere: frozenset[str]  # the codes the handlers answer for any request (404, 405, 500...)
    declares: bool  # whether routes declare codes with `raises()` (the catalog's others are then not listed)


def _gateway_kwargs(app: object) -> Mapping[str, object] | None:
    """What `kit.install(app)` gave the gateway middleware (the kit's handler, stages, start-up checks);
    None when no kit is installed on `app`."""
    for middleware in getattr(app, "user_middleware", ()):
        if middleware.cls is GatewayMiddleware:
            return cast("Mapping[str, object]", middleware.kwargs)
    return None


def installed_handler(app: object) -> ExceptionHandler | None:
    """The handler of the kit installed on `app` (`kit.install(app)`); None when none is."""
    handler = (_gateway_kwargs(app) or {}).get("handler")
    return handler if isinstance(handler, ExceptionHandler) else None


def app_errors(app: Starlette, handler: ExceptionHandler) -> AppErrors:
    """Every error `app` can answer with, through the kit of `handler` installed on it.

    - what its routes can answer (every route it serves, through mounts, those its document leaves
      out too): the refusals of the stages installed (where they apply), the codes routes declare
      with `raises()`, request validation in the kit's format;
    - what the handlers answer for any request (no route is named for these): 404 for an unknown
      path, 405 for a method a path does not serve, 500, and (a Starlette app validates bodies
      itself) body validation and malformed JSON;
    - the codes the kit defines (`kit.define`);
    - the catalog's own codes (not the generic statuses, not the stages' codes), unless a route
      declares codes with `raises()`: then the routes' declarations say which of them the app uses.

    The route checks of the app's start-up run first (once): they read the `errorkit.limit(...)`
    marks that bring the rate limiter's codes, and refuse a code `raises()` names that the kit lacks.
    Where the app publishes an OpenAPI document (FastAPI, unless `openapi_url=None`; a Starlette app
    with a `kit.schemas()` route), each code also names the operations of it that return the code;
    the document is made once, and read from its cache.
    """
    startup = (_gateway_kwargs(app) or {}).get("startup")
    if isinstance(startup, Startup):
        startup.check_routes_once(app)

    stages = Stages.of(app)
    registry, format = handler.registry, handler.format
    fastapi = is_fastapi(app)
    documented = _documented(app, handler) or []
    docs = ErrorDocumentation(handler, stages)
    walked = [(op, docs.errors_of(op)) for op in app_operations(app, handler)]

    found: dict[str, type[APIError]] = {}
    for _, classes in [*documented, *walked]:
        for cls in classes:
            found.setdefault(cls.definition.code, cls)

    returned_by: dict[str, list[str]] = {}
    for operation, classes in documented:
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

    declares = any(operation.declared for operation, _ in walked)
    own = registry.own_codes()  # what kit.define() added (not the catalog's, whatever its name)
    for definition in registry:
        code, cls = definition.code, registry[definition.code]
        generic = code in GENERIC and GENERIC[code] is cls
        if code in own or (not declares and not generic and code not in STAGE_VOCABULARY):
            found.setdefault(code, cls)

    operations = tuple(f"{op.method.upper()} {op.path}" for op, _ in documented)
    return AppErrors(
        tuple(found.values()),
        {code: tuple(routes) for code, routes in returned_by.items()},
        tuple(dict.fromkeys(operations)),
        frozenset(cls.definition.code for cls in answered),
        declares,
    )


def app_reference(app: Starlette, handler: ExceptionHandler, page: ReferencePage | None = None) -> Reference:
    """The reference page of `app` (see `app_errors` for what it lists), in the kit's format."""
    errors = app_errors(app, handler)
    # what the page leaves out, said plainly: a reader must not take it for every answer the API can give
    summary: list[Block] = [
        "The errors this API can return, by HTTP status, each under its code: the codes its routes declare, "
        "and those errorkit answers with for it."
    ]
    not_listed = (
        "A route that raises a bare HTTP status (an HTTPException with 403 or 409) answers in this format too, "
        "but its code is listed only where a route declares it."
    )
    if errors.declares:
        not_listed += (
            " The routes declare the codes they return, so a code of the catalog no route declares is not listed "
            "(it keeps its own page)."
        )
    summary.append(not_listed)
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
        anywhere=errors.anywhere,
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
    """The page text of the reference `app` mounts for the kit of `handler`, at any depth of mounts
    (None when it mounts none)."""
    for _, mounted in AppRoutes(app).mounted:
        if isinstance(mounted, ReferenceRouter) and mounted.handler is handler:
            return mounted.page
    return None


def _documented(app: Starlette, handler: ExceptionHandler) -> list[OperationErrors] | None:
    """The operations of the OpenAPI document `app` publishes, with their errors (made once, then cached);
    None when it publishes none: a page names no route of an API that keeps its routes to itself."""
    if is_fastapi(app):
        if getattr(app, "openapi_url", None) is None:  # FastAPI(openapi_url=None): no /openapi.json
            return None
        app.openapi()  # type: ignore[attr-defined]  # (makes the document, once)
        made = _FASTAPI_DOCUMENTS.get(app)
        return None if made is None else made.errors

    # a Starlette app publishes the document of the kit.schemas() generator whose route is among its routes
    for served in AppRoutes(app).served:
        route = served.route
        if isinstance(route, DocumentRoute) and route.generator.handler is handler:
            return route.generator.operation_errors(app)
    return None
