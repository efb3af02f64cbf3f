"""Redis as production runs it, one server: URL forms, TLS, mutual TLS, unix sockets, ACL users,
a handshake over a slow link, stalls that cost only what they delay. Real redis-server processes."""

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from errorkit import RedisBackend, StoreUnavailable
from errorkit._stages.algorithms import ALGORITHMS
from errorkit._stores.protocols import ClaimState
from errorkit._stores.redis.connection import Redis, Timeouts
from errorkit._stores.redis.urls import parse_url
from tests.support.servers import BASE_ARGS, free_port, make_certificates, redis_process

GCRA = ALGORITHMS["gcra"]
HOUR_US = 3_600_000_000


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def certs() -> Iterator[dict[str, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        yield make_certificates(Path(tmp))


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


async def admitted(store: RedisBackend, total: int, limit: int, identity: str = "ws:1") -> int:
    """`total` concurrent decisions against `limit` per hour: how many were admitted."""
    results = await asyncio.gather(
        *(store.count(GCRA, identity, ["b"], (HOUR_US, limit), 1) for _ in range(total)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    return sum(1 for r in results if r.admitted)  # type: ignore[union-attr]


# -- URLs -------------------------------------------------------------------------------------


def test_every_url_form_parses() -> None:
    single = parse_url("redis://app:s3cret@cache.internal:6380/2")
    assert (single.topology, single.addresses, single.username, single.password, single.db) == (
        "single", (("cache.internal", 6380),), "app", "s3cret", 2,
    )  # fmt: skip
    assert single.text == "redis://app:***@cache.internal:6380/2"
    assert (parse_url("redis://:pw@h").password, parse_url("redis://h").addresses) == ("pw", (("h", 6379),))
    unix = parse_url("unix:///run/redis.sock?db=3&password=pw")
    assert (unix.unix_path, unix.db, unix.password, unix.addresses) == ("/run/redis.sock", 3, "pw", ())
    sentinel = parse_url("redis+sentinel://pw@s1:26379,s2:26380/mymaster/4?sentinel_password=sp")
    assert (sentinel.topology, sentinel.addresses, sentinel.service_name, sentinel.db, sentinel.password) == (
        "sentinel", (("s1", 26379), ("s2", 26380)), "mymaster", 4, "pw",
    )  # fmt: skip
    assert sentinel.sentinel_password == "sp" and sentinel.text.endswith("sentinel_password=***")
    cluster = parse_url("rediss+cluster://u:p@n1:7000,n2:7001,[::1]:7002?ssl_cert_reqs=none")
    assert cluster.addresses == (("n1", 7000), ("n2", 7001), ("::1", 7002))
    assert cluster.tls is not None and cluster.tls.cert_reqs == "none" and cluster.ssl_context is not None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h:6379", "unknown scheme 'http'"),
        ("redis://h:port/0", "port 'port' is not a number"),
        ("redis://h:6379/zero", "database 'zero' is not a number"),
        ("redis://h/0?ssl_ca_certs=/x", "unknown option 'ssl_ca_certs' (accepted here: none)"),
        ("rediss://h/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be required, optional or none, not 'maybe'"),
        ("rediss://h/0?ssl_check_hostname=yes", "ssl_check_hostname must be true or false, not 'yes'"),
        ("rediss://h/0?ssl_ca_certs=/nonexistent/ca.pem", "cannot load the TLS files"),
        ("rediss://h/0?timeout=5", "unknown option 'timeout'"),
        ("redis://user@h/0", "a username needs a password"),
        ("redis://a:1,b:2/0", "one server only"),
        ("redis+sentinel://s1:26379", "name the Sentinel service"),
        ("redis+cluster://n1:7000/1", "Redis Cluster has only database 0"),
        ("unix://host/redis.sock", "a unix socket URL is unix:///path/to/redis.sock"),
        ("redis://:hunter2@h:99999/0", "port 99999 is out of range"),
    ],
)
def test_a_bad_url_is_a_clear_value_error_at_construction(url: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        RedisBackend(url)
    assert problem in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_a_redis_py_client_is_refused_clearly() -> None:
    class StrictRedis:  # what a redis-py client looks like to errorkit: not its own connection
        pass

    with pytest.raises(TypeError, match=r"connection must be errorkit's own Redis client .* not .*StrictRedis"):
        RedisBackend(connection=StrictRedis())  # type: ignore[arg-type]


# -- TLS, unix sockets, ACL users ---------------------------------------------------------------


def tls_server(certs: dict[str, Path], workdir: Path, port: int, clients: str = "no") -> Any:
    return redis_process(
        [
            "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certs["server_crt"]),
            "--tls-key-file", str(certs["server_key"]), "--tls-ca-cert-file", str(certs["ca_crt"]),
            "--tls-auth-clients", clients, *BASE_ARGS,
        ],
        port,
        workdir,
    )  # fmt: skip


def test_tls(certs: dict[str, Path], workdir: Path) -> None:
    port = free_port()
    with tls_server(certs, workdir, port):
        store = RedisBackend(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs['ca_crt']}")
        assert run(admitted(store, 80, 50)) == 50
        # hostname checks are on by default; the certificate names 127.0.0.1 and localhost
        store = RedisBackend(f"rediss://localhost:{port}/0?ssl_ca_certs={certs['ca_crt']}")
        assert run(admitted(store, 5, 50, identity="ws:2")) == 5


def test_mutual_tls(certs: dict[str, Path], workdir: Path) -> None:
    port = free_port()
    with tls_server(certs, workdir, port, clients="yes"):
        base = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs['ca_crt']}"
        store = RedisBackend(f"{base}&ssl_certfile={certs['client_crt']}&ssl_keyfile={certs['client_key']}")
        assert run(admitted(store, 60, 50)) == 50
        without = RedisBackend(base)  # the server asks for a client certificate we do not have
        with pytest.raises(StoreUnavailable, match=r"cannot connect to Redis at 127\.0\.0\.1"):
            run(without.count(GCRA, "ws:1", ["b"], (HOUR_US, 50), 1))


def test_a_wrong_ca_fails_within_the_connect_timeout(certs: dict[str, Path], workdir: Path) -> None:
    port = free_port()
    with tls_server(certs, workdir, port):
        store = RedisBackend(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs['other-ca_crt']}")
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            run(store.count(GCRA, "ws:1", ["b"], (HOUR_US, 50), 1))
        assert time.monotonic() - start < Timeouts().connect + 0.3  # never hangs


def test_unix_socket_with_a_database(workdir: Path) -> None:
    socket_path = workdir / "redis.sock"
    with redis_process(
        ["--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700", *BASE_ARGS], 0, workdir
    ):
        deadline = time.monotonic() + 10
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        store = RedisBackend(f"unix://{socket_path}?db=2", prefix="sock")
        assert run(admitted(store, 60, 50)) == 50

        async def where() -> tuple[int, int]:
            in_db2 = len(await store.redis.execute("KEYS", "sock:*"))  # type: ignore[union-attr]
            db0 = Redis(f"unix://{socket_path}")
            in_db0 = len(await db0.execute("KEYS", "*"))
            await db0.close()
            return in_db2, in_db0

        assert run(where()) == (1, 0)


def acl_server(workdir: Path, port: int) -> Any:
    return redis_process(["--port", str(port), *BASE_ARGS], port, workdir)


def clients_connected(port: int) -> int:
    async def count() -> int:
        connection = Redis(f"redis://limiter:right-password@127.0.0.1:{port}/0")
        info = (await connection.execute("INFO", "clients")).decode()
        await connection.close()
        return int(info.split("connected_clients:")[1].split()[0]) - 1  # not this one

    return int(run(count()))


def test_an_acl_user_and_a_wrong_password(workdir: Path) -> None:
    port = free_port()
    with acl_server(workdir, port):
        setup = Redis(f"redis://127.0.0.1:{port}/0")
        run(setup.execute("ACL", "SETUSER", "limiter", "on", ">right-password", "~*", "&*", "+@all"))
        run(setup.execute("ACL", "SETUSER", "default", "off"))
        store = RedisBackend(f"redis://limiter:right-password@127.0.0.1:{port}/0")
        assert run(admitted(store, 60, 50)) == 50

        wrong = RedisBackend(
            f"redis://limiter:rotated-away@127.0.0.1:{port}/0", timeout=Timeouts(backoff=0.01, backoff_cap=0.02)
        )

        async def keep_trying() -> list[str]:
            problems = []
            for _ in range(40):  # reconnect attempts for about a second
                try:
                    await wrong.count(GCRA, "ws:1", ["b"], (HOUR_US, 50), 1)
                except StoreUnavailable as exc:
                    problems.append(str(exc))
                await asyncio.sleep(0.025)
            return problems

        before = clients_connected(port)
        problems = run(keep_trying())
        assert problems and all("WRONGPASS" in p or "backoff" in p for p in problems)
        assert not any("rotated-away" in p for p in problems)
        assert clients_connected(port) == before  # every failed handshake closed its socket


# -- the handshake, stalls ----------------------------------------------------------------------


class SlowLink:
    """A TCP proxy on loopback that delays every chunk by `delay` seconds each way."""

    def __init__(self, target: int, delay: float) -> None:
        self.target, self.delay = target, delay
        self.port = free_port()

    async def __aenter__(self) -> "SlowLink":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while chunk := await source.read(65536):
                await asyncio.sleep(self.delay)
                sink.write(chunk)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


def test_nothing_reaches_a_connection_before_its_handshake(workdir: Path) -> None:
    """`redis://:pw@host/3` through a 5 ms link: a burst at start-up runs in db 3, admits exactly the limit."""
    port = free_port()
    with redis_process(["--port", str(port), "--requirepass", "pw", *BASE_ARGS], port, workdir):

        async def main() -> tuple[int, int, int]:
            async with SlowLink(port, 0.005) as link:
                store = RedisBackend(f"redis://:pw@127.0.0.1:{link.port}/3", timeout=Timeouts(command=1.0, connect=2.0))
                count = await admitted(store, 200, 50)
                await store.close()
            check = Redis(f"redis://:pw@127.0.0.1:{port}/0")
            db0 = len(await check.execute("KEYS", "*"))
            await check.execute("SELECT", 3)
            db3 = len(await check.execute("KEYS", "*"))
            await check.close()
            return count, db0, db3

        assert run(main()) == (50, 0, 1)


def test_a_short_stall_costs_only_what_it_delays(workdir: Path) -> None:
    """Redis stopped for 150 ms: the commands waiting then fail; the very next ones are decided by
    Redis again, on the same connection."""
    port = free_port()
    with redis_process(["--port", str(port), *BASE_ARGS], port, workdir) as process:

        async def main() -> None:
            store = RedisBackend(f"redis://127.0.0.1:{port}/0")
            connection = store.redis
            assert isinstance(connection, Redis)
            assert await admitted(store, 5, 1000) == 5
            os.kill(process.pid, signal.SIGSTOP)
            try:
                stalled = await asyncio.gather(
                    *(store.count(GCRA, "ws:1", ["b"], (HOUR_US, 1000), 1) for _ in range(10)), return_exceptions=True
                )
                assert all(isinstance(r, StoreUnavailable) for r in stalled)
                await asyncio.sleep(0.1)
            finally:
                os.kill(process.pid, signal.SIGCONT)
            after = await store.count(GCRA, "ws:1", ["b"], (HOUR_US, 1000), 1)  # the very next command
            assert after.admitted
            assert connection.connections_opened == 1  # no new connection: the first one was kept
            await store.close()

        run(main())


def test_a_claim_whose_reply_came_late_is_released(workdir: Path) -> None:
    port = free_port()
    with redis_process(["--port", str(port), *BASE_ARGS], port, workdir) as process:

        async def main() -> ClaimState:
            store = RedisBackend(f"redis://127.0.0.1:{port}/0")
            await store.initialize()
            assert (await store.claim("t", "warm", b"fp", "o", 30_000)).state is ClaimState.CLAIMED
            os.kill(process.pid, signal.SIGSTOP)
            try:
                with pytest.raises(StoreUnavailable):
                    await store.claim("t", "late", b"fp", "gave-up", 30_000)
            finally:
                os.kill(process.pid, signal.SIGCONT)
            await asyncio.sleep(0.2)  # the late reply arrives: it claimed, so it is released
            state = (await store.claim("t", "late", b"fp", "retry", 30_000)).state
            await store.close()
            return state

        assert run(main()) is ClaimState.CLAIMED  # not stuck in progress for a 30 s lease
