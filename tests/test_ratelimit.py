"""Rate limiting behaviour, the same tests over the in-memory and the Redis backend."""

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from errorkit import Limit, MemoryBackend, PlanLimits, RedisBackend, TrustedProxies
from errorkit._stores.redis.connection import Redis
from tests.apps.ratelimit import build
from tests.support.servers import free_port
from tests.support.stores import NewBackend

ONE, TWO = {"X-API-Key": "ek_one.workspace-one-1"}, {"X-API-Key": "ek_two.workspace-two-2"}


@pytest.fixture
def make(new_backend: NewBackend) -> Iterator[Callable[..., TestClient]]:
    """Build a limited app on a fresh backend (its own key prefix on the shared Redis)."""
    clients: list[TestClient] = []

    def factory(**options: Any) -> TestClient:
        client = TestClient(build(new_backend(), **options), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


def rl(r: Any) -> tuple[str, str, int]:
    return r.headers["x-ratelimit-limit"], r.headers["x-ratelimit-remaining"], int(r.headers["x-ratelimit-reset"])


def test_headers_count_down_then_429(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(3, 3600)])
    seen = []
    for _ in range(3):
        r = client.get("/work", headers=ONE)
        assert r.status_code == 200
        seen.append(rl(r)[:2])
    assert seen == [("3", "2"), ("3", "1"), ("3", "0")]
    before = time.time()
    r = client.get("/work", headers={**ONE, "X-Request-ID": "r1"})
    assert r.status_code == 429
    retry_after = int(r.headers["retry-after"])
    # GCRA: one request back every 3600/3 = 1200 s
    assert 1190 <= retry_after <= 1200
    limit, remaining, reset = rl(r)
    assert (limit, remaining) == ("3", "0")
    assert abs(reset - (before + retry_after)) <= 2  # Reset and Retry-After name the same moment
    assert r.json() == {"detail": "Per-workspace rate limit exceeded", "code": "rate_limited", "request_id": "r1"}


def test_envelope_429_has_details(make: Callable[..., TestClient]) -> None:
    client = make(document="envelope_api", limits=[Limit(1, 60)])
    assert client.get("/work", headers=ONE).status_code == 200
    r = client.get("/work", headers={**ONE, "X-Request-ID": "r2"})
    assert r.status_code == 429
    retry_after = int(r.headers["retry-after"])
    assert 59 <= retry_after <= 60
    assert r.json() == {
        "error": {
            "code": "rate_limit_exceeded",
            "message": "Requests are being sent faster than the workspace’s allowed rate.",
            "doc_url": "https://docs.orq.ai/errors/rate_limit_exceeded",
            "details": {"retry_after_seconds": retry_after, "limit": 1},
            "request_id": "r2",
        }
    }


def test_reset_is_when_quota_is_whole_again(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(10, 100)])
    start = time.time()
    r = client.get("/work", headers=ONE)
    _, remaining, reset = rl(r)
    assert remaining == "9"
    assert start + 9 <= reset <= time.time() + 11  # one request takes 100/10 = 10 s to come back


def test_workspaces_are_counted_separately(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(2, 3600)])
    assert [client.get("/work", headers=ONE).status_code for _ in range(3)] == [200, 200, 429]
    assert [client.get("/work", headers=TWO).status_code for _ in range(2)] == [200, 200]


def test_workspace_comes_from_the_key_not_headers(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(2, 3600)])
    spoof = {**ONE, "X-Workspace-ID": "ws_2", "X-Forwarded-For": "10.9.9.9"}
    assert [client.get("/work", headers=spoof).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/work", headers=TWO).status_code == 200  # ws_2's budget untouched


def test_headers_on_errors_too(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(10, 3600)])
    for path, status in [("/nope", 404), ("/boom", 500)]:
        r = client.get(path, headers=ONE)
        assert r.status_code == status
        assert rl(r)[:2] == ("10", str(10 - (1 if status == 404 else 2)))
    r = client.delete("/work", headers=ONE)
    assert (r.status_code, set(r.headers["allow"].split(", ")), rl(r)[1]) == (405, {"GET", "HEAD", "POST"}, "7")


def test_unauthenticated_requests_are_limited_by_address(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(2, 3600)])
    bad = {"X-API-Key": "ek_nobody.not-a-real-key"}
    r = client.get("/work", headers=bad)
    assert (r.status_code, rl(r)[:2]) == (401, ("2", "1"))
    assert client.get("/work").status_code == 401
    r = client.get("/work", headers=bad)
    assert r.status_code == 429  # guessing keys is rate limited too
    assert client.get("/work", headers=ONE).status_code == 200  # a real workspace is not affected


