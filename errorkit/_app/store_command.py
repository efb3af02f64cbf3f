"""`errorkit store`: mark a Redis as holding errorkit's data, and check a store as an app's start-up would.

    errorkit store init [--url URL] [--prefix errorkit]     # after FLUSHALL, or a Redis for idempotency alone
    errorkit store check [--url URL] [--prefix errorkit]    # reachable, and holding errorkit's dataset marker?

`--url` (else the `REDIS_URL` environment variable) is read by the rule `backend_from_env()`
follows (`errorkit._stores`): a Redis URL in any form errorkit accepts, or `memory://`, which
is each process's own memory (nothing to initialize or check from here: both say so and exit
0). `--prefix` is the `RedisBackend(prefix=...)` of the app (default: errorkit).

`init` runs `RedisBackend.initialize()`: it writes the dataset markers that are missing (one;
on Cluster one per slot) and prints how many, and the URL with its password redacted, on
standard output. A Redis that lost its data is adopted as it is: idempotency records from
before the loss are gone, so requests repeated from then run again. `check` runs the check of
`install(..., check_stores=True)` (`RedisBackend.check()`) and prints one line.

Exit status: 0 done (`check`: reachable and marked), 1 `check` failed (unreachable, or a
marker missing), 2 bad arguments (no URL, a URL errorkit refuses), 3 `init` could not reach or
write to Redis. Every problem is one line on standard error, never a traceback, never a password.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from errorkit._common.exceptions import ConfigurationError, StoreError
from errorkit._stores import redis_url_of
from errorkit._stores.redis.backend import RedisBackend
from errorkit._stores.redis.connection import Timeouts

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_STORE = 3
#: A person at a shell, possibly far from the Redis: seconds, not the middleware's milliseconds.
TIMEOUTS = Timeouts(command=2.0, connect=2.0, dead_after=4.0)


def add_parser(commands: Any) -> dict[str, argparse.ArgumentParser]:
    """Add `store` and its subcommands to the `errorkit` parser; returns them by name."""
    store = commands.add_parser("store", help="initialize or check the store (Redis)")
    verbs = store.add_subparsers(dest="verb", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", "--redis-url", dest="url", help="the store (default: $REDIS_URL)")
    common.add_argument("--prefix", default="errorkit", help="the prefix of errorkit's keys (default: errorkit)")

    init = verbs.add_parser("init", parents=[common], help="mark a Redis as holding errorkit's data")
    check = verbs.add_parser("check", parents=[common], help="reach the store as install(check_stores=True) does")
    return {"init": init, "check": check}


def run(args: argparse.Namespace, fail: Callable[[str], NoReturn]) -> int:
    """Carry out `errorkit store ...`; `fail` reports a usage error (exit 2)."""
    name, value = ("--url", args.url) if args.url is not None else ("REDIS_URL", os.environ.get("REDIS_URL", ""))
    if not value.strip():
        fail("no store: pass --url or set REDIS_URL")
    try:
        url = redis_url_of(name, value)
    except ConfigurationError as exc:
        fail(str(exc))
    if url is None:
        print(f"memory:// is each process's own memory: nothing to {args.verb} from here")
        return EXIT_OK
    try:
        backend = RedisBackend(url, timeout=TIMEOUTS, prefix=args.prefix)
    except ValueError as exc:  # (the URL was checked above: a prefix, say)
        fail(str(exc))

    if args.verb == "init":
        return asyncio.run(_init(backend))
    return asyncio.run(_check(backend))


async def _init(backend: RedisBackend) -> int:
    try:
        await backend.reach()  # (its failure names the URL and the reason in a few words)
        created = await backend.initialize()
    except StoreError as exc:
        print(f"errorkit store init: {exc}", file=sys.stderr)
        return EXIT_STORE
    finally:
        await backend.close()

    if created:
        print(f"initialized {backend}: {created} dataset marker{'s' if created != 1 else ''} written")
    else:
        print(f"{backend} was initialized already: no dataset marker written")
    return EXIT_OK


async def _check(backend: RedisBackend) -> int:
    try:
        await backend.check()
    except StoreError as exc:
        print(f"errorkit store check: {exc}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    finally:
        await backend.close()

    print(f"{backend} is reachable and holds errorkit's dataset marker")
    return EXIT_OK
