"""errorkit.testing: the pytest plugin (enabled on install, inert until used), its fixtures, the
synchronous helpers and `assert_error`, run by pytest itself (pytester) on small test files, in the
three formats, on memory and on a real Redis, with the failure output checked line by line."""

import asyncio
import importlib.metadata
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import errorkit.testing
import errorkit_pytest_plugin
from errorkit import APIKeyAuth, ErrorKit, MemoryBackend, Quotas, RateLimiter, RedisBackend, catalogs
from errorkit.testing import _delete_keys, assert_error, issue_key, register_key, reset, set_usage
from tests.support.servers import cluster_setup, redis_server

pytest_plugins = ["pytester"]

FORMATS = ["detail", "envelope", "problem"]

#: The app the inner test files test, in the format they name: a 410 with a detail, a retryable 502,
#: a quota on creations, a rate-limited route, and a route reading JSON.
APP = """
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from errorkit import APIKeyAuth, Backend, ErrorKit, Quotas, RateLimiter

kit = ErrorKit(format=FORMAT)
WidgetGone = kit.define("widget_gone", status=410, message="Widget {widget_id} is gone", details={"widget_id": str})
UpstreamDown = kit.define("upstream_down", status=502, message="The upstream is down", retryable=True, retry_after=7)


async def widget(request: Request) -> JSONResponse:
    raise WidgetGone(widget_id=request.path_params["widget_id"])


async def upstream(request: Request) -> JSONResponse:
    raise UpstreamDown()


async def created(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(await request.json())


def create_app(store: Backend) -> tuple[Starlette, Quotas]:
    app = Starlette(
        routes=[
            Route("/widgets/{widget_id}", widget),
            Route("/upstream", upstream, methods=["GET", "POST"]),
            Route("/agents", created, methods=["POST"]),
            Route("/limited", created),
            Route("/echo", echo, methods=["POST"]),
        ]
    )
    quotas = Quotas(store, limits={"agents": {"free": 2}}, creates={"POST /agents": "agents"})
    kit.install(
        app,
        auth=APIKeyAuth(store, public_paths=["/widgets/*", "/upstream", "/echo"]),
        rate_limit=RateLimiter(store, routes={"GET /limited": "2/minute"}, exempt=["/widgets/*", "/upstream", "/echo"]),
        quotas=quotas,
    )
    return app, quotas
"""


def app_file(format: str) -> str:
    return APP.replace("FORMAT", repr(format))


def shows_details(format: str) -> bool:
    return format != "detail"


def failures(output: str) -> list[str]:
    """The `E   ` lines pytest printed for a failed test: the assertion's message, line by line."""
    return [line[8:] for line in output.splitlines() if line.startswith("E       ")]


# -- the plugin ---------------------------------------------------------------------------------


def test_the_plugin_is_installed_under_pytest11() -> None:
    """A module outside the package, whose fixtures errorkit.testing documents (the same objects)."""
    found = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "errorkit"]
    assert [e.value for e in found] == ["errorkit_pytest_plugin"]
    plugin = found[0].load()
    assert plugin is errorkit_pytest_plugin
    for name in ("errorkit_memory_backend", "errorkit_redis_backend", "errorkit_redis_url", "REDIS_URL_VARIABLE"):
        assert getattr(errorkit.testing, name) is getattr(plugin, name)


def test_loading_the_plugin_imports_no_errorkit() -> None:
    """pytest imports the plugin at every start, in every project with errorkit installed: it costs ~1 ms,
    not errorkit's ~240 ms (FastAPI, pydantic, OpenTelemetry...)."""
    code = "import sys, errorkit_pytest_plugin; print(sorted(m for m in sys.modules if m.split('.')[0] == 'errorkit'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_plugin_is_inert_until_a_fixture_is_used(pytester: pytest.Pytester) -> None:
    """It hooks nothing but its command-line option, registers no marker and no autouse fixture."""
    hooks = sorted(name for name in vars(errorkit_pytest_plugin) if name.startswith("pytest_"))
    assert hooks == ["pytest_addoption"]
    assert not [name for name in vars(errorkit.testing) if name.startswith("pytest_")]
    with_it = pytester.runpytest("--markers").stdout.lines
    without = pytester.runpytest("--markers", "-p", "no:errorkit").stdout.lines
    assert with_it == without
    fixtures = "\n".join(pytester.runpytest("--fixtures").stdout.lines)
    assert "errorkit_memory_backend" in fixtures and "errorkit_redis_backend" in fixtures
    assert "--errorkit-redis-url=URL" in "\n".join(pytester.runpytest("--help").stdout.lines)


