"""errorkit's Redis connection against a real redis-server."""

import asyncio
import base64
import hashlib
import os
import signal
import time

import hiredis
import pytest

from errorkit import RedisBackend, RedisError, StoreUnavailable
from errorkit._stages.algorithms import GCRA
from errorkit._stores.protocols import Claim, ClaimState, Counted
from errorkit._stores.redis import backend as backend_module
from errorkit._stores.redis.connection import EvalshaLayout, Prepared, Redis, Script, Timeouts
from tests.support.servers import redis_server


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_commands_and_replies(redis_url: str) -> None:
    async def main() -> None:
        r = Redis(redis_url)
        assert await r.execute("SET", "t:plain", "v") == b"OK"
        assert await r.execute("GET", "t:plain") == b"v"
        assert await r.execute("GET", "t:missing") is None
        assert await r.execute("HSET", "t:hash", "a", 1, "b", "x") == 2
        assert await r.execute("HGETALL", "t:hash") == [b"a", b"1", b"b", b"x"]
        await r.close()

    run(main())


def test_concurrent_commands_share_one_write_per_tick(redis_url: str) -> None:
    async def main() -> None:
        r = Redis(redis_url)
        await r.execute("DEL", "t:counter")
        writes_before = r.writes
        results = await asyncio.gather(*(r.execute("INCR", "t:counter") for _ in range(500)))
        assert sorted(results) == list(range(1, 501))  # every reply reached its own caller
        assert results == list(range(1, 501))  # in order
        assert r.writes - writes_before == 1
        await r.close()

    run(main())


def test_error_reply_does_not_break_the_connection(redis_url: str) -> None:
    async def main() -> None:
        r = Redis(redis_url)
        await r.execute("SET", "t:str", "x")
        ok, bad, ok2 = await asyncio.gather(
            r.execute("GET", "t:str"),
            r.execute("HGET", "t:str", "f"),
            r.execute("GET", "t:str"),
            return_exceptions=True,
        )
        assert ok == b"x" and ok2 == b"x"
        assert isinstance(bad, RedisError) and str(bad).startswith("WRONGTYPE")
        await r.close()

    run(main())


def test_script_is_loaded_again_after_flush(redis_url: str) -> None:
    script = Script("return {KEYS[1], ARGV[1], redis.call('TIME')[1] ~= nil and 1 or 0}")

    async def main() -> None:
        r = Redis(redis_url)
        assert await r.run(script, ["t:k"], ["a"]) == [b"t:k", b"a", 1]
        await r.execute("SCRIPT", "FLUSH")
        assert await r.run(script, ["t:k"], ["b"]) == [b"t:k", b"b", 1]
        await r.close()

    run(main())


def test_unreachable_redis_fails_fast() -> None:
    async def main() -> None:
        with redis_server() as server:
            url = server.url
        r = Redis(url, timeout=Timeouts(backoff=5, backoff_cap=5))
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot connect"):
            await r.execute("PING")
        with pytest.raises(StoreUnavailable, match="reconnecting with backoff"):  # no second attempt yet
            await r.execute("PING")
        assert time.monotonic() - start < 0.5

    run(main())


def test_stalled_redis_times_out_and_recovers() -> None:
    async def main() -> None:
        with redis_server() as server:
            r = Redis(server.url, timeout=Timeouts(command=0.05, backoff=0.05, backoff_cap=0.1))
            assert await r.execute("PING") == b"PONG"
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                start = time.monotonic()
                results = await asyncio.gather(
                    *(r.execute("INCR", "t:stall") for _ in range(20)), return_exceptions=True
                )
                elapsed = time.monotonic() - start
                assert all(isinstance(e, StoreUnavailable) for e in results)
                assert elapsed < 0.2, elapsed  # bounded by the timeout, not by Redis
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            await asyncio.sleep(0.15)
            assert await r.execute("PING") == b"PONG"
            # nothing was retried: each timed-out INCR ran at most once
            assert int(await r.execute("GET", "t:stall") or 0) <= 20
            await r.close()

    run(main())


def test_recovers_after_redis_restart() -> None:
    async def main() -> None:
        with redis_server() as server:
            r = Redis(server.url, timeout=Timeouts(backoff=0.02, backoff_cap=0.05))
            assert await r.execute("SET", "t:x", 1) == b"OK"
            port = server.port
        with pytest.raises(StoreUnavailable):
            await r.execute("GET", "t:x")
        with redis_server(port):  # back on the same port: the same client reconnects by itself
            await asyncio.sleep(0.06)
            assert await r.execute("PING") == b"PONG"
        await r.close()

    run(main())


