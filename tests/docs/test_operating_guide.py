"""docs/guides/operating.md: its metrics, spans, log line, shadow headers, 503s and proxy set-ups, as the
snippets really produce them (real uvicorn workers for the multiprocess metrics, a real Redis).

operating/metrics.py is served by uvicorn (single worker, then multiprocess.sh's workers); the other
snippets are loaded, or run, by the test of their section."""

import io
import json
import logging
import os
import re
import shlex
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from errorkit import ErrorKit, FailurePolicy, Idempotency, RedisBackend
from tests.docs.support import (
    DOCS_SRC,
    assert_lines,
    assert_response,
    commands,
    fence_starting,
    fences,
    load,
    register,
    same_json,
    section,
)
from tests.support.servers import free_port, uvicorn

PAGE = "guides/operating.md"
HERE = str(DOCS_SRC / "operating")


def errorkit_lines(metrics: str) -> list[str]:
    return [line for line in metrics.splitlines() if line.startswith("errorkit_") and "_created" not in line]


# -- metrics ----------------------------------------------------------------------------------------


def test_the_metrics_after_five_requests_are_the_ones_shown() -> None:
    shown = fences(PAGE, "text")[0]
    with uvicorn("metrics:app", env={"REDIS_URL": "memory://"}, options=["--app-dir", HERE]) as server:
        statuses = [httpx.get(f"{server.url}/search").status_code for _ in range(5)]
        scraped = httpx.get(f"{server.url}/metrics")
    assert statuses == [200, 200, 200, 429, 429]
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert_lines(shown, errorkit_lines(scraped.text))


def test_several_workers_serve_the_sums(tmp_path: Path, redis_url: str) -> None:
    export, wipe, serve = commands("operating/multiprocess.sh")
    assert export == "export PROMETHEUS_MULTIPROC_DIR=/tmp/errorkit-metrics"
    assert wipe == 'rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"'
    folder = tmp_path / "errorkit-metrics"  # (the page's folder, made by its own command, in a folder of the test's)
    os.system(wipe.replace('"$PROMETHEUS_MULTIPROC_DIR"', shlex.quote(str(folder))))
    assert folder.is_dir() and not any(folder.iterdir())

    words = serve.split()
    assert words[:2] == ["uvicorn", "metrics:app"] and words[2] == "--workers"
    workers = int(words[3])
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "REDIS_URL": redis_url.replace("/0", "/5")}
    with uvicorn("metrics:app", workers=workers, env=env, options=["--app-dir", HERE]) as server:
        statuses = []
        for _ in range(8):  # a new connection each: the workers share them
            with httpx.Client() as client:
                statuses.append(client.get(f"{server.url}/search").status_code)
        time.sleep(1.5)  # every worker's flush_interval
        scraped = httpx.get(f"{server.url}/metrics").text
    assert statuses == [200, 200, 200] + [429] * 5
    lines = errorkit_lines(scraped)
    assert 'errorkit_rate_limit_decisions_total{policy="default",result="allowed"} 3.0' in lines
    assert 'errorkit_rate_limit_decisions_total{policy="default",result="limited"} 5.0' in lines
    assert 'errorkit_errors_total{code="rate_limit_exceeded",status="429"} 5.0' in lines
    assert len({p.name for p in folder.iterdir()}) >= workers  # a file per worker that counted


# -- traces and logs ----------------------------------------------------------------------------------


