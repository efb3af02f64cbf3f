"""docs/guides/redis.md: every URL of its table parses to what the page says, its commands run against a
real redis-server and print what the page shows, and its app starts, or refuses to, as written."""

import asyncio
import dataclasses
import gc
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

import errorkit
from errorkit import ConfigurationError, RedisBackend, Timeouts, issue_api_key
from errorkit._stores.redis.connection import Redis as RedisClient
from errorkit._stores.redis.urls import parse_url
from tests.docs.support import (
    DOCS_SRC,
    assert_response,
    commands,
    fence_starting,
    fences,
    load,
    page,
    run,
    section,
)
from tests.support.servers import free_port, redis_process, redis_server, uvicorn

PAGE = "guides/redis.md"
SHOWN = "redis://127.0.0.1:6379/0"  # the URL the page's outputs name


def shown(start: str) -> str:
    """The one `text` block of the page that starts with `start`."""
    return fence_starting(PAGE, "text", start)


# -- URLs ---------------------------------------------------------------------------------------

#: Each URL of the page's table -> (topology, addresses, username, password, db, TLS options, service, sentinel password)
EXPECTED = {
    "redis://127.0.0.1:6379/0": ("single", [("127.0.0.1", 6379)], None, None, 0, None, None, None),
    "redis://:s3cret@10.0.0.5:6379/0": ("single", [("10.0.0.5", 6379)], None, "s3cret", 0, None, None, None),
    "redis://app:s3cret@10.0.0.5:6379/2": ("single", [("10.0.0.5", 6379)], "app", "s3cret", 2, None, None, None),
    "rediss://10.0.0.5:6380/0?ssl_ca_certs=/etc/redis/ca.pem": (
        "single", [("10.0.0.5", 6380)], None, None, 0, ("/etc/redis/ca.pem", None, None, "required", True), None, None,
    ),
    "rediss://10.0.0.5:6380/0?ssl_ca_certs=/etc/redis/ca.pem&ssl_certfile=/etc/redis/client.crt&ssl_keyfile=/etc/redis/client.key": (
        "single", [("10.0.0.5", 6380)], None, None, 0,
        ("/etc/redis/ca.pem", "/etc/redis/client.crt", "/etc/redis/client.key", "required", True), None, None,
    ),
    "rediss://10.0.0.5:6380/0?ssl_cert_reqs=required&ssl_check_hostname=false": (
        "single", [("10.0.0.5", 6380)], None, None, 0, (None, None, None, "required", False), None, None,
    ),
    "unix:///run/redis/redis.sock?db=0&password=s3cret": ("single", [], None, "s3cret", 0, None, None, None),
    "redis+sentinel://s3cret@10.0.0.1:26379,10.0.0.2:26379/mymaster/0": (
        "sentinel", [("10.0.0.1", 26379), ("10.0.0.2", 26379)], None, "s3cret", 0, None, "mymaster", None,
    ),
    "redis+sentinel://10.0.0.1:26379/mymaster?sentinel_password=t0p": (
        "sentinel", [("10.0.0.1", 26379)], None, None, 0, None, "mymaster", "t0p",
    ),
    "rediss+sentinel://10.0.0.1:26379/mymaster?ssl_ca_certs=/etc/redis/ca.pem": (
        "sentinel", [("10.0.0.1", 26379)], None, None, 0, ("/etc/redis/ca.pem", None, None, "required", True), "mymaster", None,
    ),
    "redis+cluster://10.0.0.1:7000,10.0.0.2:7000": (
        "cluster", [("10.0.0.1", 7000), ("10.0.0.2", 7000)], None, None, 0, None, None, None,
    ),
    "rediss+cluster://app:s3cret@10.0.0.1:7000": (
        "cluster", [("10.0.0.1", 7000)], "app", "s3cret", 0, (None, None, None, "required", True), None, None,
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def etc_redis(certificates: dict[str, Path]) -> Path:
    """The page's /etc/redis/: its ca.pem, client.crt and client.key, made for real in a folder of their own."""
    folder = certificates["ca_crt"].parent
    shutil.copy(certificates["ca_crt"], folder / "ca.pem")
    return folder


def test_every_url_of_the_table_parses_to_what_the_page_says(etc_redis: Path) -> None:
    urls = re.findall(r"^\| `([^`]+)` \|", section(PAGE, "## Redis URLs"), re.M)
    assert urls == list(EXPECTED)
    for url, (topology, addresses, username, password, db, tls, service, sentinel_password) in EXPECTED.items():
        parsed = parse_url(url.replace("/etc/redis/", f"{etc_redis}/"))
        files = None
        if parsed.tls is not None:
            files = tuple(
                None if f is None else f.replace(f"{etc_redis}/", "/etc/redis/")
                for f in (parsed.tls.ca_certs, parsed.tls.certfile, parsed.tls.keyfile)
            )
            files = (*files, parsed.tls.cert_reqs, parsed.tls.check_hostname)
        assert (
            parsed.topology,
            list(parsed.addresses),
            parsed.username,
            parsed.password,
            parsed.db,
            files,
            parsed.service_name,
            parsed.sentinel_password,
        ) == (topology, addresses, username, password, db, tls, service, sentinel_password), url
        RedisBackend(url.replace("/etc/redis/", f"{etc_redis}/"))  # (a store is built from it, connecting lazily)
    assert parse_url("unix:///run/redis/redis.sock?db=0&password=s3cret").unix_path == "/run/redis/redis.sock"


def test_what_the_page_says_is_refused_is() -> None:
    with pytest.raises(ValueError, match=r"unknown option 'timeout'"):
        RedisBackend("redis://10.0.0.5:6379/0?timeout=5")
    with pytest.raises(ValueError, match=r"unknown option 'ssl_ca_certs'"):
        RedisBackend("redis://10.0.0.5:6379/0?ssl_ca_certs=/etc/redis/ca.pem")
    with pytest.raises(ValueError, match=r"a username needs a password"):
        RedisBackend("redis://app@10.0.0.5:6379/0")
    with pytest.raises(ValueError, match=r"Redis Cluster has only database 0"):
        RedisBackend("redis+cluster://10.0.0.1:7000/1")
    with pytest.raises(ValueError, match=r"cannot load the TLS files") as raised:
        RedisBackend("rediss://:hunter2@10.0.0.5:6380/0?ssl_ca_certs=/nonexistent/ca.pem")
    assert "hunter2" not in str(raised.value) and "***" in str(raised.value)
    with pytest.raises(ValueError, match=r"write '/', '\?', '#' in a password as %2F, %3F, %23") as raised:
        RedisBackend("redis://:hun/ter2@10.0.0.5:6379/0")
    assert "ter2" not in str(raised.value)
    assert parse_url("redis://:hun%2Fter2@10.0.0.5:6379/0").password == "hun/ter2"


def test_a_mistyped_scheme_is_the_error_the_page_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redsi://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError) as raised:
        errorkit.backend_from_env()
    assert isinstance(raised.value, ValueError)
    assert shown("ConfigurationError:") == f"ConfigurationError: {raised.value}\n"


def test_backend_from_env_picks_the_store_the_table_says(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://10.0.0.5:6379/0")
    assert isinstance(errorkit.backend_from_env(), RedisBackend)
    monkeypatch.setenv("CACHE_URL", "memory://")
    with caplog.at_level("WARNING", logger="errorkit.store"):
        assert isinstance(errorkit.backend_from_env("CACHE_URL"), errorkit.MemoryBackend)
        assert caplog.records == []  # chosen: nothing is logged
        monkeypatch.delenv("REDIS_URL")
        assert isinstance(errorkit.backend_from_env(), errorkit.MemoryBackend)
    (record,) = caplog.records
    assert record.levelname == "WARNING" and record.name == "errorkit.store"
    assert record.getMessage().startswith("REDIS_URL is not set: errorkit keeps rate limits, idempotency records")


# -- the store's options --------------------------------------------------------------------------


def test_the_store_options_snippet_sets_the_deadline_and_the_prefix(redis_url: str) -> None:
    store = load("redis/backend.py")["store"]
    assert isinstance(store, RedisBackend)
    assert (store.redis.url, store.timeouts.command, store.prefix) == (SHOWN, 0.1, "billing")
    assert (store.timeouts.connect, store.timeouts.dead_after, store.timeouts.backoff, store.timeouts.backoff_cap) == (
        0.5,
        1.0,
        0.05,
        2.0,
    )

    async def keys_written() -> list[bytes]:
        real = RedisBackend(redis_url, timeout=0.1, prefix="billing")
        token = await issue_api_key(real, workspace_id="ws_prefix")
        raw = RedisClient(redis_url)
        found = await raw.execute("KEYS", "billing:*")
        await raw.close()
        await real.close()
        assert token.startswith("ek_")
        return sorted(found)

    assert asyncio.run(keys_written())[0].startswith(b"billing:apikey:{")

    patient = load("redis/backend.py")["patient"]
    assert patient.timeouts == Timeouts(command=0.2, connect=2.0, dead_after=3.0, backoff=0.1, backoff_cap=5.0)
    assert patient.prefix == "billing"


def test_the_timeouts_table_is_the_class() -> None:
    rows = re.findall(r"^\| `(\w+)` \| `([0-9.]+)` \| .+ \|$", section(PAGE, "## The store's options"), re.M)
    timeouts = dict(rows[rows.index(("command", "0.05")) :])
    assert timeouts == {f.name: repr(f.default) for f in dataclasses.fields(Timeouts)}
    assert RedisBackend(timeout=0.2).timeouts == Timeouts(command=0.2)  # a number: the command deadline alone
    with pytest.raises(TypeError, match="errorkit does not run on redis-py"):
        RedisBackend(connection=object())  # type: ignore[arg-type]


# -- the Redis it needs, and the store command ------------------------------------------------------


def test_the_redis_server_command_persists_and_never_evicts(tmp_path: Path) -> None:
    (command,) = commands("redis/redis_server.sh")
    assert command == "redis-server --appendonly yes --maxmemory-policy noeviction"
    port = free_port()
    args = [*command.split()[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", ""]
    with redis_process(args, port, tmp_path):
        url = f"redis://127.0.0.1:{port}/0"

        async def config() -> list[bytes]:
            raw = RedisClient(url)
            reply = [
                *(await raw.execute("CONFIG", "GET", "appendonly")),
                *(await raw.execute("CONFIG", "GET", "maxmemory-policy")),
            ]
            await raw.close()
            return reply

        assert asyncio.run(config()) == [b"appendonly", b"yes", b"maxmemory-policy", b"noeviction"]
        done = run(f"errorkit store init --url {url}", {"REDIS_URL": None})
        assert done.status == 0 and "maxmemory-policy" not in done.err

    with redis_server() as redis:  # an evicting Redis: the warning the page shows
        subprocess.run(
            ["redis-cli", "-p", str(redis.port), "CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
            check=True,
            capture_output=True,
        )
        done = run(f"errorkit store init --url {redis.url}", {"REDIS_URL": None})
        assert done.status == 0
        warning = shown(f"{SHOWN} (prefix 'errorkit') runs with").replace(SHOWN, redis.url)
        assert done.err.splitlines()[-1] + "\n" == warning


def test_store_init_and_check_print_what_the_page_shows() -> None:
    lines = commands("redis/store.sh")
    assert lines == [f"export REDIS_URL={SHOWN}", "errorkit store init", "errorkit store check"]
    expected = fences(PAGE, "text")[0].replace(SHOWN, "{url}")
    with redis_server() as redis:
        env = {"REDIS_URL": redis.url}
        before = run("errorkit store check", env)
        init, check = run(lines[1], env), run(lines[2], env)
        again = run(lines[1], env)
        assert (init.status, check.status) == (0, 0)
        assert init.out + check.out == expected.format(url=redis.url)
        assert again.out == f"{redis.url} (prefix 'errorkit') was initialized already: no dataset marker written\n"
        assert (before.status, before.out) == (1, "")
        assert before.err == shown("errorkit store check:").replace(SHOWN, redis.url)

        flushed = subprocess.run(["redis-cli", "-p", str(redis.port), "FLUSHALL"], capture_output=True, text=True)
        assert flushed.stdout == "OK\n"
        assert run("errorkit store check", env).status == 1

    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    assert run("errorkit store init", {"REDIS_URL": unreachable}).status == 3
    assert run("errorkit store check", {"REDIS_URL": None}).status == 2  # no URL at all
    assert run("errorkit store check --url redsi://x", {"REDIS_URL": None}).status == 2
    memory = run("errorkit store init", {"REDIS_URL": "memory://"})
    assert (memory.status, memory.out) == (
        0,
        "memory:// is each process's own memory: nothing to init from here\n",
    )


# -- the app, its start-up check, a Redis that lost its data ---------------------------------------


def test_the_app_refuses_to_start_without_a_reachable_marked_redis() -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    for condition, first in (("unreachable", "ERROR:    StoreUnavailable"), ("not marked", "ERROR:    StoreDataLost")):
        serve = f"uvicorn app:app --app-dir {DOCS_SRC / 'redis'} --port {free_port()}"
        if condition == "unreachable":
            process = run(serve, {"REDIS_URL": url})
            expected = shown(first).replace(SHOWN, url)
        else:
            with redis_server() as redis:
                process = run(serve, {"REDIS_URL": redis.url})
            expected = shown(first).replace(SHOWN, redis.url)
        log = process.out + process.err
        assert process.status == 3, log
        assert [line for line in log.splitlines() if line.startswith("ERROR:")] == expected.splitlines()


def test_a_marked_redis_serves_and_a_flushed_one_answers_503() -> None:
    with redis_server() as redis:
        issued = [run("errorkit keys issue --workspace ws_1", {"REDIS_URL": redis.url}) for _ in range(2)]
        assert [ran.status for ran in issued] == [0, 0]
        used, unused = (ran.out.strip() for ran in issued)
        with uvicorn("app:app", env={"REDIS_URL": redis.url}, options=["--app-dir", str(DOCS_SRC / "redis")]) as server:
            assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}  # public: no key
            assert httpx.post(f"{server.url}/orders", headers={"X-API-Key": used}).status_code == 201
            subprocess.run(["redis-cli", "-p", str(redis.port), "FLUSHALL"], check=True, capture_output=True)
            answer = httpx.post(f"{server.url}/orders", headers={"X-API-Key": unused, "X-Request-ID": "req-1"})
            verified = httpx.post(f"{server.url}/orders", headers={"X-API-Key": used})
            log = server.output(wait_for="authentication: store")

    (block,) = fences(PAGE, "http")
    assert_response(block, answer)
    assert verified.status_code == 201  # auth fails open: a key this process verified in the last 60 s still passes
    line = shown("authentication: store").replace(SHOWN, redis.url)
    assert line in log


def test_freezing_the_collector_at_the_end_of_start_up() -> None:
    module = load("redis/gc_freeze.py")
    gc.unfreeze()
    try:
        with TestClient(module["app"]):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert '--8<-- "redis/gc_freeze.py"' in page(PAGE) and '--8<-- "redis/app.py"' in page(PAGE)


def test_the_command_line_takes_the_apps_prefix() -> None:
    with redis_server() as redis:
        env = {"REDIS_URL": redis.url}
        issued = run("errorkit keys issue --workspace ws_1 --prefix billing", env)
        checked = run("errorkit store check --prefix billing", env)
        elsewhere = run("errorkit store check", env)  # the default prefix: errorkit's keys are not there
        found = subprocess.run(
            ["redis-cli", "-p", str(redis.port), "KEYS", "*"], check=True, capture_output=True, text=True
        ).stdout.split()
    assert (issued.status, checked.status, elsewhere.status) == (0, 0, 1)
    lasting = {
        "billing:apikey:{" + re.findall(r"issued (ek_\w+)", issued.err)[0] + "}",
        "billing:workspace-keys:{ws_1}",
        "billing:dataset",
    }
    # Each check writes `<prefix>:check`, gone after a second: on a loaded machine the first may be
    # gone by the time KEYS runs, so those two may or may not be there, and nothing else may be.
    assert lasting <= set(found) <= lasting | {"billing:check", "errorkit:check"}
    assert len(found) == len(set(found))
