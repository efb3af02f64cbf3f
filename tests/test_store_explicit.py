"""The store is explicit: `backend_from_env()`'s one rule, the start-up check of stores, and the
remedy a Redis without errorkit's dataset marker names (real redis-server processes)."""

import asyncio
import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from errorkit import (
    ConfigurationError,
    MemoryBackend,
    RedisBackend,
    StoreDataLost,
    StoreUnavailable,
    backend_from_env,
)
from errorkit._stores.check import check_stores
from errorkit._stores.redis.connection import Redis
from tests.support.servers import Cluster, cluster_setup, free_port
from tests.support.servers import Redis as RedisServer

ACCEPTED = (
    "errorkit accepts memory://, redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel://, "
    "redis+cluster://, rediss+cluster://"
)
CONSEQUENCE = (
    "errorkit keeps rate limits, idempotency records, quotas, concurrency slots and API keys in this "
    "process's memory; each worker counts alone and they are lost on restart. Set REDIS_URL=redis://... "
    "for a shared store, or REDIS_URL=memory:// to choose memory and silence this warning."
)
LOST_BY_CHECK = (
    "lacks errorkit's dataset marker{where} (prefix {prefix!r}): it lost errorkit's data (a restart without "
    "persistence, FLUSHALL, eviction) or was never initialized; run {remedy} to adopt it as it is (requests "
    "repeated from before the loss then run again)"
)


def store_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    return [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("errorkit")]


# -- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "state"), [(None, "not set"), ("", "empty"), ("  ", "empty")])
def test_without_the_variable_memory_is_used_and_a_warning_says_what_that_costs(
    value: str | None, state: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if value is None:
        monkeypatch.delenv("REDIS_URL", raising=False)
    else:
        monkeypatch.setenv("REDIS_URL", value)
    with caplog.at_level(logging.DEBUG, logger="errorkit"):
        backend = backend_from_env()
    assert type(backend) is MemoryBackend
    assert store_records(caplog) == [("errorkit.store", logging.WARNING, f"REDIS_URL is {state}: {CONSEQUENCE}")]


def test_memory_chosen_on_purpose_is_quiet(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="errorkit"):
        for value in ("memory://", "MEMORY://", " memory:// "):
            monkeypatch.setenv("REDIS_URL", value)
            assert type(backend_from_env()) is MemoryBackend
    assert store_records(caplog) == []


def test_a_redis_url_gives_the_redis_store_and_another_variable_may_name_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2-secret@cache.internal:6380/2 ")  # (blanks around: ignored)
    monkeypatch.setenv("LIMITS_STORE", "redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    with caplog.at_level(logging.DEBUG, logger="errorkit"):
        single, cluster, memory = backend_from_env(), backend_from_env("LIMITS_STORE"), backend_from_env("NOT_SET_HERE")
    assert isinstance(single, RedisBackend) and single.redis.url == "redis://:***@cache.internal:6380/2"
    assert isinstance(cluster, RedisBackend) and cluster.redis.url == "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"
    assert type(memory) is MemoryBackend
    warning = f"NOT_SET_HERE is not set: {CONSEQUENCE.replace('REDIS_URL', 'NOT_SET_HERE')}"
    assert store_records(caplog) == [("errorkit.store", logging.WARNING, warning)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "redsi://:hunter2-secret@127.0.0.1:6379/0",
            f"REDIS_URL='redsi://:***@127.0.0.1:6379/0': unknown scheme 'redsi': did you mean redis://? {ACCEPTED}",
        ),
        (
            "rediss+clustr://10.0.0.1:7000",
            f"REDIS_URL='rediss+clustr://10.0.0.1:7000': unknown scheme 'rediss+clustr': did you mean "
            f"rediss+cluster://? {ACCEPTED}",
        ),
        (
            "http://cache:6379",
            f"REDIS_URL='http://cache:6379': unknown scheme 'http': did you mean redis://? {ACCEPTED}",
        ),
        ("localhost:6379", f"REDIS_URL='localhost:6379' is not a URL (no '://'): did you mean redis://? {ACCEPTED}"),
        (
            "app:hunter2-secret@cache:6379",
            f"REDIS_URL='***@cache:6379' is not a URL (no '://'): did you mean redis://? {ACCEPTED}",
        ),
        ("memory", f"REDIS_URL='memory' is not a URL (no '://'): did you mean memory://? {ACCEPTED}"),
        (
            "memory://local",
            "REDIS_URL='memory://local': the in-memory store is memory:// exactly, with nothing after it",
        ),
        (
            "redis://:hunter2-secret@127.0.0.1:63x9/0",
            "REDIS_URL='redis://:***@127.0.0.1:63x9/0': port '63x9' is not a number",
        ),
        (
            "redis://:hunter2/secret@127.0.0.1:6379/0",  # an unescaped "/" in the password: no piece of it shows
            "REDIS_URL='redis://***@127.0.0.1:6379/0': an '@' after the host: write '/', '?', '#' in a password "
            "as %2F, %3F, %23",
        ),
        (
            "rediss://app:hunter2#secret@127.0.0.1:6380/0",
            "REDIS_URL='rediss://***@127.0.0.1:6380/0': an '@' after the host: write '/', '?', '#' in a password "
            "as %2F, %3F, %23",
        ),
        (
            "unix:///run/redis.sock?db=zero&password=hunter2-secret",
            "REDIS_URL='unix:///run/redis.sock?db=zero&password=***': database 'zero' is not a number",
        ),
    ],
)
def test_a_value_that_is_no_store_is_a_configuration_error_naming_the_nearest_scheme(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", value)
    with pytest.raises(ConfigurationError) as raised:
        backend_from_env()
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError) and "hunter2" not in str(raised.value)


