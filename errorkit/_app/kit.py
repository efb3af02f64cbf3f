"""`ErrorKit`: one object holding the registry and the format, installed on an app in one call."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any, Unpack

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router

from errorkit._app.gateway import GatewayMiddleware, request_id_layer
from errorkit._app.handlers import ExceptionHandler
from errorkit._app.openapi import (
    ErrorSchemaGenerator,
    ReferenceRouter,
    app_reference,
    install_fastapi,
    installed_handler,
    is_fastapi,
    mounted_page,
)
from errorkit._app.startup import Startup
from errorkit._common.exceptions import Refused
from errorkit._errors.definition import DefinitionFields, ErrorDefinition
from errorkit._errors.errors import APIError
from errorkit._errors.formats import FORMATS, Format
from errorkit._errors.reference import Reference, ReferencePage
from errorkit._errors.registry import Registry
from errorkit._observe.observer import Observer, combine, guard
from errorkit._observe.tracing import span_annotator
from errorkit._stages.auth import APIKeyAuth
from errorkit._stages.concurrency import ConcurrencyLimit
from errorkit._stages.idempotency import Idempotency
from errorkit._stages.one_trip import one_trip
from errorkit._stages.quotas import Quotas
from errorkit._stages.ratelimit import RateLimiter
from errorkit._stores.protocols import Observed
from errorkit.catalogs import GENERIC
from errorkit.catalogs.traffic import STAGE_CODES


class ErrorKit:
    """An API's errors: which codes exist, how they look, and the handlers that send them.

    `catalog` is where the codes start from: `GENERIC` (one code per HTTP status, the
    default), your own `Registry`, or a built-in catalog that reproduces a published API
    error reference (`DETAIL_API`, `ENVELOPE_API`), which also brings its format and doc
    URLs. `format` is `"detail"`, `"envelope"`, `"problem"` or a `Format` instance;
    `doc_url` a template such as `"https://docs.example.com/errors/{code}"`.
    """

    def __init__(
        self,
        *,
        catalog: Registry = GENERIC,
        format: str | Format | None = None,
        doc_url: str | None = None,
        validation_input: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        # (GENERIC answers what a catalog made without it lacks: a failed validation is no 500)
        self.registry = Registry("app", include=[catalog], fallback=GENERIC)
        self.format = _format(format or catalog.format or "detail")
        self.doc_url = doc_url if doc_url is not None else catalog.doc_url
        if self.doc_url is not None and "{code}" not in self.doc_url:
            raise ValueError(f"doc_url template {self.doc_url!r} must contain {{code}}")

        self.validation_input = validation_input
        self.logger = logger or logging.getLogger("errorkit")
        self.handler = ExceptionHandler(
            self.registry, self.format, doc_url=self.doc_url, validation_input=validation_input, logger=self.logger
        )

    def define(self, code: str, **fields: Unpack[DefinitionFields]) -> type[APIError]:
        """Declare an error code and return its exception class.

        `details` maps names to types (`{"campaign_id": str}`; `(type, default)` for an
        optional one) or is a pydantic model; `message` may use them (`"{campaign_id}"`).
        `retryable` defaults to True for 408, 425, 429, 500, 502, 503 and 504;
        `retry_after` is the default `Retry-After` in seconds for a retryable error. The other
        fields: `status`, `message` (required), `when`, `fix` (the reference page's text),
        `group`, `doc_url`, `title`.
        """
        return self.registry.define(code, **fields)

    def error(self, code: str, /, **details: Any) -> APIError:
        """The error `code` with `details`, ready to raise: `raise kit.error("quota_exceeded", ...)`.

        `message=`, `headers=` and `retry_after=` are taken as `APIError` takes them.
        """
        return self.registry.error(code, **details)

    def include(self, catalog: Registry) -> None:
        """Add another catalog's codes (a code defined differently in both is an error)."""
        self.registry.include(catalog)

    def doc_url_for(self, definition: ErrorDefinition) -> str | None:
        """The definition's own doc URL, else the kit's template filled with its code."""
        return self.handler.doc_url_for(definition)

    def reference(self, page: ReferencePage | None = None, *, app: Starlette | None = None) -> Reference:
        """A reference page (`.markdown()`, `.html()`) in this kit's format, codes ordered by HTTP status.

        Without `app`: the catalog's page, every code of the kit, and the stages' codes its catalog
        does not define (what its gateway answers with then). With `app` (this kit installed on it):
        that app's page, only what the app can answer with (the codes the kit defines, its
        catalog's own codes unless routes declare theirs with `raises()`, the codes of the stages
        installed, the handlers' 404, 405, 500 and validation errors), each with the routes that
        return it when the app publishes an OpenAPI document; `page` defaults to the text of the
        reference the app mounts (`reference_app(page)`). The app's start-up route checks run
        first: a `ConfigurationError` names a mistake, as the start-up would.
        """
        if app is None:
            return Reference(self.registry, self.format, doc_url=self.doc_url, page=page, defaults=STAGE_CODES)
        if installed_handler(app) is not self.handler:
            raise ValueError("this kit is not installed on that app: call kit.install(app) first")
        return app_reference(app, self.handler, page or mounted_page(app, self.handler))

    def reference_app(self, page: ReferencePage | None = None) -> Router:
        """An ASGI app serving the reference as HTML: mount it where `doc_url` points.

        `app.mount("/errors", kit.reference_app())` serves the app's page at `/errors/` (what the
        app can answer with, see `reference(app=...)`) and each code's own page at `/errors/{code}`
        (every code of the kit has one, so no doc URL of a body leads nowhere); an unknown code is
        this kit's 404. Mounted in an app this kit is not installed on, or served without a
        Starlette app, it serves the catalog's page. The pages are made once per app, on first use
        (after the app's routes are all added).
        """
        pages: weakref.WeakKeyDictionary[object, tuple[Reference, dict[str, str]]] = weakref.WeakKeyDictionary()
        catalog: list[tuple[Reference, dict[str, str]]] = []  # the catalog's page, made on first use

        def catalog_page() -> tuple[Reference, dict[str, str]]:
            if not catalog:
                catalog.append((self.reference(page), {}))
            return catalog[0]

        def reference_of(request: Request, *, or_catalog: bool = False) -> tuple[Reference, dict[str, str]]:
            # (Starlette puts its app in the scope; served alone, or mounted in a bare Router, there is none)
            app = request.scope.get("app")
            if not isinstance(app, Starlette):
                return catalog_page()
            found = pages.get(app)
            if found is None:
                if installed_handler(app) is not self.handler:
                    found = pages[app] = catalog_page()
                    return found
                try:
                    found = pages[app] = (self.reference(page, app=app), {})
                except Exception as exc:
                    if not or_catalog:
                        raise  # (the app's page is the index: the kit's 500, logged)
                    # a code's page is the same on the catalog's page, less its routes: better than none
                    # (not kept: the next request tries the app's page again)
                    self.logger.warning(
                        "the reference page of this app cannot be made (%s: %s); /%s is served from the catalog's",
                        type(exc).__name__,
                        exc,
                        request.path_params.get("code", ""),
                    )
                    return catalog_page()
            return found

        async def index(request: Request) -> Response:
            reference, rendered = reference_of(request)
            if "" not in rendered:
                rendered[""] = reference.html()
            return HTMLResponse(rendered[""])

        async def one_code(request: Request) -> Response:
            code = request.path_params["code"]
            reference, rendered = reference_of(request, or_catalog=True)
            if code not in reference:
                raise HTTPException(404)
            if code not in rendered:  # (the link back is relative: nothing of the request is kept in the page)
                rendered[code] = reference.html(only=code, index_url="./")
            return HTMLResponse(rendered[code])

        return ReferenceRouter([Route("/", index), Route("/{code}", one_code)], self.handler, page)

    def install(
        self,
        app: Starlette,
        *,
        auth: APIKeyAuth | None = None,
        rate_limit: RateLimiter | None = None,
        idempotency: Idempotency | None = None,
        concurrency: ConcurrencyLimit | None = None,
        quotas: Quotas | None = None,
        metrics: Observer | None = None,
        tracing: bool = True,
        handlers: bool = True,
        check_stores: bool = False,
    ) -> None:
        """Make every error `app` can produce leave in this kit's format, and add the stages given.

        Registers the exception handlers (with `handlers=False`, none: the app keeps its own, and
        errorkit answers only its own refusals and errors in the kit's format; the app's other
        exceptions reach the app's handlers) and adds errorkit's middleware in one order:
        the request id outside the middleware already added; then, inside all of them,
        one gateway layer: authentication, rate limiting, idempotency (around concurrency
        limits and quotas, which hold a slot or a unit around the app) and the catch-all.
        Call it after your own `add_middleware()` calls, before serving. The stages are
        built without the kit (`APIKeyAuth(store)`, ...): the kit renders their refusals.

        `metrics` (a `PrometheusMetrics`, or any `Observer`) hears every error, rate-limit
        decision and idempotency outcome, and the Redis stores' replies, failures and
        connections. With `tracing` (the default) and `opentelemetry-api` importable, the
        current server span is annotated too (see
        [traces](https://errorkit.github.io/errorkit/guides/operating/#traces)).

        When the app starts (lifespan), the stages' route entries and paths are checked against
        the app's routes and `errorkit.limit(...)` declarations read (see
        [start-up checks](https://errorkit.github.io/errorkit/guides/startup-checks/));
        with `check_stores=True` every store is reached too, and one that cannot be (or lost
        errorkit's data) fails the start-up with its URL, password hidden, and the reason.
        """
        if app.middleware_stack is not None:
            raise RuntimeError("install() must be called before the app handles its first request")
        # (typing needs it: mypy holds that `Middleware.cls`, a middleware factory type, is never this function)
        if any(m.cls is request_id_layer for m in app.user_middleware):  # type: ignore[comparison-overlap]
            raise RuntimeError("an ErrorKit is already installed on this app")

        # errorkit's own errors always: answered inside the app, a route's APIError is a response
        # idempotency stores and replays like any other
        for exc_class in self.handler.exception_classes() if handlers else [APIError, Refused]:
            app.add_exception_handler(exc_class, self.handler)
        if handlers:  # only reached through ServerErrorMiddleware: a middleware added after install() crashed
            app.add_exception_handler(Exception, self.handler)

        inner = [stage for stage in (concurrency, quotas) if stage is not None]
        marked = [auth and auth.keys, idempotency and idempotency.records, quotas and quotas.store]  # (lost data: 503)
        counters = [rate_limit and rate_limit.counters, concurrency and concurrency.slots]  # (afresh after a loss)
        checked = [stage for stage in (auth, rate_limit, idempotency, *inner) if stage is not None]
        startup = Startup(
            checked,
            limited=rate_limit is not None,
            stores=(marked, counters) if check_stores else None,
            registry=self.registry,  # (every code a route's raises() names must be the kit's)
        )

        app.user_middleware.insert(0, Middleware(request_id_layer, handler=self.handler, handles_errors=handlers))
        app.user_middleware.append(
            Middleware(
                GatewayMiddleware,
                handler=self.handler,
                auth=auth,
                limiter=rate_limit,
                idempotency=idempotency,
                inner=inner,
                one_trip=one_trip(rate_limit, idempotency),
                startup=startup,
                handles_errors=handlers,
            )
        )

        observer = combine(metrics, span_annotator() if tracing else None)
        self.handler.observer = observer
        for stage in (rate_limit, idempotency, *inner):  # every stage that decides something hears it
            if stage is not None:
                stage.observer = observer

        if metrics is not None:  # the stores' connections report to the metrics alone (traces need no Redis events)
            _observe_stores([*marked, *counters], guard(metrics))

        if is_fastapi(app):  # its /openapi.json then documents every error (computed once)
            install_fastapi(app, self.handler, startup)

    def schemas(self, base_schema: dict[str, Any], *, models: Sequence[type[Any]] = ()) -> ErrorSchemaGenerator:
        """For a Starlette app: its OpenAPI document, operations from YAML docstrings, errors from the kit.

        `schemas = kit.schemas({"openapi": "3.1.0", "info": {...}}, models=[DeploymentIn])`, then
        `schemas.route("/openapi.json")` among the app's routes; `models` are put in
        `components.schemas` for docstrings to `$ref`. FastAPI apps need none of this.
        """
        return ErrorSchemaGenerator(base_schema, self.handler, models)

    def __repr__(self) -> str:
        return f"<ErrorKit format={self.format.name!r} codes={len(self.registry)}>"


def _observe_stores(stores: Sequence[object], observer: Observer) -> None:
    """Every store given that reports its connections (`Observed`) reports to `observer`, once."""
    observed = {id(store): store for store in stores if isinstance(store, Observed)}
    for store in observed.values():
        store.observe(observer)


def _format(format: str | Format) -> Format:
    if isinstance(format, Format):
        return format
    try:
        return FORMATS[format]()
    except KeyError:
        raise ValueError(f"unknown format {format!r}; use one of {sorted(FORMATS)} or a Format instance") from None
