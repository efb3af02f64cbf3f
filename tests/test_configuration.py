"""Configuration mistakes fail at construction or at start-up, naming the option, the entry and the
nearest correct value; none is accepted silently."""

import logging
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

import errorkit
from errorkit import (
    APIKeyAuth,
    ConcurrencyLimit,
    ConfigurationError,
    ErrorKit,
    Idempotency,
    Limit,
    MemoryBackend,
    Quotas,
    RateLimiter,
    catalogs,
)
from tests.support.servers import Redis, free_port


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def static(scope: Any, receive: Any, send: Any) -> None:  # a mounted app whose routes nobody can see
    await Response("file")(scope, receive, send)


ROUTES = [
    Route("/widgets", ok, methods=["GET", "POST"]),
    Route("/widgets/{widget_id}", ok, methods=["GET", "DELETE"]),
    Route("/health", ok),
    Mount("/static", app=static),
]


def app_with(**stages: Any) -> Starlette:
    app = Starlette(routes=list(ROUTES))
    ErrorKit(catalog=catalogs.DETAIL_API).install(app, **stages)
    return app


def start(app: Starlette) -> None:
    with TestClient(app):
        pass


def startup_error(**stages: Any) -> str:
    with pytest.raises(ConfigurationError) as raised:
        start(app_with(**stages))
    return str(raised.value)


store = MemoryBackend()


# -- route entries naming no route ------------------------------------------------------------


def test_a_lower_case_method_is_upper_cased_and_the_limit_applies() -> None:
    app = app_with(rate_limit=RateLimiter(store, routes={"post /widgets": [Limit(1, 60)]}))
    with TestClient(app) as client:
        assert [client.post("/widgets").status_code for _ in range(3)] == [200, 429, 429]
        assert client.get("/widgets").headers["x-ratelimit-limit"] == "100"  # GET takes the default limits


def test_a_misspelt_method_fails_the_start_up_with_the_nearest_route() -> None:
    message = startup_error(rate_limit=RateLimiter(store, routes={"POTS /widgets": [Limit(1, 60)]}))
    assert message == (
        "RateLimiter(routes=...): 'POTS /widgets' names no route of the app (/widgets serves GET, HEAD, POST); "
        "the nearest is 'POST /widgets'"
    )


def test_a_misspelt_path_fails_the_start_up_with_the_nearest_route() -> None:
    message = startup_error(rate_limit=RateLimiter(store, routes={"POST /widgetz": "1/minute"}))
    assert (
        message == "RateLimiter(routes=...): 'POST /widgetz' names no route of the app; the nearest is 'POST /widgets'"
    )


@pytest.mark.parametrize(
    ("entry", "template"),
    [("DELETE /widgets/w_1", "DELETE /widgets/{widget_id}"), ("/widgets/w_1", "/widgets/{widget_id}")],
)
def test_a_url_where_a_route_is_expected_names_the_template_that_serves_it(entry: str, template: str) -> None:
    message = startup_error(rate_limit=RateLimiter(store, routes={entry: "1/minute"}))
    assert (
        message == f"RateLimiter(routes=...): {entry!r} is a URL, not a route: write the route's template, {template!r}"
    )


def test_a_path_without_a_method_is_checked_against_templates() -> None:
    message = startup_error(rate_limit=RateLimiter(store, routes={"/widget/{widget_id}": "1/minute"}))
    assert message == (
        "RateLimiter(routes=...): '/widget/{widget_id}' names no route of the app; the nearest is '/widgets/{widget_id}'"
    )


def test_nothing_near_lists_the_routes() -> None:
    message = startup_error(concurrency=ConcurrencyLimit(store, routes={"PUT /billing/invoices/{id}": 2}))
    assert message == (
        "ConcurrencyLimit(routes=...): 'PUT /billing/invoices/{id}' names no route of the app; the app's routes: "
        "DELETE /widgets/{widget_id}, GET /health, GET /widgets, GET /widgets/{widget_id}, HEAD /health, "
        "HEAD /widgets, HEAD /widgets/{widget_id}, POST /widgets"
    )


