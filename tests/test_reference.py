"""Reference pages: generated from the registry, carrying both documents' content, committed, served."""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from errorkit import ErrorKit, ReferencePage, Registry, Table, catalogs
from errorkit._app.cli import write_built_in
from errorkit.catalogs.pages import PAGES
from errorkit.catalogs.traffic import STAGE_CODES
from tests.support.servers import free_port, uvicorn

ROOT = Path(__file__).parent.parent
SPEC = Path(__file__).parent / "spec"
DOCS = ROOT / "docs"


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
        "detail_api.html", "detail_api.md", "envelope_api.html", "envelope_api.md"
    ]  # fmt: skip
    for path in written:
        committed = DOCS / path.name
        assert committed.read_text() == path.read_text(), (
            f"{committed} is stale: run `python -m errorkit docs --write docs`"
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
    assert page.index("## Authentication errors") < page.index("## Quota") < page.index("## HTTP statuses")


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
        (["docs", "tests.nothing_here:kit"], "errorkit docs: error: cannot load 'tests.nothing_here:kit': No module "
                                             "named 'tests.nothing_here'"),
        (["docs", "tests.test_reference:ROOT"], "errorkit docs: error: 'tests.test_reference:ROOT' is a PosixPath, "
                                                "not a Registry or an ErrorKit"),
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
    assert exploding.stderr.splitlines()[-1] == "errorkit docs: error: cannot load 'exploding:kit': no catalog today"


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
    assert index.text == kit.reference(PAGES["envelope_api"]).html()
    one = client.get("/errors/quota_exceeded", headers={"Host": "evil.example"})
    assert one.status_code == 200
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


@pytest.mark.parametrize(("example", "catalog"), [
    ("examples.envelope_api:app", catalogs.ENVELOPE_API), ("examples.detail_api:app", catalogs.DETAIL_API),
])  # fmt: skip
def test_the_examples_doc_urls_point_at_pages_they_serve(example: str, catalog: Registry) -> None:
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
        stage_codes = [d.code for d in STAGE_CODES if d.code not in catalog]  # answered from errorkit's own
        assert index.status_code == 200 and index.text.count("<section") == len(catalog) + len(stage_codes)
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
