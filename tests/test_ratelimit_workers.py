"""Rate limiting across 4 uvicorn worker processes sharing one real redis-server."""

import asyncio
import os
import signal
import time
from collections import Counter
from contextlib import AbstractContextManager

import httpx
import pytest
import urllib3
from urllib3.util.retry import Retry

from tests.support.servers import Redis, Uvicorn, redis_server, uvicorn

ONE, TWO = {"X-API-Key": "ek_one.workspace-one-1"}, {"X-API-Key": "ek_two.workspace-two-2"}


def limited_server(redis: Redis, limit: int, period: float, **env: str) -> AbstractContextManager[Uvicorn]:
    return uvicorn(
        "tests.apps.ratelimit:app",
        workers=4,
        env={
            "EK_RATELIMIT_APP": "1",
            "REDIS_URL": redis.url,
            "EK_KEY_STORE": "memory",
            "EK_LIMIT": str(limit),
            "EK_PERIOD": str(period),
            **env,
        },
    )


async def burst(
    url: str, headers: dict[str, str], total: int, concurrency: int = 32
) -> list[tuple[httpx.Response, float]]:
    """`total` requests, `concurrency` at a time; each response with the time it arrived."""
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=0
    )  # new connections spread over workers
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> tuple[httpx.Response, float]:
            async with semaphore:
                response = await client.get("/work", headers=headers)
                return response, time.time()

        return await asyncio.gather(*(one() for _ in range(total)))


def test_exactly_the_limit_is_admitted_across_workers(redis: Redis) -> None:
    with limited_server(redis, 50, 3600) as server:
        timed = asyncio.run(burst(server.url, ONE, 400))
        responses = [r for r, _ in timed]
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 50, 429: 350}
        pids = {httpx.get(f"{server.url}/health").json()["pid"] for _ in range(60)}
        assert len(pids) > 1  # the burst was served by several worker processes sharing one count
        remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in responses if r.status_code == 200)
        assert remaining == list(range(50))  # each admission saw a distinct count
        for r, received_at in timed:
            assert r.headers["x-ratelimit-limit"] == "50"
            if r.status_code == 429:
                assert r.headers["x-ratelimit-remaining"] == "0"
                retry_after = int(r.headers["retry-after"])
                assert 1 <= retry_after <= 72  # one request back every 3600/50 = 72 s
                # Reset and Retry-After name the same moment, judged when this response arrived
                # (not after the whole burst, which takes seconds on a busy machine)
                assert abs(int(r.headers["x-ratelimit-reset"]) - (received_at + retry_after)) <= 2
                assert r.json()["code"] == "rate_limited"
        # the second workspace is unaffected
        r = httpx.get(f"{server.url}/work", headers=TWO)
        assert (r.status_code, r.headers["x-ratelimit-remaining"]) == (200, "49")


def window_burst(url: str, headers: dict[str, str], window: float) -> Counter[int]:
    """A burst of 20 inside one fixed window: started at a window's beginning, and tried again
    (up to 3 times) if a busy machine let it spill into the next window."""
    for _ in range(3):
        time.sleep(window - time.time() % window + 0.05)  # the beginning of a window
        started = time.time()
        timed = asyncio.run(burst(url, headers, 20))
        if max(t for _, t in timed) // window == started // window:
            return Counter(r.status_code for r, _ in timed)
    raise AssertionError("no burst of 20 requests fit in one window in 3 tries")


def test_window_rolls_over_across_workers(redis: Redis) -> None:
    with limited_server(redis, 5, 2, EK_ALGORITHM="fixed") as server:
        assert window_burst(server.url, ONE, 2) == {200: 5, 429: 15}
        assert window_burst(server.url, ONE, 2) == {200: 5, 429: 15}


def test_urllib3_retry_honours_retry_after(redis: Redis) -> None:
    with limited_server(redis, 1, 2) as server:
        http = urllib3.PoolManager()
        assert http.request("GET", f"{server.url}/work", headers=ONE).status == 200
        retry = Retry(total=3, status_forcelist=[429], respect_retry_after_header=True, allowed_methods=["GET"])
        start = time.monotonic()
        r = http.request("GET", f"{server.url}/work", headers=ONE, retries=retry)
        assert r.status == 200
        assert 1.0 <= time.monotonic() - start < 5  # it waited for Retry-After, then got in


@pytest.mark.parametrize("on_failure", ["fail_open", "fail_closed"])
def test_redis_stalled_mid_traffic_then_back(redis: Redis, on_failure: str) -> None:
    with (
        limited_server(redis, 3, 3600, EK_ON_FAILURE=on_failure) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        assert [client.get("/work", headers=ONE).status_code for _ in range(4)] == [200, 200, 200, 429]
        os.kill(redis.process.pid, signal.SIGSTOP)  # Redis hangs: every call must time out, fast
        try:
            for _ in range(10):
                start = time.monotonic()
                r = client.get("/work", headers=TWO)
                assert time.monotonic() - start < 0.5, "a request waited on Redis past the timeout"
                if on_failure == "fail_open":
                    assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers
                else:
                    assert r.status_code == 503 and r.json()["code"] == "service_unavailable"
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
        time.sleep(0.6)  # past the fail-fast interval: the workers reconnect on their own
        assert client.get("/work", headers=ONE).status_code == 429  # the count survived


def test_limiting_resumes_when_redis_comes_back(redis: Redis) -> None:
    with limited_server(redis, 2, 3600) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/work", headers=ONE).status_code == 200
        port = redis.port
        redis.process.terminate()
        redis.process.wait()
        for _ in range(5):  # Redis gone: fail open, quickly
            start = time.monotonic()
            assert client.get("/work", headers=ONE).status_code == 200
            assert time.monotonic() - start < 0.5
        with redis_server(port):  # back (empty): the same app servers pick it up by themselves
            deadline = time.monotonic() + 10
            statuses: list[int] = []
            while time.monotonic() < deadline:
                r = client.get("/work", headers=ONE)
                if "x-ratelimit-limit" in r.headers:
                    statuses.append(r.status_code)
                    if len(statuses) == 6:
                        break
                time.sleep(0.05)
            assert statuses[:2] == [200, 200] and set(statuses[2:]) == {429}