def test_quota_routes_the_app_lacks_fail_the_start_up() -> None:
    quotas = Quotas(store, limits={"widgets": {"free": 1}}, creates={"POST /widgetz": "widgets"})
    assert startup_error(quotas=quotas) == (
        "Quotas(creates=...): 'POST /widgetz' names no route of the app; the nearest is 'POST /widgets'"
    )
    quotas = Quotas(store, limits={"widgets": {"free": 1}}, deletes={"DELETE /widgets/{id}": "widgets"})
    assert startup_error(quotas=quotas) == (
        "Quotas(deletes=...): 'DELETE /widgets/{id}' names no route of the app; the nearest is 'DELETE /widgets/{widget_id}'"
    )


def test_quota_routes_need_a_method() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Quotas(store, limits={"widgets": {"free": 1}}, creates={"/widgets": "widgets"})
    assert (
        str(raised.value)
        == "Quotas(creates=...): '/widgets' names no method: write 'POST /widgets' (or the route's method)"
    )


def test_an_entry_that_is_no_route_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError) as raised:
        RateLimiter(store, routes={"widgets": "1/minute"})
    assert str(raised.value) == (
        "RateLimiter(routes=...): 'widgets' is not a route: write 'METHOD /path/{param}', as the app declares it"
    )

    with pytest.raises(ConfigurationError) as raised:
        RateLimiter(store, routes={"post /widgets": "1/minute", "POST /widgets": "2/minute"})
    assert str(raised.value) == "RateLimiter(routes=...): 'POST /widgets' names the route 'POST /widgets' a second time"


# -- paths ------------------------------------------------------------------------------------


def test_a_text_where_paths_are_expected_is_a_type_error() -> None:
    with pytest.raises(TypeError) as raised:
        APIKeyAuth(store, public_paths="/health")
    assert str(raised.value) == (
        "APIKeyAuth(public_paths=...) takes a list of paths, such as ['/health'], not the text '/health'"
    )

    for build, option in [
        (lambda: RateLimiter(store, exempt="/health"), "RateLimiter(exempt=...)"),
        (lambda: ConcurrencyLimit(store, exempt="/health"), "ConcurrencyLimit(exempt=...)"),
        (lambda: Idempotency(store, required="/health"), "Idempotency(required=...)"),
        (lambda: Idempotency(store, exempt="/health"), "Idempotency(exempt=...)"),
    ]:
        with pytest.raises(TypeError) as raised:
            build()
        assert str(raised.value) == f"{option} takes a list of paths, such as ['/health'], not the text '/health'"


def test_texts_where_methods_or_networks_are_expected_are_type_errors() -> None:
    with pytest.raises(TypeError) as raised:
        Idempotency(store, methods="POST")
    assert (
        str(raised.value) == "Idempotency(methods=...) takes a list of methods, such as ['POST'], not the text 'POST'"
    )

    with pytest.raises(TypeError) as raised:
        RateLimiter(store, trusted_proxies="10.0.0.0/8")
    assert str(raised.value) == "trusted_proxies takes a list of networks, such as ['10.0.0.0/8'], not a text"


def test_a_path_that_is_no_path_is_refused() -> None:
    with pytest.raises(ConfigurationError) as raised:
        APIKeyAuth(store, public_paths=["health"])
    assert str(raised.value) == (
        "APIKeyAuth(public_paths=...): 'health' is not a path: paths start with '/' ('/health', '/docs*')"
    )


def test_paths_reaching_no_route_fail_the_start_up() -> None:
    assert startup_error(auth=APIKeyAuth(store, public_paths=["/helth"])) == (
        "APIKeyAuth(public_paths=...): '/helth' is the path of no route of the app; the nearest is '/health'"
    )
    assert startup_error(rate_limit=RateLimiter(store, exempt=["/healthz"])) == (
        "RateLimiter(exempt=...): '/healthz' is the path of no route of the app; the nearest is '/health'"
    )
    start(app_with(idempotency=Idempotency(store, required=["/widget*"])))  # a prefix of /widgets: fine


