"""guides/rate-limits.md: its snippets run as shown, and the responses it shows are the real ones."""

import asyncio
import math
import re
import time
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

import errorkit
from errorkit import ConfigurationError, ErrorKit, Limit, MemoryBackend, RateLimiter, register_api_key
from tests.docs.support import assert_response, fences, load, load_in_memory, page, register
from tests.support.servers import redis_server

PAGE = "guides/rate-limits.md"
KEY_A, KEY_B = "ek_docsa.docs-secret-a", "ek_docsb.docs-secret-b"


def test_the_first_example_counts_per_workspace_and_per_route(store_url: str) -> None:
    module = load("rate_limits/app.py")
    assert isinstance(module["store"], MemoryBackend if store_url == "memory://" else errorkit.RedisBackend)
    key_a, key_b = {"X-API-Key": KEY_A}, {"X-API-Key": KEY_B}
    blocks = fences(PAGE, "http")
    assert len(blocks) == 2

    with TestClient(module["app"]) as client:
        register(client, module["store"], KEY_A, "ws_1")
        register(client, module["store"], KEY_B, "ws_2")
        listed = client.get("/campaigns", headers=key_a)
        # two campaigns, one bucket: the route template, not the URL
        starts = [client.post(f"/campaigns/c_{1 + i % 2}/start", headers=key_a) for i in range(6)]
        other_workspace = client.post("/campaigns/c_1/start", headers=key_b)
        exports = [client.post("/exports", headers=key_a) for _ in range(3)]
        listed_again = client.get("/campaigns", headers=key_a)
        health = client.get("/health")

    assert_response(blocks[0], listed)
    assert listed.json() == ["c_1", "c_2"]
    assert [r.status_code for r in starts] == [200] * 5 + [429]
    assert [r.headers["x-ratelimit-remaining"] for r in starts] == ["4", "3", "2", "1", "0", "0"]
    assert_response(blocks[1], starts[5])
    # a burst of 5, then one every 12 s: the 429 names that moment, in both headers
    refused = starts[5]
    wait_ms = int(refused.headers["retry-after-ms"])
    assert 11_000 < wait_ms <= 12_000
    assert refused.headers["retry-after"] == str(math.ceil(wait_ms / 1000)) == "12"
    assert abs(int(refused.headers["x-ratelimit-reset"]) - (time.time() + wait_ms / 1000)) <= 2

    assert other_workspace.status_code == 200 and other_workspace.headers["x-ratelimit-remaining"] == "4"
    assert [r.status_code for r in exports] == [200, 200, 429]
    assert [r.headers["x-ratelimit-limit"] for r in exports] == ["2", "2", "2"]  # 2/minute is closest to exhaustion
    assert exports[2].json()["error"]["details"] == {"retry_after_seconds": 30, "limit": 2}
    # the route buckets took nothing from the workspace's 10 a second: only the two GETs count there
    # (9 left after 1, 8 after 2; 9 again if this machine took over 0.1 s, when GCRA gave one back)
    assert listed_again.headers["x-ratelimit-limit"] == "10"
    assert listed_again.headers["x-ratelimit-remaining"] in ("8", "9")
    assert health.status_code == 404 and "x-ratelimit-limit" not in health.headers  # exempt (this app has no /health)


def test_anonymous_requests_are_counted_by_client_address() -> None:
    """Requests without a key are answered 401, and counted by address: the 11th in a second is a 429."""
    module = load_in_memory("rate_limits/app.py")
    with TestClient(module["app"]) as client, TestClient(module["app"], client=("203.0.113.9", 4000)) as other:
        anonymous = [client.get("/campaigns") for _ in range(11)]
        elsewhere = other.get("/campaigns")
    assert [r.status_code for r in anonymous] == [401] * 10 + [429]
    assert anonymous[0].headers["x-ratelimit-remaining"] == "9"
    assert (elsewhere.status_code, elsewhere.headers["x-ratelimit-remaining"]) == (401, "9")