def test_health_is_exempt(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(1, 3600)])
    for _ in range(3):
        r = client.get("/health")
        assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers
    assert client.get("/work", headers=ONE).status_code == 200


def test_several_limits_report_the_closest_to_exhaustion(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(3, 1), Limit(5, 3600)])
    r = client.get("/work", headers=ONE)
    assert rl(r)[:2] == ("3", "2")  # 2/3 left beats 4/5 left
    client.get("/work", headers=ONE)
    r = client.get("/work", headers=ONE)
    assert r.status_code == 200 and rl(r)[:2] == ("3", "0")
    time.sleep(1.05)
    r = client.get("/work", headers=ONE)
    assert r.status_code == 200 and rl(r)[:2] == ("5", "1")  # the hourly limit is now closest
    client.get("/work", headers=ONE)
    time.sleep(1.05)
    r = client.get("/work", headers=ONE)
    assert r.status_code == 429 and r.headers["x-ratelimit-limit"] == "5"
    assert int(r.headers["retry-after"]) > 700  # the hourly limit's wait, not the per-second one


def test_cost_weights_requests(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(10, 3600)], cost=lambda scope: 4 if scope["method"] == "POST" else 1)
    assert rl(client.post("/work", headers=ONE))[1] == "6"
    assert rl(client.post("/work", headers=ONE))[1] == "2"
    assert client.post("/work", headers=ONE).status_code == 429  # 4 more do not fit
    assert rl(client.get("/work", headers=ONE))[1] == "1"  # a refused request costs nothing


def test_route_limits_use_the_template(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(100, 3600)], routes={"/campaigns/{campaign_id}": [Limit(2, 3600)], "/work": None})
    assert client.get("/campaigns/a", headers=ONE).status_code == 200
    assert client.get("/campaigns/b", headers=ONE).status_code == 200
    r = client.get("/campaigns/c", headers=ONE)  # a new id is the same route, not a fresh budget
    assert r.status_code == 429
    r = client.get("/work", headers=ONE)  # exempted route
    assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers
    assert rl(client.get("/nope", headers=ONE))[:2] == ("100", "99")


def test_method_specific_route_limit(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(100, 3600)], routes={"POST /work": [Limit(1, 3600)]})
    assert client.post("/work", headers=ONE).status_code == 200
    assert client.post("/work", headers=ONE).status_code == 429
    assert rl(client.get("/work", headers=ONE))[:2] == ("100", "99")


def test_plan_limits_by_workspace(make: Callable[..., TestClient]) -> None:
    calls: list[str] = []

    async def limits_for(principal: Any) -> list[Limit] | None:
        calls.append(principal.workspace_id)
        return [Limit(1000, 3600)] if principal.plan == "growth" else None

    client = make(limits=[Limit(2, 3600)], plans=PlanLimits(limits_for))
    three = {"X-API-Key": "ek_three.workspace-three-3"}
    assert rl(client.get("/work", headers=three))[:2] == ("1000", "999")
    assert rl(client.get("/work", headers=ONE))[:2] == ("2", "1")
    client.get("/work", headers=three)
    client.get("/work", headers=ONE)
    assert calls == ["ws_3", "ws_1"]  # cached per workspace


def test_gcra_window_rolls(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(2, 1)])
    assert [client.get("/work", headers=ONE).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(0.55)  # one request comes back every 0.5 s
    assert [client.get("/work", headers=ONE).status_code for _ in range(2)] == [200, 429]


def test_fixed_window_rolls(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(2, 1)], algorithm="fixed")
    for _ in range(3):  # three requests in one 1 s window; tried again if a busy machine spilled over
        time.sleep(1 - time.time() % 1 + 0.01)  # start at the beginning of a window
        window_end = math.floor(time.time()) + 1
        responses = [client.get("/work", headers=ONE) for _ in range(3)]
        if time.time() < window_end:
            break
    else:
        raise AssertionError("three requests never fit in one window")
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [rl(r)[1] for r in responses] == ["1", "0", "0"]
    assert rl(responses[0])[2] == window_end
    assert responses[2].headers["retry-after"] == "1"
    time.sleep(window_end - time.time() + 0.01)
    assert [client.get("/work", headers=ONE).status_code for _ in range(3)] == [200, 200, 429]


