"""errorkit.client: error responses of a real server read back as typed errors, with httpx and requests."""

import asyncio
import email.utils
import json
import random
from typing import Any

import httpx
import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import APIError, ErrorContext, ErrorKit, Format, ParsedBody, catalogs
from errorkit.catalogs.traffic import STAGE_CODES
from errorkit.client import (
    MAX_RETRY_DELAY,
    UnknownError,
    async_error_hook,
    error_from_response,
    error_hook,
    raise_for_error,
    retry_delay,
    should_retry,
)
from tests.support.samples import sample_error
from tests.support.served import ROUNDTRIP_KITS
from tests.support.servers import uvicorn


@pytest.fixture(scope="module")
def server_url() -> Any:
    with uvicorn("tests.support.served:roundtrip_app") as server:
        yield server.url


def expected(kit: ErrorKit, format: str, code: str) -> tuple[type[APIError], str, dict[str, Any]]:
    """The class, message and details a client can know of `code` raised by `kit` in `format`.

    The detail shape shows no details, except the issues of a validation body, which carries
    no code either: it reads as the catalog's class for its status.
    """
    raised = sample_error(kit, code)
    if format != "detail":
        return type(raised), raised.message, raised.details
    if "issues" in raised.details:
        cls = kit.registry.for_status(raised.status)
        return cls, cls.definition.message, {"issues": raised.details["issues"]}
    return type(raised), raised.message, {}


@pytest.mark.parametrize(("catalog", "format"), sorted(ROUNDTRIP_KITS))
def test_every_code_round_trips_through_a_real_server(server_url: str, catalog: str, format: str) -> None:
    kit = ROUNDTRIP_KITS[(catalog, format)]
    with httpx.Client(base_url=f"{server_url}/{catalog}/{format}") as client, requests.Session() as session:
        for definition in kit.registry:
            path = f"/raise/{definition.code}"
            raised = sample_error(kit, definition.code)
            cls, message, details = expected(kit, format, definition.code)
            for response in (client.get(path), session.get(f"{server_url}/{catalog}/{format}{path}")):
                error = error_from_response(response, kit.registry)
                assert error is not None
                assert type(error) is cls, definition.code
                assert (error.code, error.status, error.message, error.details) == (
                    cls.definition.code,
                    raised.status,
                    message,
                    details,
                ), definition.code
                assert error.request_id == response.headers["x-request-id"]
                assert len(error.request_id) == 32
                assert error.retry_after == raised.retry_after, definition.code


def test_success_is_not_an_error(server_url: str) -> None:
    response = httpx.get(f"{server_url}/detail_api/detail/ok")
    assert response.status_code == 200
    assert error_from_response(response) is None
    raise_for_error(response)  # nothing raised


def test_a_code_the_registry_does_not_know_is_an_unknown_error() -> None:
    response = httpx.Response(
        418,
        json={"error": {"code": "teapot_empty", "message": "No tea left.", "details": {"cups": 0}}},
        headers={"x-should-retry": "true", "retry-after-ms": "1500", "x-request-id": "req-1"},
    )
    error = error_from_response(response, catalogs.ENVELOPE_API)
    assert isinstance(error, UnknownError) and type(error).__name__ == "TeapotEmpty"
    assert (error.code, error.status, error.message, error.details) == (
        "teapot_empty",
        418,
        "No tea left.",
        {"cups": 0},
    )
    assert (error.request_id, error.retry_after, error.definition.retryable) == ("req-1", 2, False)
    assert should_retry(error) is True  # the server's x-should-retry wins over the status's default
    # the same code again is the same class, so it can be caught
    again = error_from_response(response, catalogs.ENVELOPE_API)
    assert type(again) is type(error)


def test_a_known_code_with_another_status_is_not_taken_for_the_registry_class() -> None:
    response = httpx.Response(500, json={"error": {"code": "quota_exceeded", "message": "odd"}})
    error = error_from_response(response, catalogs.ENVELOPE_API)
    assert isinstance(error, UnknownError) and (error.code, error.status) == ("quota_exceeded", 500)


