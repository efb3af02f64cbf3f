"""Every refusal says why: a 503 names its dependency in every catalog and format (never a
password), the failure policy's log line says what clients get, and a 402's quota group is
logged and counted when the catalog's body cannot carry it."""

import logging
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import (
    APIKeyAuth,
    ConcurrencyLimit,
    ErrorKit,
    FailurePolicy,
    Idempotency,
    KeyCache,
    MemoryBackend,
    PrometheusMetrics,
    Quotas,
    RateLimiter,
    RedisBackend,
    Registry,
    catalogs,
    register_api_key,
)
from tests.apps.quotas import build as build_quotas
from tests.support.servers import BASE_ARGS, free_port, redis_process, stop

KEY = "ek_one.workspace-one-1"
SENTENCE = "Service unavailable: the dependency 'redis' cannot serve requests right now; retry after 1 second."
CLOSED = "failing closed: clients get 503 service_unavailable with Retry-After: 1"


async def create(request: Request) -> Response:
    return JSONResponse({"created": True}, status_code=201)


def app_with(
    kit: ErrorKit, keys: MemoryBackend, *, initialize: RedisBackend | None = None, **stages: object
) -> Starlette:
    """POST /agents behind the stages given; `KEY` (plan Developer) registered in `keys`; the
    `initialize` store marked as holding errorkit's data (a Redis errorkit never marked answers 503)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await register_api_key(keys, KEY, workspace_id="ws_1", plan="Developer")
        if initialize is not None:
            await initialize.initialize()
        yield

    app = Starlette(routes=[Route("/agents", create, methods=["POST"])], lifespan=lifespan)
    kit.install(app, **stages)  # type: ignore[arg-type]
    return app


def post(app: Starlette, request_id: str = "rid") -> httpx.Response:
    with TestClient(app) as client:
        headers = {"X-API-Key": KEY, "Idempotency-Key": "k1", "X-Request-ID": request_id}
        response: httpx.Response = client.post("/agents", headers=headers)
    return response


# -- a 503 names its dependency ----------------------------------------------------------------

ENVELOPE_DOC = "https://docs.orq.ai/errors/service_unavailable"
DETAIL_BODY = {"detail": SENTENCE, "code": "service_unavailable", "request_id": "rid"}  # (its only words)
# the envelope and the problem show details: the catalog's message stands, the details name the store
ENVELOPE_BODY = {
    "error": {
        "code": "service_unavailable",
        "message": "Service Unavailable",
        "details": {"dependency": "redis"},
        "request_id": "rid",
    }
}
PROBLEM_BODY = {
    "type": "about:blank",
    "title": "Service Unavailable",
    "status": 503,
    "detail": "Service Unavailable",
    "instance": "/agents",
    "code": "service_unavailable",
    "details": {"dependency": "redis"},
    "request_id": "rid",
}
ENVELOPE_MESSAGE = "A required internal dependency (database, cache, etc.) is temporarily unavailable."
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("generic", "detail"): DETAIL_BODY,
    ("generic", "envelope"): ENVELOPE_BODY,
    ("generic", "problem"): PROBLEM_BODY,
    ("detail_api", "detail"): DETAIL_BODY,  # the document's shape: the sentence is all it shows
    ("detail_api", "envelope"): ENVELOPE_BODY,
    ("detail_api", "problem"): PROBLEM_BODY,
    ("envelope_api", "detail"): DETAIL_BODY,
    ("envelope_api", "envelope"): {
        "error": {**ENVELOPE_BODY["error"], "message": ENVELOPE_MESSAGE, "doc_url": ENVELOPE_DOC}
    },
    ("envelope_api", "problem"): {
        **PROBLEM_BODY,
        "type": ENVELOPE_DOC,
        "title": "Service unavailable",
        "detail": ENVELOPE_MESSAGE,
    },
}
CATALOGS = {"generic": catalogs.GENERIC, "detail_api": catalogs.DETAIL_API, "envelope_api": catalogs.ENVELOPE_API}


@pytest.mark.parametrize(("catalog", "format"), sorted(BODIES))
def test_a_503_names_its_dependency_in_every_catalog_and_format(catalog: str, format: str) -> None:
    dead = RedisBackend(f"redis://:hunter2@127.0.0.1:{free_port()}/0")  # nothing listens there
    kit, keys = ErrorKit(catalog=CATALOGS[catalog], format=format), MemoryBackend()
    r = post(app_with(kit, keys, auth=APIKeyAuth(keys), idempotency=Idempotency(dead)))
    assert (r.status_code, r.headers["retry-after"], r.json()) == (503, "1", BODIES[catalog, format])
    assert "hunter2" not in r.text


def test_the_sentence_gives_the_policy_s_retry_after() -> None:
    dead = RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    idempotency = Idempotency(dead, on_failure=FailurePolicy("fail_closed", retry_after=3))
    r = post(app_with(ErrorKit(), MemoryBackend(), idempotency=idempotency))
    assert (r.status_code, r.headers["retry-after"], r.json()) == (
        503,
        "3",
        {
            "detail": "Service unavailable: the dependency 'redis' cannot serve requests right now; "
            "retry after 3 seconds.",
            "code": "service_unavailable",
            "request_id": "rid",
        },
    )


# A catalog of the app's own: a 503 whose message says the dependency itself, and a 402 that
# declares the `resource` detail.
OWN = Registry("own", include=[catalogs.GENERIC.without("service_unavailable")], format="envelope")
OWN.define(
    "service_unavailable",
    status=503,
    message="{dependency} is away for a moment.",
    details={"dependency": (str | None, None)},
)
OWN.define(
    "quota_exceeded",
    status=402,
    message="Your plan allows {limit} {resource}.",
    details={"usage": int, "limit": int, "resource": str},
)


def test_a_catalog_that_formats_the_dependency_keeps_its_own_message() -> None:
    dead = RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    r = post(app_with(ErrorKit(catalog=OWN), MemoryBackend(), idempotency=Idempotency(dead)))
    assert (r.status_code, r.json()) == (
        503,
        {
            "error": {
                "code": "service_unavailable",
                "message": "redis is away for a moment.",
                "details": {"dependency": "redis"},
                "request_id": "rid",
            }
        },
    )


def test_a_password_in_the_store_url_is_never_echoed(caplog: pytest.LogCaptureFixture) -> None:
    """A real Redis that asks for a password: it works, then it stops; neither the 503 nor a log line shows it."""
    password, port = "s3cret-Pa55", free_port()

    with tempfile.TemporaryDirectory() as tmp:
        args = ["--port", str(port), "--dir", tmp, "--requirepass", password, *BASE_ARGS]
        with redis_process(args, port, Path(tmp)) as process:
            store = RedisBackend(f"redis://:{password}@127.0.0.1:{port}/0")
            keys = MemoryBackend()
            kit = ErrorKit(format="problem")
            app = app_with(kit, keys, initialize=store, auth=APIKeyAuth(keys), idempotency=Idempotency(store))

            with caplog.at_level(logging.DEBUG, logger="errorkit"), TestClient(app) as client:
                headers = {"X-API-Key": KEY, "X-Request-ID": "rid"}
                assert client.post("/agents", headers={**headers, "Idempotency-Key": "k0"}).status_code == 201
                stop(process)  # Redis is gone
                r = client.post("/agents", headers={**headers, "Idempotency-Key": "k1"})

    assert (r.status_code, r.headers["retry-after"], r.json()) == (503, "1", PROBLEM_BODY)
    assert password not in r.text
    logged = [(record.getMessage(), record.__dict__) for record in caplog.records]
    assert logged and not [message for message, fields in logged if password in f"{message} {fields}"]
    store_lines = [message for message, _ in logged if message.startswith("idempotency: store 'redis' unavailable")]
    assert len(store_lines) == 1 and store_lines[0].endswith(f"; {CLOSED}; failures: 1 since the last report, 1 in all")


# -- the failure policy's log line says what clients get --------------------------------------

LINE = re.compile(
    r"(?P<stage>[a-z ]+): store 'redis' unavailable \((?P<error>.*)\); (?P<outcome>failing .*); "
    r"failures: 1 since the last report, 1 in all"
)

STORE_DOWN = [  # stage, mode, what the client gets, the line's outcome
    (
        "authentication",
        "fail_open",
        503,  # never verified by this process: refused as closed would
        "failing open: keys this process verified in the last 60 seconds pass, other keys get "
        "503 service_unavailable with Retry-After: 1",
    ),
    ("authentication", "fail_closed", 503, CLOSED),
    ("rate limiting", "fail_open", 201, "failing open: requests pass uncounted, without rate-limit headers"),
    ("rate limiting", "fail_closed", 503, CLOSED),
    ("idempotency", "fail_open", 201, "failing open: requests run without replay protection (a retry may run twice)"),
    ("idempotency", "fail_closed", 503, CLOSED),
    ("concurrency limiting", "fail_open", 201, "failing open: requests run without a slot"),
    ("concurrency limiting", "fail_closed", 503, CLOSED),
    ("quotas", "fail_open", 201, "failing open: creations run without a unit (usage then needs set_usage())"),
    ("quotas", "fail_closed", 503, CLOSED),
]


@pytest.mark.parametrize(("stage", "mode", "status", "outcome"), STORE_DOWN)
def test_the_store_failure_line_says_what_clients_get(
    stage: str, mode: str, status: int, outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every stage on a live store but one, whose store is down and which fails as `mode` says."""
    port = free_port()
    dead, live, keys = RedisBackend(f"redis://127.0.0.1:{port}/0"), MemoryBackend(), MemoryBackend()

    def on(name: str) -> tuple[Any, dict[str, Any]]:
        return (dead, {"on_failure": mode}) if name == stage else (live, {})

    auth_store, auth_failure = on("authentication")
    limiter_store, limiter_failure = on("rate limiting")
    claims_store, claims_failure = on("idempotency")
    slots_store, slots_failure = on("concurrency limiting")
    quota_store, quota_failure = on("quotas")
    app = app_with(
        ErrorKit(),
        keys,
        auth=APIKeyAuth(keys if auth_store is live else dead, cache=KeyCache(stale_for=60), **auth_failure),
        rate_limit=RateLimiter(limiter_store, **limiter_failure),
        idempotency=Idempotency(claims_store, **claims_failure),
        concurrency=ConcurrencyLimit(slots_store, routes={"POST /agents": 2}, **slots_failure),
        quotas=Quotas(
            quota_store,
            limits={"Agents": {"Developer": 5}},
            resources={"agents": "Agents"},
            creates={"POST /agents": "agents"},
            **quota_failure,
        ),
    )

    with caplog.at_level(logging.INFO, logger="errorkit"):
        r = post(app)

    assert r.status_code == status
    if status == 503:
        assert r.json() == DETAIL_BODY
    lines = [record for record in caplog.records if record.name == "errorkit.store"]
    assert len(lines) == 1
    found = LINE.fullmatch(lines[0].getMessage())
    assert found is not None, lines[0].getMessage()
    assert (found["stage"], found["outcome"]) == (stage, outcome)
    assert found["error"].startswith(f"cannot connect to Redis at 127.0.0.1:{port}: ")
    assert (lines[0].levelname, lines[0].__dict__["code"]) == (
        "WARNING",
        "service_unavailable" if mode == "fail_closed" else None,
    )


