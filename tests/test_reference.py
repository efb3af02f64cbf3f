"""Reference pages: generated from the registry, carrying both documents' content, committed, served;
an app's page lists what the app can answer with, by HTTP status, with the routes that return each code."""

import gc
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.testclient import TestClient

import errorkit
from errorkit import (
    APIKeyAuth,
    ConcurrencyLimit,
    ConfigurationError,
    ErrorKit,
    Idempotency,
    MemoryBackend,
    Quotas,
    RateLimiter,
    ReferencePage,
    Registry,
    Table,
    catalogs,
    raises,
)
from errorkit._app import openapi
from errorkit._app.cli import main, reference_of, write_built_in
from errorkit._app.openapi import STAGE_VOCABULARY, ErrorDocumentation
from errorkit.catalogs.pages import PAGES
from errorkit.catalogs.traffic import STAGE_CODES
from tests.support.servers import free_port, uvicorn

ROOT = Path(__file__).parent.parent
SPEC = Path(__file__).parent / "spec"
DOCS = ROOT / "docs" / "reference"


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\\|", "|"))


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?:])\s+", text.strip()) if s.strip()]


def markdown(name: str) -> str:
    return (
        ErrorKit(catalog={"detail_api": catalogs.DETAIL_API, "envelope_api": catalogs.ENVELOPE_API}[name])
        .reference(PAGES[name])
        .markdown()
    )


def test_the_committed_pages_are_up_to_date(tmp_path: Path) -> None:
    written = write_built_in(tmp_path)
    assert sorted(p.name for p in written) == [
        "detail_api.html", "detail_api.md", "envelope_api.html", "envelope_api.md", "generic.html", "generic.md"
    ]  # fmt: skip
    for path in written:
        committed = DOCS / path.name
        assert committed.read_text() == path.read_text(), (
            f"{committed} is stale: run `python -m errorkit docs --write docs/reference`"
        )


def test_the_envelope_page_carries_every_code_status_when_and_fix_of_the_document() -> None:
    spec = (SPEC / "api-errors-envelope-shape.txt").read_text()
    page = normalized(markdown("envelope_api"))
    entries = re.findall(
        r"^([a-z_]+)\n\nHTTP status: (\d{3}) When this occurs: (.*?) How to fix it: (.*?)(?=\n\n[A-Z]|\n\n[a-z_]+\n\nHTTP|\Z)",
        spec,
        flags=re.M | re.S,
    )
    assert len(entries) == 23
    for code, status, when, fix in entries:
        section = normalized(page.split(f'<a id="{code}"></a>`{code}`', 1)[1].split("### ", 1)[0])
        assert f"**HTTP status:** {status} " in section, code
        for sentence in sentences(when) + sentences(fix.split("Plan limits:")[0]):
            assert normalized(sentence) in section, (code, sentence)
    plan = page.split('<a id="quota_exceeded"></a>', 1)[1].split("### ", 1)[0]
    for row in ("| Deployments | 3 | Unlimited | Unlimited |", "| Knowledge Bases + Memory Stores | 2 | Unlimited | Unlimited |",
                "| Webhooks | 1 | 5 | Unlimited |", "| Agents | 3 | Unlimited | Unlimited |"):  # fmt: skip
        assert row in plan
    assert "Knowledge Bases and Memory Stores share a single combined limit." in normalized(plan)
    assert normalized(spec.split("Error response shape:")[0].split("Every error response", 1)[1]) in page


# The first document's tables, cell by cell; each row is checked to be in the document as printed.
DETAIL_STATUSES = [
    ("200 OK", "Success", ""), ("201 Created", "Resource created", "Capture the returned id"),
    ("204 No Content", "Success, no body", ""), ("400 Bad Request", "Malformed request", "Fix the request body"),
    ("401 Unauthorized", "Missing or invalid credentials", "Check X-API-Key or Authorization header"),
    ("403 Forbidden", "Authenticated but not allowed",
     "Add the missing scope, or you\u2019re hitting a workspace you don\u2019t belong to"),
    ("404 Not Found", "Resource doesn\u2019t exist", "Verify the id"),
    ("409 Conflict", "Resource isn\u2019t in the expected state", "Check the error code \u2014 e.g., synthesis_pending"),
    ("422 Unprocessable Entity", "Validation error", "Fix the field-level issues in detail"),
    ("429 Too Many Requests", "Rate limited", "Honor Retry-After"),
    ("500 Internal Server Error", "Bug on our side", "Retry; if persistent, contact support with the request id"),
    ("503 Service Unavailable", "Temporary outage", "Retry with backoff"),
]  # fmt: skip
DETAIL_CODES = ["invalid_api_key", "insufficient_scope", "workspace_forbidden", "synthesis_pending",
                "graph_not_ready", "campaign_locked", "rate_limited"]  # fmt: skip
DETAIL_HEADERS = [
    ("X-RateLimit-Limit", "Limit for the current window"), ("X-RateLimit-Remaining", "Calls remaining in this window"),
    ("X-RateLimit-Reset", "Unix timestamp when the window resets"), ("Retry-After", "Seconds to wait (only on 429)"),
]  # fmt: skip


