"""The server span, as OpenTelemetry's ASGI instrumentation makes it, annotated with errorkit's decisions."""

import asyncio
from typing import Any

import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    FailurePolicy,
    Idempotency,
    Limit,
    MemoryBackend,
    RateLimiter,
    RedisBackend,
    catalogs,
    register_api_key,
)
from tests.support.servers import free_port

ONE = {"X-API-Key": "ek_one.workspace-one-1"}


async def work(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def boom(request: Request) -> Response:
    raise ZeroDivisionError("division by zero")


class Traced:
    """An errorkit app inside OpenTelemetry's ASGI middleware, its spans kept in memory."""

    def __init__(self, **stages: Any) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        app = Starlette(routes=[Route("/work", work, methods=["GET", "POST"]), Route("/boom", boom)])
        ErrorKit(catalog=catalogs.DETAIL_API).install(app, **stages)
        self.client = TestClient(OpenTelemetryMiddleware(app, tracer_provider=provider), raise_server_exceptions=False)

    def server_span(self, method: str, path: str, **kwargs: Any) -> tuple[int, ReadableSpan]:
        self.exporter.clear()
        status = self.client.request(method, path, **kwargs).status_code
        (span,) = [s for s in self.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
        return status, span


def errorkit_attributes(span: ReadableSpan) -> dict[str, Any]:
    assert span.attributes is not None
    return {k: v for k, v in span.attributes.items() if k.startswith("errorkit.") or k == "error.type"}


@pytest.fixture
def traced() -> Traced:
    backend = MemoryBackend()
    asyncio.run(register_api_key(backend, ONE["X-API-Key"], workspace_id="ws_1"))
    return Traced(
        auth=APIKeyAuth(backend),
        rate_limit=RateLimiter(backend, limits=[Limit(2, 3600)]),
        idempotency=Idempotency(backend),
    )


def test_an_admitted_request_carries_the_rate_limit_result(traced: Traced) -> None:
    status, span = traced.server_span("GET", "/work", headers=ONE)
    assert status == 200
    assert errorkit_attributes(span) == {
        "errorkit.rate_limit.result": "allowed",
        "errorkit.rate_limit.policy": "default",
    }
    assert span.status.status_code is StatusCode.UNSET


def test_a_refusal_carries_its_code_and_stays_a_client_error(traced: Traced) -> None:
    for _ in range(2):
        traced.server_span("GET", "/work", headers=ONE)
    status, span = traced.server_span("GET", "/work", headers=ONE)
    assert status == 429
    assert errorkit_attributes(span) == {
        "errorkit.rate_limit.result": "limited",
        "errorkit.rate_limit.policy": "default",
        "errorkit.error.code": "rate_limited",
    }
    assert span.status.status_code is StatusCode.UNSET  # a 4xx is not a server span's error
    assert [e.name for e in span.events] == []


def test_a_crash_records_its_exception_and_error_type(traced: Traced) -> None:
    status, span = traced.server_span("GET", "/boom", headers=ONE)
    assert status == 500
    assert errorkit_attributes(span) == {
        "errorkit.rate_limit.result": "allowed",
        "errorkit.rate_limit.policy": "default",
        "errorkit.error.code": "internal_error",
        "error.type": "ZeroDivisionError",
    }
    assert span.status.status_code is StatusCode.ERROR
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes is not None
    assert (event.attributes["exception.type"], event.attributes["exception.message"]) == (
        "ZeroDivisionError",
        "division by zero",
    )
    assert "in boom" in str(event.attributes["exception.stacktrace"])


def test_a_replay_is_marked(traced: Traced) -> None:
    headers = {**ONE, "Idempotency-Key": "order-1"}
    assert errorkit_attributes(traced.server_span("POST", "/work", headers=headers)[1])[
        "errorkit.idempotency.outcome"
    ] == ("first_run")
    status, span = traced.server_span("POST", "/work", headers=headers)
    assert status == 200
    assert errorkit_attributes(span) == {
        "errorkit.rate_limit.result": "allowed",
        "errorkit.rate_limit.policy": "default",
        "errorkit.idempotency.outcome": "replayed",
    }


def test_a_deliberate_5xx_is_typed_by_its_code() -> None:
    dead = RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    traced = Traced(rate_limit=RateLimiter(dead, on_failure=FailurePolicy("fail_closed")))
    status, span = traced.server_span("GET", "/work")
    assert status == 503
    assert errorkit_attributes(span) == {
        "errorkit.rate_limit.result": "failed_closed",
        "errorkit.rate_limit.policy": "default",
        "errorkit.error.code": "service_unavailable",
        "error.type": "service_unavailable",
    }
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == []  # nothing crashed: no exception event


def test_tracing_can_be_turned_off() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Starlette(routes=[Route("/boom", boom)])
    ErrorKit().install(app, tracing=False)
    with TestClient(OpenTelemetryMiddleware(app, tracer_provider=provider), raise_server_exceptions=False) as client:
        assert client.get("/boom").status_code == 500
    (span,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert errorkit_attributes(span) == {}


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text for this one")


async def unprintable(request: Request) -> Response:
    raise Unprintable()


def test_a_crash_that_cannot_be_printed_still_gets_its_formatted_500() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Starlette(routes=[Route("/boom", unprintable)])
    ErrorKit().install(app)
    with TestClient(OpenTelemetryMiddleware(app, tracer_provider=provider), raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert (response.status_code, response.json()["code"]) == (500, "internal_error")
    (span,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert errorkit_attributes(span)["error.type"] == "tests.test_tracing.Unprintable"
