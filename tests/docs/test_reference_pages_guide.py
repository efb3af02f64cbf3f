"""docs/guides/reference-pages.md: the example app's page (order by status, only the installed stages' codes,
routes marked), the `errorkit docs` commands it shows, and the output blocks it prints.

Snippets: reference_pages/app.py (loaded, and imported by the commands), reference_pages/docs.sh (run).
"""

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from errorkit import catalogs
from errorkit._app.cli import reference_of
from tests.docs.support import DOCS, check_exchange, commands, exchange, fences, load_in_memory, shell, snippet_path

GUIDE = "guides/reference-pages.md"
APP_CODES = [
    "invalid_json", "expired_api_key", "invalid_api_key", "unauthorized", "workspace_disabled", "not_found",
    "widget_not_found", "method_not_allowed", "validation_error", "rate_limit_exceeded", "internal_error",
    "service_unavailable",
]  # fmt: skip
STATUSES = [400, 401, 401, 401, 403, 404, 404, 405, 422, 429, 500, 503]


def example() -> dict[str, Any]:
    return load_in_memory("reference_pages/app.py")


def client(app: Any) -> TestClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (Starlette's notice about httpx)
        return TestClient(app)


def test_the_example_page_lists_what_the_app_answers_by_status_with_its_routes() -> None:
    g = example()
    kit, app = g["kit"], g["app"]
    served = client(app).get("/errors/")
    assert (served.status_code, served.headers["content-type"]) == (200, "text/html; charset=utf-8")
    html = served.text
    assert re.findall(r'<section id="([a-z_]+)">', html) == APP_CODES
    rows = re.findall(r'<tr><td>(\d{3})</td><td><a href="#([a-z_]+)">', html)
    assert rows == [(str(status), code) for status, code in zip(STATUSES, APP_CODES, strict=True)]
    assert re.findall(r'<h2 id="status-(\d{3})">', html) == [
        "400",
        "401",
        "403",
        "404",
        "405",
        "422",
        "429",
        "500",
        "503",
    ]
    assert "<title>Widgets API errors</title>" in html
    assert "<p>Send your API key in the X-API-Key header. Every error body is application/problem+json.</p>" in html

    # the stages installed (auth, rate limiting) and nothing of those that are not
    for absent in ("quota_exceeded", "too_many_concurrent_requests", "invalid_idempotency_key", "idempotency_key_reused",
                   "insufficient_scope", "invalid_request_body", "invalid_request_parameters", "gone", "bad_gateway"):  # fmt: skip
        assert f'id="{absent}"' not in html, absent
    assert len(kit.reference().codes()) == 36  # "of the 36 the kit knows"

    # routes marked from the OpenAPI document
    reference = kit.reference(app=app)
    assert reference.operations == ("GET /widgets", "POST /widgets", "GET /widgets/{widget_id}", "GET /health")
    assert reference.routes_for("widget_not_found") == ("", ["GET /widgets/{widget_id}"])
    assert reference.routes_for("invalid_json") == ("", ["POST /widgets"])
    keyed = ("", ["GET /widgets", "POST /widgets", "GET /widgets/{widget_id}"])  # /health and /errors are public
    assert [reference.routes_for(code) for code in ("unauthorized", "rate_limit_exceeded", "service_unavailable")] == [
        keyed
    ] * 3
    assert reference.routes_for("not_found") is None and reference.routes_for("internal_error") is None
    assert "<p><b>Returned by:</b> <code>GET /widgets/{widget_id}</code></p>" in html
    one = client(app).get("/errors/widget_not_found").text
    assert one.count("<section") == 1 and "<p><b>Returned by:</b> <code>GET /widgets/{widget_id}</code></p>" in one
    assert client(app).get("/errors/quota_exceeded").status_code == 200  # every code of the kit has its page


def test_the_pages_text_blocks_are_the_apps_markdown() -> None:
    g = example()
    markdown = g["kit"].reference(app=g["app"]).markdown()
    table, summary, section = fences(GUIDE, "text")
    assert markdown.startswith("# Widgets API errors\n")
    assert "## Quick reference\n\n" + table + "\n## 400 Bad Request\n" in markdown
    assert section in markdown and section.startswith('### <a id="widget_not_found"></a>')
    # what the page does not list, said under its introduction as the guide shows it
    intro = "Send your API key in the X-API-Key header. Every error body is application/problem+json.\n\n"
    assert intro + summary in markdown
    assert "HTTPException" in summary and "a code of the catalog no route declares is not listed" in summary


def test_the_404_of_an_unknown_code_is_as_shown() -> None:
    (shown,) = fences(GUIDE, "http")
    assert shown == exchange(GUIDE, "GET /errors/nope HTTP/1.1")
    # (the block shows the 404's content-type and request id: only those headers are compared)
    check_exchange(shown, client(example()["app"]), all_headers=False)


def test_the_commands_run_and_write_the_pages_shown(tmp_path: Path) -> None:
    shutil.copy(snippet_path("reference_pages/app.py"), tmp_path / "app.py")
    lines = commands("reference_pages/docs.sh")
    for command in lines:
        assert re.match(r"(errorkit|python -m errorkit) docs ", command), command
    ran = shell(lines, {"REDIS_URL": "memory://", "PYTHONWARNINGS": "ignore"}, cwd=tmp_path)
    assert [(r.status, r.err) for r in ran] == [(0, "")] * len(lines), ran
    outputs = [r.out for r in ran]

    assert (tmp_path / "errors.md").read_text() == reference_of("envelope_api").markdown()
    assert (tmp_path / "errors.md").read_text() == (DOCS / "reference" / "envelope_api.md").read_text()
    assert (tmp_path / "errors.html").read_text() == (DOCS / "reference" / "detail_api.html").read_text()

    g = example()
    kit, app = g["kit"], g["app"]
    catalog = (tmp_path / "catalog.md").read_text()
    codes = re.findall(r'^### <a id="([a-z_]+)"></a>', catalog, flags=re.M)
    assert codes == kit.reference().codes() and len(codes) == 36
    assert {d.code for d in catalogs.GENERIC} <= set(codes) and "quota_exceeded" in codes

    assert (tmp_path / "app-errors.html").read_text() == client(app).get("/errors/").text
    assert outputs[-1] == kit.reference(app=app).markdown()
    table, summary, section = fences(GUIDE, "text")
    assert table in outputs[-1] and summary in outputs[-1] and section in outputs[-1]
