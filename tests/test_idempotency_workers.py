"""Idempotency across 4 uvicorn workers sharing a real redis-server, and across a killed worker."""

import asyncio
import os
import signal
import threading
import time
from collections import Counter

import httpx

from tests.support.servers import redis_server, uvicorn

ONE = {"X-API-Key": "ek_one.workspace-one-1"}


def test_fifty_concurrent_identical_requests_run_once() -> None:
    with (
        redis_server() as redis,
        uvicorn(
            "tests.apps.idempotency:app", workers=4, env={"EK_IDEMPOTENCY_APP": "1", "REDIS_URL": redis.url}
        ) as server,
    ):

        async def main() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=10) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            "/orders", json={"ref": "race", "sleep": 0.2}, headers={**ONE, "Idempotency-Key": "race-1"}
                        )
                        for _ in range(50)
                    )
                )

        responses = asyncio.run(main())
        statuses = Counter(r.status_code for r in responses)
        assert set(statuses) <= {201, 409}, statuses
        originals = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
        replays = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
        assert len(originals) == 1
        assert all(r.content == originals[0].content for r in replays)
        assert all(r.json()["error"]["code"] == "idempotency_key_in_use" for r in responses if r.status_code == 409)
        assert httpx.get(f"{server.url}/effects/race").json() == {"count": 1}
        # once done, every retry is a byte-identical replay
        later = httpx.post(
            f"{server.url}/orders", json={"ref": "race", "sleep": 0.2}, headers={**ONE, "Idempotency-Key": "race-1"}
        )
        assert later.headers["idempotent-replayed"] == "true" and later.content == originals[0].content


def test_killed_worker_frees_the_key_after_its_lease() -> None:
    with redis_server() as redis:
        env = {"EK_IDEMPOTENCY_APP": "1", "REDIS_URL": redis.url, "EK_LEASE": "1"}
        body = {"ref": "killed", "sleep": 5}
        headers = {**ONE, "Idempotency-Key": "kill-1"}
        with uvicorn("tests.apps.idempotency:app", env=env) as server:
            errors: list[BaseException] = []

            def doomed() -> None:
                try:
                    httpx.post(f"{server.url}/orders", json=body, headers=headers, timeout=10)
                except httpx.HTTPError as exc:
                    errors.append(exc)

            thread = threading.Thread(target=doomed)
            thread.start()
            time.sleep(0.5)  # the handler is running and holds the key
            r = httpx.post(f"{server.url}/orders", json=body, headers=headers)
            assert r.status_code == 409
            os.kill(server.process.pid, signal.SIGKILL)  # the worker dies mid-request
            thread.join()
            assert errors  # the first client saw its connection drop
        time.sleep(1.2)  # past the lease
        with uvicorn("tests.apps.idempotency:app", env=env) as server:
            quick = {"ref": "killed", "sleep": 5}
            r = httpx.post(f"{server.url}/orders", json=quick, headers=headers, timeout=10)
            assert r.status_code == 201 and "idempotent-replayed" not in r.headers
            assert r.json()["order"] == 1  # the killed request never did its side effect; this one did, once


def test_a_retry_sent_right_after_a_success_always_replays() -> None:
    """400 first requests, each retried the moment its 201 arrived, over 4 workers: every retry replays."""
    with (
        redis_server() as redis,
        uvicorn(
            "tests.apps.idempotency:app", workers=4, env={"EK_IDEMPOTENCY_APP": "1", "REDIS_URL": redis.url}
        ) as server,
    ):

        async def main() -> list[tuple[httpx.Response, httpx.Response]]:
            limits = httpx.Limits(max_connections=32, max_keepalive_connections=0)  # spread over workers
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
                semaphore = asyncio.Semaphore(32)

                async def pair(i: int) -> tuple[httpx.Response, httpx.Response]:
                    async with semaphore:
                        request = {"json": {"ref": f"pair-{i}"}, "headers": {**ONE, "Idempotency-Key": f"pair-{i}"}}
                        first = await client.post("/orders", **request)  # type: ignore[arg-type]
                        return first, await client.post("/orders", **request)  # type: ignore[arg-type]

                return await asyncio.gather(*(pair(i) for i in range(400)))

        pairs = asyncio.run(main())
        assert Counter((a.status_code, b.status_code) for a, b in pairs) == {(201, 201): 400}
        assert all(b.headers.get("idempotent-replayed") == "true" and b.content == a.content for a, b in pairs)
