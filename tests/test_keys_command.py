"""`errorkit keys`: the command line against a real redis-server, and a key it issues on a running example."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import redis_server, uvicorn

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
                      "campaigns:read", "--plan", "Growth", "--prefix", "ont_", url=redis_url)  # fmt: skip
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
    second = errorkit("keys", "issue", "--workspace", "ws_list", "--expires", "2001-01-01T00:00:00+00:00",
                      "--scope", "a:b", url=redis_url).stdout.strip()  # fmt: skip
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
    bad_prefix = errorkit("keys", "issue", "--workspace", "ws_1", "--prefix", "a.b", url=redis_url)
    assert bad_prefix.returncode == 2 and bad_prefix.stderr.startswith("errorkit keys: a token is")

    unreachable = errorkit("keys", "list", "--workspace", "ws_1", url="redis://:hunter2-secret@127.0.0.1:1/0")
    assert unreachable.returncode == 3 and unreachable.stdout == ""
    assert unreachable.stderr.splitlines()[-1].startswith(
        "errorkit keys: Redis did not answer: cannot connect to Redis at 127.0.0.1:1"
    )
    assert "hunter2" not in unreachable.stderr