def test_forwarded_for_is_ignored_without_trusted_proxies(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(1, 3600)])
    # every spoofed X-Forwarded-For value shares the peer's one budget
    assert client.get("/work", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 401
    assert client.get("/work", headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 429


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ([], "10.0.0.5", "6.6.6.6", "10.0.0.5"),
        (["10.0.0.0/8"], "10.0.0.5", "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (["10.0.0.0/8", "203.0.113.0/24"], "10.0.0.5", "6.6.6.6, 203.0.113.7", "6.6.6.6"),
        (["10.0.0.0/8"], "192.0.2.1", "6.6.6.6", "192.0.2.1"),  # the peer is no proxy of ours
        (["10.0.0.0/8"], "10.0.0.5", "10.1.1.1", "10.0.0.5"),  # only proxies: the peer
        (["::1/128"], "::1", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_client_address_behind_trusted_proxies(trusted: list[str], peer: str, forwarded: str, expected: str) -> None:
    scope = {"client": (peer, 1234), "headers": [(b"x-forwarded-for", forwarded.encode())]}
    assert TrustedProxies(trusted).client_address(scope) == expected


def test_ietf_headers(make: Callable[..., TestClient]) -> None:
    client = make(limits=[Limit(10, 60), Limit(1000, 3600)], ietf_headers=True)
    r = client.get("/work", headers=ONE)
    assert r.headers["ratelimit-policy"] == '"10-per-60s";q=10;w=60, "1000-per-3600s";q=1000;w=3600'
    assert r.headers["ratelimit"] == '"10-per-60s";r=9;t=6'


def test_redis_unreachable_fail_open_and_closed() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    memory = MemoryBackend()  # keys live elsewhere: only the limiter's backend is down

    def client(on_failure: str) -> TestClient:
        app = build(memory, limits=[Limit(1, 3600)], on_failure=on_failure, limiter_backend=RedisBackend(dead))
        tc = TestClient(app)
        tc.__enter__()
        return tc

    opened = client("fail_open")
    for _ in range(3):
        start = time.monotonic()
        r = opened.get("/work", headers=ONE)
        assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers
        assert time.monotonic() - start < 0.5
    closed = client("fail_closed")
    r = closed.get("/work", headers={**ONE, "X-Request-ID": "r3"})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json() == {
        "detail": "Service unavailable: the dependency 'redis' cannot serve requests right now; retry after 1 second.",
        "code": "service_unavailable",
        "request_id": "r3",
    }


async def script_calls(redis_url: str) -> int:
    """How many scripts this Redis has run (EVALSHA and EVAL), from its command statistics."""
    redis = Redis(redis_url)
    stats = (await redis.execute("INFO", "commandstats")).decode()
    await redis.close()
    return sum(
        int(line.split("calls=", 1)[1].split(",", 1)[0])
        for line in stats.splitlines()
        if line.startswith(("cmdstat_evalsha:", "cmdstat_eval:"))
    )


def test_shield_refuses_without_backend_calls(redis_url: str) -> None:
    connection = Redis(redis_url)
    backend = RedisBackend(connection=connection, prefix=f"t-{uuid.uuid4().hex[:8]}")
    with TestClient(build(backend, limits=[Limit(1, 3600)], shield=True)) as client:
        client.get("/work", headers=ONE)
        assert client.get("/work", headers=ONE).status_code == 429
        scripts = asyncio.run(script_calls(redis_url))
        for _ in range(5):
            r = client.get("/work", headers=ONE)
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 3500
        assert asyncio.run(script_calls(redis_url)) == scripts  # no rate-limit calls (key lookups aside)


def test_the_plan_resolver_is_not_asked_for_exempt_paths_or_routes_with_their_own_limits(
    make: Callable[..., TestClient],
) -> None:
    calls: list[str] = []

    async def limits_for(principal: Any) -> list[Limit] | None:
        calls.append(principal.workspace_id)
        raise RuntimeError("the plan database is down")

    client = make(
        limits=[Limit(2, 3600)],
        plans=PlanLimits(limits_for),
        exempt=["/work"],
        routes={"/campaigns/{campaign_id}": [Limit(7, 60)]},
    )
    assert client.get("/work", headers=ONE).status_code == 200  # exempt: no limit, no resolver
    r = client.get("/campaigns/c1", headers=ONE)
    assert (r.status_code, rl(r)[:2]) == (200, ("7", "6"))  # the route's own limit decides
    assert calls == []


def test_switching_the_algorithm_on_a_live_store_starts_each_limit_afresh(backend: Any) -> None:
    """A fixed window keeps another state than GCRA: its own keys, never the other's (no 500)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from errorkit import ErrorKit, RateLimiter

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    seen = []
    for algorithm in ("gcra", "fixed", "gcra"):
        app = Starlette(routes=[Route("/", ok)])
        ErrorKit().install(app, rate_limit=RateLimiter(backend, limits="2/hour", algorithm=algorithm))
        with TestClient(app) as client:
            seen.append([client.get("/").status_code for _ in range(3)])
    assert seen == [[200, 200, 429], [200, 200, 429], [429, 429, 429]]  # GCRA's count is still there