def test_the_fixtures_need_no_import(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        from errorkit import MemoryBackend

        def test_fresh(errorkit_memory_backend):
            assert isinstance(errorkit_memory_backend, MemoryBackend)
            errorkit_memory_backend.marked = True

        def test_fresh_again(errorkit_memory_backend):
            assert not hasattr(errorkit_memory_backend, "marked")
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


# -- assert_error in the three formats -------------------------------------------------------------

PASSING = """
import httpx
import pytest
from starlette.testclient import TestClient

from app import UpstreamDown, WidgetGone, create_app, kit
from errorkit import catalogs
from errorkit.testing import assert_error, issue_key, set_usage

SHOWS_DETAILS = FORMAT != "detail"


@pytest.fixture
def client(errorkit_memory_backend):
    app, quotas = create_app(errorkit_memory_backend)
    with TestClient(app) as client:
        client.quotas = quotas
        yield client


def test_a_documented_error(client):
    response = client.get("/widgets/w_1", headers={"X-Request-ID": "req-1"})
    error = assert_error(response, WidgetGone)
    assert (error.code, error.request_id) == ("widget_gone", "req-1")
    assert error.details == ({"widget_id": "w_1"} if SHOWS_DETAILS else {})
    assert_error(response, "widget_gone", registry=kit)
    assert_error(response, "widget_gone")  # no definition: code, details, request id
    if SHOWS_DETAILS:
        assert_error(response, WidgetGone, widget_id="w_1", registry=kit)
        assert_error(response, WidgetGone, widget_id="w_1", message="Widget w_1 is gone")


def test_a_retryable_server_error(client):
    assert_error(client.get("/upstream"), UpstreamDown, registry=kit)  # x-should-retry: true, Retry-After: 7
    posted = client.post("/upstream")  # not safe to repeat: x-should-retry: false
    assert posted.headers["x-should-retry"] == "false"
    assert_error(posted, UpstreamDown)
    assert_error(client.post("/upstream", headers={"Idempotency-Key": "k-1"}), UpstreamDown)


def test_quota_and_rate_limit(client, errorkit_memory_backend):
    key = issue_key(errorkit_memory_backend, workspace_id="ws_1", plan="free")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/agents", headers=headers).status_code == 201
    set_usage(client.quotas, "ws_1", "agents", 2)
    over = client.post("/agents", headers=headers)
    assert_error(over, "quota_exceeded", registry=kit)
    if SHOWS_DETAILS:
        assert_error(over, "quota_exceeded", registry=kit, usage=2, limit=2)
    statuses = [client.get("/limited", headers=headers).status_code for _ in range(2)]
    assert statuses == [201, 201]
    limited = client.get("/limited", headers=headers)
    error = assert_error(limited, "rate_limit_exceeded", registry=kit)
    assert error.retry_after == int(limited.headers["retry-after"])


def test_a_body_that_is_not_json(client):
    response = client.post("/echo", content=b"{oops", headers={"content-type": "application/json"})
    assert_error(response, "invalid_request_body" if FORMAT == "envelope" else "invalid_json", registry=kit)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_httpx_async_client_and_a_helper_inside_the_loop(anyio_backend, errorkit_memory_backend):
    app, _ = create_app(errorkit_memory_backend)
    key = issue_key(errorkit_memory_backend, workspace_id="ws_2", plan="free")  # in a running loop
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/agents", headers={"Authorization": f"Bearer {key}"})).status_code == 201
        assert_error(await client.get("/widgets/w_9"), WidgetGone, registry=kit)
        assert_error(await client.get("/limited"), "unauthorized", registry=kit)
"""


@pytest.mark.parametrize("format", FORMATS)
def test_assert_error_passes_on_the_error_it_names(pytester: pytest.Pytester, format: str) -> None:
    pytester.makepyfile(app=app_file(format), test_passing=PASSING.replace("FORMAT", repr(format)))
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=5)


