"""Request ids: honoured when sane, generated otherwise, on every response and error body."""

import os
import re

import pytest
from starlette.testclient import TestClient

from errorkit import ErrorKit
from errorkit._common.request_id import new_request_id
from errorkit._common.unique import unique_token
from tests.apps.routes import build_app

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


@pytest.fixture
def client(framework: str) -> TestClient:
    return TestClient(build_app(framework, ErrorKit()), raise_server_exceptions=False)


@pytest.mark.parametrize("given", ["abc-123", "x" * 128, "!~", "0f8fad5b-d9cb-469f-a165-70867728950e"])
def test_sane_incoming_id_is_returned(client: TestClient, given: str) -> None:
    r = client.get("/no-such-route", headers={"X-Request-ID": given})
    assert r.headers["x-request-id"] == given
    assert r.json()["request_id"] == given


@pytest.mark.parametrize("given", ["", "x" * 129, "has space", "tab\there", "ünïcode", "new\nline"])
def test_unsafe_incoming_id_is_replaced(client: TestClient, given: str) -> None:
    r = client.get("/no-such-route", headers={"X-Request-ID": given.encode("utf-8")})  # type: ignore[dict-item]
    assert HEX32.fullmatch(r.headers["x-request-id"])
    assert r.json()["request_id"] == r.headers["x-request-id"]


def test_generated_when_absent_and_unique(client: TestClient) -> None:
    ids = {client.get("/ok").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5 and all(HEX32.fullmatch(i) for i in ids)


def test_one_header_only(client: TestClient) -> None:
    r = client.get("/boom", headers={"X-Request-ID": "one"})
    assert r.headers.get_list("x-request-id") == ["one"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="this platform has no fork()")
def test_ids_and_tokens_differ_in_a_forked_worker() -> None:
    """A server that imports the app and then forks its workers gets other sequences in each."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: its next id and token, to the parent; it exits whatever happens
        try:
            os.write(write, f"{new_request_id()} {unique_token()}".encode())
        finally:
            os._exit(0)

    os.close(write)  # (the child's copy closes when it exits: the read below ends then)
    try:
        child_id, child_token = os.read(read, 100).decode().split()
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    assert status == 0

    parent_id, parent_token = new_request_id(), unique_token()
    assert HEX32.fullmatch(child_id) and HEX16.fullmatch(child_token)
    assert child_id[:16] != parent_id[:16]  # another prefix, not just the next number
    assert child_token[:8] != parent_token[:8]


def test_tokens_are_unique_and_tell_nothing_of_the_request_ids() -> None:
    tokens = [unique_token() for _ in range(100_000)]
    assert len(set(tokens)) == 100_000
    assert all(HEX16.fullmatch(t) for t in tokens[:1000])

    request_id = new_request_id()  # what a client sees: neither the tokens' prefix nor their counter
    token = unique_token()
    assert token[:8] not in request_id
    assert token[8:] != f"{int(request_id[16:], 16) + 1 & 0xFFFF_FFFF:08x}"