def test_the_detail_page_carries_the_documents_tables_and_sections() -> None:
    spec = (SPEC / "api-errors-detail-shape.txt").read_text()
    page = normalized(markdown("detail_api"))
    for status, meaning, todo in DETAIL_STATUSES:
        assert status + meaning + todo in spec
        number = status.split()[0]
        if number.startswith("2"):
            assert normalized(f"| {status} | {meaning} | {todo} |") in page
        else:  # the section of the generic code of that status says all three
            code = catalogs.GENERIC.for_status(int(number)).definition.code
            section = page.split(f'<a id="{code}"></a>`{code}`', 1)[1].split("### ", 1)[0]
            assert f"**HTTP status:** {status} **When this occurs:** {meaning} **How to fix it:** {todo} " in section
    lines = spec.split("codeMeaning\n", 1)[1].split("\n\nIdempotency", 1)[0].splitlines()
    assert [line[: len(code)] for line, code in zip(lines, DETAIL_CODES, strict=True)] == DETAIL_CODES
    for line, code in zip(lines, DETAIL_CODES, strict=True):
        section = page.split(f'<a id="{code}"></a>`{code}`', 1)[1].split("### ", 1)[0]
        assert f"**When this occurs:** {line[len(code) :]}" in section, code
    for header, meaning in DETAIL_HEADERS:
        assert header + meaning in spec and f"| {header} | {meaning} |" in page
    idempotency = normalized(spec.split("\nIdempotency\n", 1)[1].split("\nRate limits\n", 1)[0])
    for sentence in sentences(idempotency.replace("Idempotency-Key: 2c4a9cf2-...", "")):
        assert sentence in page, sentence
    assert "Rate limits apply per workspace, not per key." in page


def test_a_page_shows_each_code_with_its_details_and_sample_body() -> None:
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    page = kit.reference(PAGES["envelope_api"]).markdown()
    section = page.split('<a id="insufficient_scope"></a>', 1)[1].split("### ", 1)[0]
    assert section == (
        "`insufficient_scope`\n\n**HTTP status:** 403 Forbidden\n\n**When this occurs:** The API key does not have "
        "the permission required for the requested operation. The error details include the required permission "
        "and the key\u2019s scope (PUBLIC, WORKSPACE, or PROJECT).\n\n**How to fix it:** Use a key with broader "
        "permissions, or create a new key with the required permission level.\n\n**Details:**\n\n"
        "| name | type | required |\n|---|---|---|\n| `required_permission` | string | yes |\n"
        '| `key_scope` | one of "PUBLIC", "WORKSPACE", "PROJECT" | yes |\n\n**Retryable:** no\n\n```json\n{\n'
        '  "error": {\n    "code": "insufficient_scope",\n    "message": "The API key does not have the permission '
        'required for the requested operation.",\n    "doc_url": "https://docs.orq.ai/errors/insufficient_scope",\n'
        '    "details": {\n      "required_permission": "<required_permission>",\n      "key_scope": "PUBLIC"\n    },\n'
        '    "request_id": "5f0c2b8e9a1d4c7b0000000000000001"\n  }\n}\n```\n\n'
    )
    headings = re.findall(r"^## (\d{3}) (.+)$", page, flags=re.M)
    assert headings == [
        ("400", "Bad Request"), ("401", "Unauthorized"), ("402", "Payment Required"), ("403", "Forbidden"),
        ("404", "Not Found"), ("405", "Method Not Allowed"), ("406", "Not Acceptable"), ("408", "Request Timeout"),
        ("409", "Conflict"), ("410", "Gone"), ("413", "Content Too Large"), ("415", "Unsupported Media Type"),
        ("422", "Unprocessable Entity"), ("429", "Too Many Requests"), ("500", "Internal Server Error"),
        ("501", "Not Implemented"), ("502", "Bad Gateway"), ("503", "Service Unavailable"), ("504", "Gateway Timeout"),
    ]  # fmt: skip
    codes = re.findall(r'^### <a id="([a-z_]+)"></a>', page, flags=re.M)
    assert codes[:7] == ["bad_request", "idempotency_key_required", "invalid_idempotency_key", "invalid_json",
                         "invalid_request_body", "invalid_request_parameters", "unsupported_engine"]  # fmt: skip
    statuses = [kit.reference().class_of(code).definition.status for code in codes]
    assert [(s, c) for s, c in zip(statuses, codes, strict=True)] == sorted(zip(statuses, codes, strict=True))
    assert sorted(codes) == sorted({*(d.code for d in catalogs.ENVELOPE_API), *(d.code for d in STAGE_CODES)})


def test_html_is_escaped_and_self_contained() -> None:
    kit = ErrorKit()
    kit.define("odd_input", status=400, message="Bad <b>", when="When <script>alert(1)</script> & more", fix="x")
    page = kit.reference(ReferencePage(title="T & C", intro=[Table(["a<"], [["b>"]])])).html()
    assert "<script>alert(1)</script>" not in page
    assert "When &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "<title>T &amp; C</title>" in page and "<th>a&lt;</th>" in page and "<td>b&gt;</td>" in page
    assert 'id="odd_input"' in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing loaded from elsewhere