def test_cancelled_caller_does_not_shift_replies(redis_url: str) -> None:
    async def main() -> None:
        r = Redis(redis_url)
        await r.execute("SET", "t:a", "a")
        await r.execute("SET", "t:b", "b")
        first = asyncio.ensure_future(r.execute("GET", "t:a"))
        second = asyncio.ensure_future(r.execute("GET", "t:b"))
        await asyncio.sleep(0)
        first.cancel()
        assert await second == b"b"
        assert await r.execute("GET", "t:a") == b"a"
        await r.close()

    run(main())


def test_password_and_db_from_url(redis_url: str) -> None:
    async def main() -> None:
        r = Redis(redis_url.rsplit("/", 1)[0] + "/3")
        await r.execute("SET", "t:db3", "here")
        other = Redis(redis_url)
        assert await other.execute("GET", "t:db3") is None
        assert await r.execute("GET", "t:db3") == b"here"
        await r.close()
        await other.close()

    run(main())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "http://user:hunter2-secret@cache.internal:6380/0",
            "Redis URL 'http://user:***@cache.internal:6380/0': unknown scheme 'http'",
        ),
        (
            "redis://:hunter2-secret@cache.internal:63x9/0",
            "Redis URL 'redis://:***@cache.internal:63x9/0': port '63x9' is not a number",
        ),
        (
            "unix:///run/redis.sock?db=zero&password=hunter2-secret",
            "Redis URL 'unix:///run/redis.sock?db=zero&password=***': database 'zero' is not a number",
        ),
    ],
)
def test_a_rejected_url_never_echoes_its_password(url: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        Redis(url)
    assert str(raised.value).startswith(problem)
    assert "hunter2" not in str(raised.value)


def test_a_wrong_password_fails_clearly_without_echoing_it(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        with redis_server() as server:
            await Redis(server.url).execute("CONFIG", "SET", "requirepass", "right-password")
            r = Redis(f"redis://:hunter2-secret@127.0.0.1:{server.port}/0")
            with pytest.raises(StoreUnavailable) as raised:
                await r.execute("PING")
            assert "WRONGPASS" in str(raised.value) and "hunter2" not in str(raised.value)
            assert "hunter2" not in repr(r) and "hunter2" not in r.url
            await r.close()

    run(main())


def test_a_command_that_cannot_be_sent_fails_alone_and_leaves_the_connection_in_step(redis_url: str) -> None:
    """A lone surrogate cannot be encoded: that command is refused with a ValueError, and the next
    replies still reach their own callers (none is shifted onto the one before)."""

    async def main() -> list[object]:
        connection = Redis(redis_url)
        await connection.execute("SET", "step:a", "a")
        await connection.execute("SET", "step:b", "b")
        seen: list[object] = []
        with pytest.raises(ValueError, match="cannot send 'GET' to Redis"):
            await connection.execute("GET", "step:\udcff")
        seen += [await connection.execute("GET", "step:a"), await connection.execute("GET", "step:b")]
        results = await asyncio.gather(
            connection.execute("GET", "step:a"),
            connection.execute("GET", "step:\ud800"),
            connection.execute("GET", "step:b"),
            return_exceptions=True,
        )
        seen += [r if not isinstance(r, Exception) else type(r).__name__ for r in results]
        await connection.close()
        return seen

    assert asyncio.run(main()) == [b"a", b"b", b"a", "ValueError", b"b"]


def test_a_call_laid_out_once_is_the_command_hiredis_packs() -> None:
    script = Script("return 1")
    layout = EvalshaLayout(script, ["rl:{ws:1}:a", "rl:{ws:1}:b"], 2, 2, (30_000, 2, 1, 3_600_000_000, 100))
    packed = layout.pack("ik:{ws:1}:é".encode(), b"marker", bytes(range(16)), b"owner")
    command = ("EVALSHA", script.sha, 4, "rl:{ws:1}:a", "rl:{ws:1}:b", "ik:{ws:1}:é", "marker")
    assert packed == hiredis.pack_command((*command, bytes(range(16)), "owner", 30_000, 2, 1, 3_600_000_000, 100))

    nothing_fixed = EvalshaLayout(script, (), 1, 3, ())
    response = b"201\ncontent-type:application/json\n\n{}"
    assert nothing_fixed.pack(b"rec", b"owner", b"86400000", response) == hiredis.pack_command(
        ("EVALSHA", script.sha, 1, "rec", "owner", 86_400_000, response)
    )

    # a percent sign in what is fixed or in what a request brings is sent as it is (the layout is a bytes format)
    percent = EvalshaLayout(script, ["rl:{ws:50%d%%}:a"], 1, 1, ["%s"])
    assert percent.pack(b"ik:{ws:50%d%%}:k", b"%s%d") == hiredis.pack_command(
        ("EVALSHA", script.sha, 2, "rl:{ws:50%d%%}:a", "ik:{ws:50%d%%}:k", "%s%d", "%s")
    )


def test_replies_become_whole_results() -> None:
    # (built through `tuple.__new__`, which checks neither the number of fields nor their order)
    counted = backend_module._counted([1_700_000_000_000_000, 1, 2, 7, 9])
    assert counted == Counted(1_700_000_000_000_000, True, [7, 9], 2) and counted.shadowed == 2
    assert repr(counted) == "Counted(now_us=1700000000000000, admitted=True, values=[7, 9], shadowed=2)"

    completed = backend_module._claim("remedy", [b"completed", b"fp", b"201\n\n{}"])
    assert completed == Claim(ClaimState.COMPLETED, b"fp", b"201\n\n{}") and completed.response == b"201\n\n{}"
    running = backend_module._claim("remedy", [b"in_progress", b"fp"])
    assert repr(running) == "Claim(state=<ClaimState.IN_PROGRESS: 'in_progress'>, fingerprint=b'fp', response=b'')"


def test_an_idempotency_records_name_is_base64url_of_its_keys_digest() -> None:
    # the names of records stored before must not change: every character base64url can write appears
    names = [backend_module._record_name("ek", "ws:{a%}", f"key-{n}") for n in range(2_000)]
    for n, name in enumerate(names):
        digest = hashlib.blake2b(f"key-{n}".encode(), digest_size=16).digest()
        assert name == "ek:ik:{ws:%7Ba%25%7D}:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert {"-", "_"} <= set("".join(name.rsplit(":", 1)[1] for name in names))


def test_a_packed_call_runs_and_falls_back_to_eval_after_noscript(redis_url: str) -> None:
    script = Script("return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}")
    layout = EvalshaLayout(script, ["t:first"], 1, 1, ["last"])

    async def main() -> None:
        r = Redis(redis_url)
        for own in (b"one", b"two"):  # the second after SCRIPT FLUSH: NOSCRIPT, then EVAL from the same arguments
            packed = layout.pack(b"t:" + own, own)
            keys, args = (*layout.keys, "t:" + own.decode()), (own, *layout.args)
            assert await r.run(script, keys, args, packed=packed) == [b"t:first", b"t:" + own, own, b"last"]
            await r.execute("SCRIPT", "FLUSH")
        await r.close()

    run(main())


def test_a_prepared_call_is_sent_as_often_as_asked_and_after_noscript_too(redis_url: str) -> None:
    script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    prepared = Prepared(script, ["t:prepared"], [2], None)

    async def main() -> None:
        r = Redis(redis_url)
        await r.execute("DEL", "t:prepared")
        assert await asyncio.gather(*(r.run_prepared(prepared) for _ in range(3))) == [2, 4, 6]
        await r.execute("SCRIPT", "FLUSH")
        assert await r.run_prepared(prepared) == 8
        await r.close()

    run(main())


def test_the_store_keeps_a_bounded_number_of_packed_counts(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module, "COUNTS_KEPT", 3)

    async def main() -> None:
        store = RedisBackend(redis_url, prefix="t-kept")
        await store.initialize()
        firsts = [await store.count(GCRA, f"ws:{n}", ("b",), (3_600_000_000, 10), 1) for n in range(5)]
        assert [counted.admitted for counted in firsts] == [True] * 5
        assert [key[1] for key in store._counts] == ["ws:2", "ws:3", "ws:4"]  # the oldest went first

        again = await store.count(GCRA, "ws:0", ("b",), (3_600_000_000, 10), 1)  # packed anew: the same bucket
        assert again.admitted and again.values[0] > firsts[0].values[0]
        assert [key[1] for key in store._counts] == ["ws:3", "ws:4", "ws:0"]
        await store.close()

    run(main())
