"""Limits declared beside the route (`errorkit.limit(...)`), and limits written as text: counted
exactly as a `routes=` entry for the same route, over the in-memory and the Redis store."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

import errorkit
from errorkit import (
    APIKeyAuth,
    Backend,
    ErrorKit,
    Limit,
    PlanLimits,
    Principal,
    RateLimiter,
    catalogs,
    register_api_key,
)
from tests.support.stores import NewBackend


def build(framework: str, backend: Backend, *, declared: bool = True, **options: Any) -> Starlette:
    """POST /widgets 2/minute; POST /exports 1/minute (FastAPI: the dependency form); POST /reports
    4/minute at cost 2; /things limited on POST only; /v1/items inside a mount; GET /widgets and
    the rest take the default limits, 5/hour. `declared=False`: the same limits as `routes=`."""
    limit = errorkit.limit if declared else (lambda *a, **k: lambda f: f)

    if framework == "fastapi":
        app: Starlette = FastAPI()
        fast: FastAPI = app  # type: ignore[assignment]
        sub = FastAPI()

        @fast.post("/widgets")
        @limit("2/minute")
        async def create_widget() -> dict[str, bool]:
            return {"ok": True}

        @fast.get("/widgets")
        async def list_widgets() -> dict[str, bool]:
            return {"ok": True}

        extra = [Depends(errorkit.limit("1/minute").dependency)] if declared else []

        @fast.post("/exports", dependencies=extra)
        async def export() -> dict[str, bool]:
            return {"ok": True}

        @fast.post("/reports")
        @limit("4/minute", cost=2)
        async def report() -> dict[str, bool]:
            return {"ok": True}

        @fast.get("/things")
        async def read_things() -> dict[str, bool]:
            return {"ok": True}

        @fast.post("/things")
        @limit("1/minute", methods=["POST"])
        async def things() -> dict[str, bool]:
            return {"ok": True}

        @sub.post("/items")
        @limit("1/minute")
        async def items() -> dict[str, bool]:
            return {"ok": True}

        app.mount("/v1", sub)
    else:

        async def ok(request: Request) -> Response:
            return JSONResponse({"ok": True})

        def endpoint() -> Callable[[Request], Any]:
            async def handle(request: Request) -> Response:
                return JSONResponse({"ok": True})

            return handle

        app = Starlette(
            routes=[
                Route("/widgets", limit("2/minute")(endpoint()), methods=["POST"]),
                Route("/widgets", ok, methods=["GET"]),
                Route("/exports", limit("1/minute")(endpoint()), methods=["POST"]),
                Route("/reports", limit("4/minute", cost=2)(endpoint()), methods=["POST"]),
                Route("/things", limit("1/minute", methods=["POST"])(endpoint()), methods=["GET", "POST"]),
                Mount("/v1", routes=[Route("/items", limit("1/minute")(endpoint()), methods=["POST"])]),
            ]
        )

    routes = (
        {}
        if declared
        else {
            "POST /widgets": "2/minute",
            "POST /exports": "1/minute",
            "POST /reports": "4/minute",
            "POST /things": "1/minute",
            "POST /v1/items": "1/minute",
        }
    )
    limiter = RateLimiter(backend, limits="5/hour", routes=routes, **options)
    ErrorKit(catalog=catalogs.DETAIL_API).install(app, rate_limit=limiter)
    return app


@pytest.fixture
def client(framework: str, backend: Backend) -> Iterator[TestClient]:
    with TestClient(build(framework, backend)) as client:
        yield client


def limits(response: Any) -> tuple[int, str, str]:
    return response.status_code, response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]


def test_a_decorated_route_counts_its_own_limits(client: TestClient) -> None:
    assert [limits(client.post("/widgets")) for _ in range(3)] == [(200, "2", "1"), (200, "2", "0"), (429, "2", "0")]
    refused = client.post("/widgets")
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60

    # the other routes are untouched: GET /widgets takes the defaults, in their own bucket
    assert limits(client.get("/widgets")) == (200, "5", "4")


def test_the_dependency_form_and_a_route_inside_a_mount(client: TestClient) -> None:
    assert [limits(client.post("/exports")) for _ in range(2)] == [(200, "1", "0"), (429, "1", "0")]
    assert [limits(client.post("/v1/items")) for _ in range(2)] == [(200, "1", "0"), (429, "1", "0")]


def test_cost_and_methods(client: TestClient) -> None:
    assert [limits(client.post("/reports")) for _ in range(3)] == [(200, "4", "2"), (200, "4", "0"), (429, "4", "0")]

    assert [limits(client.post("/things")) for _ in range(2)] == [(200, "1", "0"), (429, "1", "0")]
    assert limits(client.get("/things")) == (200, "5", "4")  # GET is not limited by the decorator: the defaults


def test_a_decorator_counts_in_the_bucket_of_the_routes_entry(framework: str, new_backend: NewBackend) -> None:
    # switching from the routes= form to the decorator keeps what was counted
    backend = new_backend()
    with TestClient(build(framework, backend, declared=False)) as central:
        assert limits(central.post("/widgets")) == (200, "2", "1")
    with TestClient(build(framework, backend)) as declared:
        assert limits(declared.post("/widgets")) == (200, "2", "0")
        assert limits(declared.post("/widgets"))[0] == 429


def test_openapi_documents_a_decorated_route_as_its_routes_entry(backend: Backend) -> None:
    documents = []
    for declared in (True, False):
        app = build("fastapi", backend, declared=declared)
        with TestClient(app) as client:
            documents.append(client.get("/openapi.json").json())
    assert documents[0]["paths"] == documents[1]["paths"]

    widgets = documents[0]["paths"]["/widgets"]
    assert "429" in widgets["post"]["responses"]
    assert "X-RateLimit-Limit" in widgets["post"]["responses"]["200"]["headers"]


def test_limits_as_text_wherever_limits_are_taken(backend: Backend) -> None:
    async def plan(principal: Principal) -> str | None:
        return "3/hour" if principal.plan == "pro" else None

    async def ok(request: Request) -> Response:
        return JSONResponse({})

    limiter = RateLimiter(backend, limits="2/minute; 10/hour", plans=PlanLimits(plan), routes={"/y": Limit(1, 60)})
    app = Starlette(routes=[Route("/x", ok), Route("/y", ok)])
    ErrorKit().install(app, auth=APIKeyAuth(backend), rate_limit=limiter)
    with TestClient(app) as client:
        client.portal.call(register_keys, backend)  # type: ignore[union-attr]
        free, pro = {"X-API-Key": "ek_free.secret-free-1"}, {"X-API-Key": "ek_pro.secret-pro-1"}

        assert [limits(client.get("/x", headers=free)) for _ in range(3)] == [
            (200, "2", "1"),
            (200, "2", "0"),
            (429, "2", "0"),
        ]
        assert [limits(client.get("/x", headers=pro)) for _ in range(4)] == [
            (200, "3", "2"),
            (200, "3", "1"),
            (200, "3", "0"),
            (429, "3", "0"),
        ]
        assert [limits(client.get("/y", headers=free)) for _ in range(2)] == [(200, "1", "0"), (429, "1", "0")]


async def register_keys(backend: Backend) -> None:
    await register_api_key(backend, "ek_free.secret-free-1", workspace_id="ws_free")
    await register_api_key(backend, "ek_pro.secret-pro-1", workspace_id="ws_pro", plan="pro")


def test_buckets_are_named_as_the_routes_entries_would_be() -> None:
    from starlette.routing import Route

    from errorkit._stages.limits import declared_limits
    from errorkit._stages.routes import AppRoutes

    def endpoint() -> Callable[[Request], Any]:  # (a function of its own each time: marks add up)
        async def handle(request: Request) -> Response:
            return JSONResponse({})

        return handle

    def named(route: Route) -> list[tuple[tuple[str, ...], str]]:
        (served,) = AppRoutes(Starlette(routes=[route])).served
        return [(d.keys, d.bucket) for d in declared_limits(served)]

    one = errorkit.limit("1/minute")
    assert named(Route("/items", one(endpoint()))) == [(("GET /items", "HEAD /items"), "GET /items")]  # HEAD is GET's
    assert named(Route("/items", one(endpoint()), methods=["POST"])) == [(("POST /items",), "POST /items")]
    assert named(Route("/items", one(endpoint()), methods=["GET", "POST"])) == [
        (("GET /items", "HEAD /items", "POST /items"), "/items")  # every method: the template alone
    ]
    post_only = errorkit.limit("1/minute", methods=["POST"])
    assert named(Route("/things", post_only(endpoint()), methods=["GET", "POST"])) == [
        (("POST /things",), "POST /things")
    ]


def test_a_get_route_counts_in_its_routes_entrys_bucket(new_backend: NewBackend) -> None:
    backend = new_backend()

    async def items(request: Request) -> Response:
        return JSONResponse({})

    def app(declared: bool) -> Starlette:
        route = Route("/items", errorkit.limit("2/minute")(items) if declared else items)
        app = Starlette(routes=[route])
        ErrorKit().install(app, rate_limit=RateLimiter(backend, routes={} if declared else {"GET /items": "2/minute"}))
        return app

    with TestClient(app(declared=False)) as client:
        assert limits(client.get("/items")) == (200, "2", "1")
    with TestClient(app(declared=True)) as client:
        assert [limits(client.get("/items")) for _ in range(2)] == [(200, "2", "0"), (429, "2", "0")]


def included(backend: Backend, **options: Any) -> FastAPI:
    """A FastAPI app whose routes live in a router included with a prefix (and one router deeper)."""
    from fastapi import APIRouter

    router, deeper = APIRouter(), APIRouter()

    @router.post("/widgets", status_code=201)
    @errorkit.limit("2/minute")
    async def create_widget() -> dict[str, bool]:
        return {"ok": True}

    @router.get("/widgets/{widget_id}")
    async def read_widget(widget_id: str) -> dict[str, str]:
        return {"id": widget_id}

    @deeper.post("/exports", dependencies=[Depends(errorkit.limit("1/minute").dependency)])
    async def export() -> dict[str, bool]:
        return {"ok": True}

    router.include_router(deeper, prefix="/jobs")
    app = FastAPI()
    app.include_router(router, prefix="/v1")
    ErrorKit(catalog=catalogs.DETAIL_API).install(app, rate_limit=RateLimiter(backend, limits="5/hour", **options))
    return app


def test_routes_of_included_routers_are_limited_entered_and_documented(backend: Backend) -> None:
    app = included(backend, routes={"GET /v1/widgets/{widget_id}": "1/minute"})
    with TestClient(app) as client:
        assert [limits(client.post("/v1/widgets")) for _ in range(3)] == [
            (201, "2", "1"),
            (201, "2", "0"),
            (429, "2", "0"),
        ]
        assert [limits(client.post("/v1/jobs/exports")) for _ in range(2)] == [(200, "1", "0"), (429, "1", "0")]
        assert [limits(client.get("/v1/widgets/w_1")) for _ in range(2)] == [(200, "1", "0"), (429, "1", "0")]
        paths = client.get("/openapi.json").json()["paths"]
    assert "429" in paths["/v1/widgets"]["post"]["responses"]
    assert "429" in paths["/v1/jobs/exports"]["post"]["responses"]


def test_a_typo_of_an_included_route_fails_the_start_up(backend: Backend) -> None:
    from errorkit import ConfigurationError

    with (
        pytest.raises(ConfigurationError) as raised,
        TestClient(included(backend, routes={"POST /v1/widgetz": "1/second"})),
    ):
        pass
    assert (
        str(raised.value)
        == "RateLimiter(routes=...): 'POST /v1/widgetz' names no route of the app; the nearest is 'POST /v1/widgets'"
    )


def test_the_openapi_document_made_before_the_app_starts_documents_the_marks(backend: Backend) -> None:
    app = FastAPI()

    @app.post("/widgets")
    @errorkit.limit("2/minute")
    async def create_widget() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/widgets")
    async def list_widgets() -> dict[str, bool]:
        return {"ok": True}

    # the defaults only in shadow: no 429 documented but where a mark limits the route
    ErrorKit().install(app, rate_limit=RateLimiter(backend, limits=[Limit(5, 3600, shadow=True)]))
    document = app.openapi()  # (a CI step exporting the schema never starts the app)
    assert "429" in document["paths"]["/widgets"]["post"]["responses"]
    assert "429" not in document["paths"]["/widgets"]["get"]["responses"]


def test_one_rate_limiter_serves_one_app(backend: Backend) -> None:
    from errorkit import ConfigurationError

    limiter = RateLimiter(backend)
    first, second = Starlette(routes=[]), Starlette(routes=[])
    ErrorKit().install(first, rate_limit=limiter)
    ErrorKit().install(second, rate_limit=limiter)
    with TestClient(first):
        pass
    with pytest.raises(ConfigurationError) as raised, TestClient(second):
        pass
    assert str(raised.value) == "RateLimiter: installed on two apps; build one RateLimiter per app"


def test_an_app_of_one_included_router_of_one_route_is_laid_out(backend: Backend) -> None:
    from fastapi import APIRouter

    router = APIRouter()

    @router.post("/only")
    @errorkit.limit("1/minute")
    async def only() -> dict[str, bool]:
        return {"ok": True}

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # (its one route: the included router)
    app.include_router(router, prefix="/v1")
    ErrorKit().install(app, rate_limit=RateLimiter(backend))
    with TestClient(app) as client:
        assert [limits(client.post("/v1/only")) for _ in range(2)] == [(200, "1", "0"), (429, "1", "0")]