def test_a_body_that_is_not_an_error_body_reads_as_the_status() -> None:
    response = httpx.Response(502, text="<html>Bad gateway</html>", headers={"content-type": "text/html"})
    error = error_from_response(response, catalogs.ENVELOPE_API)
    assert type(error) is catalogs.ENVELOPE_API["bad_gateway"]
    assert (error.code, error.message, error.details, error.request_id) == ("bad_gateway", "Bad Gateway", {}, None)


def test_retry_delay_reads_what_the_sdks_read() -> None:
    assert retry_delay({"retry-after-ms": "250", "retry-after": "9"}) == 0.25  # milliseconds first
    assert retry_delay({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0
    assert retry_delay({"retry-after": "1.5"}) == 1.5
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_delay({"retry-after": date}, now=lambda: 1_000_000.0) == 30.0
    assert retry_delay({"retry-after": "next tuesday"}) is None
    assert retry_delay({"retry-after": "-3"}) is None
    assert retry_delay({}) is None


def test_the_httpx_hooks_raise_the_typed_error(server_url: str) -> None:
    registry = ROUNDTRIP_KITS[("envelope_api", "envelope")].registry
    base = f"{server_url}/envelope_api/envelope"
    with httpx.Client(base_url=base, event_hooks={"response": [error_hook(registry)]}) as client:
        with pytest.raises(registry["quota_exceeded"]) as caught:
            client.get("/raise/quota_exceeded")
        assert caught.value.details == {"usage": 3, "limit": 3}
        assert client.get("/ok").json() == {"ok": True}


def test_the_async_httpx_hook_raises_the_typed_error(server_url: str) -> None:
    registry = ROUNDTRIP_KITS[("envelope_api", "problem")].registry
    base = f"{server_url}/envelope_api/problem"

    async def call() -> None:
        async with httpx.AsyncClient(base_url=base, event_hooks={"response": [async_error_hook(registry)]}) as client:
            await client.get("/raise/rate_limit_exceeded")

    with pytest.raises(registry["rate_limit_exceeded"]) as caught:
        asyncio.run(call())
    assert (caught.value.retry_after, caught.value.details) == (30, {"retry_after_seconds": 30, "limit": 100})


def test_error_responses_carry_the_retry_hints(server_url: str) -> None:
    base = f"{server_url}/envelope_api/envelope"
    limited = httpx.get(f"{base}/raise/rate_limit_exceeded")
    assert (limited.headers["retry-after"], limited.headers["retry-after-ms"]) == ("30", "30000")
    assert limited.headers["x-should-retry"] == "true"
    conflict = httpx.get(f"{base}/raise/quota_exceeded")  # 402: not worth retrying
    assert conflict.headers["x-should-retry"] == "false"
    assert "retry-after" not in conflict.headers and "retry-after-ms" not in conflict.headers


def test_a_stage_code_the_catalog_does_not_define_is_errorkits_own_class() -> None:
    body = {"detail": "A request with this Idempotency-Key is still being processed.", "code": "idempotency_key_in_use"}
    response = httpx.Response(409, json=body, headers={"retry-after": "1", "x-should-retry": "true"})
    error = error_from_response(response, catalogs.DETAIL_API)
    assert type(error) is STAGE_CODES["idempotency_key_in_use"]
    assert (error.retry_after, should_retry(error)) == (1, True)


def test_statuses_no_registry_maps_are_unknown_errors() -> None:
    for status in (520, 599, 600, 999):
        error = error_from_response(httpx.Response(status, text="upstream"), catalogs.ENVELOPE_API)
        assert isinstance(error, UnknownError), status
        assert (error.code, error.status, error.definition.retryable) == (f"http_{status}", status, True)
    teapot = error_from_response(httpx.Response(418), catalogs.ENVELOPE_API)
    assert isinstance(teapot, UnknownError) and (teapot.code, teapot.definition.retryable) == ("http_418", False)


def test_no_retry_hint_is_assumed_when_the_server_sent_none() -> None:
    body = {"error": {"code": "rate_limit_exceeded", "message": "slow", "details": {"retry_after_seconds": 30}}}
    error = error_from_response(httpx.Response(429, json=body), catalogs.ENVELOPE_API)
    assert type(error) is catalogs.ENVELOPE_API["rate_limit_exceeded"]
    assert error.retry_after is None  # not the detail's 30, not the definition's default: nothing was sent


def test_re_raising_an_error_read_from_another_service_sends_none_of_its_headers(server_url: str) -> None:
    upstream = requests.get(f"{server_url}/envelope_api/problem/raise/quota_exceeded")
    error = error_from_response(upstream, catalogs.ENVELOPE_API)
    assert error is not None and error.headers == {}
    # the response's own headers stay readable, case-insensitively, as the client library gives them
    assert error.response_headers["Content-Type"] == "application/problem+json"
    assert error.response_headers["X-Should-Retry"] == "false"

    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    app = Starlette(routes=[Route("/", _raiser(error))])
    kit.install(app)
    again = TestClient(app).get("/")
    assert again.status_code == 402 and again.headers["content-type"] == "application/json"
    assert "set-cookie" not in again.headers and again.headers["x-request-id"] != error.request_id
    assert int(again.headers["content-length"]) == len(again.content)


def _raiser(error: APIError) -> Any:
    async def endpoint(request: Request) -> Response:
        raise error

    return endpoint


class Compact(Format):
    """A custom format: `{"e": code, "m": message}`."""

    def render(self, error: APIError, context: ErrorContext) -> dict[str, Any]:
        return {"e": error.code, "m": error.message}

    def parse(self, body: Any) -> ParsedBody | None:
        if not isinstance(body, dict) or "e" not in body:
            return None
        return ParsedBody(body["e"], body.get("m"), {}, None)


def test_a_custom_format_is_read_by_its_own_parse() -> None:
    response = httpx.Response(409, json={"e": "conflict", "m": "Not now."})
    error = error_from_response(response, catalogs.GENERIC, format=Compact())
    assert type(error) is catalogs.GENERIC["conflict"] and error.message == "Not now."


def test_hostile_responses_read_as_errors_never_as_foreign_exceptions() -> None:
    nested = httpx.Response(400, content=b'{"error":' * 100_000)  # deeper than the JSON parser goes
    error = error_from_response(nested, catalogs.ENVELOPE_API)
    assert type(error) is catalogs.ENVELOPE_API["bad_request"]  # no code read: the status's class
    assert (error.code, error.message, error.details, error.retry_after) == ("bad_request", "Bad Request", {}, None)

    surrogate = httpx.Response(400, content=b'{"error": {"code": "\\ud800x", "message": "m"}}')  # a lone surrogate
    error = error_from_response(surrogate, catalogs.ENVELOPE_API)
    assert isinstance(error, UnknownError) and type(error).__name__ == "X"
    assert (error.code, error.status, error.message) == ("\ud800x", 400, "m")

    far = httpx.Response(429, headers={"Retry-After": "Sat, 01 Jan 10000 00:00:00 GMT"})
    error = error_from_response(far, catalogs.ENVELOPE_API)
    assert type(error) is catalogs.ENVELOPE_API["rate_limit_exceeded"]
    assert error.retry_after is None  # a date no calendar here holds is no hint

    odd = httpx.Response(400, json={"error": {"code": "9 lives-left.now"}})
    assert type(error_from_response(odd, catalogs.ENVELOPE_API)).__name__ == "Unknown9LivesLeftNow"


def test_retry_delays_are_capped_at_60_seconds() -> None:
    assert MAX_RETRY_DELAY == 60.0
    assert retry_delay({"retry-after": "3600"}) == 60.0
    assert retry_delay({"retry-after-ms": "90000"}) == 60.0
    assert retry_delay({"retry-after": "59.5"}) == 59.5
    an_hour_later = email.utils.formatdate(1_003_600, usegmt=True)
    assert retry_delay({"retry-after": an_hour_later}, now=lambda: 1_000_000.0) == 60.0
    assert retry_delay({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}) == 60.0
    assert retry_delay({"retry-after": "Sat, 01 Jan 99999999999999999999 00:00:00 GMT"}) is None
    assert retry_delay({"retry-after": "1e400"}) is None  # infinite: not a delay
    error = error_from_response(httpx.Response(503, headers={"retry-after": "86400"}), catalogs.ENVELOPE_API)
    assert error is not None and error.retry_after == 60


def test_malformed_bodies_and_headers_always_give_an_error() -> None:
    """Many malformed responses: each is read as an error of the registry or an UnknownError, never raises."""
    rng = random.Random(20)
    atoms: list[Any] = [None, True, 0, -1, 1e308, 10**40, "", "x", "\ud800", "\x00\x1b]0;t\x07", "a" * 5000, [], {}]
    names = ["error", "code", "message", "details", "detail", "status", "title", "type", "request_id", "doc_url"]

    def value(depth: int = 0) -> Any:
        roll = rng.random()
        if depth > 4 or roll < 0.4:
            return rng.choice(atoms)
        if roll < 0.75:
            return {rng.choice(names): value(depth + 1) for _ in range(rng.randint(0, 4))}
        return [value(depth + 1) for _ in range(rng.randint(0, 3))]

    def body() -> bytes:
        roll = rng.random()
        if roll < 0.6:
            return json.dumps(value(), ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        if roll < 0.8:
            return rng.randbytes(rng.randint(0, 64))
        whole = json.dumps({"error": {"code": "x", "details": value()}}).encode()
        return whole[: rng.randint(0, len(whole))]  # cut short

    hints = ["", "-1", "nan", "inf", "1e400", "0", "3600", "1" * 5000, "\x00", "soon",
             "Sat, 01 Jan 10000 00:00:00 GMT", "Mon, 32 Foo 2020 99:99:99 GMT", "Thu, 01 Jan 1970 00:00:00 -9999",
             "Fri, 31 Dec 9999 23:59:59 GMT", "Sat, 01 Jan 99999999999999999999 00:00:00 GMT"]  # fmt: skip
    registries = [catalogs.ENVELOPE_API, catalogs.DETAIL_API, catalogs.GENERIC]
    for _ in range(2000):
        headers = {
            name: rng.choice([*hints, "application/problem+json"])
            for name in ("retry-after", "retry-after-ms", "x-request-id", "content-type", "x-should-retry")
            if rng.random() < 0.5
        }
        status = rng.choice([400, 401, 404, 409, 418, 422, 429, 500, 503, 599, 600, 999])
        error = error_from_response(httpx.Response(status, content=body(), headers=headers), rng.choice(registries))
        assert isinstance(error, APIError) and error.status == status
        assert error.retry_after is None or 0 <= error.retry_after <= 60


def test_classes_for_unknown_codes_are_kept_only_for_codes_of_a_sane_length() -> None:
    from errorkit import client

    def error_class(code: str) -> type:
        response = httpx.Response(409, json={"error": {"code": code, "message": "?"}})
        error = error_from_response(response, catalogs.ENVELOPE_API)
        assert error is not None
        return type(error)

    kept = len(client._UNKNOWN)
    assert error_class("brand_new_code") is error_class("brand_new_code")  # the same code, the same class
    huge = "x" * 1_000_000
    assert error_class(huge) is not error_class(huge)  # made each time, kept never
    assert len(client._UNKNOWN) == kept + 1