def test_the_command_line_renders_and_refuses_clearly(tmp_path: Path) -> None:
    out = tmp_path / "errors.html"
    done = subprocess.run(
        [sys.executable, "-m", "errorkit", "docs", "envelope_api", "--html", "-o", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert out.read_text() == (DOCS / "envelope_api.html").read_text()
    own = subprocess.run(
        [sys.executable, "-m", "errorkit", "docs", "tests.test_reference:OWN_KIT", "--format", "problem"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert own.returncode == 0 and '### <a id="campaign_archived"></a>`campaign_archived`' in own.stdout
    assert '"type": "https://docs.example.com/errors/campaign_archived"' in own.stdout
    for args, message in [
        (["docs", "nope"], "errorkit docs: error: unknown catalog 'nope': use one of ['detail_api', 'envelope_api', "
                           "'generic'] or module:attribute"),
        (["docs", "tests.nothing_here:kit"], "errorkit docs: error: cannot load 'tests.nothing_here:kit': "
                                             "ModuleNotFoundError: No module named 'tests.nothing_here'"),
        (["docs", "tests.test_reference:ROOT"], "errorkit docs: error: 'tests.test_reference:ROOT' is a PosixPath, "
                                                "not a Registry, an ErrorKit or an app"),
        (["docs"], "errorkit docs: error: name a catalog, or use --write FOLDER"),
    ]:  # fmt: skip
        bad = subprocess.run([sys.executable, "-m", "errorkit", *args], capture_output=True, text=True, cwd=ROOT)
        assert bad.returncode == 2 and bad.stdout == "", args
        assert bad.stderr.splitlines()[-1] == message


def test_the_command_line_says_in_one_line_what_it_cannot_write_or_load(tmp_path: Path) -> None:
    (tmp_path / "exploding.py").write_text('raise RuntimeError("no catalog today")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for args, message in [
        (["docs", "envelope_api", "--html", "-o", str(tmp_path / "missing" / "x.html")],
         f"errorkit docs: error: cannot write {tmp_path / 'missing' / 'x.html'}: No such file or directory\n"),
        (["docs", "envelope_api", "-o", str(tmp_path)], f"errorkit docs: error: cannot write {tmp_path}: Is a directory\n"),
        (["docs", "--write", str(tmp_path / "exploding.py" / "docs")],
         f"errorkit docs: error: cannot write {tmp_path / 'exploding.py' / 'docs'}: Not a directory\n"),
    ]:  # fmt: skip
        bad = subprocess.run([sys.executable, "-m", "errorkit", *args], capture_output=True, text=True, cwd=ROOT)
        assert (bad.returncode, bad.stdout, bad.stderr) == (2, "", message), args

    with open("/dev/full", "w") as full:  # standard output on a full disk
        unwritten = subprocess.run([sys.executable, "-m", "errorkit", "docs", "envelope_api"], stdout=full,
                                   stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    assert (unwritten.returncode, unwritten.stderr) == (
        2, "errorkit docs: error: cannot write standard output: No space left on device\n"
    )  # fmt: skip

    exploding = subprocess.run([sys.executable, "-m", "errorkit", "docs", "exploding:kit"], capture_output=True,
                               text=True, cwd=ROOT, env=env)  # fmt: skip
    assert (exploding.returncode, exploding.stdout) == (2, "") and "Traceback" not in exploding.stderr
    assert exploding.stderr.splitlines()[-1] == (
        "errorkit docs: error: cannot load 'exploding:kit': RuntimeError: no catalog today"
    )


OWN_KIT = ErrorKit(doc_url="https://docs.example.com/errors/{code}")
OWN_KIT.define(
    "campaign_archived", status=409, message="The campaign is archived.", when="It was archived.", fix="Unarchive it."
)


def test_a_mounted_reference_serves_each_code_and_the_kits_404() -> None:
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API, doc_url="http://testserver/errors/{code}")
    app = Starlette(routes=[Mount("/errors", kit.reference_app(PAGES["envelope_api"]))])
    kit.install(app)
    client = TestClient(app)
    index = client.get("/errors/")
    assert (index.status_code, index.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert index.text == kit.reference(PAGES["envelope_api"], app=app).html()
    assert 'id="quota_exceeded"' not in index.text  # no quotas stage on this app: not on its page...
    one = client.get("/errors/quota_exceeded", headers={"Host": "evil.example"})
    assert one.status_code == 200  # ...but every code of the kit keeps a page of its own
    assert one.text == kit.reference(PAGES["envelope_api"]).html(only="quota_exceeded", index_url="./")
    assert '<a href="./">All errors</a>' in one.text and "evil" not in client.get("/errors/quota_exceeded").text
    assert one.text.count("<section") == 1 and "<td>Knowledge Bases + Memory Stores</td>" in one.text
    missing = client.get("/errors/nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "code": "not_found",
            "message": "Not Found",
            "doc_url": "http://testserver/errors/not_found",
            "request_id": missing.headers["x-request-id"],
        }
    }


ENVELOPE_EXAMPLE_CODES = [
    "invalid_idempotency_key", "invalid_request_body", "unsupported_engine", "authentication_required",
    "expired_api_key", "invalid_api_key", "quota_exceeded", "insufficient_scope", "workspace_disabled", "wrong_project",
    "deployment_not_found", "integration_not_found", "not_found", "prompt_snippet_not_found", "method_not_allowed",
    "request_timeout", "conflict", "idempotency_key_in_use", "idempotency_response_unavailable", "payload_too_large",
    "idempotency_key_reused", "model_configuration_missing", "provider_credential_invalid", "variant_not_resolved",
    "rate_limit_exceeded", "internal_error", "not_implemented", "provider_error", "provider_overloaded",
    "service_unavailable", "provider_timeout",
]  # fmt: skip
DETAIL_EXAMPLE_CODES = [
    "invalid_idempotency_key", "invalid_json", "expired_api_key", "invalid_api_key", "insufficient_scope",
    "workspace_disabled", "workspace_forbidden", "not_found", "method_not_allowed", "campaign_locked", "graph_not_ready",
    "idempotency_key_in_use", "idempotency_response_unavailable", "synthesis_pending", "payload_too_large",
    "idempotency_key_reused", "validation_error", "rate_limited", "too_many_concurrent_requests", "internal_error",
    "service_unavailable",
]  # fmt: skip


@pytest.mark.parametrize(("example", "catalog", "listed"), [
    ("examples.envelope_api:app", catalogs.ENVELOPE_API, ENVELOPE_EXAMPLE_CODES),
    ("examples.detail_api:app", catalogs.DETAIL_API, DETAIL_EXAMPLE_CODES),
])  # fmt: skip
def test_the_examples_doc_urls_point_at_pages_they_serve(example: str, catalog: Registry, listed: list[str]) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with uvicorn(example, port=port, env={"REDIS_URL": "", "PUBLIC_URL": public}), httpx.Client() as client:
        if example.startswith("examples.envelope"):  # bodies carry the doc URL
            dev = {"Authorization": "Bearer sk-orq-dev.demo-dev-secret"}
            body = client.get(f"{public}/v2/deployments/nope", headers=dev).json()
            assert body["error"]["doc_url"] == f"{public}/errors/deployment_not_found"
        for definition in catalog:  # every code's doc URL (the kit's template) is a page of the app
            page = client.get(f"{public}/errors/{definition.code}")
            assert page.status_code == 200 and f'<section id="{definition.code}">' in page.text, definition.code
        index = client.get(f"{public}/errors/")
        assert index.status_code == 200  # the app's page: what it answers (its routes declare their codes)
        assert re.findall(r'<section id="([a-z_]+)">', index.text) == listed
        stage_codes = [d.code for d in STAGE_CODES if d.code not in catalog]  # answered from errorkit's own
        for code in stage_codes:
            assert client.get(f"{public}/errors/{code}").status_code == 200, code


def test_a_named_mount_and_two_kits_each_serve_their_own_pages() -> None:
    first, second = ErrorKit(catalog=catalogs.DETAIL_API), ErrorKit(catalog=catalogs.ENVELOPE_API)
    app = Starlette(routes=[
        Mount("/detail-errors", first.reference_app(), name="errors"),
        Mount("/envelope-errors", second.reference_app(), name="more"),
    ])  # fmt: skip
    first.install(app)
    client = TestClient(app)
    assert client.get("/detail-errors/campaign_locked").status_code == 200
    assert client.get("/envelope-errors/campaign_locked").status_code == 404  # not a code of the second
    page = client.get("/envelope-errors/quota_exceeded").text
    assert '<a href="./">All errors</a>' in page and "detail-errors" not in page


# -- An app's page: what the app can answer with, by status, with the routes that return each code ---------------


class Widget(BaseModel):
    name: str


def widgets_app(kit: ErrorKit, **stages: object) -> FastAPI:
    """Four routes (one declaring its own code), /health, the reference mounted at /errors; `kit` installed."""
    if "widget_not_found" not in kit.registry:
        kit.define("widget_not_found", status=404, message="No widget {widget_id}.", details={"widget_id": str})
    app = FastAPI()

    @app.get("/widgets")
    async def list_widgets() -> list[Widget]:
        return []

    @app.post("/widgets", status_code=201)
    async def create_widget(widget: Widget) -> Widget:
        return widget

    @app.get("/widgets/{widget_id}")
    @raises("widget_not_found")
    async def read_widget(widget_id: str) -> Widget:
        raise kit.error("widget_not_found", widget_id=widget_id)

    @app.delete("/widgets/{widget_id}", status_code=204)
    async def delete_widget(widget_id: str) -> None:
        return None

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.mount("/errors", kit.reference_app())
    kit.install(app, **stages)  # type: ignore[arg-type]
    return app


def public(store: MemoryBackend) -> APIKeyAuth:
    return APIKeyAuth(store, public_paths=["/health", "/errors*", "/docs*", "/openapi.json", "/redoc"])


def served_codes(app: Starlette) -> list[str]:
    """The codes of the app's page as it serves it, in their order, checked the same in the table and the sections."""
    page = TestClient(app).get("/errors/").text
    sections = re.findall(r'<section id="([a-z_]+)">', page)
    assert re.findall(r'<tr><td>\d{3}</td><td><a href="#([a-z_]+)">', page) == sections
    return sections


def test_an_app_with_only_the_error_handlers_lists_no_stage_codes() -> None:
    app = widgets_app(ErrorKit())
    assert served_codes(app) == [
        "invalid_json", "not_found", "widget_not_found", "method_not_allowed", "validation_error", "internal_error",
    ]  # fmt: skip


def test_codes_are_ordered_by_status_then_code_in_sections_per_status() -> None:
    store = MemoryBackend()
    kit = ErrorKit(format="envelope")
    kit.define("widget_locked", status=409, message="The widget is locked.")
    app = widgets_app(
        kit,
        auth=public(store),
        rate_limit=RateLimiter(store, limits="100/minute"),
        idempotency=Idempotency(store),
        concurrency=ConcurrencyLimit(store, limit=2, on_failure="fail_closed"),
        quotas=Quotas(store, limits={"widgets": {"free": 3}}, creates={"POST /widgets": "widgets"}),
    )
    assert served_codes(app) == [
        "invalid_idempotency_key", "invalid_request_body", "invalid_request_parameters",
        "expired_api_key", "invalid_api_key", "unauthorized",
        "quota_exceeded",
        "workspace_disabled",
        "not_found", "widget_not_found",
        "method_not_allowed",
        "idempotency_key_in_use", "idempotency_response_unavailable", "widget_locked",
        "payload_too_large",
        "idempotency_key_reused",
        "rate_limit_exceeded", "too_many_concurrent_requests",
        "internal_error",
        "service_unavailable",
    ]  # fmt: skip
    page = kit.reference(app=app).markdown()
    assert re.findall(r"^## (.+)$", page, flags=re.M) == [
        "Quick reference", "400 Bad Request", "401 Unauthorized", "402 Payment Required", "403 Forbidden",
        "404 Not Found", "405 Method Not Allowed", "409 Conflict", "413 Content Too Large", "422 Unprocessable Entity",
        "429 Too Many Requests", "500 Internal Server Error", "503 Service Unavailable",
    ]  # fmt: skip
    assert re.findall(r'^### <a id="([a-z_]+)"></a>', page, flags=re.M) == served_codes(app)


def test_an_app_with_auth_and_a_limiter_lists_401_403_429_but_no_quota_or_idempotency_code() -> None:
    store = MemoryBackend()
    app = widgets_app(ErrorKit(format="envelope"), auth=public(store), rate_limit=RateLimiter(store, limits="9/second"))
    codes = served_codes(app)
    assert {"unauthorized", "invalid_api_key", "expired_api_key", "workspace_disabled", "rate_limit_exceeded"} <= set(
        codes
    )
    assert "service_unavailable" in codes  # auth refuses a key it cannot check while the store is away
    for absent in ("quota_exceeded", "too_many_concurrent_requests", "invalid_idempotency_key",
                   "idempotency_key_in_use", "idempotency_key_reused", "payload_too_large",
                   "too_many_requests", "forbidden", "gone", "bad_gateway"):  # fmt: skip
        assert absent not in codes, absent
    # nothing fails closed without auth: a limiter failing open (its default) adds no 503
    alone = widgets_app(
        ErrorKit(format="envelope"), rate_limit=RateLimiter(store, limits="9/second", on_failure="fail_open")
    )
    assert "rate_limit_exceeded" in served_codes(alone) and "service_unavailable" not in served_codes(alone)


@pytest.mark.parametrize(("format", "validation", "not_listed"), [
    ("problem", ["invalid_json", "validation_error"], ["invalid_request_body", "invalid_request_parameters"]),
    ("detail", ["invalid_json", "validation_error"], ["invalid_request_body", "invalid_request_parameters"]),
    ("envelope", ["invalid_request_body", "invalid_request_parameters"], ["validation_error", "invalid_json"]),
])  # fmt: skip
def test_an_app_lists_the_validation_codes_of_its_format(
    format: str, validation: list[str], not_listed: list[str]
) -> None:
    app = widgets_app(ErrorKit(format=format))
    codes = served_codes(app)
    assert [code for code in codes if code in validation + not_listed] == validation
    if format == "problem":
        page = TestClient(app).get("/errors/").text
        assert '<tr><td>422</td><td><a href="#validation_error"><code>validation_error</code></a></td>' in page


def test_the_routes_marks_of_a_fastapi_app_are_its_routes() -> None:
    store = MemoryBackend()
    kit = ErrorKit(format="problem")
    app = widgets_app(kit, auth=public(store), rate_limit=RateLimiter(store, limits="9/second"))
    reference = kit.reference(app=app)
    assert reference.operations == (
        "GET /widgets", "POST /widgets", "GET /widgets/{widget_id}", "DELETE /widgets/{widget_id}", "GET /health"
    )  # fmt: skip
    everything_but_health = ("every route except", ["GET /health"])
    assert {code: reference.routes_for(code) for code in reference.codes()} == {
        "invalid_json": ("", ["POST /widgets"]),
        "expired_api_key": everything_but_health,
        "invalid_api_key": everything_but_health,
        "unauthorized": everything_but_health,
        "workspace_disabled": everything_but_health,
        "not_found": None,  # any path no route serves
        "widget_not_found": ("", ["GET /widgets/{widget_id}"]),
        "method_not_allowed": None,
        "validation_error": ("", ["POST /widgets", "GET /widgets/{widget_id}", "DELETE /widgets/{widget_id}"]),
        "rate_limit_exceeded": everything_but_health,  # (/health is exempt by default)
        "internal_error": None,
        "service_unavailable": everything_but_health,
    }
    page = reference.markdown()
    assert "**Returned by:** `GET /widgets/{widget_id}`\n" in page
    assert "**Returned by:** every route except `GET /health`\n" in page
    html = TestClient(app).get("/errors/widget_not_found").text
    assert "<p><b>Returned by:</b> <code>GET /widgets/{widget_id}</code></p>" in html

    # the marks are the OpenAPI document's: each operation's error examples name the codes it answers
    in_document: dict[str, set[str]] = {}
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for code in response.get("content", {}).get("application/problem+json", {}).get("examples", {}):
                    assert int(status) >= 400
                    in_document.setdefault(code, set()).add(f"{method.upper()} {path}")
    assert {code: set(routes) for code, routes in reference.returned_by.items()} == {
        code: routes
        for code, routes in in_document.items()
        if code != "internal_error"  # (500: any request)
    }


def test_the_document_is_made_once_and_the_page_once_per_app() -> None:
    app = widgets_app(ErrorKit(format="problem"))
    client = TestClient(app)
    document = app.openapi()
    first = client.get("/errors/")
    assert app.openapi() is document  # the page read the cached document, and left it as it was
    assert client.get("/errors/").text == first.text and client.get("/openapi.json").json() == document


DOCUMENTED = ErrorKit(format="envelope", catalog=catalogs.ENVELOPE_API)


@raises("deployment_not_found")
async def read_deployment(request: Request) -> Response:
    """Read a deployment
    ---
    responses:
      200:
        description: The deployment
    """
    raise DOCUMENTED.error("deployment_not_found", key=request.path_params["key"])


async def undocumented(request: Request) -> Response:
    return JSONResponse({})


def test_a_starlette_app_is_marked_from_its_documents_operations_and_unmarked_without_one() -> None:
    schemas = DOCUMENTED.schemas({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}})
    app = Starlette(routes=[
        Route("/deployments/{key}", read_deployment), Route("/other", undocumented), schemas.route(),
        Mount("/errors", DOCUMENTED.reference_app()),
    ])  # fmt: skip
    DOCUMENTED.install(app)
    reference = DOCUMENTED.reference(app=app)
    assert reference.operations == ("GET /deployments/{key}",)  # the document's (the other route has no docstring)
    assert reference.routes_for("deployment_not_found") == ("", ["GET /deployments/{key}"])
    # a route declares its codes: the catalog's other codes (provider_error...) are not listed
    assert served_codes(app) == [
        "invalid_request_body", "deployment_not_found", "not_found", "method_not_allowed", "internal_error",
    ]  # fmt: skip

    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    kit.define("deployment_archived", status=409, message="The deployment is archived.")
    bare = Starlette(routes=[Route("/other", undocumented), Mount("/errors", kit.reference_app())])
    kit.install(bare)
    codes = served_codes(bare)  # no route declares a code: the catalog's own codes are all listed, and the kit's
    # not the stages' codes (quota_exceeded, authentication_required...), nor the generic statuses never sent
    assert codes == [
        "invalid_request_body", "unsupported_engine", "deployment_not_found", "integration_not_found", "not_found",
        "prompt_snippet_not_found", "method_not_allowed", "request_timeout", "deployment_archived",
        "model_configuration_missing", "provider_credential_invalid", "variant_not_resolved", "internal_error",
        "not_implemented", "provider_error", "provider_overloaded", "provider_timeout",
    ]  # fmt: skip
    assert "Returned by" not in TestClient(bare).get("/errors/").text  # no document: no marks


def test_with_the_apps_own_handlers_the_page_lists_no_handler_code() -> None:
    store = MemoryBackend()
    app = widgets_app(ErrorKit(format="problem"), auth=public(store), handlers=False)
    assert served_codes(app) == [
        "expired_api_key", "invalid_api_key", "unauthorized", "workspace_disabled", "widget_not_found",
        "service_unavailable",
    ]  # fmt: skip


def test_the_stage_vocabulary_names_every_code_a_stage_refuses_with() -> None:
    store = MemoryBackend()
    auth = APIKeyAuth(store)
    limiter = RateLimiter(store, limits="1/second", on_failure="fail_closed")
    idempotency = Idempotency(store, required=["/w/*"])
    concurrency = ConcurrencyLimit(store, limit=1, on_failure="fail_closed")
    quotas = Quotas(store, limits={"w": {"free": 1}}, creates={"POST /w/{workspace_id}/{project_id}": "w"})
    path = "/w/{workspace_id}/{project_id}"
    refusals = [*auth.route_refusals(path, ["w:write"]), *limiter.route_refusals("POST", path),
                *idempotency.route_refusals("POST", path), *concurrency.route_refusals("POST", path),
                *quotas.route_refusals("POST", path)]  # fmt: skip
    codes = {code for refusal in refusals for code in refusal.codes}
    assert codes == STAGE_VOCABULARY  # (a refusal names the codes it means, the first the catalog defines wins)


def test_the_page_of_an_app_needs_its_kit_installed_and_the_command_line_renders_it() -> None:
    kit = ErrorKit()
    with pytest.raises(ValueError, match="this kit is not installed on that app"):
        kit.reference(app=Starlette())
    assert reference_of("tests.test_reference:CLI_APP").markdown() == CLI_KIT.reference(app=CLI_APP).markdown()
    for name, message in [
        ("tests.test_reference:BARE_APP", "'tests.test_reference:BARE_APP' is an app no ErrorKit is installed on"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            reference_of(name)
    with pytest.raises(ValueError, match="drop --format and --doc-url"):
        reference_of("tests.test_reference:CLI_APP", format="problem")
    done = subprocess.run([sys.executable, "-m", "errorkit", "docs", "tests.test_reference:CLI_APP", "--html"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout == CLI_KIT.reference(app=CLI_APP).html()
    assert re.findall(r'<section id="([a-z_]+)">', done.stdout) == served_codes(CLI_APP)


def test_every_anchor_of_a_page_resolves() -> None:
    store = MemoryBackend()
    app = widgets_app(ErrorKit(), auth=public(store), idempotency=Idempotency(store))
    for page in (TestClient(app).get("/errors/").text, (DOCS / "envelope_api.html").read_text(),
                 (DOCS / "detail_api.html").read_text()):  # fmt: skip
        ids = set(re.findall(r' id="([^"]+)"', page))
        targets = re.findall(r'href="#([^"]+)"', page)
        assert targets and set(targets) <= ids
        assert len(re.findall(r'<section id="', page)) == len(targets)  # one row of the table per code


CLI_KIT = ErrorKit(format="problem")
CLI_APP = widgets_app(CLI_KIT)
BARE_APP = Starlette()


# -- Mistakes and edges: codes a kit lacks, pages served alone, mounts, documents kept to an app ---------------


def declaring_app(framework: str, kit: ErrorKit, code: str) -> Starlette:
    """/widgets/{widget_id} declaring `code`, the reference mounted at /errors, `kit` installed."""
    app: Starlette
    if framework == "fastapi":
        app = FastAPI()

        @app.get("/widgets/{widget_id}")
        @raises(code)
        async def read_widget(widget_id: str) -> dict[str, str]:
            return {}

    else:

        @raises(code)
        async def read_widget(request: Request) -> Response:  # type: ignore[misc]
            return JSONResponse({})

        app = Starlette(routes=[Route("/widgets/{widget_id}", read_widget)])
    app.mount("/errors", kit.reference_app())
    kit.install(app)
    return app


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
def test_a_code_raises_names_that_the_kit_lacks_fails_the_start_up_naming_the_endpoint_and_the_nearest_code(
    framework: str,
) -> None:
    kit = ErrorKit()
    kit.define("widget_gone", status=410, message="The widget is gone.")
    app = declaring_app(framework, kit, "widget_gon")
    said = re.escape("read_widget (/widgets/{widget_id}): no error code 'widget_gon' in registry 'app'; did you mean "
                     "'widget_gone'?")  # fmt: skip
    with pytest.raises(ConfigurationError, match=rf"^errorkit\.raises\('widget_gon'\) on .*{said}"), TestClient(app):
        pass
    with pytest.raises(ConfigurationError, match=said):  # the page from Python: the same message, not UnknownCode
        kit.reference(app=app)

    # served without the lifespan, every request is the kit's 500 (as for any start-up mistake), its pages too
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/errors/").status_code == client.get("/errors/not_found").status_code == 500


def test_fastapis_document_is_published_only_once_its_errors_are_in(monkeypatch: pytest.MonkeyPatch) -> None:
    app = widgets_app(ErrorKit())

    def failing(self: ErrorDocumentation, document: dict[str, Any], operations: object) -> dict[str, Any]:
        raise RuntimeError("no errors today")

    monkeypatch.setattr(ErrorDocumentation, "apply", failing)
    with pytest.raises(RuntimeError, match="no errors today"):
        app.openapi()
    assert app.openapi_schema is None  # not FastAPI's own document, which /openapi.json would then serve as it is
    monkeypatch.undo()
    document = TestClient(app).get("/openapi.json").json()
    assert "widget_not_found" in json.dumps(document["paths"]["/widgets/{widget_id}"]["get"]["responses"])


class WatchedFastAPI(FastAPI):
    """A FastAPI app noting, when a document is published in `openapi_schema`, whether its errors were in first."""

    published_before_its_errors = False

    @property  # type: ignore[override]
    def openapi_schema(self) -> dict[str, Any] | None:
        return self.__dict__.get("_schema")

    @openapi_schema.setter
    def openapi_schema(self, document: dict[str, Any] | None) -> None:
        made = getattr(openapi, "_FASTAPI_DOCUMENTS", {}).get(self)
        if document is not None and "Error" in document.get("components", {}).get("schemas", {}):
            self.published_before_its_errors |= made is None or made.document is not document
        self.__dict__["_schema"] = document


def test_a_page_made_while_the_document_is_published_finds_its_errors() -> None:
    # (a thread reading the page between the two steps found the document without its errors: a KeyError)
    kit = ErrorKit()
    app = WatchedFastAPI()

    @app.get("/widgets")
    @raises("not_found")
    async def list_widgets() -> list[str]:
        return []

    kit.install(app)
    assert kit.reference(app=app).routes_for("not_found") is None  # (404: from any request)
    assert kit.reference(app=app).operations == ("GET /widgets",) and not app.published_before_its_errors


def test_a_codes_page_is_the_catalogs_when_the_apps_page_cannot_be_made(caplog: pytest.LogCaptureFixture) -> None:
    kit = ErrorKit()
    app = FastAPI()

    def broken() -> dict[str, Any]:
        raise RuntimeError("schema exploded")

    app.openapi = broken  # type: ignore[method-assign]
    app.mount("/errors", kit.reference_app())
    kit.install(app)
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.WARNING, logger="errorkit"):
        one = client.get("/errors/not_found")
    assert one.status_code == 200 and one.text == kit.reference().html(only="not_found", index_url="./")
    assert "RuntimeError: schema exploded" in caplog.text
    index = client.get("/errors/")  # the app's page itself: the kit's 500
    assert index.status_code == 500 and index.json()["code"] == "internal_error"


def test_the_command_line_says_in_one_line_why_an_apps_page_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rv_typo_app.py").write_text(
        "from fastapi import FastAPI\nfrom errorkit import ErrorKit, raises\nkit = ErrorKit()\n"
        "kit.define('widget_gone', status=410, message='Gone.')\napp = FastAPI()\n"
        "@app.get('/w')\n@raises('widget_gon')\nasync def w(): return {}\nkit.install(app)\n"
    )
    (tmp_path / "rv_broken_app.py").write_text(
        "from fastapi import FastAPI\nfrom errorkit import ErrorKit\nkit = ErrorKit()\napp = FastAPI()\n"
        "def broken():\n    raise RuntimeError('schema exploded')\napp.openapi = broken\nkit.install(app)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name, said in [
        ("rv_typo_app:app", "ConfigurationError: errorkit.raises('widget_gon') on w (/w): no error code 'widget_gon' "
                            "in registry 'app'; did you mean 'widget_gone'? (kit.define() it, or name a code the kit "
                            "has)"),
        ("rv_broken_app:app", "RuntimeError: schema exploded"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit) as exited:
            main(["docs", name])
        err = capsys.readouterr().err
        assert exited.value.code == 2 and "Traceback" not in err
        assert err.splitlines()[-1] == f"errorkit docs: error: cannot make the page of {name!r}: {said}"
    for module in ("rv_typo_app", "rv_broken_app"):
        monkeypatch.delitem(sys.modules, module, raising=False)


def test_a_reference_app_served_without_a_starlette_app_serves_the_catalogs_pages() -> None:
    kit = ErrorKit()
    alone = TestClient(kit.reference_app())
    assert alone.get("/").text == kit.reference().html()
    assert alone.get("/not_found").text == kit.reference().html(only="not_found", index_url="./")
    routed = TestClient(Router([Mount("/errors", kit.reference_app())]))  # (a bare Router puts no app in the scope)
    assert routed.get("/errors/").text == kit.reference().html()


def test_routes_under_mounts_and_left_out_of_the_document_are_listed_but_named_only_from_the_document() -> None:
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    page = ReferencePage(title="Nested errors")
    app = FastAPI()

    @app.get("/ping")
    @raises("integration_not_found")
    async def ping() -> dict[str, str]:
        return {}

    @app.get("/internal", include_in_schema=False)
    @raises("prompt_snippet_not_found")
    async def internal() -> dict[str, str]:
        return {}

    app.mount("/v1", Router([Route("/deployments/{key}", read_deployment)]))
    app.mount("/site", Router([Mount("/errors", kit.reference_app(page))]))  # (the page's text, two mounts deep)
    kit.install(app)
    reference = kit.reference(app=app)
    assert {"deployment_not_found", "prompt_snippet_not_found", "integration_not_found"} <= set(reference.codes())
    assert reference.operations == ("GET /ping",)  # the published document's operations, and only those
    assert reference.routes_for("integration_not_found") == ("", ["GET /ping"])
    assert reference.routes_for("deployment_not_found") is reference.routes_for("prompt_snippet_not_found") is None
    assert reference.page is page
    assert TestClient(app).get("/site/errors/").text == reference.html()


def test_a_starlette_apps_page_reads_its_limit_declarations_before_any_request() -> None:
    kit = ErrorKit()

    @errorkit.limit("5/minute")
    async def create(request: Request) -> Response:
        return JSONResponse({})

    app = Starlette(routes=[Route("/widgets", create, methods=["POST"])])
    shadow = RateLimiter(MemoryBackend(), limits=errorkit.Limit(100, 60, shadow=True))  # (it refuses nothing itself)
    kit.install(app, rate_limit=shadow)
    assert "rate_limit_exceeded" in kit.reference(app=app).codes()  # (the route checks read the declaration)


def test_making_a_page_says_nothing_of_the_lifespan(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryBackend()
    app = widgets_app(ErrorKit(), rate_limit=RateLimiter(store, limits="5/minute"), check_stores=True)
    with caplog.at_level(logging.WARNING, logger="errorkit"):
        assert reference_of("tests.test_reference:CHECKED_APP").codes()
        assert "rate_limit_exceeded" in app.openapi()["paths"]["/widgets"]["get"]["responses"]["429"]["description"]
    assert caplog.records == []  # (no "served without the lifespan protocol": the app is not being served)


@raises("integration_not_found")
async def read_integration(request: Request) -> Response:
    """Read an integration
    ---
    responses:
      200:
        description: The integration
    """
    return JSONResponse({})


def test_a_starlette_document_is_the_apps_whose_routes_serve_it_and_lives_as_long_as_the_app() -> None:
    schemas = DOCUMENTED.schemas({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}})
    for i in range(60):  # (apps made and dropped in turn: a new one often gets a dead one's id)
        endpoint, path = (read_deployment, "/deployments/{key}") if i % 2 else (read_integration, "/integrations/{id}")
        app = Starlette(routes=[Route(path, endpoint), schemas.route()])
        DOCUMENTED.install(app)
        assert DOCUMENTED.reference(app=app).operations == (f"GET {path}",), i
        del app
        gc.collect()
    assert len(schemas._made) == 0  # no document outlives its app

    elsewhere = Starlette(routes=[Route("/deployments/{key}", read_deployment)])  # (it does not serve the document)
    DOCUMENTED.install(elsewhere)
    reference = DOCUMENTED.reference(app=elsewhere)
    assert reference.operations == () and reference.routes_for("deployment_not_found") is None


def test_an_app_that_publishes_no_document_names_none_of_its_routes() -> None:
    kit = ErrorKit()
    app = FastAPI(openapi_url=None)

    @app.post("/internal/admin/rotate-master-key")
    async def rotate(reason: str) -> dict[str, str]:
        return {}

    app.mount("/errors", kit.reference_app())
    kit.install(app)
    page = TestClient(app).get("/errors/").text
    assert "Returned by" not in page and "/internal/admin" not in page
    assert 'id="validation_error"' in page  # (its codes are listed all the same)


def test_a_catalog_named_app_is_not_taken_for_the_kits_own_codes() -> None:
    catalog = Registry("app", include=[catalogs.GENERIC])
    catalog.define("widget_gone", status=410, message="The widget is gone.")
    catalog.define("order_locked", status=409, message="The order is locked.")
    kit = ErrorKit(catalog=catalog)
    kit.define("widget_archived", status=409, message="The widget is archived.")
    app = declaring_app("fastapi", kit, "widget_gone")
    codes = kit.reference(app=app).codes()
    assert "widget_gone" in codes and "widget_archived" in codes  # declared; the kit's own
    assert "order_locked" not in codes  # the catalog's, declared by no route
    assert catalog.own_codes() == {"widget_gone", "order_locked"} and kit.registry.own_codes() == {"widget_archived"}
    assert kit.registry.without("order_locked").own_codes() == {"widget_archived"}


def test_the_page_says_what_it_does_not_list() -> None:
    bare_status = (
        "A route that raises a bare HTTP status (an HTTPException with 403 or 409) answers in this format too, "
        "but its code is listed only where a route declares it."
    )
    undeclared = "a code of the catalog no route declares is not listed (it keeps its own page)."
    widgets_kit = ErrorKit()
    declares = widgets_kit.reference(app=widgets_app(widgets_kit)).markdown()
    assert f"{bare_status} The routes declare the codes they return, so {undeclared}" in normalized(declares)
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    app = Starlette(routes=[Route("/other", undocumented)])
    kit.install(app)
    nothing_declared = normalized(kit.reference(app=app).markdown())
    assert bare_status in nothing_declared and undeclared not in nothing_declared


def test_the_command_finds_modules_in_its_folder_and_reference_of_leaves_the_import_path_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rv_folder_kit.py").write_text("from errorkit import ErrorKit\nkit = ErrorKit()\n")
    (tmp_path / "rv_unset_app.py").write_text("import os\napp = os.environ['NOPE_NOT_SET']\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    with pytest.raises(ValueError, match="cannot load 'rv_folder_kit:kit': ModuleNotFoundError: No module named"):
        reference_of("rv_folder_kit:kit")  # a library function: it leaves the import path as it is
    assert sys.path == before

    assert main(["docs", "rv_folder_kit:kit"]) == 0 and '<a id="not_found"></a>' in capsys.readouterr().out
    assert main(["contract", "save", "rv_folder_kit:kit"]) == 0 and '"not_found"' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["docs", "rv_unset_app:app"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "errorkit docs: error: cannot load 'rv_unset_app:app': KeyError: 'NOPE_NOT_SET'"
    )
    monkeypatch.delitem(sys.modules, "rv_folder_kit", raising=False)


CHECKED_APP = widgets_app(ErrorKit(), rate_limit=RateLimiter(MemoryBackend(), limits="5/minute"), check_stores=True)


def test_a_mounted_app_with_a_kit_of_its_own_declares_that_kits_codes() -> None:
    outer_kit, inner_kit = ErrorKit(), ErrorKit()
    inner_kit.define("widget_gone", status=410, message="The widget is gone.")
    inner = declaring_app("fastapi", inner_kit, "widget_gone")
    app = FastAPI()
    app.mount("/inner", inner)
    outer_kit.install(app)
    with TestClient(app) as client:  # (its code is not the outer kit's: no start-up failure)
        assert client.get("/inner/errors/widget_gone").status_code == 200
    assert "widget_gone" not in outer_kit.reference(app=app).codes()
    assert "widget_gone" in inner_kit.reference(app=inner).codes()