FAILING = """
from starlette.testclient import TestClient

from app import UpstreamDown, WidgetGone, create_app, kit
from errorkit.testing import assert_error


def test_another_error(errorkit_memory_backend):
    app, _ = create_app(errorkit_memory_backend)
    response = TestClient(app).get("/widgets/w_1", headers={"X-Request-ID": "req-1"})
    assert_error(response, UpstreamDown, registry=kit)


def test_another_detail(errorkit_memory_backend):
    app, _ = create_app(errorkit_memory_backend)
    response = TestClient(app).get("/widgets/w_1", headers={"X-Request-ID": "req-2"})
    assert_error(response, WidgetGone, widget_id="w_2")
"""

BODIES = {
    "detail": ["{", '  "detail": "Widget w_1 is gone",', '  "code": "widget_gone",', '  "request_id": "REQ"', "}"],
    "envelope": [
        "{",
        '  "error": {',
        '    "code": "widget_gone",',
        '    "message": "Widget w_1 is gone",',
        '    "details": {',
        '      "widget_id": "w_1"',
        "    },",
        '    "request_id": "REQ"',
        "  }",
        "}",
    ],
    "problem": [
        "{",
        '  "type": "about:blank",',
        '  "title": "Gone",',
        '  "status": 410,',
        '  "detail": "Widget w_1 is gone",',
        '  "instance": "/widgets/w_1",',
        '  "code": "widget_gone",',
        '  "details": {',
        '    "widget_id": "w_1"',
        "  },",
        '  "request_id": "REQ"',
        "}",
    ],
}


@pytest.mark.parametrize("format", FORMATS)
def test_a_failure_lists_each_difference_then_the_response(pytester: pytest.Pytester, format: str) -> None:
    pytester.makepyfile(app=app_file(format), test_failing=FAILING)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(failed=2)
    media_type = "application/problem+json" if format == "problem" else "application/json"

    def response(request_id: str) -> list[str]:
        return [
            f"the response: 410, {format} format",
            "  x-should-retry: false",
            f"  content-type: {media_type}",
            f"  x-request-id: {request_id}",
            *(f"  {line}".replace("REQ", request_id) for line in BODIES[format]),
        ]

    detail = (
        '  details.widget_id: expected "w_2", got nothing (the detail format shows no details)'
        if format == "detail"
        else '  details.widget_id: expected "w_2", got "w_1"'
    )
    assert failures(result.stdout.str()) == [
        "AssertionError: the response is not the error upstream_down (502): 4 differences",
        "  status: expected 502, got 410",
        '  code: expected "upstream_down", got "widget_gone"',
        '  x-should-retry: expected "true", got "false"',
        '  retry-after: expected "7", got nothing',
        *response("req-1"),
        "AssertionError: the response is not the error widget_gone (410): 1 difference",
        detail,
        *response("req-2"),
    ]
    # pytest points at the test's own line, not into assert_error
    assert "errorkit/testing.py" not in result.stdout.str()
    assert result.stdout.str().count(">       assert_error(response,") == 2