def test_a_prefix_reaching_no_route_fails_the_start_up() -> None:
    assert startup_error(idempotency=Idempotency(store, required=["/v2/*"])) == (
        "Idempotency(required=...): no route of the app starts with '/v2/'; the app's routes: "
        "/health, /widgets, /widgets/{widget_id}"
    )


def test_paths_with_parameters_and_the_default_health_check() -> None:
    # a concrete path of a templated route is a path of the app; the default ("/health") is not checked
    app = Starlette(routes=[Route("/widgets/{widget_id}", ok)])
    ErrorKit().install(app, auth=APIKeyAuth(store, public_paths=["/widgets/w_1"]), rate_limit=RateLimiter(store))
    start(app)


def test_a_method_no_route_serves_fails_the_start_up() -> None:
    assert startup_error(idempotency=Idempotency(store, methods=["POST", "PTACH"])) == (
        "Idempotency(methods=...): no route of the app serves 'PTACH'; the nearest is 'PATCH'"
    )
    start(app_with(idempotency=Idempotency(store, methods=["post", "PUT"])))  # standard methods: fine


# -- mounted applications whose routes cannot be seen -----------------------------------------


def test_entries_under_a_mounted_app_are_reported_once_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(store, routes={"POST /static/upload": "1/minute", "/static/other": "2/minute"})
    with caplog.at_level(logging.WARNING, logger="errorkit"):
        start(app_with(rate_limit=limiter, auth=APIKeyAuth(store, public_paths=["/static/*"])))

    warnings = [r.getMessage() for r in caplog.records if r.name == "errorkit"]
    assert warnings == [
        "errorkit cannot see the routes of static mounted at '/static'; these entries were not checked: "
        "APIKeyAuth(public_paths=...) '/static/*'; RateLimiter(routes=...) 'POST /static/upload'; "
        "RateLimiter(routes=...) '/static/other'"
    ]


# -- Limit ------------------------------------------------------------------------------------


