"""Metrics under 4 uvicorn workers on a real Redis: scraped over HTTP, exact after real traffic."""

import asyncio
import os
import signal
import tempfile
import time
from collections import Counter

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import redis_server, uvicorn

ONE, TWO, THREE = (
    {"X-API-Key": "ek_one.workspace-one-1"},
    {"X-API-Key": "ek_two.workspace-two-2"},
    {"X-API-Key": "ek_three.workspace-three-3"},
)


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of one scrape, by name and labels (a new connection: any worker may answer)."""
    response = httpx.get(f"{url}/metrics", headers={"Connection": "close"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def concurrently(url: str, requests: list[tuple[str, str, dict[str, str], bytes]]) -> list[httpx.Response]:
    """All at once, each on its own connection, so they spread over the workers."""
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        return await asyncio.gather(
            *(client.request(method, path, headers=headers, content=body) for method, path, headers, body in requests)
        )


def test_counters_are_exact_across_four_workers() -> None:
    with (
        redis_server() as redis,
        tempfile.TemporaryDirectory() as metrics_dir,
        uvicorn(
            "tests.apps.metrics:app",
            workers=4,
            env={
                "EK_METRICS_APP": "1",
                "REDIS_URL": redis.url,
                "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
                "EK_METRICS_FLUSH": "0.1",  # each worker hands its counts over within 0.1 s
            },
        ) as server,
    ):
        # admitted and limited: 20 GETs of ws_1 against 5 an hour
        gets = asyncio.run(concurrently(server.url, [("GET", "/work", ONE, b"")] * 20))
        assert Counter(r.status_code for r in gets) == {200: 5, 429: 15}
        pids = {r.json()["pid"] for r in gets if r.status_code == 200}
        # first run, replays and a mismatch of one Idempotency-Key (POST /work has its own policy)
        keyed = {**TWO, "Idempotency-Key": "order-1"}
        first = httpx.post(f"{server.url}/work", headers=keyed, content=b"a")
        replays = asyncio.run(concurrently(server.url, [("POST", "/work", keyed, b"a")] * 3))
        mismatch = httpx.post(f"{server.url}/work", headers=keyed, content=b"b")
        assert [first.status_code, *(r.status_code for r in replays), mismatch.status_code] == [200] * 4 + [422]
        assert all(r.headers["idempotent-replayed"] == "true" for r in replays)
        # a shadow limit of 3: all 8 pass, 5 counted as would-be refusals
        shadowed = asyncio.run(concurrently(server.url, [("GET", "/shadowed", THREE, b"")] * 8))
        assert [r.status_code for r in shadowed] == [200] * 8
        assert all("x-ratelimit-limit" not in r.headers for r in shadowed)
        crash = httpx.get(f"{server.url}/boom", headers=THREE)
        assert crash.status_code == 500
        # Redis stalls: the limiter fails open (keys are in memory, GETs need no idempotency record)
        os.kill(redis.process.pid, signal.SIGSTOP)
        try:
            stalled = [httpx.get(f"{server.url}/work", headers=THREE) for _ in range(4)]
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
        assert [r.status_code for r in stalled] == [200] * 4
        assert all("x-ratelimit-limit" not in r.headers for r in stalled)
        pids |= {r.json()["pid"] for r in stalled + shadowed}

        time.sleep(0.5)  # past every worker's flush interval
        samples = scrape(server.url)
        assert len(pids) > 1  # the traffic was spread over several workers, summed in one scrape
        errors = Counter(
            (r.json()["code"], str(r.status_code)) for r in [*gets, mismatch, crash] if r.status_code >= 400
        )
        assert errors == {
            ("rate_limited", "429"): 15,
            ("idempotency_key_reused", "422"): 1,
            ("internal_error", "500"): 1,
        }
        for (code, status), count in errors.items():
            assert value(samples, "errorkit_errors_total", code=code, status=status) == count
        assert sum(v for (name, _), v in samples.items() if name == "errorkit_errors_total") == 17
        decisions = {
            (dict(labels)["policy"], dict(labels)["result"]): v
            for (name, labels), v in samples.items()
            if name == "errorkit_rate_limit_decisions_total"
        }
        assert decisions == {
            ("default", "allowed"): 6,  # 5 of ws_1, the crash of ws_3
            ("default", "limited"): 15,
            ("default", "failed_open"): 4,
            ("POST /work", "allowed"): 5,  # the first run, 3 replays, the mismatch
            ("/shadowed", "allowed"): 3,
            ("/shadowed", "shadow_limited"): 5,
        }
        # near the limit: ws_1's admissions leaving 1 and 0 of 5; the shadow limit's leaving 0 of 3
        assert value(samples, "errorkit_rate_limit_near_limit_total", policy="default") == 2
        assert value(samples, "errorkit_rate_limit_near_limit_total", policy="/shadowed") == 1
        assert value(samples, "errorkit_rate_limit_near_limit_total", policy="POST /work") == 0
        outcomes = {
            dict(labels)["outcome"]: v
            for (name, labels), v in samples.items()
            if name == "errorkit_idempotency_requests_total"
        }
        assert outcomes == {"first_run": 1, "replayed": 3, "mismatch": 1}
        node = f"127.0.0.1:{redis.port}"
        assert value(samples, "errorkit_redis_failures_total", node=node, reason="timeout") == 4
        assert value(samples, "errorkit_redis_connections", node=node) == 4  # one per worker, kept through the stall
        # every command that reached Redis was timed: at least one per counted request
        timed = value(samples, "errorkit_redis_command_duration_seconds_count", node=node)
        assert timed >= 20 + 5 + 8 + 1 + 4
        assert value(samples, "errorkit_redis_command_duration_seconds_bucket", node=node, le="+Inf") == timed
        # any worker answers the scrape with the same sums
        for _ in range(5):
            again = scrape(server.url)
            assert {k: v for k, v in again.items() if "_total" in k[0]} == {
                k: v for k, v in samples.items() if "_total" in k[0]
            }
