"""Helpers for the documentation's tests: load a `docs_src/` snippet as it is shown, read a page."""

import runpy
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent.parent
DOCS = ROOT / "docs"
DOCS_SRC = ROOT / "docs_src"


def snippet_path(name: str) -> Path:
    """The file of a snippet, `name` relative to `docs_src/` (e.g. `"rate_limits/app.py"`)."""
    path = DOCS_SRC / name
    assert path.is_file(), f"docs_src/{name} is missing"
    return path


def load(name: str) -> dict[str, Any]:
    """Run a Python snippet as a module and return its globals (its app, kit, stores...).

    The snippet's folder is on `sys.path` while it runs, so a snippet may import its neighbours
    as a reader who saved them side by side would (`from app import app`).
    """
    path = snippet_path(name)
    sys.path.insert(0, str(path.parent))
    try:
        return runpy.run_path(str(path), run_name=path.stem)
    finally:
        sys.path.remove(str(path.parent))


def commands(name: str) -> list[str]:
    """The commands of a shell snippet: its lines without comments and blank lines, continuations joined."""
    text = snippet_path(name).read_text().replace("\\\n", " ")
    lines = (line.split(" #", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def page(name: str) -> str:
    """The Markdown of a page, `name` relative to `docs/` (e.g. `"guides/rate-limits.md"`)."""
    return (DOCS / name).read_text()
