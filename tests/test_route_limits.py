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
