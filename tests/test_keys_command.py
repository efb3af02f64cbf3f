"""`errorkit keys`: the command line against a real redis-server, and a key it issues on a running example."""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from errorkit import APIKeyRecord, MemoryBackend, RedisBackend, issue_api_key, register_api_key, revoke_api_key
from tests.support.servers import redis_server, uvicorn

ROOT = Path(__file__).parent.parent


def errorkit(*args: str, url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    if url is not None:
        env["REDIS_URL"] = url
    return subprocess.run([sys.executable, "-m", "errorkit", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)  # fmt: skip


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as redis:
        yield redis.url


async def on_redis(url: str, step: Callable[[RedisBackend], Awaitable[Any]]) -> Any:
    """Run one step against the Redis at `url` through errorkit's own store (the command's prefix)."""
    backend = RedisBackend(url, timeout=5.0)
    try:
        return await step(backend)
    finally:
        await backend.close()


def eventually(check: object, request: object, within: float = 2.0) -> httpx.Response:
    """The request's response once `check(response)` holds (a key change reaches the server's cache)."""
    deadline = time.monotonic() + within
    while True:
        response = request()  # type: ignore[operator]
        if check(response) or time.monotonic() > deadline:  # type: ignore[operator]
            return response  # type: ignore[no-any-return]
        time.sleep(0.02)


def test_a_key_issued_on_the_command_line_works_on_a_running_example_until_revoked(redis_url: str) -> None:
    issued = errorkit("keys", "issue", "--workspace", "ws_cli", "--scope", "campaigns:write", "--scope",
                      "campaigns:read", "--plan", "Growth", "--token-prefix", "ont_", url=redis_url)  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert issued.stdout == token + "\n" and token.startswith("ont_")  # the token alone on stdout
    key_id = token.split(".", 1)[0]
    assert f"issued {key_id} for workspace ws_cli: the token above is shown only now" in issued.stderr

    with (
        uvicorn("examples.detail_api:app", env={"REDIS_URL": redis_url}) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": token}) as client,
    ):

        def create() -> httpx.Response:
            return client.post("/workspaces/ws_cli/campaigns", json={"name": "spring"})

        created = create()
        assert created.status_code == 201 and created.json()["name"] == "spring"

        disabled = errorkit("keys", "disable-workspace", "ws_cli", "--reason", "payment overdue", url=redis_url)
        assert (disabled.returncode, disabled.stderr.strip()) == (0, "disabled workspace ws_cli: 1 keys")
        refused = eventually(lambda r: r.status_code == 403, create)
        assert refused.json() == {"detail": "The workspace associated with the API key has been disabled.",
                                  "code": "workspace_disabled", "request_id": refused.headers["x-request-id"]}  # fmt: skip
        enabled = errorkit("keys", "disable-workspace", "ws_cli", "--enable", url=redis_url)
        assert (enabled.returncode, enabled.stderr.strip()) == (0, "enabled workspace ws_cli: 1 keys")
        assert eventually(lambda r: r.status_code == 201, create).status_code == 201

        revoked = errorkit("keys", "revoke", key_id, url=redis_url)
        assert (revoked.returncode, revoked.stderr.strip()) == (0, f"revoked {key_id}")
        gone = eventually(lambda r: r.status_code == 401, create)
        assert (gone.status_code, gone.json()["code"]) == (401, "invalid_api_key")

    listed = errorkit("keys", "list", "--workspace", "ws_cli", "--json", url=redis_url)
    assert listed.returncode == 0
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {"key_id": key_id, "workspace_id": "ws_cli", "project_id": None, "scopes": ["campaigns:read", "campaigns:write"],
         "plan": "Growth", "expires_at": None, "state": "revoked"}
    ]  # fmt: skip
    assert token.split(".", 1)[1] not in listed.stdout + listed.stderr  # the secret is never shown again


def test_list_shows_state_and_expiry_in_a_line_per_key(redis_url: str) -> None:
    first = errorkit("keys", "issue", "--workspace", "ws_list", "--expires", "2030-01-02T03:04:05",
                     "--project", "proj_a", url=redis_url).stdout.strip()  # fmt: skip
    second = "ek_lapsed.lapsed-secret-1"  # an expired key (issue refuses a past expiry; fixtures may register one)
    lapsed = datetime(2001, 1, 1, tzinfo=UTC)
    asyncio.run(on_redis(redis_url, lambda b: register_api_key(b, second, workspace_id="ws_list", scopes={"a:b"},
                                                              expires_at=lapsed)))  # fmt: skip
    listed = errorkit("keys", "list", "--workspace", "ws_list", url=redis_url)
    lines = {line.split("  ", 1)[0]: line for line in listed.stdout.splitlines()}
    assert lines == {
        first.split(".")[0]: f"{first.split('.')[0]}  active  scopes=-  project=proj_a  plan=-  "
                             "expires=2030-01-02T03:04:05+00:00",
        second.split(".")[0]: f"{second.split('.')[0]}  expired  scopes=a:b  project=-  plan=-  "
                              "expires=2001-01-01T00:00:00+00:00",
    }  # fmt: skip
    empty = errorkit("keys", "list", "--workspace", "ws_nobody", url=redis_url)
    assert (empty.returncode, empty.stdout, empty.stderr.strip().splitlines()[-1]) == (
        0, "", "no keys in workspace ws_nobody"
    )  # fmt: skip


def test_exit_codes_and_messages_scripts_can_use(redis_url: str) -> None:
    missing = errorkit("keys", "revoke", "ek_nothing", url=redis_url)
    assert (missing.returncode, missing.stderr.strip().splitlines()[-1]) == (1, "errorkit keys: no key 'ek_nothing'")

    no_redis = errorkit("keys", "list", "--workspace", "ws_1", url=None)
    assert no_redis.returncode == 2
    assert no_redis.stderr.splitlines()[-1] == "errorkit keys list: error: no Redis: pass --redis-url or set REDIS_URL"

    bad_url = errorkit("keys", "list", "--workspace", "ws_1", "--redis-url", "http://example.com", url=None)
    assert bad_url.returncode == 2 and "errorkit keys list: error:" in bad_url.stderr

    bad_expiry = errorkit("keys", "issue", "--workspace", "ws_1", "--expires", "tomorrow", url=redis_url)
    assert bad_expiry.returncode == 2 and bad_expiry.stderr.splitlines()[-1] == (
        "errorkit keys issue: error: argument --expires: 'tomorrow' is neither an ISO 8601 time nor a duration like 30d"
    )
    bad_prefix = errorkit("keys", "issue", "--workspace", "ws_1", "--token-prefix", "a.b", url=redis_url)
    assert bad_prefix.returncode == 2 and bad_prefix.stderr.startswith("errorkit keys: a token is")

    unreachable = errorkit("keys", "list", "--workspace", "ws_1", url="redis://:hunter2-secret@127.0.0.1:1/0")
    assert unreachable.returncode == 3 and unreachable.stdout == ""
    assert unreachable.stderr.splitlines()[-1].startswith(
        "errorkit keys: Redis did not answer: cannot connect to Redis at 127.0.0.1:1"
    )
    assert "hunter2" not in unreachable.stderr


def lines(done: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return done.returncode, done.stdout, done.stderr


def test_issue_refuses_in_one_line_what_a_key_cannot_carry(redis_url: str) -> None:
    printable = "errorkit keys: the {} contains a character that is not printable (a control character)\n"
    for args, message in [
        (["--workspace", ""], "errorkit keys: the workspace id is empty\n"),
        (["--workspace", "ws_1\nrevoked ek_admin"], printable.format("workspace id")),  # a forged second line
        (["--workspace", "\x1b]0;owned\x07"], printable.format("workspace id")),  # a terminal title
        (["--workspace", "w" * 100_000], "errorkit keys: the workspace id is 100000 characters long, more than 128\n"),
        (["--workspace", "ws 1"], "errorkit keys: the workspace id contains a space\n"),
        (["--workspace", "ws_bad", "--project", "p" * 129], "errorkit keys: the project id is 129 characters long, more than 128\n"),
        (["--workspace", "ws_bad", "--plan", "Growth\x1b[2J"], printable.format("plan")),
        (["--workspace", "ws_bad", "--plan", " Growth"], "errorkit keys: the plan starts or ends with a space\n"),
        (["--workspace", "ws_bad", "--scope", "a:b\nc"], printable.format("scope")),
        (["--workspace", "ws_bad", "--scope", ""], "errorkit keys: the scope is empty\n"),
        (["--workspace", "ws_bad", *[f"--scope=s:{i}" for i in range(101)]], "errorkit keys: a key carries at most 100 scopes, not 101\n"),
        (["--workspace", "ws_bad", "--expires", "2001-01-01T00:00:00+00:00"],
         "errorkit keys: the expiry 2001-01-01T00:00:00+00:00 has passed: a new key must expire in the future\n"),
        (["--workspace", "ws_bad", "--expires", "9999-12-31T23:59:59-01:00"],  # the year 10000 in UTC
         "errorkit keys: the expiry is not a time between the years 1 and 9999 in UTC\n"),
    ]:  # fmt: skip
        assert lines(errorkit("keys", "issue", *args, url=redis_url)) == (2, "", message), args[:2]

    nothing = errorkit("keys", "list", "--workspace", "ws_bad", url=redis_url)
    assert lines(nothing) == (0, "", "no keys in workspace ws_bad\n")  # nothing was stored


def test_every_verb_refuses_in_one_line_an_id_no_key_or_workspace_can_have(redis_url: str) -> None:
    printable = "errorkit keys: the workspace id contains a character that is not printable (a control character)\n"
    key_id = "errorkit keys: a key id is 1 to 128 printable ASCII characters without spaces or dots\n"
    for args, message in [
        (["list", "--workspace", ""], "errorkit keys: the workspace id is empty\n"),
        (["list", "--workspace", "ws\nforged"], printable),
        (["disable-workspace", ""], "errorkit keys: the workspace id is empty\n"),
        (["disable-workspace", "\x1b]0;owned\x07"], printable),
        (["disable-workspace", "w" * 100_000], "errorkit keys: the workspace id is 100000 characters long, more than 128\n"),
        (["disable-workspace", "ws_1", "--enable"], None),  # a valid one goes through (0 keys)
        (["revoke", ""], key_id),
        (["revoke", "ek_a\nrevoked ek_b"], key_id),
        (["revoke", "k" * 100_000], key_id),
        (["revoke", "ek_\udcff"], key_id),  # (bytes that are not UTF-8, as the shell may pass them)
    ]:  # fmt: skip
        done = lines(errorkit("keys", *args, url=redis_url))
        if message is None:
            assert done == (0, "", "enabled workspace ws_1: 0 keys\n")
        else:
            assert done == (2, "", message), args[:2]


def test_an_expiry_past_the_year_9999_is_a_usage_error_not_a_traceback(redis_url: str) -> None:
    for text in ("99999999999d", "9999999d"):
        done = errorkit("keys", "issue", "--workspace", "ws_far", "--expires", text, url=redis_url)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.splitlines()[-1] == (
            f"errorkit keys issue: error: argument --expires: '{text}' is too far in the future (past the year 9999)"
        )
        assert "Traceback" not in done.stderr

    fine = errorkit("keys", "issue", "--workspace", "ws_far", "--expires", "2000000d", url=redis_url)  # about 5476
    assert fine.returncode == 0, fine.stderr


def test_stored_values_are_printed_escaped_and_an_unreadable_record_is_listed_as_such(redis_url: str) -> None:
    """Records written before values were checked, or damaged: the listing shows every key, safely."""
    raw = APIKeyRecord(key_id="ek_raw", secret_hash="0" * 64, workspace_id="ws_old", project_id="p\nforged line",
                       scopes=frozenset({"a:b\x1b]0;owned\x07"}), plan="Gro\\wth")  # fmt: skip

    async def store(backend: RedisBackend) -> None:
        await backend.put_api_key(raw)
        await register_api_key(backend, "ek_late.late-secret-1", workspace_id="ws_old")
        await register_api_key(backend, "ek_mangled.mangled-secret-1", workspace_id="ws_old")
        # what `--expires 9999-12-31T23:59:59-01:00` stored before it was refused: the year 10000 in UTC
        await backend.redis.execute("HSET", "errorkit:apikey:{ek_late}", "expires_at", "253402304399.0")
        await backend.redis.execute("HSET", "errorkit:apikey:{ek_mangled}", "plan", b"\xff\xfe")

    asyncio.run(on_redis(redis_url, store))
    listed = errorkit("keys", "list", "--workspace", "ws_old", url=redis_url)
    assert lines(listed) == (0, (
        "ek_late  unreadable  problem=expires_at is not a time between the years 1 and 9999\n"
        "ek_mangled  unreadable  problem=a field is not UTF-8 text\n"
        "ek_raw  active  scopes=a:b\\x1b]0;owned\\x07  project=p\\nforged line  plan=Gro\\\\wth  expires=-\n"
    ), "")  # fmt: skip
    as_json = errorkit("keys", "list", "--workspace", "ws_old", "--json", url=redis_url)
    assert lines(as_json) == (0, (
        '{"key_id": "ek_late", "problem": "expires_at is not a time between the years 1 and 9999", '
        '"state": "unreadable", "workspace_id": "ws_old"}\n'
        '{"key_id": "ek_mangled", "problem": "a field is not UTF-8 text", "state": "unreadable", "workspace_id": null}\n'
        '{"expires_at": null, "key_id": "ek_raw", "plan": "Gro\\\\wth", "project_id": "p\\nforged line", '
        '"scopes": ["a:b\\u001b]0;owned\\u0007"], "state": "active", "workspace_id": "ws_old"}\n'
    ), "")  # fmt: skip

    empty = errorkit("keys", "list", "--workspace", "ws\x1b]0;owned\x07", url=redis_url)
    refused = "errorkit keys: the workspace id contains a character that is not printable (a control character)\n"
    assert lines(empty) == (2, "", refused)  # no workspace can have that id: refused, never echoed
    missing = errorkit("keys", "revoke", "ek_x\nrevoked ek_admin", url=redis_url)
    refused = "errorkit keys: a key id is 1 to 128 printable ASCII characters without spaces or dots\n"
    assert lines(missing) == (2, "", refused)  # no key can have that id: refused, never echoed
    reason = errorkit("keys", "disable-workspace", "ws_old", "--reason", "overdue\nforged", url=redis_url)
    assert lines(reason) == (2, "", "errorkit keys: the reason contains a character that is not printable "
                                    "(a control character)\n")  # fmt: skip

    with (
        uvicorn("examples.detail_api:app", env={"REDIS_URL": redis_url}) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        refused = [client.get("/workspaces/ws_old/campaigns/c_1", headers={"X-API-Key": "ek_late.late-secret-1"})
                   for _ in range(3)]  # fmt: skip
        assert [(r.status_code, r.json()["code"]) for r in refused] == [(401, "invalid_api_key")] * 3
        log = server.output(wait_for="cannot read")
    warning = (
        "API key ek_late has a stored record errorkit cannot read (expires_at is not a time between the years 1 "
        "and 9999): it is refused as invalid_api_key until the key is registered again"
    )
    assert log.count(warning) == 1 and "Traceback" not in log


def test_the_python_api_refuses_what_the_command_refuses() -> None:
    async def main() -> list[str]:
        store = MemoryBackend()
        refusals = []
        cases: list[dict[str, Any]] = [
            {"workspace_id": ""},
            {"workspace_id": "ws\n1"},
            {"workspace_id": "w" * 129},
            {"workspace_id": "ws_1", "scopes": {"a b"}},
            {"workspace_id": "ws_1", "project_id": "\x1b[2J"},
            {"workspace_id": "ws_1", "expires_at": datetime(2001, 1, 1, tzinfo=UTC)},
            {"workspace_id": "ws_1", "expires_at": datetime.fromisoformat("9999-12-31T23:59:59-01:00")},
            {"workspace_id": "ws_1", "key_scope": "ROOT"},
        ]
        for fields in cases:
            try:
                await issue_api_key(store, **fields)
            except ValueError as exc:
                refusals.append(str(exc))
        expired = await register_api_key(store, "ek_old.old-secret-1", workspace_id="ws_1",
                                         expires_at=datetime(2001, 1, 1, tzinfo=UTC))  # fmt: skip
        assert expired.expires_at == 978307200.0  # a fixture may register a key that has expired
        assert [r.key_id for r in await store.list_api_keys("ws_1")] == ["ek_old"]  # and nothing else was stored
        return refusals

    assert asyncio.run(main()) == [
        "the workspace id is empty",
        "the workspace id contains a character that is not printable (a control character)",
        "the workspace id is 129 characters long, more than 128",
        "the scope contains a space",
        "the project id contains a character that is not printable (a control character)",
        "the expiry 2001-01-01T00:00:00+00:00 has passed: a new key must expire in the future",
        "the expiry is not a time between the years 1 and 9999 in UTC",
        "key_scope is not PUBLIC, WORKSPACE or PROJECT",
    ]


def test_a_key_revoked_while_its_workspace_of_2000_keys_is_disabled_or_enabled_stays_revoked(redis_url: str) -> None:
    """`errorkit keys disable-workspace` (then `--enable`) on 2,000 keys, one key revoked in the middle of
    each run: both stay refused by every uvicorn worker, and the other keys follow the workspace."""
    tokens = {f"ek_many{i:04d}": f"ek_many{i:04d}.many-secret-{i:04d}" for i in range(2000)}

    async def register(backend: RedisBackend) -> list[str]:
        batch = list(tokens.items())
        for start in range(0, len(batch), 250):
            await asyncio.gather(*(register_api_key(backend, token, workspace_id="ws_many", scopes={"campaigns:write"})
                                   for _, token in batch[start : start + 250]))  # fmt: skip
        members = await backend.redis.execute("SMEMBERS", "errorkit:workspace-keys:{ws_many}")
        return [member.decode() for member in members]  # the order the command reads and changes them in

    order = asyncio.run(on_redis(redis_url, register))
    during_disable, during_enable, bystander = order[-1], order[-2], order[-3]  # changed last, just before

    def change_revoking_midway(enable: bool, revoked: str) -> subprocess.CompletedProcess[str]:
        """Run the command; once it has changed the workspace's first key, revoke one it has not reached."""
        env = {**os.environ, "REDIS_URL": redis_url}
        command = [sys.executable, "-m", "errorkit", "keys", "disable-workspace", "ws_many", *(["--enable"] * enable)]
        running = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        first = f"errorkit:apikey:{{{order[0]}}}"

        async def revoke(backend: RedisBackend) -> bool:
            while await backend.redis.execute("HGET", first, "workspace_disabled") != (b"0" if enable else b"1"):
                await asyncio.sleep(0.001)
            return await revoke_api_key(backend, revoked) and running.poll() is None  # still running

        assert asyncio.run(on_redis(redis_url, revoke)) is True
        stdout, stderr = running.communicate(timeout=60)
        return subprocess.CompletedProcess(command, running.returncode, stdout, stderr)

    env = {"REDIS_URL": redis_url, "EXAMPLE_RATE_LIMIT": "100000"}
    with (
        uvicorn("examples.detail_api:app", workers=2, env=env) as server,
        httpx.Client(base_url=server.url) as client,
    ):

        def create(key_id: str) -> Callable[[], httpx.Response]:
            headers = {"X-API-Key": tokens[key_id]}
            return lambda: client.post("/workspaces/ws_many/campaigns", json={"name": "n"}, headers=headers)

        def statuses(key_id: str) -> list[int]:
            return [create(key_id)().status_code for _ in range(8)]  # both workers, most likely

        assert [create(k)().status_code for k in (during_disable, during_enable, bystander)] == [201, 201, 201]

        disabled = change_revoking_midway(enable=False, revoked=during_disable)
        assert lines(disabled) == (0, "", "disabled workspace ws_many: 2000 keys\n")
        assert eventually(lambda r: r.status_code == 401, create(during_disable)).status_code == 401
        assert eventually(lambda r: r.status_code == 403, create(bystander)).json()["code"] == "workspace_disabled"

        enabled = change_revoking_midway(enable=True, revoked=during_enable)
        assert lines(enabled) == (0, "", "enabled workspace ws_many: 2000 keys\n")
        assert eventually(lambda r: r.status_code == 201, create(bystander)).status_code == 201
        assert eventually(lambda r: r.status_code == 401, create(during_enable)).status_code == 401
        assert statuses(during_disable) == [401] * 8  # revoked during the disable: still refused once enabled
        assert statuses(during_enable) == [401] * 8
        assert statuses(bystander) == [201] * 8

    listed = errorkit("keys", "list", "--workspace", "ws_many", "--json", url=redis_url)
    states = {key["key_id"]: key["state"] for key in map(json.loads, listed.stdout.splitlines())}
    assert (len(states), states[during_disable], states[during_enable], states[bystander]) == (
        2000, "revoked", "revoked", "active"
    )  # fmt: skip
    assert sorted(states.values()).count("revoked") == 2


def test_keys_need_a_shared_redis_and_a_url_errorkit_reads() -> None:
    def last_line(done: subprocess.CompletedProcess[str]) -> tuple[int, str]:
        return done.returncode, done.stderr.splitlines()[-1]

    assert last_line(errorkit("keys", "issue", "--workspace", "ws_1", url="memory://")) == (
        2,
        "errorkit keys issue: error: REDIS_URL=memory://: API keys from the command line need a shared Redis "
        "(redis://...)",
    )
    assert last_line(errorkit("keys", "list", "--workspace", "ws_1", url="redsi://:hunter2@h:6379/0")) == (
        2,
        "errorkit keys list: error: REDIS_URL='redsi://:***@h:6379/0': unknown scheme 'redsi': did you mean "
        "redis://? errorkit accepts memory://, redis://, rediss://, unix://, redis+sentinel://, "
        "rediss+sentinel://, redis+cluster://, rediss+cluster://",
    )


def test_prefix_names_the_apps_store_prefix_for_every_verb(redis_url: str) -> None:
    """`--prefix` is the app's `RedisBackend(prefix=...)`, as for `errorkit store`: a key issued under
    `billing` is the billing app's, and the default prefix never sees it."""
    issued = errorkit("keys", "issue", "--workspace", "ws_billing", "--prefix", "billing", url=redis_url)
    assert issued.returncode == 0, issued.stderr
    key_id = issued.stdout.strip().split(".")[0]

    async def found(prefix: str) -> list[str]:
        backend = RedisBackend(redis_url, timeout=5.0, prefix=prefix)
        try:
            return [record.key_id for record in await backend.list_api_keys("ws_billing")]
        finally:
            await backend.close()

    assert asyncio.run(found("billing")) == [key_id]
    assert asyncio.run(found("errorkit")) == []
    listed = errorkit("keys", "list", "--workspace", "ws_billing", "--prefix", "billing", url=redis_url)
    assert (listed.returncode, listed.stdout.split()[:1]) == (0, [key_id])
    assert errorkit("keys", "list", "--workspace", "ws_billing", url=redis_url).stdout == ""