def test_what_assert_error_checks_beyond_status_and_code() -> None:
    """Request id, content type, retry headers and the kit's format: each one a difference of its own."""
    kit = ErrorKit(format="envelope", doc_url="https://docs.example/errors/{code}")
    Busy = kit.define("busy", status=503, message="Busy", retry_after=3)

    async def busy(request: Request) -> JSONResponse:
        raise Busy()

    app = Starlette(routes=[Route("/busy", busy)])
    kit.install(app)
    real = TestClient(app).get("/busy", headers={"X-Request-ID": "req-b"})
    assert_error(real, Busy, registry=kit)
    assert real.json()["error"]["doc_url"] == "https://docs.example/errors/busy"

    def changed(headers: dict[str, str | None] | None = None, body: bytes | None = None) -> httpx.Response:
        kept = {k: v for k, v in real.headers.items() if k not in (headers or {})}
        added = {k: v for k, v in (headers or {}).items() if v is not None}
        return httpx.Response(503, headers={**kept, **added}, content=real.content if body is None else body)

    def differences(response: httpx.Response, **options: object) -> list[str]:
        with pytest.raises(AssertionError) as failed:
            assert_error(response, Busy, **options)  # type: ignore[arg-type]
        message = str(failed.value).splitlines()
        return [
            line.strip()
            for line in message[1 : message.index(next(m for m in message if m.startswith("the response:")))]
        ]

    assert differences(changed({"x-request-id": None})) == ["x-request-id: expected a request id, got none"]
    assert differences(changed({"x-request-id": "req-other"})) == [
        'request_id (the body\'s, as X-Request-ID): expected "req-other", got "req-b"'
    ]
    assert differences(changed({"content-type": "text/plain"})) == [
        'content-type: expected "application/json", got "text/plain"'
    ]
    assert_error(changed({"retry-after-ms": "2500"}), Busy)  # the exact wait: Retry-After is it rounded up
    assert differences(changed({"retry-after-ms": "1500"})) == [
        'retry-after-ms: expected 2001 to 3000 (Retry-After 3 s), got "1500"'
    ]
    assert differences(changed({"x-should-retry": "false"})) == ['x-should-retry: expected "true", got "false"']
    assert differences(real, retry_after=4) == ['retry-after: expected "4", got "3"']
    assert differences(changed({"retry-after": None, "retry-after-ms": None})) == [
        'retry-after: expected "3", got nothing'
    ]
    assert differences(real, message="Not busy") == ['message: expected "Not busy", got "Busy"']
    assert differences(changed(body=b"<html>oops</html>")) == [
        "body: expected an error body in the detail, envelope or problem format, got something else"
    ]
    problem = ErrorKit(format="problem")
    assert differences(real, registry=problem) == [
        "body: expected an error body in the kit's problem format, got something else"
    ]
    assert differences(real, registry=ErrorKit(format="envelope")) == [
        'doc_url: expected nothing, got "https://docs.example/errors/busy"'
    ]
    # an idempotent replay keeps the first body, request id included
    assert_error(changed({"x-request-id": "req-later", "idempotent-replayed": "true"}), Busy)


def test_assert_error_refuses_what_it_cannot_check() -> None:
    response = httpx.Response(
        404,
        json={"detail": "Not Found", "code": "not_found", "request_id": "r"},
        headers={"x-request-id": "r", "x-should-retry": "false"},
    )
    with pytest.raises(ValueError, match="defines no code 'teapot_empty'"):
        assert_error(response, "teapot_empty", registry=ErrorKit())
    with pytest.raises(TypeError, match="APIError is the base class"):
        assert_error(response, errorkit.APIError)
    with pytest.raises(TypeError, match="an error class or a code, not int"):
        assert_error(response, 404)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="status: expected an error status"):
        assert_error(httpx.Response(200, json={}, headers={"x-request-id": "r"}), "not_found")
    assert assert_error(response, "not_found", registry=ErrorKit()).code == "not_found"
    assert assert_error(response, catalogs.GENERIC["not_found"]).status == 404


def test_details_are_compared_as_json() -> None:
    kit = ErrorKit(format="problem")
    Expired = kit.define("key_expired", status=401, message="Expired", details={"at": datetime, "left": int})

    async def expired(request: Request) -> JSONResponse:
        raise Expired(at=datetime(2025, 1, 1, tzinfo=UTC), left=0)

    app = Starlette(routes=[Route("/", expired)])
    kit.install(app)
    response = TestClient(app).get("/")
    assert response.json()["details"] == {"at": "2025-01-01T00:00:00Z", "left": 0}
    assert_error(response, Expired, at=datetime(2025, 1, 1, tzinfo=UTC), left=0)
    with pytest.raises(
        AssertionError, match=re.escape('details.at: expected "2025-01-02T00:00:00Z", got "2025-01-01T00:00:00Z"')
    ):
        assert_error(response, Expired, at=datetime(2025, 1, 2, tzinfo=UTC))


