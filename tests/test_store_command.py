"""`errorkit store init|check`: the real command against real redis-server processes."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from errorkit import RedisBackend, StoreDataLost
from errorkit._stores.protocols import ClaimState
from errorkit._stores.redis.connection import Redis
from tests.support.servers import Redis as RedisServer
from tests.support.servers import free_port

ROOT = Path(__file__).parent.parent
ACCEPTED = (
    "errorkit accepts memory://, redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel://, "
    "redis+cluster://, rediss+cluster://"
)


def errorkit(*args: str, env_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    if env_url is not None:
        env["REDIS_URL"] = env_url
    return subprocess.run([sys.executable, "-m", "errorkit", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)  # fmt: skip


def outcome(done: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return done.returncode, done.stdout, done.stderr


def flush(url: str) -> None:
    async def main() -> None:
        redis = Redis(url)
        assert await redis.execute("FLUSHALL") == b"OK"
        await redis.close()

    asyncio.run(main())


def lost(url: str, command: str | None = None) -> str:
    """What `check` says of a Redis without the marker; `command`: the remedy (default: init with `url`)."""
    command = command or f"`errorkit store init --url {url}`"
    return (
        f"errorkit store check: the store {url} lacks errorkit's dataset marker (prefix 'errorkit'): it lost "
        f"errorkit's data (a restart without persistence, FLUSHALL, eviction) or was never initialized; run "
        f"{command} or `await store.initialize()` to adopt it as it is (requests repeated from before the "
        "loss then run again)\n"
    )


def test_init_marks_a_new_or_flushed_redis_and_check_says_so(redis: RedisServer) -> None:
    url = redis.url
    marked = f"marked {url} (prefix 'errorkit') as holding errorkit's data "
    assert outcome(errorkit("store", "check", "--url", url)) == (1, "", lost(url))
    assert outcome(errorkit("store", "init", "--url", url)) == (
        0,
        f"initialized {url} (prefix 'errorkit'): 1 dataset marker written\n",
        marked + "(1 dataset marker written)\n",  # (the store's own log line, as `errorkit keys issue` shows it)
    )
    assert outcome(errorkit("store", "init", env_url=url)) == (  # $REDIS_URL when there is no --url
        0,
        f"{url} (prefix 'errorkit') was initialized already: no dataset marker written\n",
        "",
    )
    reachable = f"{url} (prefix 'errorkit') is reachable and holds errorkit's dataset marker\n"
    assert outcome(errorkit("store", "check", env_url=url)) == (0, reachable, "")

    flush(url)
    assert outcome(errorkit("store", "check", "--url", url)) == (1, "", lost(url))
    assert (
        errorkit("store", "init", "--url", url).stdout
        == f"initialized {url} (prefix 'errorkit'): 1 dataset marker written\n"
    )
    assert outcome(errorkit("store", "check", "--url", url)) == (0, reachable, "")


def test_after_init_the_app_claims_again_and_a_prefix_is_its_own(redis: RedisServer) -> None:
    """What the 503s after a FLUSHALL were about: an idempotency claim finds the marker again."""
    flush(redis.url)

    async def claim(prefix: str) -> ClaimState:
        backend = RedisBackend(redis.url, prefix=prefix)
        try:
            return (await backend.claim("ws_1", "order-1", b"fp", "me", 30_000)).state
        finally:
            await backend.close()

    with pytest.raises(StoreDataLost):
        asyncio.run(claim("app"))
    done = errorkit("store", "init", "--url", redis.url, "--prefix", "app")
    assert (done.returncode, done.stdout) == (0, f"initialized {redis.url} (prefix 'app'): 1 dataset marker written\n")
    assert asyncio.run(claim("app")) is ClaimState.CLAIMED
    with pytest.raises(StoreDataLost):  # another prefix, another dataset
        asyncio.run(claim("errorkit"))


def test_a_password_is_never_printed(redis: RedisServer) -> None:
    async def protect() -> None:
        admin = Redis(redis.url)
        assert await admin.execute("CONFIG", "SET", "requirepass", "hunter2-secret") == b"OK"
        await admin.close()

    asyncio.run(protect())
    url, shown = f"redis://:hunter2-secret@127.0.0.1:{redis.port}/0", f"redis://:***@127.0.0.1:{redis.port}/0"
    checked = errorkit("store", "check", "--url", url)
    command = f"`errorkit store init --url '{shown}'` (with the password in place of ***)"
    assert outcome(checked) == (1, "", lost(shown, command))
    initialized = errorkit("store", "init", "--url", url)
    assert (initialized.returncode, initialized.stdout) == (
        0,
        f"initialized {shown} (prefix 'errorkit'): 1 dataset marker written\n",
    )
    wrong = errorkit("store", "check", "--url", f"redis://:not-hunter2@127.0.0.1:{redis.port}/0")
    refused = f"cannot reach the store {shown}: WRONGPASS invalid username-password pair or user is disabled.\n"
    assert outcome(wrong) == (1, "", f"errorkit store check: {refused}")
    for done in (checked, initialized, wrong):
        assert "hunter2" not in done.stdout + done.stderr


def test_an_unreachable_redis_is_one_line_and_its_own_status() -> None:
    port = free_port()
    url, shown = f"redis://:hunter2-secret@127.0.0.1:{port}/0", f"redis://:***@127.0.0.1:{port}/0"
    reason = f"cannot reach the store {shown}: Connection refused\n"
    assert outcome(errorkit("store", "check", "--url", url)) == (1, "", f"errorkit store check: {reason}")
    assert outcome(errorkit("store", "init", env_url=url)) == (3, "", f"errorkit store init: {reason}")


def test_bad_arguments_exit_2_with_one_line_and_no_traceback() -> None:
    no_store = errorkit("store", "init")
    assert no_store.returncode == 2
    assert no_store.stderr.splitlines()[-1] == "errorkit store init: error: no store: pass --url or set REDIS_URL"

    typo = errorkit("store", "check", "--url", "redsi://:hunter2-secret@127.0.0.1:6379/0")
    assert typo.returncode == 2 and "hunter2" not in typo.stderr and "Traceback" not in typo.stderr
    assert typo.stderr.splitlines()[-1] == (
        "errorkit store check: error: --url='redsi://:***@127.0.0.1:6379/0': unknown scheme 'redsi': "
        f"did you mean redis://? {ACCEPTED}"
    )
    from_env = errorkit("store", "init", env_url="localhost:6379")
    assert from_env.returncode == 2 and from_env.stderr.splitlines()[-1] == (
        f"errorkit store init: error: REDIS_URL='localhost:6379' is not a URL (no '://'): did you mean redis://? "
        f"{ACCEPTED}"
    )

    for verb in ("init", "check"):
        memory = errorkit("store", verb, env_url="memory://")
        assert outcome(memory) == (0, f"memory:// is each process's own memory: nothing to {verb} from here\n", "")


def test_a_server_that_is_not_redis_is_one_line_not_a_traceback() -> None:
    import socket
    import time

    port = free_port()
    http = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        done = errorkit("store", "check", "--url", f"redis://127.0.0.1:{port}/0")
    finally:
        http.terminate()
        http.wait(10)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"errorkit store check: cannot reach the store redis://127.0.0.1:{port}/0: the server does not speak "
        'Redis\'s protocol (Protocol error, got "<" as reply type byte)'
    ]