def test_limits_are_parsed_as_the_page_prints_them(capsys: pytest.CaptureFixture[str]) -> None:
    module = load("rate_limits/limits.py")
    (text,) = fences(PAGE, "text")
    assert capsys.readouterr().out == text
    assert module["parsed"] == (Limit(5, 60), Limit(100, 3600))
    assert module["hourly"] == Limit.parse("100/hour")[0] and module["hourly"].name == "100-per-3600s"
    assert [limit.name for limit in Limit.parse("10 per second, 100/2 hours | 1/year")] == [
        "10-per-second",
        "100-per-2-hours",
        "1-per-year",
    ]
    assert errorkit.limit("5/minute", Limit(100, 3600)).limits == (Limit(5, 60), Limit(100, 3600))
    mixed = RateLimiter(MemoryBackend(), limits=["5/minute", Limit(100, 3600)])
    assert [(lim.limit, lim.period) for lim in mixed.default.limits] == [(5, 60), (100, 3600)]
    assert Limit.parse("1/MONTHS")[0].period == 30 * 86_400 and Limit.parse("1/year")[0].period == 360 * 86_400


def test_mistakes_in_limits_fail_where_they_are_written() -> None:
    """The messages the page quotes."""
    with pytest.raises(ConfigurationError, match=r"^'5/minut' is not a rate limit: .*; did you mean '5/minute'\?$"):
        Limit.parse("5/minut")
    with pytest.raises(TypeError, match=r"Limit\(5, '1m'\): .*Limit\.parse"):
        Limit(5, "1m")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="at most 10 years"):
        Limit.parse("1/11 years")
    with pytest.raises(ConfigurationError, match="one request per microsecond"):
        Limit(2_000_001, 2)
    with pytest.raises(ConfigurationError, match="more than the 5-per-minute limit allows"):
        errorkit.limit("5/minute", cost=6)


def test_the_starlette_form_counts_like_the_fastapi_one(store_url: str) -> None:
    module = load("rate_limits/starlette_app.py")
    key = {"X-API-Key": KEY_A}
    with TestClient(module["app"]) as client:
        register(client, module["store"], KEY_A, "ws_1")
        starts = [client.post("/campaigns/c_1/start", headers=key) for _ in range(6)]
        listed = client.get("/campaigns", headers=key)
    assert [r.status_code for r in starts] == [200] * 5 + [429]
    assert starts[0].json() == {"campaign_id": "c_1", "state": "starting"}
    assert starts[5].json()["error"]["details"] == {"retry_after_seconds": 12, "limit": 5}
    assert (listed.headers["x-ratelimit-limit"], listed.headers["x-ratelimit-remaining"]) == ("10", "9")


def test_a_limit_with_no_limiter_or_named_twice_stops_the_start_up() -> None:
    from fastapi import Depends, FastAPI

    unlimited = FastAPI()
    unlimited.post("/x")(errorkit.limit("5/minute")(_endpoint()))
    ErrorKit().install(unlimited)
    with pytest.raises(ConfigurationError, match="RateLimiter"), TestClient(unlimited):
        pass

    twice = FastAPI()
    twice.post("/x")(errorkit.limit("5/minute")(_endpoint()))
    ErrorKit().install(twice, rate_limit=RateLimiter(MemoryBackend(), routes={"POST /x": "1/second"}))
    with pytest.raises(ConfigurationError, match="names the route too"), TestClient(twice):
        pass

    no_dependency = FastAPI()
    no_dependency.post("/x", dependencies=[Depends(errorkit.limit("5/minute"))])(_endpoint())
    ErrorKit().install(no_dependency, rate_limit=RateLimiter(MemoryBackend()))
    dependency = r"write Depends\(errorkit.limit\('5/minute'\).dependency\)"
    with pytest.raises(ConfigurationError, match=dependency), TestClient(no_dependency):
        pass

    misspelled = FastAPI()
    misspelled.post("/campaigns/{campaign_id}/start")(_endpoint())
    limiter = RateLimiter(MemoryBackend(), routes={"POST /campaigns/{campaign_id}/stat": "5/minute"})
    ErrorKit().install(misspelled, rate_limit=limiter)
    nearest = r"the nearest is 'POST /campaigns/\{campaign_id\}/start'"
    with pytest.raises(ConfigurationError, match=nearest), TestClient(misspelled):
        pass


