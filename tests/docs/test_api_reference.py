"""docs/reference/api.md: every public name is on the page, documented by a docstring of its own, and rendered.

The page is mkdocstrings' `::: errorkit.Name` entries; griffe (what mkdocstrings reads) must find
each name's own docstring, not one inherited from `object`, `Exception` or a dataclass' generated one.
"""

import html
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import griffe
import pytest

import errorkit
import errorkit.catalogs
import errorkit.client
import errorkit.testing
from tests.docs.support import ROOT, page

MODULES: dict[str, list[str]] = {
    "errorkit": [name for name in errorkit.__all__ if not isinstance(getattr(errorkit, name), ModuleType)],
    "errorkit.client": list(errorkit.client.__all__),
    "errorkit.catalogs": list(errorkit.catalogs.__all__),
    "errorkit.testing": list(errorkit.testing.__all__),
}
PUBLIC = [f"{module}.{name}" for module, names in MODULES.items() for name in names]
ENTRY = re.compile(r"^::: (?P<path>[\w.]+)\s*$", re.M)


def test_the_public_modules_and_their_names() -> None:
    modules = [name for name in errorkit.__all__ if isinstance(getattr(errorkit, name), ModuleType)]
    assert sorted(modules) == ["catalogs", "client"]
    # every function and class errorkit.client defines is in its __all__, so on the page
    defined = {
        name
        for name, value in vars(errorkit.client).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == "errorkit.client"
    }
    assert defined <= set(errorkit.client.__all__)
    assert set(errorkit.catalogs.__all__) == {"DETAIL_API", "ENVELOPE_API", "GENERIC"}
    # errorkit.testing (the pytest plugin, not imported by errorkit): every function it defines and every
    # fixture (`errorkit_...`) is in its __all__ (its hook lives in errorkit_pytest_plugin alone)
    testing = {
        name
        for name, value in vars(errorkit.testing).items()
        if name.startswith("errorkit_")
        or (inspect.isfunction(value) and value.__module__ == "errorkit.testing" and not name.startswith("_"))
    }
    assert testing <= set(errorkit.testing.__all__)


def test_every_public_name_is_on_the_page_once() -> None:
    entries = [m["path"] for m in ENTRY.finditer(page("reference/api.md"))]
    assert len(entries) == len(set(entries)), [e for e in entries if entries.count(e) > 1]
    assert sorted(set(entries) - {"errorkit.client", "errorkit.catalogs", "errorkit.testing"}) == sorted(PUBLIC)
    assert {"errorkit.client", "errorkit.catalogs", "errorkit.testing"} <= set(entries)


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)])
    loader.load("errorkit_pytest_plugin")  # (errorkit.testing re-exports its fixtures, as mkdocs.yml preloads it)
    loaded = loader.load("errorkit")
    loader.resolve_aliases()
    assert isinstance(loaded, griffe.Module)
    return loaded


@pytest.mark.parametrize("path", PUBLIC)
def test_every_public_name_has_a_docstring_of_its_own(path: str, package: griffe.Module) -> None:
    module, _, name = path.rpartition(".")
    found = package[path.removeprefix("errorkit.")]
    target = found.final_target if found.is_alias else found
    docstring = target.docstring.value.strip() if target.docstring is not None else ""
    assert len(docstring) > 20, f"{path} ({target.path}) has no docstring griffe can read"

    value = getattr(sys.modules[module], name)
    if inspect.isclass(value):  # its own, not object's, Exception's or the one @dataclass writes
        own = value.__dict__.get("__doc__") or ""
        assert own.strip() and not own.startswith(f"{value.__name__}("), path
        assert inspect.cleandoc(own) == inspect.cleandoc(docstring)
    elif inspect.isfunction(value):
        assert inspect.cleandoc(value.__doc__ or "") == inspect.cleandoc(docstring)