# -- the start-up check -----------------------------------------------------------------------


def test_a_reachable_marked_store_passes_and_each_store_is_reached_once(redis: RedisServer) -> None:
    async def main() -> None:
        backend = RedisBackend(redis.url)
        await backend.initialize()
        assert isinstance(backend.redis, Redis)
        sent = backend.redis.commands_sent
        memory = MemoryBackend()
        # stages share one backend: auth.keys, rate_limit.counters, idempotency.records, ... and None
        await check_stores([backend, backend, None, memory, backend, memory, object()])
        # PING, the write (EVALSHA, then EVAL: the script is new to Redis), EXISTS: the backend was reached once
        assert backend.redis.commands_sent - sent == 4
        await backend.close()

    asyncio.run(main())


def test_nothing_listening_fails_with_the_url_redacted_and_the_reason() -> None:
    port = free_port()

    async def main() -> None:
        backend = RedisBackend(f"redis://:hunter2-secret@127.0.0.1:{port}/0")
        with pytest.raises(StoreUnavailable) as raised:
            await check_stores([MemoryBackend(), backend])
        assert type(raised.value) is StoreUnavailable
        assert str(raised.value) == f"cannot reach the store redis://:***@127.0.0.1:{port}/0: Connection refused"
        await backend.close()

    asyncio.run(main())


def test_a_missing_unix_socket_fails_with_the_systems_reason(tmp_path: Path) -> None:
    async def main() -> None:
        url = f"unix://{tmp_path}/redis.sock?password=hunter2-secret"
        backend = RedisBackend(url)
        with pytest.raises(StoreUnavailable) as raised:
            await check_stores([backend])
        shown = f"unix://{tmp_path}/redis.sock?password=***"
        assert str(raised.value) == f"cannot reach the store {shown}: No such file or directory"
        await backend.close()

    asyncio.run(main())


@contextmanager
def stopped(server: RedisServer) -> Iterator[None]:
    """The redis-server frozen (SIGSTOP: its socket still accepts, nothing answers), resumed after."""
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def test_a_stalled_redis_fails_the_check_within_the_store_timeouts_never_hangs(redis: RedisServer) -> None:
    async def main() -> None:
        fresh, connected = RedisBackend(redis.url), RedisBackend(redis.url)
        await connected.initialize()
        with stopped(redis):
            start = time.monotonic()
            with pytest.raises(StoreUnavailable) as raised:  # a new connection: the handshake's deadline
                await check_stores([fresh])
            assert str(raised.value) == f"cannot reach the store {redis.url}: no answer within 0.5 s"
            assert time.monotonic() - start < 2.0

            start = time.monotonic()
            with pytest.raises(StoreUnavailable) as raised:  # a live connection: the command's deadline
                await check_stores([connected])
            message = f"cannot reach the store {redis.url}: Redis at 127.0.0.1:{redis.port} did not answer within 50 ms"
            assert str(raised.value) == message
            assert time.monotonic() - start < 1.0
        await check_stores([connected])  # resumed: the same connection answers again
        await fresh.close()
        await connected.close()

    asyncio.run(main())


def test_a_flushed_redis_fails_the_check_naming_the_command_that_adopts_it(redis: RedisServer) -> None:
    async def main() -> None:
        backend = RedisBackend(redis.url)
        with pytest.raises(StoreDataLost) as raised:  # never initialized
            await check_stores([backend])
        remedy = f"`errorkit store init --url {redis.url}` or `await store.initialize()`"
        lost = f"the store {redis.url} " + LOST_BY_CHECK.format(where="", prefix="errorkit", remedy=remedy)
        assert str(raised.value) == lost

        assert await backend.initialize() == 1
        await check_stores([backend])
        admin = Redis(redis.url)
        assert await admin.execute("FLUSHALL") == b"OK"
        await admin.close()
        with pytest.raises(StoreDataLost) as raised:
            await check_stores([backend])
        assert str(raised.value) == lost
        assert await backend.initialize() == 1
        await check_stores([backend])
        await backend.close()

    asyncio.run(main())