def test_methods_limits_only_some_of_a_routes_methods() -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.api_route("/items", methods=["GET", "POST"])(errorkit.limit("1/minute", methods=["post"])(_endpoint()))
    ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend(), limits="3/minute"))
    with TestClient(app) as client:
        posts = [client.post("/items") for _ in range(2)]
        gets = [client.get("/items") for _ in range(4)]
    assert [r.status_code for r in posts] == [200, 429]
    assert [r.status_code for r in gets] == [200, 200, 200, 429]  # the defaults: 3 a minute
    assert gets[0].headers["x-ratelimit-limit"] == "3"


def _endpoint() -> Any:
    """A fresh endpoint: `errorkit.limit(...)` marks the function it decorates."""

    async def endpoint() -> dict[str, str]:
        return {}

    return endpoint


def test_the_central_form(store_url: str) -> None:
    module = load("rate_limits/central.py")
    limiter = module["limiter"]
    assert sorted(limiter.routes) == ["/internal/status", "POST /campaigns/{campaign_id}/start"]
    assert [(lim.limit, lim.period) for lim in limiter.default.limits] == [(10, 1), (1000, 3600)]
    key = {"X-API-Key": KEY_A}
    with TestClient(module["app"]) as client:
        register(client, module["store"], KEY_A, "ws_1")
        starts = [client.post(f"/campaigns/c_{i}/start", headers=key) for i in range(6)]
        statuses = [client.get("/internal/status", headers=key) for _ in range(12)]
    assert [r.status_code for r in starts] == [200] * 5 + [429]
    assert starts[0].headers["x-ratelimit-limit"] == "5"
    assert [r.status_code for r in statuses] == [200] * 12  # not limited: 12 in a second pass
    assert all("x-ratelimit-limit" not in r.headers for r in statuses)


def test_plans_give_each_workspace_its_limits(store_url: str) -> None:
    module = load("rate_limits/plans.py")
    plans = {"free": "ek_free.secret-free-1", "pro": "ek_pro.secret-pro-1", "other": "ek_other.secret-other-1"}
    with TestClient(module["app"]) as client:
        for plan, key in plans.items():
            register(client, module["store"], key, f"ws_{plan}", plan=plan)
        answers = {plan: client.get("/campaigns", headers={"X-API-Key": key}) for plan, key in plans.items()}
    assert {plan: r.headers["x-ratelimit-limit"] for plan, r in answers.items()} == {
        "free": "60",
        "pro": "600",
        "other": "30",  # no entry: the limiter's own limits
    }
    assert module["limiter"].plans.ttl == 60


