"""CHANGELOG.md, on GitHub and on the site (docs/changelog.md includes it; tests/test_release.py checks its
release headings against errorkit's version).

Its links into the documentation are repository paths (`docs/versioning.md`), which GitHub follows;
scripts/mkdocs_hooks.py makes them relative to the changelog page on the site, where the strict build and
tests/docs/test_browser.py check them.
"""

import importlib.util
import re
import tomllib
from types import ModuleType

import errorkit
import errorkit.client
import errorkit.testing
from tests.docs.support import DOCS, ROOT

CHANGELOG = (ROOT / "CHANGELOG.md").read_text()
LINK = re.compile(r"\]\((?P<inline>[^)\s]+)\)|^\[[^\]\n]+\]:[ \t]*(?P<reference>\S+)", re.M)


def links(text: str) -> list[str]:
    return [m["inline"] or m["reference"] for m in LINK.finditer(text)]


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_its_links_into_the_documentation_work_on_github_and_on_the_site() -> None:
    docs_links = [link for link in links(CHANGELOG) if link.startswith("docs/")]
    assert "docs/versioning.md" in docs_links
    for link in docs_links:  # GitHub: from the repository's root
        assert (ROOT / link.partition("#")[0]).is_file(), link
    # nothing points at the published site: a link into the documentation goes through docs/
    assert not [link for link in links(CHANGELOG) if link.startswith("https://errorkit.github.io")]

    site = hooks().changelog_for_the_site(CHANGELOG)
    assert site.count("](") == CHANGELOG.count("](")
    site_links = [link for link in links(site) if not re.match(r"https?://", link)]
    assert "versioning.md" in site_links
    for link in site_links:  # the site: from docs/changelog.md
        assert (DOCS / link.partition("#")[0]).is_file(), link
    assert (DOCS / "changelog.md").read_text().strip() == hooks().INCLUDE
    assert "scripts/mkdocs_hooks.py" in (ROOT / "mkdocs.yml").read_text()


def test_one_heading_for_the_release_being_prepared_and_no_link_to_a_tag_not_made() -> None:
    assert re.findall(r"^## .*$", CHANGELOG, re.M) == [f"## [{errorkit.__version__}] - Unreleased"]
    assert "releases/tag/" not in CHANGELOG and "/compare/" not in CHANGELOG


def test_the_supported_versions_are_pyprojects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["fastapi"]]
    text = " ".join(CHANGELOG.split())
    for name, shown, spec in [
        ("starlette", "Starlette", ">=0.40,<2"),
        ("pydantic", "pydantic", ">=2.10,<3"),
        ("fastapi", "FastAPI", ">=0.115.2,<1"),
    ]:
        assert name + spec in requirements
        assert f"{shown} `{spec}`" in text
    assert project["requires-python"] == ">=3.11"
    assert "Python 3.11, tested in CI; 3.12 and 3.13 are expected to work" in text
    assert "Redis 7.0 and later" in text


def test_the_names_it_announces_exist() -> None:
    for name in ["Hold", "KeyCache", "ReferencePage", "Timeouts", "limit"]:
        assert name in errorkit.__all__, name
        assert f"`{name}`" in CHANGELOG or f"`errorkit.{name}" in CHANGELOG, name
    assert callable(errorkit.client.raise_for_error) and "`raise_for_error()`" in CHANGELOG
    assert callable(errorkit.testing.assert_error) and "`errorkit.testing`" in CHANGELOG
    assert callable(errorkit.Quotas.hold) and "`quotas.hold()`" in CHANGELOG
    assert "`kit.reference(app=...)`" in CHANGELOG and "`errorkit contract save | check`" in CHANGELOG
    for catalog in ["GENERIC", "DETAIL_API", "ENVELOPE_API"]:
        assert f"`errorkit.catalogs.{catalog}`" in CHANGELOG
