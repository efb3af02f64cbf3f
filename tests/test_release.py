"""What a release publishes, checked without building it (scripts/check-dist builds and installs it).

The metadata in pyproject.toml, the LICENSE, the floors scripts/test-oldest tests, the changelog's
version, and the changelog page of the site.
"""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

import errorkit

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
#: A released version's heading (`## [0.1.0] - 2026-03-01`), or the one being prepared (`- Unreleased`).
RELEASE = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+)\] - (?P<date>\d{4}-\d{2}-\d{2}|Unreleased)$", re.M)


def _requirement(requirements: list[str], name: str) -> Requirement:
    (found,) = [r for r in map(Requirement, requirements) if r.name == name]
    return found


def _floor(requirement: Requirement) -> str:
    (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
    return floor


def _oldest_pins() -> dict[str, str]:
    text = (ROOT / "scripts" / "oldest.txt").read_text()
    return dict(re.findall(r"^([\w-]+)==(\S+)", text, re.M))


def test_the_license_is_mit_as_an_spdx_expression_with_its_file() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n\nCopyright (c) 2026 the errorkit authors\n")
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]  # PEP 639: the expression alone
    (setuptools,) = [r for r in map(Requirement, PYPROJECT["build-system"]["requires"]) if r.name == "setuptools"]
    assert setuptools.specifier.contains("77") and not setuptools.specifier.contains("76.1")  # license-files


def test_the_classifiers_say_what_errorkit_is_for() -> None:
    classifiers = PROJECT["classifiers"]
    for expected in [
        "Framework :: FastAPI",
        "Framework :: AsyncIO",
        "Typing :: Typed",
        "Programming Language :: Python :: 3 :: Only",
    ]:
        assert expected in classifiers
    versions = [
        c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert versions == ["3.11", "3.12", "3.13"]
    assert PROJECT["requires-python"] == f">={versions[0]}"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == versions[0]
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + versions[0].replace(".", "")
    assert (ROOT / "errorkit" / "py.typed").is_file()


def test_the_project_links_point_at_the_site_and_the_repository() -> None:
    assert PROJECT["urls"] == {
        "Homepage": "https://errorkit.github.io/errorkit/",
        "Documentation": "https://errorkit.github.io/errorkit/",
        "Source": "https://github.com/errorkit/errorkit",
        "Changelog": "https://errorkit.github.io/errorkit/changelog/",
        "Issues": "https://github.com/errorkit/errorkit/issues",
    }
    assert PROJECT["readme"] == "README.md"
    assert PROJECT["authors"] == [{"name": "the errorkit authors"}]


def test_the_published_extras_are_the_ones_users_install() -> None:
    extras = PROJECT["optional-dependencies"]
    assert sorted(extras) == ["fastapi", "metrics", "openapi"]
    groups = PYPROJECT["dependency-groups"]
    assert {"test", "docs", "examples", "bench"} <= set(groups)  # development needs: not published
    assert "gunicorn" in {Requirement(r).name for r in groups["test"]}


def test_the_floors_are_the_versions_scripts_test_oldest_pins() -> None:
    pins = _oldest_pins()
    assert sorted(pins) == ["fastapi", "pydantic", "starlette"]
    starlette = _requirement(PROJECT["dependencies"], "starlette")
    pydantic = _requirement(PROJECT["dependencies"], "pydantic")
    fastapi = _requirement(PROJECT["optional-dependencies"]["fastapi"], "fastapi")
    for requirement, below in [(starlette, "2"), (fastapi, "1"), (pydantic, "3")]:
        floor = _floor(requirement)
        assert Version(floor) == Version(pins[requirement.name]), requirement
        # bounded above by the next major release, nothing else
        assert {str(s) for s in requirement.specifier} == {f">={floor}", f"<{below}"}
    # the development groups ask for the same FastAPI range as the extra
    groups = PYPROJECT["dependency-groups"]
    for group in ("test", "examples"):
        assert _requirement(groups[group], "fastapi").specifier == fastapi.specifier
    # and scripts/test-oldest installs the test group under these pins
    script = (ROOT / "scripts" / "test-oldest").read_text()
    assert "--group test -c scripts/oldest.txt" in script


def test_the_changelogs_newest_release_is_errorkits_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## .*$", changelog, re.M)
    releases = [RELEASE.match(h) for h in headings]
    assert releases and all(releases), headings
    assert releases[0]["version"] == errorkit.__version__  # type: ignore[index]
    # newest first, and only the newest may be unreleased
    versions = [tuple(map(int, r["version"].split("."))) for r in releases if r]
    assert versions == sorted(versions, reverse=True)
    assert all(r["date"] != "Unreleased" for r in releases[1:] if r)
    # a released version links to its tag; the one being prepared links nowhere (its tag does not exist yet)
    for r in releases:
        assert r is not None
        link = f"[{r['version']}]: https://github.com/errorkit/errorkit/releases/tag/v{r['version']}"
        assert (link in changelog) == (r["date"] != "Unreleased")


def test_the_site_shows_the_changelog() -> None:
    page = (ROOT / "docs" / "changelog.md").read_text()
    assert page.splitlines() == ['--8<-- "CHANGELOG.md"']  # included outside any code fence: rendered as Markdown