def test_weights_fixed_windows_and_draft_headers(store_url: str) -> None:
    module = load("rate_limits/options.py")
    key = {"X-API-Key": KEY_A}
    if time.time() % 60 > 58:  # (all in one calendar minute)
        time.sleep(60.05 - time.time() % 60)
    with TestClient(module["app"]) as client:
        register(client, module["store"], KEY_A, "ws_1")
        listed = client.get("/reports", headers=key)
        reports = [client.post("/reports", headers=key) for _ in range(3)]
    now = time.time()

    assert [r.status_code for r in reports] == [202, 202, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in reports] == ["5", "0", "0"]  # each weighs 5 of 10
    # a fixed window: every reset is the end of the current calendar minute
    window_end = (int(now) // 60 + 1) * 60
    resets = {int(r.headers["x-ratelimit-reset"]) for r in [listed, *reports]}
    assert resets == {window_end}, (resets, now)
    assert int(reports[2].headers["retry-after"]) in (window_end - int(now), window_end - int(now) + 1)
    assert (listed.headers["x-ratelimit-limit"], listed.headers["x-ratelimit-remaining"]) == ("100", "99")
    assert listed.headers["ratelimit-policy"] == '"100-per-minute";q=100;w=60'
    assert re.fullmatch(r'"100-per-minute";r=99;t=\d+', listed.headers["ratelimit"])
    assert reports[0].headers["ratelimit-policy"] == '"10-per-minute";q=10;w=60'
    assert '"100-per-minute";q=100;w=60' in page(PAGE) and '"100-per-minute";r=96;t=13' in page(PAGE)


def test_a_catalog_with_rate_limited_answers_with_it() -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ok(request: object) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[Route("/x", ok)])
    ErrorKit(catalog=errorkit.catalogs.DETAIL_API).install(
        app, rate_limit=RateLimiter(MemoryBackend(), limits="1/minute")
    )
    with TestClient(app) as client:
        client.get("/x")
        refused = client.get("/x")
    assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")