def test_limit_arguments_get_plain_messages() -> None:
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (
            lambda: Limit(5, "1m"),  # type: ignore[arg-type]
            TypeError,
            "Limit(5, '1m'): the period is a number of seconds, Limit(5, 60); "
            "texts such as '5/minute' are read by Limit.parse('5/minute')",
        ),
        (
            lambda: Limit(5, "minute"),  # type: ignore[arg-type]
            TypeError,
            "Limit(5, 'minute'): the period is a number of seconds, Limit(5, 60); "
            "for '5/minute' write Limit.parse('5/minute'), which is Limit(5, 60)",
        ),
        (
            lambda: Limit("5/minute"),  # type: ignore[arg-type]
            TypeError,
            "Limit('5/minute'): a Limit takes a count and seconds, Limit(5, 60); "
            "for '5/minute' write Limit.parse('5/minute'), which is Limit(5, 60)",
        ),
        (lambda: Limit(5), TypeError, "Limit(5): give the period in seconds too, e.g. Limit(5, 60) for a minute"),
        (
            lambda: Limit(0, 60),
            ConfigurationError,
            "Limit(0, ...): the count is a whole number of requests, at least 1",
        ),
        (
            lambda: Limit(2.5, 60),
            ConfigurationError,
            "Limit(2.5, ...): the count is a whole number of requests, at least 1",
        ),  # type: ignore[arg-type]
        (lambda: Limit(5, 0), ConfigurationError, "Limit(5, 0): the period is seconds above 0, at most 10 years"),
        (
            lambda: Limit(5, float("inf")),
            ConfigurationError,
            "Limit(5, inf): the period is seconds above 0, at most 10 years",
        ),
        (
            lambda: Limit(2_000_000, 1),
            ConfigurationError,
            "Limit(2000000, 1): at most one request per microsecond",
        ),
        (
            lambda: Limit.parse("99999999999999999999/second"),
            ConfigurationError,
            "'99999999999999999999/second': at most 10 years, and one request per microsecond",
        ),
        (
            lambda: Limit.parse("1/11 years"),
            ConfigurationError,
            "'1/11 years': at most 10 years, and one request per microsecond",
        ),
        (
            lambda: Idempotency(store, required=["/orders/{order_id}/pay"]),
            ConfigurationError,
            "Idempotency(required=...): '/orders/{order_id}/pay' is a route template; "
            "write a path ('/orders/o_1/pay') or a prefix ('/orders/*')",
        ),
        (
            lambda: Limit.parse("5/minut"),
            ConfigurationError,
            "'5/minut' is not a rate limit: write '<count>/<unit>' or '<count> per <n> <units>' "
            "(unit: second, minute, hour, day, month or year); did you mean '5/minute'?",
        ),
        (
            lambda: Limit.parse("5 a minute"),
            ConfigurationError,
            "'5 a minute' is not a rate limit: write '<count>/<unit>' or '<count> per <n> <units>' "
            "(unit: second, minute, hour, day, month or year)",
        ),
        (
            lambda: Limit.parse("0/minute"),
            ConfigurationError,
            "'0/minute': a rate limit's count and period are at least 1",
        ),
        (
            lambda: RateLimiter(store, limits="100/minit"),
            ConfigurationError,
            "RateLimiter(limits=...): '100/minit' is not a rate limit: write '<count>/<unit>' or "
            "'<count> per <n> <units>' (unit: second, minute, hour, day, month or year); did you mean '100/minute'?",
        ),
        (
            lambda: RateLimiter(store, limits=100),  # type: ignore[arg-type]
            TypeError,
            "RateLimiter(limits=...): limits are a text such as '5/minute', a Limit, or a list of them, not 100",
        ),
        (
            lambda: RateLimiter(store, routes={"POST /widgets": [5]}),  # type: ignore[list-item]
            TypeError,
            "RateLimiter(routes=...)['POST /widgets']: a limit is a text such as '5/minute' or a Limit, not 5",
        ),
        (
            lambda: RateLimiter(store, routes={"POST /widgets": []}),
            ConfigurationError,
            "RateLimiter(routes=...)['POST /widgets']: no limits given (write '100/minute', or None for a route without limits)",
        ),
    ]
    for build, kind, message in cases:
        with pytest.raises(kind) as raised:
            build()
        assert (type(raised.value), str(raised.value)) == (kind, message)


def test_the_limits_grammar() -> None:
    assert Limit.parse("5/minute; 100/2 hours") == (Limit(5, 60), Limit(100, 7200))
    assert Limit.parse("10 per second") == (Limit(10, 1),)
    assert Limit.parse("1/SECOND, 3 / Day | 2 per 3 minutes") == (Limit(1, 1), Limit(3, 86_400), Limit(2, 180))
    assert Limit.parse("500/7days") == (Limit(500, 7 * 86_400),)
    assert Limit.parse("1/month; 1/year") == (Limit(1, 30 * 86_400), Limit(1, 360 * 86_400))
    assert Limit.parse("5/minute", shadow=True) == (Limit(5, 60, shadow=True),)
    assert Limit.parse("5per minute") == (Limit(5, 60),)  # (as the limits library reads it)
    assert [lim.name for lim in Limit.parse("5/minute; 100/2 hours")] == ["5-per-minute", "100-per-2-hours"]
    with pytest.raises(ConfigurationError) as raised:
        Limit.parse("5/minute;")
    assert str(raised.value) == "'5/minute;' has an empty limit: nothing before, between or after a ';'"
    with pytest.raises(ConfigurationError):
        Limit.parse("\u0665/minute")  # (an Arabic-Indic five: the grammar's digits are 0-9)


# -- the decorator's mistakes -----------------------------------------------------------------


async def limited(request: Request) -> Response:
    return JSONResponse({"ok": True})


