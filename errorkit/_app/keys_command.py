"""`errorkit keys`: issue, list and revoke API keys, disable a workspace, against `REDIS_URL`.

    errorkit keys issue --workspace ws_1 --scope campaigns:write [--project P] [--plan Growth] [--expires 30d]
    errorkit keys list --workspace ws_1 [--json]
    errorkit keys revoke KEY_ID
    errorkit keys disable-workspace ws_1 [--reason "payment overdue"] [--enable]

`--redis-url` or `--url` (else the `REDIS_URL` environment variable) takes every URL form errorkit
accepts (`redis://`, `rediss://`, `unix://`, `redis+sentinel://`, `redis+cluster://`).
`issue` prints the token, once, alone on standard output; everything else goes to standard
error. Exit status: 0 done, 1 no such key (revoke), 2 bad arguments, 3 Redis unreachable or
refusing. What `issue` takes is checked as the Python API checks it (`errorkit._stages.keys`:
lengths, printable characters, an expiry in the future), each problem one line on standard
error. Stored values are printed with control and unprintable characters escaped as Python
writes them in a string (`\n`, `\x1b`, `\\`), JSON with JSON's escapes; a record that cannot
be read is listed as `unreadable` with its key id, and the listing goes on. No traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, get_args

from errorkit._common.exceptions import StoreError
from errorkit._common.principal import APIKeyRecord, KeyScope, moment_of
from errorkit._stages.keys import check_name, issue_api_key, revoke_api_key, set_workspace_disabled
from errorkit._stores import redis_url_of
from errorkit._stores.redis.backend import RedisBackend
from errorkit._stores.redis.connection import Timeouts

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_STORE = 3
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parser(commands: Any) -> dict[str, argparse.ArgumentParser]:
    """Add `keys` and its subcommands to the `errorkit` parser; returns them by name."""
    keys = commands.add_parser("keys", help="issue, list and revoke API keys")
    verbs = keys.add_subparsers(dest="verb", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", "--url", dest="redis_url", help="the store (default: $REDIS_URL)")
    common.add_argument("--prefix", default="errorkit", help="the app's RedisBackend(prefix=...) (default: errorkit)")

    issue = verbs.add_parser("issue", parents=[common], help="create a key; prints its token once")
    issue.add_argument("--workspace", required=True)
    issue.add_argument("--scope", action="append", default=[], dest="scopes", help="a permission (repeatable)")
    issue.add_argument("--project")
    issue.add_argument("--key-scope", choices=get_args(KeyScope))
    issue.add_argument("--plan")
    issue.add_argument("--expires", type=_expiry, help="an ISO 8601 time, or a duration: 90m, 12h, 30d")
    issue.add_argument("--token-prefix", default="ek_", help="the start of the token (default: ek_)")

    listing = verbs.add_parser("list", parents=[common], help="a workspace's keys (never their secrets)")
    listing.add_argument("--workspace", required=True)
    listing.add_argument("--json", action="store_true", help="one JSON object per key")

    revoke = verbs.add_parser("revoke", parents=[common], help="revoke a key by its id")
    revoke.add_argument("key_id")

    disable = verbs.add_parser("disable-workspace", parents=[common], help="refuse every key of a workspace")
    disable.add_argument("workspace")
    disable.add_argument("--reason")
    disable.add_argument("--enable", action="store_true", help="accept the workspace's keys again")

    return {"issue": issue, "list": listing, "revoke": revoke, "disable-workspace": disable}


def run(args: argparse.Namespace, fail: Callable[[str], NoReturn]) -> int:
    """Carry out `errorkit keys ...`; `fail` reports a usage error (exit 2)."""
    name, value = ("--redis-url", args.redis_url) if args.redis_url else ("REDIS_URL", os.environ.get("REDIS_URL"))
    if not value:
        fail("no Redis: pass --redis-url or set REDIS_URL")
    try:
        url = redis_url_of(name, value)
        if url is None:  # (each process's memory holds its own keys: none this command could reach)
            fail(f"{name}={value.strip()}: API keys from the command line need a shared Redis (redis://...)")
        backend = RedisBackend(url, timeout=Timeouts(command=2.0, connect=2.0, dead_after=4.0), prefix=args.prefix)
    except ValueError as exc:
        fail(str(exc))

    action: Callable[[RedisBackend], Awaitable[int]] = {
        "issue": lambda b: _issue(b, args),
        "list": lambda b: _list(b, args),
        "revoke": lambda b: _revoke(b, args),
        "disable-workspace": lambda b: _disable(b, args),
    }[args.verb]
    try:
        return asyncio.run(_closing(backend, action))
    except StoreError as exc:
        print(f"errorkit keys: Redis did not answer: {exc}", file=sys.stderr)
        return EXIT_STORE
    except ValueError as exc:  # e.g. a --token-prefix that makes no valid token
        print(f"errorkit keys: {exc}", file=sys.stderr)
        return EXIT_USAGE


async def _closing(backend: RedisBackend, action: Callable[[RedisBackend], Awaitable[int]]) -> int:
    try:
        return await action(backend)
    finally:
        await backend.close()


async def _issue(backend: RedisBackend, args: argparse.Namespace) -> int:
    """Issue a key (its fields are checked by `issue_api_key`: a `ValueError` is exit 2)."""
    token = await issue_api_key(
        backend,
        prefix=args.token_prefix,
        workspace_id=args.workspace,
        scopes=frozenset(args.scopes),
        project_id=args.project,
        key_scope=args.key_scope,
        plan=args.plan,
        expires_at=args.expires,
    )
    print(token)

    key_id = token.split(".", 1)[0]
    workspace = _shown(args.workspace)
    print(f"issued {_shown(key_id)} for workspace {workspace}: the token above is shown only now", file=sys.stderr)
    return EXIT_OK


async def _list(backend: RedisBackend, args: argparse.Namespace) -> int:
    check_name("workspace id", args.workspace)  # (a ValueError is exit 2, one line)
    records = sorted(await backend.list_api_keys(args.workspace), key=lambda r: r.key_id)
    for record in records:
        described = _described(record)
        if args.json:
            print(json.dumps(described, sort_keys=True))  # (JSON escapes control characters itself)
        else:
            print(_line(described))
    if not records:
        print(f"no keys in workspace {_shown(args.workspace)}", file=sys.stderr)
    return EXIT_OK


def _line(described: dict[str, Any]) -> str:
    """One key of the text listing, its stored values escaped for the terminal."""
    key_id = _shown(described["key_id"])
    if described["state"] == "unreadable":
        return f"{key_id}  unreadable  problem={_shown(described['problem'])}"

    scopes = ",".join(_shown(scope) for scope in described["scopes"]) or "-"
    project = _shown(described["project_id"] or "-")
    plan = _shown(described["plan"] or "-")
    expires = described["expires_at"] or "-"
    return f"{key_id}  {described['state']}  scopes={scopes}  project={project}  plan={plan}  expires={expires}"


def _shown(text: str) -> str:
    """`text` safe for a terminal: unprintable characters and backslashes escaped as `repr` does."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in text)