# -- a 402 names its quota group ---------------------------------------------------------------


def test_a_402_without_a_resource_detail_logs_and_counts_its_group(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The envelope catalog's `quota_exceeded` has usage and limit only: the group is in the log and the metric."""
    metrics = PrometheusMetrics(CollectorRegistry())
    app = build_quotas(RedisBackend(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}"), metrics=metrics)
    dev = {"Authorization": "Bearer ek_dev.developer-secret-1", "X-Request-ID": "r-402"}

    with caplog.at_level(logging.INFO, logger="errorkit"), TestClient(app) as client:
        created = [client.post("/agents", headers=dev).status_code for _ in range(3)]
        refused = client.post("/agents", headers=dev)
    exposition = TestClient(metrics.app()).get("/").text.splitlines()

    assert (created, refused.status_code) == ([201, 201, 201], 402)
    assert refused.json() == {
        "error": {
            "code": "quota_exceeded",
            "message": "The workspace has reached the limit for a resource on its current plan.",
            "doc_url": "https://docs.orq.ai/errors/quota_exceeded",
            "details": {"usage": 3, "limit": 3},
            "request_id": "r-402",
        }
    }

    quota_lines = [record for record in caplog.records if record.name == "errorkit.quotas"]
    assert [(r.levelname, r.getMessage()) for r in quota_lines] == [
        ("INFO", "quota group 'Agents' exhausted for workspace ws_dev: 3 of 3 used; creation refused with 402")
    ]
    fields = {name: quota_lines[0].__dict__[name] for name in ("quota_group", "usage", "limit", "code", "request_id")}
    assert fields == {"quota_group": "Agents", "usage": 3, "limit": 3, "code": "quota_exceeded", "request_id": "r-402"}
    assert quota_lines[0].__dict__["workspace_id"] == "ws_dev"

    assert 'errorkit_quota_decisions_total{group="Agents",result="exceeded"} 1.0' in exposition
    assert 'errorkit_quota_decisions_total{group="Agents",result="held"} 3.0' in exposition


def test_a_catalog_that_declares_resource_gets_the_group(redis_url: str) -> None:
    store = RedisBackend(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}")
    keys = MemoryBackend()
    quotas = Quotas(
        store, limits={"Agents": {"Developer": 1}}, resources={"agents": "Agents"}, creates={"POST /agents": "agents"}
    )
    app = app_with(ErrorKit(catalog=OWN), keys, initialize=store, auth=APIKeyAuth(keys), quotas=quotas)

    with TestClient(app) as client:
        headers = {"X-API-Key": KEY, "X-Request-ID": "rid"}
        assert client.post("/agents", headers=headers).status_code == 201
        r = client.post("/agents", headers=headers)
    assert (r.status_code, r.json()) == (
        402,
        {
            "error": {
                "code": "quota_exceeded",
                "message": "Your plan allows 1 Agents.",
                "details": {"usage": 1, "limit": 1, "resource": "Agents"},
                "request_id": "rid",
            }
        },
    )