def test_a_declared_limit_without_a_rate_limiter_fails_the_start_up() -> None:
    app = Starlette(routes=[Route("/widgets", errorkit.limit("5/minute")(ok_copy()), methods=["POST"])])
    ErrorKit().install(app, idempotency=Idempotency(store))
    with pytest.raises(ConfigurationError) as raised:
        start(app)
    assert str(raised.value) == (
        "errorkit.limit(...) on ok_copy.<locals>.endpoint (/widgets): no RateLimiter is installed to count it; "
        "install(app, rate_limit=RateLimiter(store))"
    )


def test_a_route_limited_twice_fails_the_start_up() -> None:
    app = Starlette(routes=[Route("/widgets", errorkit.limit("5/minute")(ok_copy()), methods=["POST"])])
    ErrorKit().install(app, rate_limit=RateLimiter(store, routes={"POST /widgets": "1/second"}))
    with pytest.raises(ConfigurationError) as raised:
        start(app)
    assert str(raised.value) == (
        "errorkit.limit(...) on ok_copy.<locals>.endpoint (/widgets): RateLimiter(routes=...)['POST /widgets'] "
        "names the route too; keep the decorator or the entry"
    )


def test_decorator_methods_the_route_does_not_serve_fail_the_start_up() -> None:
    endpoint = errorkit.limit("5/minute", methods=["post", "PUT"])(ok_copy())
    app = Starlette(routes=[Route("/widgets", endpoint, methods=["GET", "POST"])])
    ErrorKit().install(app, rate_limit=RateLimiter(store))
    with pytest.raises(ConfigurationError) as raised:
        start(app)
    assert str(raised.value) == (
        "errorkit.limit(...) on ok_copy.<locals>.endpoint (/widgets): methods= names PUT, which the route does not "
        "serve (GET, HEAD, POST)"
    )


def test_the_limit_itself_as_a_fastapi_dependency_fails_the_start_up() -> None:
    app = FastAPI()

    @app.post("/widgets", dependencies=[Depends(errorkit.limit("5/minute"))])
    async def create() -> dict[str, bool]:
        return {"ok": True}

    ErrorKit().install(app, rate_limit=RateLimiter(store))
    with pytest.raises(ConfigurationError) as raised:
        start(app)
    assert str(raised.value) == (
        "errorkit.limit(...) on test_the_limit_itself_as_a_fastapi_dependency_fails_the_start_up.<locals>.create "
        "(/widgets): write Depends(errorkit.limit('5/minute').dependency): the limit itself is no dependency"
    )


def test_decorator_arguments_are_checked_where_they_are_written() -> None:
    with pytest.raises(ConfigurationError) as raised:
        errorkit.limit()
    assert str(raised.value) == "errorkit.limit(...): give at least one limit, e.g. errorkit.limit('5/minute')"
    with pytest.raises(ConfigurationError) as raised:
        errorkit.limit("5/minute", cost=0)
    assert str(raised.value) == "errorkit.limit(...): cost is a number of units (at least 1) or (scope) -> int, not 0"
    with pytest.raises(TypeError) as raised:
        errorkit.limit("5/minute", methods="post")
    assert str(raised.value) == (
        "errorkit.limit(...), methods= takes a list of methods, such as ['POST'], not the text 'post'"
    )


def ok_copy() -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return endpoint


# -- where the checks run ---------------------------------------------------------------------


def test_served_without_lifespan_the_first_request_runs_the_checks(caplog: pytest.LogCaptureFixture) -> None:
    app = app_with(rate_limit=RateLimiter(store, routes={"POST /widgetz": "1/minute"}))
    client = TestClient(app, raise_server_exceptions=False)  # (outside `with`: no lifespan)
    with caplog.at_level(logging.ERROR, logger="errorkit"):
        answers = [client.post("/widgets") for _ in range(2)]

    assert [r.status_code for r in answers] == [500, 500]
    assert answers[0].json()["detail"] == "Internal Server Error"
    crashes = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], ConfigurationError)]
    assert len(crashes) == 2


