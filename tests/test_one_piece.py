"""One piece at a time: `install(..., handlers=False)` leaves the app's own exception handlers in
charge, while errorkit answers its own refusals in the kit's format."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

import errorkit
from errorkit import Backend, ErrorKit, Idempotency, RateLimiter, catalogs


async def own_404(request: Request, exc: Exception) -> Response:
    return JSONResponse({"message": "nothing here", "ours": True}, status_code=404)


async def own_500(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("our own 500", status_code=500)


async def create_order(request: Request) -> Response:
    body = await request.json()
    return JSONResponse({"id": "o_1", "amount": body["amount"]}, status_code=201)


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def declared(request: Request) -> Response:
    raise kit.error("not_found", message="No such order.")


kit = ErrorKit(catalog=catalogs.DETAIL_API)


def starlette_app(backend: Backend, **stages: object) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.initialize()  # a new Redis: adopt it (idempotency refuses to guess otherwise)
        yield

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/orders", create_order, methods=["POST"]),
            Route("/boom", boom),
            Route("/declared", declared),
            Route("/refunds", refund, methods=["POST"]),
        ],
        exception_handlers={404: own_404, 500: own_500},
    )
    kit.install(app, handlers=False, **stages)  # type: ignore[arg-type]
    return app


@pytest.fixture
def only_idempotency(backend: Backend) -> Iterator[TestClient]:
    with TestClient(starlette_app(backend, idempotency=Idempotency(backend)), raise_server_exceptions=False) as client:
        yield client


def test_the_apps_own_404_and_500_stay_with_idempotency_alone(only_idempotency: TestClient) -> None:
    missing = only_idempotency.get("/missing")
    assert (missing.status_code, missing.json()) == (404, {"message": "nothing here", "ours": True})

    crashed = only_idempotency.get("/boom")
    assert (crashed.status_code, crashed.text) == (500, "our own 500")


def test_idempotency_alone_replays_and_refuses_in_the_kits_format(only_idempotency: TestClient) -> None:
    key = {"Idempotency-Key": "order-1"}
    first = only_idempotency.post("/orders", json={"amount": 5}, headers=key)
    again = only_idempotency.post("/orders", json={"amount": 5}, headers=key)
    assert (first.status_code, first.json()) == (201, {"id": "o_1", "amount": 5})
    assert (again.status_code, again.json(), again.headers["idempotent-replayed"]) == (201, first.json(), "true")

    reused = only_idempotency.post("/orders", json={"amount": 6}, headers=key)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert set(reused.json()) == {"detail", "code", "request_id"}


def test_errorkits_own_errors_raised_by_the_app_are_still_rendered(only_idempotency: TestClient) -> None:
    answer = only_idempotency.get("/declared")
    assert (answer.status_code, answer.json()["code"], answer.json()["detail"]) == (404, "not_found", "No such order.")


def test_an_error_a_route_raises_is_stored_and_replayed_like_any_response(only_idempotency: TestClient) -> None:
    key = {"Idempotency-Key": "refund-1"}
    answers = [only_idempotency.post("/refunds", headers=key) for _ in range(2)]
    assert [(a.status_code, a.json()["detail"]) for a in answers] == [
        (404, "No invoice for refund 1."),
        (404, "No invoice for refund 1."),
    ]
    assert answers[1].headers["idempotent-replayed"] == "true"  # the route ran once


async def refund(request: Request) -> Response:
    request.app.state.refunds = getattr(request.app.state, "refunds", 0) + 1  # (how many times it ran)
    raise kit.error("not_found", message=f"No invoice for refund {request.app.state.refunds}.")


def test_rate_limiting_alone(backend: Backend) -> None:
    app = starlette_app(backend, rate_limit=RateLimiter(backend, limits="1/minute"))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/orders", json={"amount": 1}).status_code == 201
        limited = client.post("/orders", json={"amount": 1})
        assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
        assert limited.headers["retry-after"] and limited.headers["x-ratelimit-remaining"] == "0"

    with TestClient(
        starlette_app(backend, rate_limit=RateLimiter(backend, limits="9/minute")), raise_server_exceptions=False
    ) as c:
        assert (c.get("/missing").json(), c.get("/boom").text) == (
            {"message": "nothing here", "ours": True},
            "our own 500",
        )


class Order(BaseModel):
    amount: int


def test_fastapi_keeps_its_own_validation_errors_and_documents_them(backend: Backend) -> None:
    app = FastAPI()

    @app.post("/orders", status_code=201)
    @errorkit.limit("1/minute")
    async def create(order: Order) -> Order:
        return order

    kit.install(app, handlers=False, rate_limit=RateLimiter(backend))
    with TestClient(app) as client:
        invalid = client.post("/orders", json={"amount": "many"})
        assert invalid.status_code == 422
        assert invalid.json()["detail"][0]["loc"] == ["body", "amount"]  # FastAPI's own shape

        limited = client.post("/orders", json={"amount": 1})
        assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")

        responses = client.get("/openapi.json").json()["paths"]["/orders"]["post"]["responses"]
    assert sorted(responses) == ["201", "422", "429"]
    assert responses["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }
    assert responses["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_with_handlers_the_kit_answers_everything(backend: Backend) -> None:
    app = Starlette(routes=[Route("/boom", boom)])
    ErrorKit(catalog=catalogs.DETAIL_API).install(app, rate_limit=RateLimiter(backend))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/missing").json()["code"] == "not_found"
        assert client.get("/boom").json()["code"] == "internal_error"


def test_an_http_exception_of_the_app_stays_its_own(backend: Backend) -> None:
    async def teapot(request: Request) -> Response:
        raise HTTPException(418, "short and stout")

    async def own_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(f"ours: {exc.detail}", status_code=exc.status_code)

    app = Starlette(routes=[Route("/tea", teapot)], exception_handlers={HTTPException: own_http})
    ErrorKit().install(app, handlers=False, rate_limit=RateLimiter(backend))
    with TestClient(app) as client:
        answer = client.get("/tea")
    assert (answer.status_code, answer.text) == (418, "ours: short and stout")


def test_fastapis_validation_422_and_errorkits_422_are_both_documented(backend: Backend) -> None:
    app = FastAPI()

    @app.post("/orders", status_code=201)
    async def create(order: Order) -> Order:
        return order

    kit.install(app, handlers=False, idempotency=Idempotency(backend))
    with TestClient(app) as client:
        unprocessable = client.get("/openapi.json").json()["paths"]["/orders"]["post"]["responses"]["422"]
    assert unprocessable["content"]["application/json"]["schema"] == {
        "oneOf": [{"$ref": "#/components/schemas/HTTPValidationError"}, {"$ref": "#/components/schemas/Error"}]
    }
    assert unprocessable["description"].startswith("Validation Error; `idempotency_key_reused`: ")