async def _revoke(backend: RedisBackend, args: argparse.Namespace) -> int:
    if not await revoke_api_key(backend, args.key_id):
        print(f"errorkit keys: no key '{_shown(args.key_id)}'", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(f"revoked {_shown(args.key_id)}", file=sys.stderr)
    return EXIT_OK


async def _disable(backend: RedisBackend, args: argparse.Namespace) -> int:
    changed = await set_workspace_disabled(backend, args.workspace, not args.enable, args.reason)
    done = "enabled" if args.enable else "disabled"
    print(f"{done} workspace {_shown(args.workspace)}: {changed} keys", file=sys.stderr)
    return EXIT_OK


def _described(record: APIKeyRecord) -> dict[str, Any]:
    """A key as the listing shows it (never its secret's hash)."""
    if record.unreadable is not None:
        return {
            "key_id": record.key_id,
            "workspace_id": record.workspace_id or None,
            "state": "unreadable",
            "problem": record.unreadable,
        }

    expired = record.expires_at is not None and record.expires_at <= time.time()
    state = (
        "revoked" if record.revoked
        else "workspace-disabled" if record.workspace_disabled
        else "expired" if expired
        else "active"
    )  # fmt: skip
    moment = moment_of(record.expires_at) if record.expires_at is not None else None
    expires = moment.isoformat() if moment is not None else None
    return {
        "key_id": record.key_id,
        "workspace_id": record.workspace_id,
        "project_id": record.project_id,
        "scopes": sorted(record.scopes),
        "plan": record.plan,
        "expires_at": expires,
        "state": state,
    }


def _expiry(text: str) -> datetime:
    """`30d`, `12h`, `90m`, `45s` from now, or an ISO 8601 time (UTC when it names no zone).

    Whether it is representable and in the future is `issue_api_key`'s check.
    """
    quoted = repr(text) if len(text) <= 64 else repr(text[:64]) + "..."
    duration = _DURATION.fullmatch(text)
    if duration:
        try:
            seconds = int(duration.group(1)) * _UNITS[duration.group(2)]
            return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
        except (OverflowError, ValueError):  # past what timedelta or datetime hold (the year 9999)
            raise argparse.ArgumentTypeError(f"{quoted} is too far in the future (past the year 9999)") from None

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quoted} is neither an ISO 8601 time nor a duration like 30d") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
