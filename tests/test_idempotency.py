"""Idempotency-Key behaviour, the same tests over the in-memory and the Redis backend."""

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import Backend, ErrorKit, Idempotency, MemoryBackend, RedisBackend, StoredResponses
from errorkit._stores.protocols import ClaimState
from tests.apps.idempotency import build
from tests.support.servers import free_port
from tests.support.stores import NewBackend

ONE, TWO = {"X-API-Key": "ek_one.workspace-one-1"}, {"X-API-Key": "ek_two.workspace-two-2"}


class App:
    def __init__(self, client: TestClient, backend: Backend) -> None:
        self.client, self.backend = client, backend

    def post(
        self, key: str | None, body: dict[str, Any], headers: dict[str, str] = ONE, path: str = "/orders"
    ) -> httpx.Response:
        extra = {} if key is None else {"Idempotency-Key": key}
        return self.client.post(path, json=body, headers={**headers, **extra})

    def effects(self, ref: str) -> int:
        return int(self.client.get(f"/effects/{ref}").json()["count"])


@pytest.fixture
def make(new_backend: NewBackend) -> Iterator[Callable[..., App]]:
    clients: list[TestClient] = []

    def factory(**options: Any) -> App:
        backend = new_backend()
        app, _ = build(backend, **options)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return App(client, backend)

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


def ref() -> str:
    return uuid.uuid4().hex[:12]


def error_code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


def test_replay_returns_the_original_response_and_runs_once(make: Callable[..., App]) -> None:
    app = make()
    r_ref = ref()
    first = app.post("k-1", {"ref": r_ref})
    assert first.status_code == 201 and first.json()["order"] == 1
    assert "idempotent-replayed" not in first.headers
    again = app.post("k-1", {"ref": r_ref}, headers={**ONE, "X-Request-ID": "retry-1"})
    assert again.status_code == 201
    assert again.content == first.content  # byte for byte
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["content-type"] == "application/json"
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-request-id"] == "retry-1"  # fresh per-request headers
    assert app.effects(r_ref) == 1


def test_header_allow_list(make: Callable[..., App]) -> None:
    app = make()
    r_ref = ref()
    first = app.post("k-h", {"ref": r_ref})
    assert "set-cookie" in first.headers and "x-order-trace" in first.headers
    again = app.post("k-h", {"ref": r_ref})
    assert "set-cookie" not in again.headers  # never replayed
    assert "x-order-trace" not in again.headers  # not allowed by default
    allowing = make(responses=StoredResponses(replay_headers=["X-Order-Trace", "Set-Cookie"]))
    original = allowing.post("k-h2", {"ref": r_ref})
    again = allowing.post("k-h2", {"ref": r_ref})
    assert again.headers["x-order-trace"] == original.headers["x-order-trace"]
    assert "set-cookie" not in again.headers  # not even when asked for


def test_same_key_different_request_is_422(make: Callable[..., App]) -> None:
    app = make()
    r_ref = ref()
    app.post("k-2", {"ref": r_ref})
    r = app.post("k-2", {"ref": r_ref, "extra": 1})
    assert r.status_code == 422 and error_code(r) == "idempotency_key_reused"
    r = app.post("k-2", {"ref": r_ref}, path="/payments")  # another path is another request
    assert r.status_code == 422
    assert app.effects(r_ref) == 1


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tab\tkey", "ünï"])
def test_malformed_keys_are_400(make: Callable[..., App], key: str) -> None:
    app = make()
    r = app.client.post("/orders", json={"ref": "m"}, headers={**ONE, "Idempotency-Key": key.encode("utf-8")})  # type: ignore[dict-item]
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "invalid_idempotency_key",
        "message": "The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
        "doc_url": "https://docs.orq.ai/errors/invalid_idempotency_key",
        "request_id": r.headers["x-request-id"],
    }


def test_required_key(make: Callable[..., App]) -> None:
    app = make(required=["/payments"])
    r = app.post(None, {"ref": ref()}, path="/payments")
    assert r.status_code == 400 and error_code(r) == "idempotency_key_required"
    r_ref = ref()
    assert app.post(None, {"ref": r_ref}).status_code == 201  # optional elsewhere
    assert app.post(None, {"ref": r_ref}).status_code == 201
    assert app.effects(r_ref) == 2  # without a key there is no guarantee


def test_exempt_route_and_methods(make: Callable[..., App]) -> None:
    app = make(exempt=["/search"])
    r_ref = ref()
    app.post("k-s", {"ref": r_ref}, path="/search")
    app.post("k-s", {"ref": r_ref}, path="/search")
    assert app.effects(r_ref) == 2
    r_ref = ref()
    app.client.patch("/orders", json={"ref": r_ref}, headers={**ONE, "Idempotency-Key": "k-p"})
    app.client.patch("/orders", json={"ref": r_ref}, headers={**ONE, "Idempotency-Key": "k-p"})
    assert app.effects(r_ref) == 2  # PATCH is opt-in
    opted = make(methods=["POST", "PATCH"])
    r_ref = ref()
    opted.client.patch("/orders", json={"ref": r_ref}, headers={**ONE, "Idempotency-Key": "k-p"})
    r = opted.client.patch("/orders", json={"ref": r_ref}, headers={**ONE, "Idempotency-Key": "k-p"})
    assert r.headers["idempotent-replayed"] == "true" and opted.effects(r_ref) == 1


