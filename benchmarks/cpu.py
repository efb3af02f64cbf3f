"""CPU time per request with the ASGI app called in-process (no HTTP server, no network to the client).

    python -m benchmarks.cpu [--requests 20000]

Needs a redis-server (started here on a free port). Prints microseconds of process CPU time
per request for each app variant (`GET /`; the whole stack `stack_redis` with its API key),
the minimum of `--runs` runs.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time

from benchmarks.harness import redis_server

SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
    "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5555),
    "server": ("127.0.0.1", 8000), "headers": [(b"host", b"localhost"), (b"accept", b"*/*")],
}  # fmt: skip


def one_variant(requests: int) -> float:
    """Run in a child process: import the app chosen by BENCH_APP, call it `requests` times."""
    import uvloop

    from benchmarks.apps import TOKEN, app
    from benchmarks.instructions import started

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: object) -> None:
        return None

    keyed = os.environ["BENCH_APP"].startswith("stack_")
    scope = dict(SCOPE, headers=[*SCOPE["headers"], (b"x-api-key", TOKEN.encode())]) if keyed else SCOPE  # type: ignore[list-item]

    async def call() -> None:
        await app(dict(scope, state={}), receive, send)

    async def main() -> float:
        await started(app)  # the app's start-up (the stack registers its key there)
        for _ in range(1000):
            await call()
        start = time.process_time()
        for _ in range(requests // 50):
            await asyncio.gather(*(call() for _ in range(50)))
        return (time.process_time() - start) / requests * 1e6

    return uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.environ.get("BENCH_CHILD"):
        print(one_variant(args.requests))
        return
    with redis_server() as url:
        for variant in ["bare", "plain", "errorkit_memory", "errorkit_redis", "stack_redis", "naive_redis"]:
            env = {**os.environ, "BENCH_CHILD": "1", "BENCH_APP": variant, "REDIS_URL": url}
            runs = [
                float(subprocess.run(["taskset", "-c", "0", sys.executable, "-m", "benchmarks.cpu",
                                      "--requests", str(args.requests)], env=env, capture_output=True,
                                     text=True, check=True).stdout)
                for _ in range(args.runs)
            ]  # fmt: skip
            print(f"{variant:18} {min(runs):6.1f} us CPU per request")


if __name__ == "__main__":
    main()