def test_a_password_in_the_url_never_appears_in_a_failure(redis: RedisServer) -> None:
    async def main() -> None:
        admin = Redis(redis.url)
        assert await admin.execute("CONFIG", "SET", "requirepass", "hunter2-secret") == b"OK"
        await admin.close()
        shown = f"redis://:***@127.0.0.1:{redis.port}/0"
        wrong = RedisBackend(f"redis://:not-hunter2@127.0.0.1:{redis.port}/0")
        with pytest.raises(StoreUnavailable) as refused:
            await check_stores([wrong])
        assert str(refused.value) == (
            f"cannot reach the store {shown}: WRONGPASS invalid username-password pair or user is disabled."
        )

        right = RedisBackend(f"redis://:hunter2-secret@127.0.0.1:{redis.port}/0", prefix="app one")
        with pytest.raises(StoreDataLost) as lost:
            await check_stores([right])
        remedy = (
            f"`errorkit store init --url 'redis://:***@127.0.0.1:{redis.port}/0' --prefix 'app one'` "
            "(with the password in place of ***) or `await store.initialize()`"
        )
        assert str(lost.value) == f"the store {shown} " + LOST_BY_CHECK.format(
            where="", prefix="app one", remedy=remedy
        )
        assert "hunter2" not in str(refused.value) + str(lost.value)
        await wrong.close()
        await right.close()

    asyncio.run(main())


def test_a_cluster_is_checked_slot_by_slot() -> None:
    """One marker per slot, asked in batches: a flushed primary is named by the slots it lost."""
    with cluster_setup() as cluster:

        async def main() -> None:
            backend = RedisBackend(cluster.url, prefix="chk")
            assert await backend.initialize() == 16384
            await check_stores([backend])
            start, end = await flush_one_primary(cluster)
            with pytest.raises(StoreDataLost) as raised:
                await check_stores([backend])
            remedy = f"`errorkit store init --url {cluster.url} --prefix chk` or `await store.initialize()`"
            where = f" in {end - start + 1} of 16384 slots"
            assert str(raised.value) == f"the store {cluster.url} " + LOST_BY_CHECK.format(
                where=where, prefix="chk", remedy=remedy
            )
            assert await backend.initialize() == end - start + 1
            await check_stores([backend])
            await backend.close()

        asyncio.run(main())


async def flush_one_primary(cluster: Cluster) -> tuple[int, int]:
    """FLUSHALL on the primary of the lowest slots; its first and last slot."""
    port, slots = min(cluster.primaries().items(), key=lambda item: item[1])
    node = Redis(f"redis://127.0.0.1:{port}/0")
    assert await node.execute("FLUSHALL") == b"OK"
    await node.close()
    return slots


# -- the remedy a lost dataset names ------------------------------------------------------------


def test_every_step_that_finds_the_data_lost_names_the_command_for_this_redis(redis: RedisServer) -> None:
    async def main() -> None:
        plain, prefixed = RedisBackend(redis.url), RedisBackend(redis.url, prefix="app")
        for backend, command in (
            (plain, f"errorkit store init --url {redis.url}"),
            (prefixed, f"errorkit store init --url {redis.url} --prefix app"),
        ):
            until = f"or until `{command}` or `await store.initialize()` adopts this Redis as it is"
            steps = {
                "an API key": backend.get_api_key("ek_1"),
                "an idempotency record": backend.claim("ws_1", "order-1", b"fp", "me", 30_000),
                "a workspace's quota usage": backend.reserve("ws_1", "agents", 3, "t1", 30_000),
            }
            for what, step in steps.items():
                with pytest.raises(StoreDataLost) as raised:
                    await step
                assert str(raised.value) == (
                    f"Redis holds neither {what} nor errorkit's dataset marker: it lost errorkit's data (a restart "
                    "without persistence, FLUSHALL, eviction) or was never initialized; each stage answers as its "
                    f"failure policy says until the data is restored or keys are registered again, {until}"
                )
            await backend.close()

    asyncio.run(main())


def test_a_redis_that_will_not_run_errorkits_scripts_or_writes_fails_the_check(redis: RedisServer) -> None:
    """An ACL without scripting, and a read-only replica, answer PING and EXISTS: they fail the check."""
    from tests.support.servers import redis_server

    async def main(replica_url: str) -> None:
        admin = RedisBackend(redis.url)
        await admin.initialize()
        await admin.redis.execute(
            "ACL", "SETUSER", "reader", "on", ">reads-only", "~*", "+@read", "+ping", "+hello", "+auth", "+client"
        )
        await admin.close()

        reader = RedisBackend(redis.url.replace("redis://", "redis://reader:reads-only@"))
        with pytest.raises(StoreUnavailable) as raised:
            await check_stores([reader])
        shown = redis.url.replace("redis://", "redis://reader:***@")
        assert str(raised.value).startswith(f"the store {shown} refused errorkit's check: NOPERM")
        assert "reads-only" not in str(raised.value)
        await reader.close()

        replica = RedisBackend(replica_url)
        await replica.redis.execute("REPLICAOF", "127.0.0.1", str(redis.port))
        with pytest.raises(StoreUnavailable) as raised:
            await check_stores([], reached=[replica])
        assert str(raised.value).startswith(f"cannot reach the store {replica_url}: Redis cannot serve now: READONLY")
        await replica.redis.execute("REPLICAOF", "NO", "ONE")
        await replica.close()

    with redis_server() as second:
        asyncio.run(main(second.url))