def test_the_error_returned_is_an_instance_of_the_class_named() -> None:
    """Without `registry=`, a class no catalog holds: the error read is still that class, not an UnknownError."""
    kit = ErrorKit(format="envelope")
    Gone = kit.define("thing_gone", status=410, message="Gone", details={"thing_id": str})
    Invalid = kit.define("bad_things", status=422, message="Bad", details={"issues": list})

    async def gone(request: Request) -> JSONResponse:
        raise Gone(thing_id="t_1")

    app = Starlette(routes=[Route("/", gone)])
    kit.install(app)
    read = assert_error(TestClient(app).get("/"), Gone, thing_id="t_1")
    assert isinstance(read, Gone) and read.details == {"thing_id": "t_1"}
    validation = httpx.Response(
        422,
        json={"detail": [{"type": "missing"}], "request_id": "r"},
        headers={"x-request-id": "r", "x-should-retry": "false"},
    )
    assert isinstance(assert_error(validation, Invalid), Invalid)  # a codeless body: the class named too


def detail_differences(response: httpx.Response, error: type[errorkit.APIError] | str, **options: object) -> list[str]:
    with pytest.raises(AssertionError) as failed:
        assert_error(response, error, **options)  # type: ignore[arg-type]
    message = str(failed.value).splitlines()
    return [
        line.strip() for line in message[1 : next(i for i, m in enumerate(message) if m.startswith("the response:"))]
    ]


def test_a_validation_body_is_only_the_error_that_renders_as_one() -> None:
    """`{"detail": [...]}` names no code: it passes for a definition with `issues`, not for any 422."""
    kit = ErrorKit(format="detail")
    Unprocessable = kit.define("unprocessable_thing", status=422, message="No")
    body = {"detail": [{"type": "missing", "loc": ["body", "name"], "msg": "Field required"}], "request_id": "r"}
    response = httpx.Response(422, json=body, headers={"x-request-id": "r", "x-should-retry": "false"})
    assert detail_differences(response, Unprocessable) == [
        'code: expected "unprocessable_thing", got a validation body (no code)'
    ]
    assert detail_differences(response, "unprocessable_thing") == [
        'code: expected "unprocessable_thing", got a validation body (no code)'
    ]
    assert assert_error(response, catalogs.GENERIC["validation_error"]).code == "validation_error"


def test_details_are_compared_with_their_json_types() -> None:
    response = httpx.Response(
        400,
        json={"error": {"code": "bad", "message": "Bad", "details": {"on": True, "n": 1}, "request_id": "r"}},
        headers={"x-request-id": "r"},
    )
    assert_error(response, "bad", on=True, n=1)
    assert detail_differences(response, "bad", on=1) == ["details.on: expected 1, got true"]
    assert detail_differences(response, "bad", n=1.0) == ["details.n: expected 1.0, got 1"]


def test_a_retry_after_of_other_digits_is_a_difference() -> None:
    """ "²".isdigit() is true and int("²") raises: it is reported, not a crash."""
    response = httpx.Response(
        400,
        json={"error": {"code": "bad", "message": "Bad", "request_id": "r"}},
        headers=[(b"x-request-id", b"r"), (b"retry-after", "²".encode()), (b"retry-after-ms", b"2000")],
    )
    assert detail_differences(response, "bad") == ['retry-after: expected whole seconds, got "²"']


