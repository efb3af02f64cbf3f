"""The documentation site's rules: every snippet lives in `docs_src/`, is shown by a page and run by a test.

A page shows code only by including a file of `docs_src/` (`--8<-- "guide/file.py"` inside a
fence), so a snippet is a file the tests can import and run; a shell, YAML or TOML snippet too.
Output blocks (`http`, `json`, `text`) are written in the page and checked by the page's test.
"""

import re
import runpy
from pathlib import Path

import pytest

from tests.docs.support import DOCS, DOCS_SRC, ROOT, all_fences

PAGES = sorted(DOCS.rglob("*.md"))
SNIPPETS = sorted(p for p in DOCS_SRC.rglob("*") if p.is_file() and "__pycache__" not in p.parts)

#: Languages whose fences must include a `docs_src/` file: the code a reader copies and runs.
CODE = {"python", "py", "bash", "sh", "shell", "console", "yaml", "yml", "toml", "ini", "dockerfile", "dotenv"}
INCLUDE = re.compile(r'^\s*--8<-- "(?P<path>[^"]+?)(?::[\w-]+)?"\s*$')


def _included() -> dict[str, list[Path]]:
    """docs_src paths (relative to docs_src/) -> the pages that include them."""
    found: dict[str, list[Path]] = {}
    for page in PAGES:
        for line in page.read_text().splitlines():
            if (m := INCLUDE.match(line)) is not None:
                found.setdefault(m["path"], []).append(page)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_code_on_a_page_is_an_included_file(page: Path) -> None:
    for lang, body in all_fences(page.read_text()):
        if lang in CODE:
            lines = [line for line in body.splitlines() if line.strip()]
            assert lines and all(INCLUDE.match(line) for line in lines), (
                f"{page.relative_to(ROOT)}: a {lang} block must include a docs_src/ file, not hold code:\n{body}"
            )


def test_every_snippet_file_is_shown_and_tested() -> None:
    included = _included()
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != "test_site.py")
    for snippet in SNIPPETS:
        name = str(snippet.relative_to(DOCS_SRC))
        assert name in included, f"docs_src/{name} is shown by no page"
        assert name in tests, f"docs_src/{name} is named by no test (the test that runs it names its path)"
    for name in included:
        assert (DOCS_SRC / name).is_file() or (ROOT / name).is_file(), (
            f"{included[name]} include {name}, which is missing"
        )


@pytest.mark.parametrize(
    "snippet",
    [p for p in SNIPPETS if p.suffix == ".py"],
    ids=lambda p: str(p.relative_to(DOCS_SRC)),
)
def test_every_python_snippet_runs_on_its_own(snippet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file is a whole module (imports included); importing it raises nothing."""
    monkeypatch.setenv("REDIS_URL", "memory://")
    monkeypatch.chdir(snippet.parent)
    monkeypatch.syspath_prepend(str(snippet.parent))
    runpy.run_path(str(snippet), run_name=snippet.stem)