@pytest.fixture(scope="module")
def api_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The API page as `mkdocs build` writes it. Not a strict build (another page's broken link is that
    page's test's business), but any warning about this page, mkdocstrings or griffe (a docstring
    griffe cannot parse) fails."""
    site = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    warnings = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("WARNING") and re.search(r"griffe|mkdocstrings|autorefs|reference/api", line)
    ]
    assert not warnings, "\n".join(warnings)
    return (site / "reference" / "api" / "index.html").read_text()


def test_the_page_shows_no_private_name(api_html: str) -> None:
    ids = set(re.findall(r'\bid="([^"]+)"', api_html))
    assert [i for i in ids if i.startswith("errorkit.")], "no mkdocstrings heading at all"
    private = [
        i for i in ids if i.startswith("errorkit.") and any(p.startswith("_") for p in i.split("--")[0].split("."))
    ]
    assert not private


@pytest.mark.parametrize("path", [*PUBLIC, "errorkit.client", "errorkit.catalogs", "errorkit.testing"])
def test_the_built_page_has_a_heading_for_every_public_name(path: str, api_html: str) -> None:
    heading = re.search(rf'<h([2-4])[^>]*\bid="{re.escape(path)}"[^>]*>(?P<body>.*?)</h\1>', api_html, re.S)
    assert heading is not None, f'no heading with id="{path}" on the API page'
    assert path.rpartition(".")[2] in re.sub(r"<[^>]+>", "", heading["body"])


# What the page shows is public (docs/versioning.md), so the methods only errorkit's own middleware calls
# on a stage or a store are left out: mkdocs.yml's `filters` for the stage and store plumbing every stage
# shares, and docs/reference/api.md's own `filters` for FailurePolicy, ErrorDefinition and Reference.
INTERNALS = {
    "APIKeyAuth": ["admit", "check_routes", "route_refusals"],
    "RateLimiter": ["admit", "defer", "check_routes", "route_refusals", "route_headers"],
    "Idempotency": ["wrap", "claimed_key", "guards", "check_routes", "route_refusals"],
    "Quotas": ["around", "check_routes", "route_refusals"],
    "ConcurrencyLimit": ["around", "bucket_for", "check_routes", "route_refusals"],
    "RedisBackend": ["count_and_claim", "observe", "reach"],
    "MemoryBackend": ["count_and_claim"],
    "FailurePolicy": ["failed", "outcome", "answer", "refusal", "of"],
    "ErrorDefinition": ["describe", "validate_details", "doc_url_from"],
    "Reference": ["classes", "class_of", "sections"],
}
#: Methods a user calls (or implements, for a store of their own): on the page.
USER_FACING = {
    "ErrorKit": ["define", "error", "include", "install", "schemas"],
    "Registry": ["define", "error"],
    "ErrorDefinition": ["detail_fields"],
    "Reference": ["codes", "sample_body", "routes_for", "html"],
    "APIKeyAuth": ["check", "check_project", "require", "requires"],
    "TrustedProxies": ["client_address"],  # for an `identity=` rule that counts by address as the stages do
    "Quotas": ["hold", "release", "usage", "set_usage"],
    "Hold": ["confirm", "cancel"],
    "RedisBackend": ["initialize", "check", "list_api_keys"],
    "MemoryBackend": ["initialize", "check"],
    "KeyStore": ["get_api_key", "put_api_key", "update_api_key", "list_api_keys"],
    "Format": ["render", "schema", "parse", "validation_error"],
}


def test_the_internals_exist_so_hiding_them_means_something() -> None:
    for name, methods in INTERNALS.items():
        for method in methods:
            assert hasattr(getattr(errorkit, name), method), f"errorkit.{name}.{method}"


@pytest.mark.parametrize("path", [f"errorkit.{c}.{m}" for c, methods in INTERNALS.items() for m in methods])
def test_the_page_leaves_out_what_only_errorkit_calls(path: str, api_html: str) -> None:
    assert f'id="{path}"' not in api_html


@pytest.mark.parametrize("path", [f"errorkit.{c}.{m}" for c, methods in USER_FACING.items() for m in methods])
def test_the_page_shows_the_methods_users_call(path: str, api_html: str) -> None:
    assert re.search(rf'<h4[^>]*\bid="{re.escape(path)}"', api_html), f"no heading for {path}"


def test_no_docstring_on_the_page_sends_readers_to_a_private_module(api_html: str) -> None:
    article = re.search(r"<article\b.*?</article>", api_html, re.S)
    assert article is not None
    text = html.unescape(re.sub(r"<[^>]+>", "", article[0]))
    assert "Timeouts" in text and "RedisBackend" in text
    assert not re.findall(r"errorkit\._\w*[\w.]*", text)
    assert "make_definition" not in text
    assert not re.search(r"\bdocument's\b|\bthe (first|second|two) documents?\b", text)


def sections() -> dict[str, list[str]]:
    """Each `## ` section of the page's source, with the `:::` entries under it."""
    found: dict[str, list[str]] = {}
    for block in re.split(r"^## ", page("reference/api.md"), flags=re.M)[1:]:
        title, _, body = block.partition("\n")
        found[title] = [m["path"] for m in ENTRY.finditer(body)]
    return found


def test_the_groups() -> None:
    groups = sections()
    assert {"errorkit.APIKeyRecord", "errorkit.KeyStore", "errorkit.RedisBackend", "errorkit.Timeouts"} <= set(
        groups["Stores"]
    )
    assert groups["Identity and client addresses"] == ["errorkit.per_user", "errorkit.TrustedProxies"]
    assert groups["Catalogs"] == [
        "errorkit.catalogs",
        "errorkit.catalogs.GENERIC",
        "errorkit.catalogs.DETAIL_API",
        "errorkit.catalogs.ENVELOPE_API",
    ]


def test_the_catalogs_section_names_the_envelope_plan_table(api_html: str) -> None:
    from errorkit.catalogs.envelope_api import PLAN_LIMITS

    catalogs = page("reference/api.md").partition("## Catalogs")[2]
    assert "`errorkit.catalogs.envelope_api.PLAN_LIMITS`" in catalogs
    # what the page says of it: quota group -> plan -> maximum, None for unlimited, and Quotas takes it
    assert all(isinstance(v, int | None) for plans in PLAN_LIMITS.values() for v in plans.values())
    assert None in {v for plans in PLAN_LIMITS.values() for v in plans.values()}
    quotas = errorkit.Quotas(errorkit.MemoryBackend(), limits=PLAN_LIMITS)
    assert quotas.limits == PLAN_LIMITS
    assert "<code>errorkit.catalogs.envelope_api.PLAN_LIMITS</code>" in api_html


def test_timeouts_is_public_and_its_docstring_names_every_field() -> None:
    import dataclasses

    fields = dataclasses.fields(errorkit.Timeouts)
    doc = errorkit.Timeouts.__doc__ or ""
    for field in fields:
        assert f"- `{field.name}` ({field.default})" in doc, field.name
    backend = errorkit.RedisBackend(timeout=errorkit.Timeouts(command=0.2, connect=1.0))
    assert backend.timeouts == errorkit.Timeouts(command=0.2, connect=1.0)
    assert errorkit.RedisBackend(timeout=0.3).timeouts == errorkit.Timeouts(command=0.3)