def test_the_server_spans_carry_the_attributes_shown() -> None:
    module = load("operating/tracing.py")
    exporter = InMemorySpanExporter()
    module["provider"].add_span_processor(SimpleSpanProcessor(exporter))
    client = TestClient(module["traced"], raise_server_exceptions=False)
    spans = []
    for path in ["/search", "/search", "/export"]:
        exporter.clear()
        client.get(path)
        (span,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
        spans.append(span)
    attributes = [
        {k: v for k, v in s.attributes.items() if k.startswith("errorkit.") or k == "error.type"} for s in spans
    ]
    same_json(json.loads(fences(PAGE, "json")[0]), attributes)
    assert [s.status.status_code for s in spans] == [StatusCode.UNSET, StatusCode.UNSET, StatusCode.ERROR]
    assert [e.name for e in spans[2].events] == ["exception"]
    module["provider"].shutdown()  # (its console exporter prints the batch now, while the test runs)


def test_the_json_logging_set_up_prints_the_line_shown() -> None:
    module = load("operating/json_logging.py")  # (basicConfig does nothing here: pytest's handlers are on root)
    handler = module["handler"]
    handler.setStream(io.StringIO())
    logger = logging.getLogger("errorkit")
    logger.addHandler(handler)

    async def export(request: Request) -> None:
        raise ZeroDivisionError("division by zero")

    try:
        app = Starlette(routes=[Route("/export", export)])
        ErrorKit().install(app)
        response = TestClient(app, raise_server_exceptions=False).get("/export", headers={"X-Request-ID": "req-1"})
        mine = logging.getLogger("myapp")  # your own records get the request fields too, outside a request None
        mine.addHandler(handler)
        mine.warning("outside a request")
        mine.removeHandler(handler)
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 500 and "division" not in response.text
    line, own = handler.stream.getvalue().splitlines()
    same_json(json.loads(fences(PAGE, "json")[1]), json.loads(line))
    assert json.loads(own) == {
        "level": "WARNING",
        "logger": "myapp",
        "message": "outside a request",
        "request_id": None,
        "code": None,
        "workspace_id": None,
    }


# -- shadow limits ----------------------------------------------------------------------------------


def test_a_shadow_limit_refuses_no_one_and_shows_in_the_headers() -> None:
    client = TestClient(load("operating/shadow.py")["app"])
    answers = [client.get("/search") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    # (the block shows the rate-limit headers the shadow limit sets: only those are compared)
    assert_response(fence_starting(PAGE, "http", "HTTP/1.1 200 OK"), answers[3], all_headers=False)


# -- failure policies -------------------------------------------------------------------------------


def test_the_failure_snippet_answers_and_logs_what_the_page_shows(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there: Redis is away
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    module = load("operating/failure.py")
    client = TestClient(module["app"])
    with caplog.at_level(logging.WARNING, logger="errorkit.store"):
        answers = [
            client.post("/payments", headers={"Idempotency-Key": "k-1", "X-Request-ID": "req-7"}) for _ in range(3)
        ]
        unkeyed = client.post("/payments")
    assert unkeyed.status_code == 201  # no key: idempotency has nothing to guard, the limiter fails open
    for answer in answers:
        assert_response(fence_starting(PAGE, "http", "HTTP/1.1 503 "), answer)
    assert module["closed"].failures == 3

    idempotency = [r for r in caplog.records if r.getMessage().startswith("idempotency:")]
    assert len(idempotency) == 1 and idempotency[0].levelname == "WARNING"  # one line per log_interval
    shown = fence_starting(PAGE, "text", "idempotency:").replace("10.0.0.5:6379", f"127.0.0.1:{port}")
    assert_lines(shown, [idempotency[0].getMessage()])
    limiter = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rate limiting:")]
    assert len(limiter) == 1 and "failing open: requests pass uncounted, without rate-limit headers" in limiter[0]


@pytest.mark.parametrize("format", ["detail", "envelope", "problem"])
def test_the_503_of_each_format_is_the_table_s(format: str) -> None:
    async def pay(request: Request) -> None:
        raise AssertionError("never run while Redis is away")

    table = section(PAGE, "## Failure policies")
    (row,) = re.findall(rf"^\| `{format}` \| `(.+)` \|$", table, re.M)
    app = Starlette(routes=[Route("/payments", pay, methods=["POST"])])
    ErrorKit(format=format).install(app, idempotency=Idempotency(RedisBackend(f"redis://127.0.0.1:{free_port()}/0")))
    answer = TestClient(app).post("/payments", headers={"Idempotency-Key": "a", "X-Request-ID": "req-1"})
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "1")
    assert answer.json() == json.loads(row)


def test_the_failure_policy_defaults_are_the_table_s() -> None:
    policy = FailurePolicy()
    assert (policy.mode, policy.retry_after, policy.log_interval) == ("fail_closed", 1, 5.0)
    with pytest.raises(ValueError, match="'fail_open' or 'fail_closed'"):
        FailurePolicy("open")  # type: ignore[arg-type]


# -- client addresses behind proxies ------------------------------------------------------------------


def statuses(client: TestClient, forwarded: list[str]) -> list[int]:
    return [client.get("/search", headers={"X-Forwarded-For": hop}).status_code for hop in forwarded]


def test_uvicorn_rewriting_the_peer_for_its_allowed_proxies() -> None:
    app = load("operating/app.py")["app"]
    behind = TestClient(ProxyHeadersMiddleware(app, trusted_hosts="10.0.0.5,10.0.0.6"), client=("10.0.0.5", 4000))
    # each client behind the balancer has a bucket of its own (2/minute)
    assert statuses(behind, ["203.0.113.7", "203.0.113.7", "203.0.113.7", "198.51.100.2"]) == [200, 200, 429, 200]
    direct = TestClient(ProxyHeadersMiddleware(app, trusted_hosts="10.0.0.5,10.0.0.6"), client=("192.0.2.9", 4000))
    # a peer that is no balancer cannot choose its bucket with the header
    assert statuses(direct, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]) == [200, 200, 429]
    anyone = TestClient(
        ProxyHeadersMiddleware(load("operating/app.py")["app"], trusted_hosts="*"), client=("192.0.2.9", 4000)
    )
    # '*': the leftmost hop, which the client writes: a new bucket with every header
    assert statuses(anyone, ["1.1.1.1, 10.0.0.5", "2.2.2.2, 10.0.0.5", "3.3.3.3, 10.0.0.5"]) == [200, 200, 200]


def test_errorkit_reading_the_header_of_its_trusted_proxies() -> None:
    app = load("operating/proxies.py")["app"]
    behind = TestClient(app, client=("10.0.0.5", 4000))
    assert statuses(behind, ["203.0.113.7", "203.0.113.7, 10.0.0.6", "203.0.113.7", "198.51.100.2"]) == [
        200,
        200,
        429,
        200,
    ]
    direct = TestClient(app, client=("192.0.2.9", 4000))
    assert statuses(direct, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]) == [200, 200, 429]


