"""What the garbage collector costs per request, in process, with and without `gc.freeze()`.

    python -m benchmarks.collector [--requests 5000] [--runs 3]

Calls each app (benchmarks/apps.py) 50 requests at a time, as `benchmarks.cpu` does, and
times every collection with `gc.callbacks`: CPU microseconds per request, the collector's
share by generation, and collections per 1,000 requests. Objects of in-flight requests that a
collection finds alive are promoted; enough promotions start a full collection, which scans
every object of the process: `gc.freeze()` after start-up takes those out of the scans.
Needs a redis-server (started here).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks.harness import redis_server

CASES = {  # name: (BENCH_APP, method, with the API key)
    "bare Starlette POST": ("bare", "POST", False),
    "auth + rate limit, Redis, GET": ("stack_redis", "GET", True),
    "auth + rate limit + idempotency, first-time POST": ("stack_redis", "POST", True),
}


def child(name: str, freeze: bool, requests: int) -> None:
    """In the measured process: run one case, print `cpu_us gen0_us gen1_us gen2_us c0 c1 c2` per request."""
    variant, method, keyed = CASES[name]
    os.environ["BENCH_APP"] = variant
    from benchmarks.apps import TOKEN, app
    from benchmarks.instructions import BODY, GET, POST, started

    run, counter = os.urandom(4).hex().encode(), iter(range(1 << 30))
    key = [(b"x-api-key", TOKEN.encode())] if keyed else []

    def scope() -> dict[str, Any]:
        if method == "GET":
            return dict(GET, state={}, headers=[*GET["headers"], *key])
        fresh = [(b"idempotency-key", b"%s-%d" % (run, next(counter)))] if keyed else []
        return dict(POST, state={}, headers=[*POST["headers"], *key, *fresh])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: object) -> None:
        return None

    spent, begun = [0.0, 0.0, 0.0], [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            begun[0] = time.perf_counter()
        else:
            spent[info["generation"]] += time.perf_counter() - begun[0]

    async def main() -> None:
        await started(app)
        for _ in range(20):  # warm-up: caches, the connection, the scripts
            await asyncio.gather(*(app(scope(), receive, send) for _ in range(50)))
        if freeze:
            gc.freeze()
        gc.callbacks.append(timed)
        before = [s["collections"] for s in gc.get_stats()]
        start = time.process_time()
        for _ in range(requests // 50):
            await asyncio.gather(*(app(scope(), receive, send) for _ in range(50)))
        cpu = time.process_time() - start
        counts = [s["collections"] - b for s, b in zip(gc.get_stats(), before, strict=True)]
        per = 1e6 / requests
        print(cpu * per, *(s * per for s in spent), *(c * 1000 / requests for c in counts))

    import uvloop

    uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1] == "freeze", int(args.child[2]))
        return
    print(
        "| case | collector | µs CPU / request | of which collecting (gen 0 / 1 / 2) "
        "| collections per 1,000 (gen 0 / 1 / 2) |"
    )
    print("|---|---|---:|---:|---:|")
    with redis_server() as url:
        for name in CASES:
            for mode in ("default", "freeze"):
                rows = []
                for _ in range(args.runs):
                    out = subprocess.run(
                        [sys.executable, "-m", "benchmarks.collector", "--child", name, mode, str(args.requests)],
                        env={**os.environ, "REDIS_URL": url}, capture_output=True, text=True, check=True,
                    ).stdout.split()  # fmt: skip
                    rows.append([float(v) for v in out])
                cpu, g0, g1, g2, c0, c1, c2 = min(rows)  # the least disturbed run
                label = "gc.freeze() after start-up" if mode == "freeze" else "default"
                print(
                    f"| {name} | {label} | {cpu:.1f} | {g0 + g1 + g2:.1f} ({g0:.1f} / {g1:.1f} / {g2:.1f}) "
                    f"| {c0:.0f} / {c1:.1f} / {c2:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