def test_served_without_lifespan_a_right_configuration_limits_from_the_first_request() -> None:
    endpoint = errorkit.limit("1/minute")(ok_copy())
    app = Starlette(routes=[Route("/widgets", endpoint, methods=["POST"])])
    ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend()))
    client = TestClient(app)
    assert [client.post("/widgets").status_code for _ in range(2)] == [200, 429]


def test_uvicorn_refuses_to_start_and_prints_the_mistake() -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "tests.test_configuration:misconfigured", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert (
        "ConfigurationError: RateLimiter(routes=...): 'POST /widgetz' names no route of the app; "
        "the nearest is 'POST /widgets'" in result.stderr
    )
    assert "Application startup failed. Exiting." in result.stderr
    assert "Traceback" not in result.stderr


misconfigured = Starlette(routes=list(ROUTES))
ErrorKit().install(misconfigured, rate_limit=RateLimiter(MemoryBackend(), routes={"POST /widgetz": "1/minute"}))


# -- install(check_stores=True) ---------------------------------------------------------------


def serve_checked(url: str, stages: str = "") -> subprocess.CompletedProcess[str] | None:
    """Start tests.apps.checked on `url` under uvicorn: the finished process if its start-up failed,
    else None (it started: stopped again here)."""
    import os
    import time

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.apps.checked:app", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CHECKED_URL": url, "CHECKED_STAGES": stages},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.1)
            continue
        process.terminate()
        process.wait(10)
        return None
    output = process.communicate(timeout=10)[0]
    return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def test_check_stores_fails_the_start_up_naming_the_store_without_its_password() -> None:
    port = free_port()
    failed = serve_checked(f"redis://:hunter2@127.0.0.1:{port}/0")
    assert failed is not None and failed.returncode == 3
    assert (
        f"StoreUnavailable: cannot reach the store redis://:***@127.0.0.1:{port}/0: Connection refused" in failed.stdout
    )
    assert "hunter2" not in failed.stdout and "Traceback" not in failed.stdout


def test_check_stores_names_the_remedy_for_a_redis_without_errorkits_data(redis: Redis) -> None:
    import asyncio

    from errorkit import RedisBackend

    failed = serve_checked(redis.url)  # a new Redis: nothing of errorkit's in it yet
    assert failed is not None and failed.returncode == 3
    assert "StoreDataLost: the store " in failed.stdout
    assert f"run `errorkit store init --url {redis.url}` or `await store.initialize()`" in failed.stdout

    async def adopt() -> None:
        backend = RedisBackend(redis.url)
        await backend.initialize()
        await backend.close()

    asyncio.run(adopt())
    assert serve_checked(redis.url) is None  # adopted: it starts


def test_check_stores_only_reaches_the_stores_of_counters(redis: Redis) -> None:
    # rate and concurrency limits start afresh on an emptied Redis: no marker is asked of it
    assert serve_checked(redis.url, "counters") is None
    failed = serve_checked(redis.url.replace(str(redis.port), str(free_port())), "counters")
    assert failed is not None and failed.returncode == 3 and "Connection refused" in failed.stdout


def test_a_mount_at_the_root_does_not_hide_a_typo_of_a_visible_route(caplog: pytest.LogCaptureFixture) -> None:
    app = Starlette(routes=[Route("/widgets", ok, methods=["POST"]), Mount("/", app=static)])  # (an SPA's files)
    ErrorKit().install(app, rate_limit=RateLimiter(store, routes={"POST /widgetz": "1/minute"}))
    with pytest.raises(ConfigurationError) as raised:
        start(app)
    assert (
        str(raised.value)
        == "RateLimiter(routes=...): 'POST /widgetz' names no route of the app; the nearest is 'POST /widgets'"
    )

    app = Starlette(routes=[Route("/widgets", ok, methods=["POST"]), Mount("/", app=static)])
    ErrorKit().install(app, rate_limit=RateLimiter(store, routes={"GET /index.html": "1/minute"}))
    with caplog.at_level(logging.WARNING, logger="errorkit"):
        start(app)  # nothing like it among the visible routes: the mount's, as far as errorkit can tell
    assert [r.getMessage() for r in caplog.records if r.name == "errorkit"] == [
        "errorkit cannot see the routes of static mounted at '/'; these entries were not checked: "
        "RateLimiter(routes=...) 'GET /index.html'"
    ]