def test_keys_are_scoped_to_the_tenant(make: Callable[..., App]) -> None:
    app = make()
    r_ref = ref()
    mine = app.post("shared-key", {"ref": r_ref})
    theirs = app.post("shared-key", {"ref": r_ref}, headers=TWO)
    assert "idempotent-replayed" not in theirs.headers  # ran for the other workspace, not a replay of mine
    assert theirs.json()["order"] == 2 and mine.json()["order"] == 1


@pytest.mark.parametrize("failure", ["500", "crash", "429"])
def test_failures_are_not_stored(make: Callable[..., App], failure: str) -> None:
    app = make()
    r_ref = ref()
    r = app.post("k-f", {"ref": r_ref, "fail": failure})
    assert r.status_code == {"500": 500, "crash": 500, "429": 429}[failure]
    r = app.post("k-f", {"ref": r_ref, "fail": failure})  # ran again, not replayed
    assert "idempotent-replayed" not in r.headers
    assert app.effects(r_ref) == 0


def test_client_errors_are_stored(make: Callable[..., App]) -> None:
    app = make()
    r_ref = ref()
    assert app.post("k-400", {"ref": r_ref, "fail": "400"}).status_code == 400
    r = app.post("k-400", {"ref": r_ref, "fail": "400"})
    assert r.status_code == 400 and r.headers["idempotent-replayed"] == "true"
    assert app.effects(r_ref) == 1


def test_5xx_stored_when_asked(make: Callable[..., App]) -> None:
    app = make(responses=StoredResponses(store_5xx=True))
    app.post("k-5", {"ref": ref(), "fail": "500"})
    assert app.post("k-5", {"ref": "whatever", "fail": "500"}).status_code == 422  # the key is taken
    r_ref = ref()
    app.post("k-6", {"ref": r_ref, "fail": "500"})
    assert app.post("k-6", {"ref": r_ref, "fail": "500"}).headers["idempotent-replayed"] == "true"


def test_streaming_response_is_replayed_whole(make: Callable[..., App]) -> None:
    app = make()
    r_ref = ref()
    first = app.post("k-st", {"ref": r_ref, "stream": True})
    again = app.post("k-st", {"ref": r_ref, "stream": True})
    assert again.content == first.content == b'{"part": 1, "n": 1}'
    assert app.effects(r_ref) == 1


def test_response_too_big_to_keep_is_never_run_twice(make: Callable[..., App]) -> None:
    app = make(responses=StoredResponses(max_bytes=1000))
    r_ref = ref()
    assert app.post("k-big", {"ref": r_ref, "big": True}).status_code == 201
    r = app.post("k-big", {"ref": r_ref, "big": True})
    assert r.status_code == 409 and error_code(r) == "idempotency_response_unavailable"
    assert app.effects(r_ref) == 1


def test_expiry(make: Callable[..., App]) -> None:
    app = make(ttl=0.3)
    r_ref = ref()
    app.post("k-e", {"ref": r_ref})
    assert app.post("k-e", {"ref": r_ref}).headers["idempotent-replayed"] == "true"
    time.sleep(0.4)
    assert "idempotent-replayed" not in app.post("k-e", {"ref": r_ref}).headers
    assert app.effects(r_ref) == 2


def concurrent(
    app: App, bodies: list[dict[str, Any]], key: str, delays: list[float] | None = None
) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app.client.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def post(body: dict[str, Any], delay: float) -> httpx.Response:
                await asyncio.sleep(delay)
                return await client.post("/orders", json=body, headers={**ONE, "Idempotency-Key": key})

            return await asyncio.gather(*(post(b, d) for b, d in zip(bodies, delays or [0] * len(bodies), strict=True)))

    return app.client.portal.call(main)  # type: ignore[union-attr]


def test_in_progress_is_409_with_retry_after(make: Callable[..., App]) -> None:
    app = make()
    r_ref = ref()
    first, second = concurrent(app, [{"ref": r_ref, "sleep": 0.3}, {"ref": r_ref, "sleep": 0.3}], "k-ip")
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [201, 409]
    conflict = first if first.status_code == 409 else second
    assert error_code(conflict) == "idempotency_key_in_use" and conflict.headers["retry-after"] == "1"
    assert app.effects(r_ref) == 1


