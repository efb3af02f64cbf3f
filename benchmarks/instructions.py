"""Instructions per request under callgrind, and Redis bytes per idempotency record: measures that do not drift.

    python -m benchmarks.instructions [--compare REV] [VARIANT ...]
    python -m benchmarks.instructions --memory [--compare REV]
    python -m benchmarks.instructions --calls [--compare REV] [VARIANT ...]

Calls the app of each variant (benchmarks/apps.py, BENCH_APP) in process, 50 requests at a time,
on uvloop as uvicorn runs it (`--loop asyncio`: asyncio's own loop, as before issue 25), and
counts the instructions of 2,500 requests minus those of 500 (start-up cancels out). With
BENCH_GC=freeze the objects of start-up are frozen out of the collector's scans: a full
collection falls in the counted window or not from run to run (about 60,000 objects scanned,
several thousand instructions a request), which freezing takes out of the comparison.
`idem_*_first` sends a fresh Idempotency-Key per request, `idem_*` replays one. Needs valgrind
and, for the Redis variants, a redis-server (started here). With `--compare REV` the same
variants also run from commit REV's tree. `--memory` instead sends 10,000 first-time idempotent
POSTs (`idem_redis_first`, a 27-byte JSON response) and reports Redis's `used_memory` growth per
stored record. `--calls` instead counts the Python functions each request runs (`sys.setprofile`,
200 requests after 200 to warm up, without valgrind; a coroutine's every resumption counts as a
call), all of them and errorkit's own (or benchmarks/lean.py's), and lists those.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

GET: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
    "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5555),
    "server": ("127.0.0.1", 8000), "headers": [(b"host", b"localhost"), (b"accept", b"*/*")],
}  # fmt: skip
POST = dict(GET, method="POST", path="/objects", raw_path=b"/objects",
            headers=[(b"host", b"localhost"), (b"content-type", b"application/json")])  # fmt: skip
BODY = b'{"name": "widget", "size": 3}'
VARIANTS = ["errorkit_memory", "errorkit_redis", "idem_memory", "idem_memory_first", "idem_redis", "idem_redis_first"]
# besides: "bare" and "bare_post" (Starlette alone), "stack_redis" (auth + rate limit GET), "stack_redis_post"
# and "stack_redis_post_first" (the whole stack's POST: a replay, and a fresh key each)


async def started(app: Any) -> asyncio.Task[None]:
    """Run the ASGI lifespan start-up (as a server would) and return the task that keeps it."""
    events: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    events.put_nowait({"type": "lifespan.startup"})
    ready = asyncio.Event()

    async def sent(message: dict[str, str]) -> None:
        if message["type"].startswith("lifespan.startup."):
            ready.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, events.get, sent))
    await ready.wait()
    return task


def child(variant: str, requests: int, calls: bool = False) -> None:
    """In the measured process: import the variant's app from the current folder and call it
    (`calls`: count the Python calls of `requests` requests after as many to warm up, and print them)."""
    sys.path[0] = os.getcwd()  # the tree being measured, not this file's
    os.environ["BENCH_APP"] = variant.removesuffix("_first").removesuffix("_post")
    from benchmarks.apps import TOKEN, app

    fresh = variant.endswith("_first")
    run = os.urandom(6).hex().encode()
    counter = iter(range(1 << 30))
    keyed = [(b"x-api-key", TOKEN.encode())] if variant.startswith(("stack", "lean")) else []
    posts = variant.startswith("idem") or "_post" in variant

    def scope() -> dict[str, Any]:
        if not posts:
            return dict(GET, state={}, headers=[*GET["headers"], *keyed])
        if variant == "bare_post":
            return dict(POST, state={})
        key = b"%s-%d" % (run, next(counter)) if fresh else b"replay-me"
        return dict(POST, state={}, headers=[*POST["headers"], *keyed, (b"idempotency-key", key)])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: object) -> None:
        return None

    async def batches(count: int) -> None:
        for _ in range(count // 50):
            await asyncio.gather(*(app(scope(), receive, send) for _ in range(50)))

    functions: collections.Counter[tuple[str, int, str]] = collections.Counter()

    def profile(frame: Any, event: str, arg: object) -> None:
        if event == "call":
            functions[frame.f_code.co_filename, frame.f_code.co_firstlineno, frame.f_code.co_qualname] += 1

    async def main() -> None:
        lifespan = await started(app)  # as uvicorn does: the app's start-up runs first
        if calls:
            await batches(requests)  # (keys served from memory, scripts loaded, packed commands kept)
            sys.setprofile(profile)
        await batches(requests)
        sys.setprofile(None)
        lifespan.cancel()

    if os.environ.get("BENCH_LOOP", "uvloop") == "uvloop":  # as uvicorn runs in production
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
    if calls:
        print_calls(variant, functions, requests)


def print_calls(variant: str, functions: collections.Counter[tuple[str, int, str]], requests: int) -> None:
    package, lean = os.path.join(os.getcwd(), "errorkit") + os.sep, os.path.join(os.getcwd(), "benchmarks", "lean.py")
    own = {place: n for place, n in functions.items() if place[0].startswith(package) or place[0] == lean}
    total, mine = sum(functions.values()) / requests, sum(own.values()) / requests
    print(f"{variant:28} {total:6.1f} Python calls a request, errorkit's (or the lean middleware's) {mine:5.1f}")
    for (filename, line, name), n in sorted(own.items(), key=lambda item: -item[1]):
        print(f"    {n / requests:5.2f}  {os.path.relpath(filename)}:{line} {name}")


def run_child(root: Path, redis_url: str, loop: str, *command: str) -> subprocess.CompletedProcess[str]:
    """`command`, which runs this file's `--child`, in `root`: it imports `root`'s app."""
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(root), "BENCH_LOOP": loop}
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True)


def calls_of(variant: str, root: Path, redis_url: str, loop: str = "uvloop") -> str:
    out = run_child(root, redis_url, loop, sys.executable, __file__, "--child", variant, "200", "--calls")
    return out.stdout.rstrip()


def count(variant: str, root: Path, redis_url: str, loop: str = "uvloop") -> float:
    totals = []
    for requests in (500, 2500):
        callgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        out = run_child(root, redis_url, loop, *callgrind, sys.executable, __file__, "--child", variant, str(requests))
        totals.append(int(re.search(r"Collected : (\d+)", out.stderr).group(1)))  # type: ignore[union-attr]
    return (totals[1] - totals[0]) / 2000


RECORDS = 10_000


def bytes_per_record(root: Path, redis_url: str) -> float:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]

    def used_memory() -> int:
        info = subprocess.run(["redis-cli", "-p", port, "INFO", "memory"], capture_output=True, text=True).stdout
        return int(re.search(r"used_memory:(\d+)", info).group(1))  # type: ignore[union-attr]

    subprocess.run(["redis-cli", "-p", port, "FLUSHALL"], check=True, capture_output=True)
    before = used_memory()
    run_child(root, redis_url, "uvloop", sys.executable, __file__, "--child", "idem_redis_first", str(RECORDS))
    keys = int(subprocess.run(["redis-cli", "-p", port, "DBSIZE"], capture_output=True, text=True).stdout)
    if keys < RECORDS:
        raise RuntimeError(f"only {keys} keys after {RECORDS} first-time POSTs: the app refused some")
    return (used_memory() - before) / RECORDS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="*", default=VARIANTS)
    parser.add_argument("--compare", metavar="REV")
    parser.add_argument("--memory", action="store_true", help="Redis bytes per idempotency record instead")
    parser.add_argument(
        "--loop", choices=["uvloop", "asyncio"], default="uvloop", help="the event loop driving the app"
    )
    parser.add_argument("--calls", action="store_true", help="Python calls per request instead (no valgrind)")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.calls)
        return
    from benchmarks.harness import ROOT, redis_server, source_at

    with redis_server() as url:
        trees = [("this tree", ROOT)]
        with source_at(args.compare or "HEAD") as old:
            if args.compare:
                trees.append((args.compare, old))
            if args.memory:
                line = ["bytes per record"] + [f"{name}: {bytes_per_record(root, url):.0f}" for name, root in trees]
                print("  ".join(line), flush=True)
                return
            for variant in args.variants:
                line = [f"{variant:20}"]
                for name, root in trees:
                    subprocess.run(["redis-cli", "-p", url.rsplit(":", 1)[1].split("/")[0], "FLUSHALL"], check=True,
                                   capture_output=True)  # fmt: skip
                    if args.calls:
                        print(f"{name}:\n{calls_of(variant, root, url, args.loop)}", flush=True)
                    else:
                        line.append(f"{name}: {count(variant, root, url, args.loop):>9,.0f}")
                if not args.calls:
                    print("  ".join(line), flush=True)


if __name__ == "__main__":
    main()
