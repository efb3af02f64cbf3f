"""docs/reference/api.md: every public name is on the page, documented by a docstring of its own, and rendered.

The page is mkdocstrings' `::: errorkit.Name` entries; griffe (what mkdocstrings reads) must find
each name's own docstring, not one inherited from `object`, `Exception` or a dataclass' generated one.
"""

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
from tests.docs.support import ROOT, page

MODULES: dict[str, list[str]] = {
    "errorkit": [name for name in errorkit.__all__ if not isinstance(getattr(errorkit, name), ModuleType)],
    "errorkit.client": list(errorkit.client.__all__),
    "errorkit.catalogs": list(errorkit.catalogs.__all__),
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


def test_every_public_name_is_on_the_page_once() -> None:
    entries = [m["path"] for m in ENTRY.finditer(page("reference/api.md"))]
    assert len(entries) == len(set(entries)), [e for e in entries if entries.count(e) > 1]
    assert sorted(set(entries) - {"errorkit.client", "errorkit.catalogs"}) == sorted(PUBLIC)
    assert {"errorkit.client", "errorkit.catalogs"} <= set(entries)


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    loaded = griffe.load("errorkit", search_paths=[str(ROOT)], resolve_aliases=True)
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


@pytest.mark.parametrize("path", [*PUBLIC, "errorkit.client", "errorkit.catalogs"])
def test_the_built_page_has_a_heading_for_every_public_name(path: str, api_html: str) -> None:
    heading = re.search(rf'<h([2-4])[^>]*\bid="{re.escape(path)}"[^>]*>(?P<body>.*?)</h\1>', api_html, re.S)
    assert heading is not None, f'no heading with id="{path}" on the API page'
    assert path.rpartition(".")[2] in re.sub(r"<[^>]+>", "", heading["body"])