def test_the_two_uvicorn_command_lines_run() -> None:
    lines = commands("operating/proxy_headers.sh")
    assert lines == [
        "uvicorn app:app --forwarded-allow-ips 10.0.0.5,10.0.0.6",
        "uvicorn proxies:app --no-proxy-headers",
    ]
    for line in lines:
        _, target, *options = line.split()
        with uvicorn(target, env={"REDIS_URL": "memory://"}, options=[*options, "--app-dir", HERE]) as server:
            # the test's peer, 127.0.0.1, is none of the proxies: the header changes nothing
            got = [
                httpx.get(f"{server.url}/search", headers={"X-Forwarded-For": f"9.9.9.{i}"}).status_code
                for i in range(3)
            ]
        assert got == [200, 200, 429], line


def test_the_install_lines() -> None:
    from importlib.metadata import requires, version

    assert commands("operating/install_metrics.sh") == ['pip install "errorkit[metrics]"']
    assert any(r.startswith("prometheus-client") and 'extra == "metrics"' in r for r in requires("errorkit") or [])
    assert commands("operating/install_tracing.sh") == [
        "pip install opentelemetry-sdk opentelemetry-instrumentation-asgi"
    ]
    assert version("opentelemetry-sdk") and version("opentelemetry-instrumentation-asgi")


def test_the_loggers_table(caplog: pytest.LogCaptureFixture) -> None:
    """The loggers exist under the names the table gives; the quota line and its extra attributes are as shown."""
    import errorkit._observe.observer
    import errorkit._observe.prometheus
    import errorkit._stages.auth
    import errorkit._stages.idempotency
    import errorkit._stages.quotas

    table = section(PAGE, "## Logs")
    names = re.findall(r"^\| `(errorkit[.\w]*)` \|", table, re.M)
    assert names == [
        "errorkit",
        "errorkit.auth",
        "errorkit.store",
        "errorkit.idempotency",
        "errorkit.quotas",
        "errorkit.observer",
        "errorkit.metrics",
    ]
    modules = [
        errorkit._stages.auth,
        errorkit._stages.idempotency,
        errorkit._stages.quotas,
        errorkit._observe.observer,
        errorkit._observe.prometheus,
    ]
    assert [m.logger.name for m in modules] == [
        "errorkit.auth",
        "errorkit.idempotency",
        "errorkit.quotas",
        "errorkit.observer",
        "errorkit.metrics",
    ]

    from fastapi import FastAPI

    from errorkit import APIKeyAuth, MemoryBackend, Quotas

    store, app = MemoryBackend(), FastAPI()

    @app.post("/widgets", status_code=201)
    async def create() -> dict[str, str]:
        return {}

    quotas = Quotas(store, limits={"widgets": {"free": 3}}, creates={"POST /widgets": "widgets"})
    ErrorKit().install(app, auth=APIKeyAuth(store), quotas=quotas)
    with caplog.at_level(logging.INFO, logger="errorkit.quotas"), TestClient(app) as client:
        register(client, store, "ek_q.secret-of-quotas", "ws_1", plan="free")
        assert [
            client.post("/widgets", headers={"X-API-Key": "ek_q.secret-of-quotas"}).status_code for _ in range(4)
        ] == [201, 201, 201, 402]
    (record,) = [r for r in caplog.records if r.name == "errorkit.quotas"]
    (shown,) = re.findall(r"\(INFO: `(.+?)`\)", table)
    assert (record.levelname, record.getMessage()) == ("INFO", shown)
    assert (record.quota_group, record.usage, record.limit, record.workspace_id, record.code) == (
        "widgets",
        3,
        3,
        "ws_1",
        "quota_exceeded",
    )  # type: ignore[attr-defined]