def test_a_decorated_route_the_limiter_also_names_or_exempts_fails_the_start_up() -> None:
    def app_limited(**options: Any) -> Starlette:
        endpoint = errorkit.limit("5/minute")(ok_copy())
        app = Starlette(routes=[Route("/internal/widgets", endpoint, methods=["POST"])])
        ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend(), **options))
        return app

    origin = "errorkit.limit(...) on ok_copy.<locals>.endpoint (/internal/widgets)"
    cases = {
        "/internal/widgets": f"{origin}: RateLimiter(routes=...)['/internal/widgets'] names the route too; "
        "keep the decorator or the entry",
    }
    for key, message in cases.items():
        with pytest.raises(ConfigurationError) as raised:
            start(app_limited(routes={key: None}))
        assert str(raised.value) == message
    with pytest.raises(ConfigurationError) as raised:
        start(app_limited(exempt=["/internal*"]))
    assert str(raised.value) == f"{origin}: the route is exempt by RateLimiter(exempt=...)"

    endpoint = errorkit.limit("1/minute")(errorkit.limit("5/minute")(ok_copy()))
    app = Starlette(routes=[Route("/widgets", endpoint, methods=["POST"])])
    ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend()))
    with pytest.raises(ConfigurationError) as raised:
        start(app)
    assert str(raised.value) == (
        "errorkit.limit(...) on ok_copy.<locals>.endpoint (/widgets): the route is limited by two "
        "errorkit.limit(...); use one"
    )


def test_a_cost_that_is_no_weight_is_refused() -> None:
    with pytest.raises(TypeError) as raised:
        RateLimiter(store, cost="2")  # type: ignore[arg-type]
    assert str(raised.value) == "RateLimiter(cost=...) is (scope) -> int, a request's weight, not '2'"


def test_paths_are_those_inside_the_root_path() -> None:
    """Behind `uvicorn --root-path /api` (or mounted at /api), `/health` is the app's /health."""
    app = Starlette(routes=[Route("/health", ok), Route("/status", ok), Route("/widgets", ok)])
    backend = MemoryBackend()
    ErrorKit().install(
        app,
        auth=APIKeyAuth(backend, public_paths=["/health", "/status"]),
        rate_limit=RateLimiter(backend, limits="1/minute", exempt=["/status"]),
    )
    with TestClient(app, root_path="/api") as client:
        health = client.get("/api/health")
        statuses = [client.get("/api/status") for _ in range(2)]
        widgets = client.get("/api/widgets")
    assert health.status_code == 200 and health.headers["x-ratelimit-limit"] == "1"
    assert [r.status_code for r in statuses] == [200, 200] and "x-ratelimit-limit" not in statuses[0].headers
    assert widgets.status_code == 429  # (counted by address with the health check: 1 a minute, refused first)


def test_a_mark_errorkit_cannot_count_fails_the_start_up() -> None:
    from starlette.routing import Host, WebSocketRoute
    from starlette.websockets import WebSocket

    async def socket(websocket: WebSocket) -> None:
        await websocket.close()

    for route in [
        WebSocketRoute("/ws", errorkit.limit("1/minute")(socket)),
        Host("api.example.com", app=Starlette(routes=[Route("/h", errorkit.limit("1/minute")(ok_copy()))])),
    ]:
        app = Starlette(routes=[route])
        ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend()))
        with pytest.raises(ConfigurationError) as raised:
            start(app)
        assert str(raised.value).endswith(
            ": errorkit counts HTTP routes of the app's router, not websocket routes nor routes under a Host"
        )