def test_on_redis_each_decision_is_one_script_reading_redis_time() -> None:
    """One EVALSHA per counted request (the first one loads the script), reading Redis's clock, on a
    key that carries the workspace as a hash tag and expires."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ok(request: object) -> JSONResponse:
        return JSONResponse({})

    async def run(url: str) -> str:
        store = errorkit.RedisBackend(url)
        app = Starlette(routes=[Route("/x", ok)])
        ErrorKit().install(app, auth=errorkit.APIKeyAuth(store), rate_limit=RateLimiter(store, limits="5/minute"))
        await register_api_key(store, KEY_A, workspace_id="ws_1")
        monitor = await asyncio.create_subprocess_exec(
            "redis-cli", "-u", url, "monitor", stdout=asyncio.subprocess.PIPE
        )
        assert monitor.stdout is not None
        assert await monitor.stdout.readline() == b"OK\n"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://docs") as client:
            answers = [await client.get("/x", headers={"X-API-Key": KEY_A}) for _ in range(3)]
        assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["4", "3", "2"]
        await asyncio.sleep(0.2)
        monitor.terminate()
        return (await monitor.communicate())[0].decode()

    with redis_server() as redis:
        out = asyncio.run(run(redis.url))
    bucket = '"errorkit:rl:{ws:ws_1}:*:5/60"'
    sent = [line.split("] ", 1)[1] for line in out.splitlines() if "[0 lua]" not in line and bucket in line]
    calls = [line.split(" ", 1)[0] for line in sent]
    assert calls in (['"EVALSHA"'] * 3, ['"EVALSHA"', '"EVAL"', '"EVALSHA"', '"EVALSHA"']), sent  # (NOSCRIPT once)
    in_scripts = [line.split("] ", 1)[1] for line in out.splitlines() if "[0 lua]" in line]
    assert in_scripts[0::3] == ['"TIME"'] * 3, in_scripts
    assert all(re.fullmatch(f'"SET" {re.escape(bucket)} "\\d+" "PX" "\\d+"', line) for line in in_scripts[2::3])


def test_exempting_a_route(store_url: str) -> None:
    module = load("rate_limits/exempt.py")
    with TestClient(module["app"]) as client:
        status = [client.get("/status") for _ in range(12)]
        health = [client.get("/health") for _ in range(12)]
        hooks = [client.post(f"/webhooks/{name}") for name in ("stripe", "github") * 6]
        reports = [client.post("/status") for _ in range(11)]
    for answers in (status, health, hooks):  # 12 in a second, past 10/second: none counted, no headers
        assert [r.status_code for r in answers] == [200] * 12
        assert all("x-ratelimit-limit" not in r.headers for r in answers)
    assert [r.status_code for r in reports] == [200] * 10 + [429]  # POST /status is limited


def test_an_exempt_route_with_a_limit_of_its_own_stops_the_start_up() -> None:
    from fastapi import FastAPI

    for options in ({"routes": {"GET /x": None}}, {"exempt": ["/x"]}):
        app = FastAPI()

        @app.get("/x")
        @errorkit.limit("5/minute")
        async def x() -> dict[str, str]:
            return {}

        ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend(), **options))
        with pytest.raises(ConfigurationError), TestClient(app):
            pass


def test_limiting_by_client_address(store_url: str) -> None:
    module = load("rate_limits/by_address.py")
    assert module["client_address"]({"client": ("203.0.113.9", 1), "headers": []}, None) == "ip:203.0.113.9"
    behind = {"client": ("10.0.0.2", 1), "headers": [(b"x-forwarded-for", b"198.51.100.7, 10.0.0.3")]}
    assert module["client_address"](behind, None) == "ip:198.51.100.7"  # the load balancers' header believed
    with (
        TestClient(module["app"], client=("203.0.113.9", 4000)) as client,
        TestClient(module["app"], client=("203.0.113.10", 4000)) as other,
    ):
        register(client, module["store"], KEY_A, "ws_1")
        register(client, module["store"], KEY_B, "ws_1")
        first = client.get("/search", headers={"X-API-Key": KEY_A})
        second = client.get("/search", headers={"X-API-Key": KEY_B})  # another key, the same address
        refused = client.get("/search", headers={"X-API-Key": "ek_nope.not-a-key"})
        after = client.get("/search", headers={"X-API-Key": KEY_A})
        elsewhere = other.get("/search", headers={"X-API-Key": KEY_A})  # the same key, another address
    assert [r.headers["x-ratelimit-remaining"] for r in (first, second, refused, after)] == ["59", "58", "57", "56"]
    assert refused.status_code == 401
    assert (elsewhere.status_code, elsewhere.headers["x-ratelimit-remaining"]) == (200, "59")

    # without auth=, a RateLimiter alone counts each client address
    app = load_in_memory("rate_limits/from_slowapi.py")["app"]
    with TestClient(app, client=("203.0.113.9", 1)) as a, TestClient(app, client=("203.0.113.10", 1)) as b:
        assert [a.get("/items").headers["x-ratelimit-remaining"] for _ in range(2)] == ["99", "98"]
        assert b.get("/items").headers["x-ratelimit-remaining"] == "99"


def test_coming_from_slowapi(store_url: str) -> None:
    module = load("rate_limits/from_slowapi.py")
    with TestClient(module["app"]) as client:
        searches = [client.get("/search", params={"q": "x"}) for _ in range(6)]
        items = client.get("/items")
    assert [r.status_code for r in searches] == [200] * 5 + [429]  # @errorkit.limit, no request parameter
    assert searches[0].json() == {"q": "x", "results": []}
    assert searches[5].json()["code"] == "rate_limit_exceeded"  # the kit's 429 (the detail format here)
    assert searches[5].headers["x-ratelimit-limit"] == "5"
    assert (items.headers["x-ratelimit-limit"], items.headers["x-ratelimit-remaining"]) == ("100", "99")
    # the limits slowapi writes are read alike; GCRA or a fixed window, no moving window
    assert list(Limit.parse("5/minute; 100 per 2 hours")) == [Limit(5, 60), Limit(100, 7200)]
    assert isinstance(RateLimiter(MemoryBackend(), algorithm="fixed"), RateLimiter)
    with pytest.raises(ValueError, match="algorithm must be one of \\['fixed', 'gcra'\\]"):
        RateLimiter(MemoryBackend(), algorithm="moving-window")


def test_websockets_are_not_counted() -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend(), limits="1/minute"))
    with TestClient(app) as client:
        for _ in range(3):
            with client.websocket_connect("/ws") as socket:
                assert socket.receive_text() == "hi"
    # nor can routes= name one: it is no route to the limiter
    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend(), routes={"/ws": "1/minute"}))
    with pytest.raises(ConfigurationError, match="'/ws' names no route of the app"), TestClient(app):
        pass