def test_the_failure_report_redacts_cookies_and_credentials() -> None:
    response = httpx.Response(
        404,
        json={"detail": "Not Found", "code": "not_found", "request_id": "r"},
        headers=[
            ("x-request-id", "r"),
            ("set-cookie", "session=s3cret; HttpOnly"),
            ("Authorization", "Bearer ek_1.secret"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("cookie", "a=secret"),
        ],
    )
    with pytest.raises(AssertionError) as failed:
        assert_error(response, "gone")
    report = str(failed.value)
    assert "secret" not in report and "c2VjcmV0" not in report
    for name in ("set-cookie", "authorization", "proxy-authorization", "cookie"):
        assert f"  {name}: <redacted>" in report.splitlines()


# -- the synchronous helpers ---------------------------------------------------------------------


ENVELOPE = ErrorKit(format="envelope")


def quota_app(store: MemoryBackend | RedisBackend) -> tuple[Starlette, Quotas]:
    async def created(request: Request) -> JSONResponse:
        return JSONResponse({}, status_code=201)

    app = Starlette(routes=[Route("/agents", created, methods=["POST"]), Route("/limited", created)])
    quotas = Quotas(store, limits={"agents": {"free": 1}}, creates={"POST /agents": "agents"})
    ENVELOPE.install(
        app,
        auth=APIKeyAuth(store),
        rate_limit=RateLimiter(store, routes={"GET /limited": "1/minute"}),
        quotas=quotas,
    )
    return app, quotas


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_the_helpers_and_reset_inside_a_running_client(kind: str, redis_url: str) -> None:
    """Keys issued and usage set while the app runs (its store bound to the client's loop), then a
    reset that forgets counters and usage and keeps the keys."""
    store = MemoryBackend() if kind == "memory" else RedisBackend(redis_url, prefix="helpers-" + kind)
    if isinstance(store, RedisBackend):
        asyncio.run(store.initialize())
    app, quotas = quota_app(store)
    with TestClient(app) as client:
        token = issue_key(store, workspace_id="ws_h", plan="free")
        headers = {"Authorization": f"Bearer {token}"}
        assert [client.get("/limited", headers=headers).status_code for _ in range(2)] == [201, 429]
        set_usage(quotas, "ws_h", "agents", 1)
        assert_error(client.post("/agents", headers=headers), "quota_exceeded", registry=ENVELOPE, usage=1, limit=1)

        reset(store)
        assert client.get("/limited", headers=headers).status_code == 201  # counters gone, the key kept
        assert client.post("/agents", headers=headers).status_code == 201  # usage gone

        mine = register_key(store, "ek_mine.secret-1234", workspace_id="ws_m", scopes={"agents:write"})
        assert (mine.key_id, mine.scopes) == ("ek_mine", frozenset({"agents:write"}))
        assert client.get("/limited", headers={"Authorization": "Bearer ek_mine.secret-1234"}).status_code == 201
        if isinstance(store, RedisBackend):
            assert client.portal is not None
            client.portal.call(store.close)


def test_a_helper_refuses_what_errorkit_refuses() -> None:
    store = MemoryBackend()
    with pytest.raises(ValueError, match="has passed: a new key must expire in the future"):
        issue_key(store, workspace_id="ws", expires_at=datetime.now(UTC) - timedelta(days=1))
    assert register_key(store, "ek_old.secret-1234", workspace_id="ws", expires_at=datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="usage is a count"):
        set_usage(quota_app(store)[1], "ws", "agents", -1)
    with pytest.raises(TypeError, match="resets a MemoryBackend or a RedisBackend"):
        reset(object())  # type: ignore[arg-type]


def test_a_helper_leaves_the_threads_current_event_loop_alone() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        issue_key(MemoryBackend(), workspace_id="ws")
        reset(MemoryBackend())
        assert asyncio.get_event_loop() is loop  # asyncio.run would have left None
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_a_store_of_another_kind_is_refused_inside_a_running_loop() -> None:
    """It would be used on the helper's own loop in a worker thread, not on the loop it lives on."""

    class OwnStore(MemoryBackend):
        pass

    plain = object.__new__(type("KeysElsewhere", (), {}))

    async def inside() -> None:
        issue_key(OwnStore(), workspace_id="ws")  # a MemoryBackend still
        with pytest.raises(TypeError, match="take a KeysElsewhere only where no event loop runs"):
            issue_key(plain, workspace_id="ws")  # type: ignore[arg-type]

    asyncio.run(inside())


def test_deleting_sends_one_unlink_per_scan_page() -> None:
    """On a Redis of its own: a SCAN page (COUNT 1000) then holds every key, and one UNLINK deletes them."""
    with redis_server() as redis:
        _one_unlink_per_page(redis.url)


def _one_unlink_per_page(redis_url: str) -> None:
    store = RedisBackend(redis_url, prefix="unlink-batch")
    for n in range(5):
        register_key(store, f"ek_b{n}.secret-1234", workspace_id="ws_b")
    sent: list[tuple[object, ...]] = []

    async def delete() -> int:
        real = store.redis.execute

        async def execute(*args: object) -> object:
            sent.append(args)
            return await real(*args)  # type: ignore[arg-type]

        store.redis.execute = execute  # type: ignore[method-assign]
        try:
            return await _delete_keys(store, ["unlink-batch:"])
        finally:
            await store.close()

    assert asyncio.run(delete()) == 7  # 5 keys, the workspace's set and the dataset marker
    unlinks = [args for args in sent if args[0] == "UNLINK"]
    assert len(unlinks) == 1 and len(unlinks[0]) == 8


def test_reset_on_redis_keeps_a_store_under_a_longer_prefix(redis_url: str) -> None:
    """`myapp` and `myapp:tenant2`: the second's keys match `myapp:*`, and reset of the first leaves them."""
    store = RedisBackend(redis_url, prefix="myapp")
    tenant = RedisBackend(redis_url, prefix="myapp:tenant2")
    for each in (store, tenant):
        issue_key(each, workspace_id="ws_t", plan="free")
        set_usage(quota_app(each)[1], "ws_t", "agents", 1)
    reset(store)
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    found = subprocess.run(
        ["redis-cli", "-p", port, "--scan", "--pattern", "myapp:tenant2:*"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(name.split(":")[2] for name in found) == ["apikey", "dataset", "quota", "workspace-keys"]


def test_reset_on_redis_deletes_only_what_requests_left(redis_url: str) -> None:
    store = RedisBackend(redis_url, prefix="reset-check")
    other = RedisBackend(redis_url, prefix="reset-check-other")
    for each in (store, other):
        issue_key(each, workspace_id="ws_r", plan="free")
        set_usage(quota_app(each)[1], "ws_r", "agents", 1)
    reset(store)
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    kinds = {
        prefix: sorted(
            name.split(":")[1]
            for name in subprocess.run(
                ["redis-cli", "-p", port, "--scan", "--pattern", f"{prefix}:*"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        )
        for prefix in ("reset-check", "reset-check-other")
    }
    assert kinds == {
        "reset-check": ["apikey", "dataset", "workspace-keys"],
        "reset-check-other": ["apikey", "dataset", "quota", "workspace-keys"],
    }


# -- the Redis fixture ---------------------------------------------------------------------------

ON_REDIS = """
import pytest
from starlette.testclient import TestClient

from app import create_app, kit
from errorkit.testing import assert_error, issue_key

SEEN = []


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_counts_alone(errorkit_redis_backend, run):
    SEEN.append(errorkit_redis_backend.prefix)
    app, _ = create_app(errorkit_redis_backend)
    key = issue_key(errorkit_redis_backend, workspace_id="ws_r", plan="free")
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {key}"}
        assert [client.get("/limited", headers=headers).status_code for _ in range(2)] == [201, 201]
        assert_error(client.get("/limited", headers=headers), "rate_limit_exceeded", registry=kit)
        assert_error(client.get("/limited", headers={"Authorization": "Bearer ek_nobody.secret-1234"}), "invalid_api_key", registry=kit)


def test_a_failing_test_leaves_nothing_either(errorkit_redis_backend):
    key = issue_key(errorkit_redis_backend, workspace_id="ws_f")
    assert key == "not this", "fails on purpose"


def test_the_prefixes_differ():
    assert len(SEEN) == len(set(SEEN)) == 2 and all(p.startswith("errorkit-test-") for p in SEEN)
"""


def redis_keys(url: str) -> list[str]:
    port = url.rsplit(":", 1)[1].split("/")[0]
    done = subprocess.run(["redis-cli", "-p", port, "--scan"], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.parametrize("given", ["option", "environment"])
def test_the_redis_fixture_isolates_and_cleans_up(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    with redis_server() as server:
        pytester.makepyfile(app=app_file("envelope"), test_on_redis=ON_REDIS)
        if given == "option":
            result = pytester.runpytest("-p", "no:cacheprovider", "--errorkit-redis-url", server.url)
        else:
            monkeypatch.setenv("ERRORKIT_TEST_REDIS_URL", server.url)
            result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(passed=3, failed=1)
        assert "AssertionError: fails on purpose" in result.stdout.str()
        assert redis_keys(server.url) == []  # every key of every test deleted, the failed one's too


CLOSE_FAILS = """
import pytest

import errorkit.testing
from errorkit.testing import issue_key


def refuse(backend):
    raise TimeoutError("the portal's loop did not answer within 10 s")


@pytest.fixture(autouse=True)
def closing_fails(monkeypatch):  # (set up before the store, so undone after its teardown)
    monkeypatch.setattr(errorkit.testing, "_close", refuse)


def test_closing_fails(errorkit_redis_backend):
    issue_key(errorkit_redis_backend, workspace_id="ws_c")
"""


def test_the_redis_fixture_deletes_its_keys_when_closing_fails(pytester: pytest.Pytester) -> None:
    with redis_server() as server:
        pytester.makepyfile(test_close=CLOSE_FAILS)
        result = pytester.runpytest("-p", "no:cacheprovider", "--errorkit-redis-url", server.url)
        result.assert_outcomes(passed=1, errors=1)
        assert "TimeoutError: the portal's loop did not answer within 10 s" in result.stdout.str()
        assert redis_keys(server.url) == []


ON_CLUSTER = """
import os
import subprocess

from errorkit.testing import issue_key, reset


def keys_on(port, prefix):
    found = subprocess.run(["redis-cli", "-p", port, "--scan", "--pattern", prefix + ":apikey:*"], capture_output=True, text=True)
    return found.stdout.split()


def test_keys_on_every_primary(errorkit_redis_backend):
    for n in range(30):  # key ids that hash to slots of all three primaries
        issue_key(errorkit_redis_backend, workspace_id=f"ws_{n}")
    reset(errorkit_redis_backend)  # (keeps them)
    held = [len(keys_on(port, errorkit_redis_backend.prefix)) for port in os.environ["PRIMARIES"].split(",")]
    assert sum(held) == 30 and all(held), held
"""


def test_the_redis_fixture_on_a_cluster_marks_and_cleans_every_primary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cluster_setup() as cluster:
        primaries = sorted(cluster.primaries())
        assert len(primaries) == 3
        monkeypatch.setenv("PRIMARIES", ",".join(map(str, primaries)))
        pytester.makepyfile(test_on_cluster=ON_CLUSTER)
        result = pytester.runpytest("-p", "no:cacheprovider", "--errorkit-redis-url", cluster.url)
        result.assert_outcomes(passed=1)
        for port in primaries:  # 16384 dataset markers and 90 key records written, none left
            assert redis_keys(f"redis://127.0.0.1:{port}/0") == []


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (None, ""),
        ("memory://", "--errorkit-redis-url is memory://, which is no Redis: "),
        ("http://localhost:6379", "--errorkit-redis-url='http://localhost:6379': unknown scheme 'http'"),
    ],
)
def test_the_redis_fixture_without_a_redis_fails_saying_how(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, given: str | None, says: str
) -> None:
    monkeypatch.delenv("ERRORKIT_TEST_REDIS_URL", raising=False)
    pytester.makepyfile(test_it="def test_it(errorkit_redis_backend):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *(["--errorkit-redis-url", given] if given else []))
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    how = (
        "errorkit_redis_backend needs a Redis to test against: run pytest with --errorkit-redis-url "
        "redis://127.0.0.1:6379/15 or set ERRORKIT_TEST_REDIS_URL=redis://127.0.0.1:6379/15 (a database no one "
        "serves from: each test writes under a key prefix of its own and deletes its keys afterwards)"
    )
    assert how in output
    assert says in output
    assert "skipped" not in output and "During handling" not in output


def test_the_fixture_url_must_be_one_errorkit_reads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_it="def test_it(errorkit_redis_url):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--errorkit-redis-url", "redis://127.0.0.1:6379/0")
    result.assert_outcomes(passed=1)


def test_errorkit_itself_imports_neither_pytest_nor_the_plugin() -> None:
    """Apps import errorkit in production: the plugin, and pytest with it, only load under pytest."""
    code = "import sys, errorkit, errorkit.client; print(sorted(m for m in ('pytest', 'errorkit.testing') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