def test_wait_replays_instead_of_409(make: Callable[..., App]) -> None:
    app = make(wait=2.0)
    r_ref = ref()
    first, second = concurrent(app, [{"ref": r_ref, "sleep": 0.3}, {"ref": r_ref, "sleep": 0.3}], "k-w")
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert app.effects(r_ref) == 1


def test_long_handler_keeps_its_lease(make: Callable[..., App]) -> None:
    app = make(lease=0.3)
    r_ref = ref()
    body = {"ref": r_ref, "sleep": 0.8}
    first, second = concurrent(app, [body, body], "k-l", delays=[0, 0.5])
    # the second arrives while the first still runs (0.8 s > the 0.3 s lease): renewals keep it owned
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    assert app.effects(r_ref) == 1


def test_store_unreachable_fails_closed_by_default() -> None:
    dead = RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    for on_failure, expected in [("fail_closed", 503), ("fail_open", 201)]:
        app, effects = build(MemoryBackend())
        gateway = next(m for m in app.user_middleware if "idempotency" in m.kwargs)
        gateway.kwargs["idempotency"] = Idempotency(dead, on_failure=on_failure)  # keys stay in memory
        with TestClient(app) as client:
            r = client.post("/orders", json={"ref": "z"}, headers={**ONE, "Idempotency-Key": "k"})
        assert r.status_code == expected
        if expected == 503:
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "service_unavailable"
            assert r.json()["error"]["details"] == {"dependency": "redis"}
            assert effects["z"] == 0


def test_query_string_is_part_of_the_request(make: Callable[..., App]) -> None:
    app = make()
    r_ref = ref()
    first = app.post("k-q", {"ref": r_ref}, path="/orders?dry_run=true")
    assert first.status_code == 201
    r = app.post("k-q", {"ref": r_ref}, path="/orders?dry_run=false")  # same key and body, another request
    assert r.status_code == 422 and error_code(r) == "idempotency_key_reused"
    again = app.post("k-q", {"ref": r_ref}, path="/orders?dry_run=true")
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert app.effects(r_ref) == 1


def test_two_idempotency_key_headers_are_400(make: Callable[..., App]) -> None:
    app = make()
    r_ref = ref()
    headers = [("X-API-Key", ONE["X-API-Key"]), ("Idempotency-Key", "k-a"), ("Idempotency-Key", "k-b")]
    r = app.client.post("/orders", json={"ref": r_ref}, headers=headers)
    assert (r.status_code, error_code(r)) == (400, "invalid_idempotency_key")
    assert app.effects(r_ref) == 0


def test_the_record_is_complete_before_the_last_message_leaves(make: Callable[..., App]) -> None:
    """A retry sent the moment the client has the whole response always replays."""
    app = make()
    r_ref = ref()
    body = json.dumps({"ref": r_ref}).encode()
    seen: list[ClaimState] = []

    async def main() -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Any:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                claim = await app.backend.claim("ws:ws_1", "ek_one\0k-done", b"-", "probe", 1000)
                seen.append(claim.state)

        headers = [(b"x-api-key", ONE["X-API-Key"].encode()), (b"idempotency-key", b"k-done")]
        headers.append((b"content-type", b"application/json"))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/orders", "raw_path": b"/orders", "query_string": b"", "root_path": "",
            "headers": headers, "client": ("127.0.0.1", 1), "server": ("t", 80),
        }  # fmt: skip
        await app.client.app(scope, receive, send)  # type: ignore[arg-type]

    app.client.portal.call(main)  # type: ignore[union-attr]
    assert seen == [ClaimState.COMPLETED]
    assert app.effects(r_ref) == 1


def test_anonymous_scope_uses_the_client_behind_trusted_proxies() -> None:
    backend = MemoryBackend()
    runs: list[str] = []

    async def create(request: Request) -> Response:
        runs.append(request.headers.get("x-forwarded-for", "-"))
        return JSONResponse({"n": len(runs)}, status_code=201)

    app = Starlette(routes=[Route("/public", create, methods=["POST"])])
    ErrorKit().install(app, idempotency=Idempotency(backend, trusted_proxies=["10.0.0.0/8"]))

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 4321))  # a proxy of ours
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            key = {"Idempotency-Key": "anon-1"}
            return [
                await client.post("/public", headers={**key, "X-Forwarded-For": xff})
                for xff in ("203.0.113.7", "198.51.100.9", "203.0.113.7", "6.6.6.6, 203.0.113.7")
            ]

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [201, 201, 201, 201]
    # two clients, two scopes; the same client (also behind a spoofed hop) replays its own response
    assert [r.headers.get("idempotent-replayed") for r in responses] == [None, None, "true", "true"]
    assert runs == ["203.0.113.7", "198.51.100.9"]


@pytest.mark.parametrize("option", [{"ttl": 0}, {"lease": 0.0001}])
def test_ttl_and_lease_of_less_than_a_millisecond_are_refused(option: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="at least a millisecond"):
        Idempotency(MemoryBackend(), **option)
