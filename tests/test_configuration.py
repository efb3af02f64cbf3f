"""Configuration mistakes fail at construction or at start-up, naming the option, the entry and the
nearest correct value; none is accepted silently."""

import logging
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
from tests.support.servers import free_port


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
        "errorkit cannot see the routes of function mounted at '/static'; these entries were not checked: "
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
        (lambda: Limit(5, 0), ConfigurationError, "Limit(5, 0): the period is a number of seconds above 0"),
        (
            lambda: Limit(5, float("inf")),
            ConfigurationError,
            "Limit(5, inf): the period is a number of seconds above 0",
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
            "RateLimiter(routes=...)['POST /widgets']: no limits given (write '100/minute', or None to exempt a route)",
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


# -- the decorator's mistakes -----------------------------------------------------------------


async def limited(request: Request) -> Response:
    return JSONResponse({"ok": True})


def test_a_declared_limit_without_a_rate_limiter_fails_the_start_up() -> None:
    app = Starlette(routes=[Route("/widgets", errorkit.limit("5/minute")(ok_copy()), methods=["POST"])])
    ErrorKit().install(app, idempotency=Idempotency(store))
    with pytest.raises(ConfigurationError) as raised:
        start(app)
    assert str(raised.value) == (
        "errorkit.limit(...) on 'ok_copy.<locals>.endpoint': no RateLimiter is installed to count it; "
        "install(app, rate_limit=RateLimiter(store))"
    )


def test_a_route_limited_twice_fails_the_start_up() -> None:
    app = Starlette(routes=[Route("/widgets", errorkit.limit("5/minute")(ok_copy()), methods=["POST"])])
    ErrorKit().install(app, rate_limit=RateLimiter(store, routes={"POST /widgets": "1/second"}))
    with pytest.raises(ConfigurationError) as raised:
        start(app)
    assert str(raised.value) == (
        "errorkit.limit(...) on 'ok_copy.<locals>.endpoint' on 'POST /widgets': the route is limited twice; "
        "keep either the decorator or the RateLimiter(routes=...) entry"
    )


def test_decorator_methods_the_route_does_not_serve_fail_the_start_up() -> None:
    endpoint = errorkit.limit("5/minute", methods=["post", "PUT"])(ok_copy())
    app = Starlette(routes=[Route("/widgets", endpoint, methods=["GET", "POST"])])
    ErrorKit().install(app, rate_limit=RateLimiter(store))
    with pytest.raises(ConfigurationError) as raised:
        start(app)
    assert str(raised.value) == (
        "errorkit.limit(...) on 'ok_copy.<locals>.endpoint': methods= names PUT, which /widgets does not serve "
        "(it serves GET, HEAD, POST)"
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
        "errorkit.limit(...) on 'test_the_limit_itself_as_a_fastapi_dependency_fails_the_start_up.<locals>.create': "
        "write Depends(errorkit.limit('5-per-60s').dependency): the limit itself is no dependency"
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
