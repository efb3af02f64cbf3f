"""The README, the project's front page on GitHub and PyPI: its quick start runs, its examples'
keys and requests work, and every link is absolute and names a page that exists."""

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.support.servers import uvicorn

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
SITE = "https://errorkit.github.io/errorkit/"
REPOSITORY = "https://github.com/errorkit/errorkit/blob/main/"
LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<url>[^)\s]+)\)")


def _section(heading: str) -> str:
    return README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_quick_start_runs() -> None:
    code = re.search(r"## Quick start\n\n```python\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    r = TestClient(namespace["app"]).post("/campaigns/c_1/report", headers={"X-Request-ID": "q"})  # type: ignore[arg-type]
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "error": {
            "code": "synthesis_pending",
            "message": "Campaign c_1 hasn't completed synthesis yet",
            "doc_url": "https://docs.example.com/errors/synthesis_pending",
            "details": {"campaign_id": "c_1"},
            "request_id": "q",
        }
    }


def test_install_lines_name_the_extras_that_exist() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'pip install "errorkit[fastapi]" "uvicorn[standard]"' in README
    assert "Python 3.11+; extras: fastapi, metrics, openapi" in README
    assert 'requires-python = ">=3.11"' in pyproject
    for extra in ("fastapi", "metrics", "openapi"):
        assert re.search(rf"^{extra} = \[", pyproject, re.M), extra


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc gives a heading (its default slugify)."""
    text = re.sub(r"[`*]", "", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)  # (no headings inside code)
    headings = re.findall(r"^#{1,6} (.+?)\s*$", text, re.M)
    return {_slug(h) for h in headings} | set(re.findall(r"\{#([\w-]+)\}", text))


def test_links_are_absolute_and_name_pages_that_exist() -> None:
    """The README is PyPI's long description too, where a relative link breaks: every link is absolute;
    a link to the site names a page of docs/ (and a heading of it), one to the repository a file of it."""
    links = [m["url"] for m in LINK.finditer(README)]
    assert len(links) > 20
    for url in links:
        assert url.startswith(("https://", "http://")), f"a relative link in the README: {url}"
        if url.startswith(SITE):
            path, _, anchor = url.removeprefix(SITE).partition("#")
            assert path == "" or path.endswith("/"), url  # (the site's directory URLs)
            page = ROOT / "docs" / (path.rstrip("/") + ".md" if path else "index.md")
            assert page.is_file(), f"{url}: docs/{page.relative_to(ROOT / 'docs')} does not exist"
            if anchor:
                assert anchor in _anchors(page), f"{url}: no heading #{anchor} in {page.relative_to(ROOT)}"
        elif url.startswith(REPOSITORY):
            assert (ROOT / url.removeprefix(REPOSITORY)).is_file(), url


def _keys_named(text: str) -> set[str]:
    return set(re.findall(r"\b(?:ont_\w+|sk-orq-[\w-]+)\.demo-[\w-]+-secret\b", text))


def test_the_examples_keys_are_the_ones_they_register() -> None:
    from examples import detail_api, envelope_api

    section = _section("Try the examples")
    detail, envelope = section.split("`envelope_api`, ", 1)
    assert _keys_named(detail) == set(detail_api.DEMO_KEYS)
    assert _keys_named(envelope) == set(envelope_api.DEMO_KEYS)
    script = (ROOT / "scripts" / "example").read_text()  # what `scripts/example [name]` runs
    assert (
        'REDIS_URL="${REDIS_URL:-memory://}" exec .venv/bin/python -m uvicorn "examples.${1:-detail_api}:app"' in script
    )


@pytest.mark.parametrize("example", ["detail_api", "envelope_api"])
def test_the_examples_curl_commands_succeed(example: str) -> None:
    """Each example under uvicorn, in memory as `scripts/example` runs it, and the README's curl for it."""
    blocks = re.findall(r"```\n(scripts/example.*?)```", _section("Try the examples"), re.S)
    started = {}  # example -> its block: `scripts/example [name]`, detail_api by default
    for block in blocks:
        arguments = block.split("\n", 1)[0].split("#")[0].split()[1:]
        started[arguments[0] if arguments else "detail_api"] = block
    block = started[example]
    curl = block.split("\n", 1)[1].replace("\\\n", " ")
    assert curl.startswith("curl -i ") and "localhost:8000/" in curl
    assert shutil.which("curl"), "curl is not installed"
    with uvicorn(f"examples.{example}:app", env={"REDIS_URL": "memory://"}) as server:
        done = subprocess.run(
            ["bash", "-c", curl.replace("localhost:8000/", f"127.0.0.1:{server.port}/")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        public = [httpx.get(f"{server.url}{path}").status_code for path in ("/errors/", "/openapi.json")]
    status_line = done.stdout.split("\n", 1)[0].strip()
    assert status_line == {"detail_api": "HTTP/1.1 201 Created", "envelope_api": "HTTP/1.1 200 OK"}[example]
    assert public == [200, 200]


def test_the_catalogs_named_are_the_built_in_ones() -> None:
    """The quick start names the default catalog and the two built-in ones with their formats; the
    examples answer those catalogs' errors."""
    from errorkit import ErrorKit, catalogs
    from examples import detail_api, envelope_api

    section = _section("Quick start")
    assert "`errorkit.catalogs.DETAIL_API` reproduces the Ontora\nAPI's error reference (the `detail` format" in section
    assert "`errorkit.catalogs.ENVELOPE_API`\nthe Orq.ai API's (the `envelope` format" in section
    assert "a new API starts from `generic` or its own catalog" in section
    assert catalogs.GENERIC.name == "generic" and ErrorKit().format.name == "detail"
    assert ErrorKit(catalog=catalogs.DETAIL_API).format.name == "detail"
    assert ErrorKit(catalog=catalogs.ENVELOPE_API).format.name == "envelope"
    assert "not_found" in catalogs.GENERIC and "internal_error" in catalogs.GENERIC
    assert "synthesis_pending" in detail_api.kit.registry and detail_api.kit.format.name == "detail"
    assert "quota_exceeded" in envelope_api.kit.registry and envelope_api.kit.format.name == "envelope"


def test_development_says_what_the_scripts_run() -> None:
    """What the Development section says scripts/test, scripts/system-deps and CI run is what they run."""
    section = _section("Development")
    script = (ROOT / "scripts" / "test").read_text()
    for step in ("ruff check", "ruff format --check", "mypy errorkit", "mkdocs build --strict", "scripts/check-dist"):
        assert step in script, step
    assert "errorkit contract check examples.detail_api:app" in script
    assert re.search(r"^\.venv/bin/python -m pytest", script, re.M)
    assert "strict = true" in (ROOT / "pyproject.toml").read_text()  # mypy's
    for claim in ("ruff (lint and format check)", "mypy (strict)", "`mkdocs build --strict`", "`scripts/check-dist`"):
        assert claim in section.replace("\n", " "), claim
    system_deps = (ROOT / "scripts" / "system-deps").read_text()
    packages = set(re.findall(r"missing\+=\(([\w-]+)\)", system_deps))
    assert packages == {"redis-server", "redis-tools", "openssl", "curl", "chromium", "python3-venv"}
    for package in packages:
        assert f"`{package}`" in section, package
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.findall(r"^scripts/[\w-]+$", ci, re.M) == ["scripts/test", "scripts/test-oldest"]
    oldest = (ROOT / "scripts" / "oldest.txt").read_text()
    assert {line.split("==")[0] for line in oldest.splitlines() if "==" in line} == {"starlette", "fastapi", "pydantic"}
