"""mkdocs hooks (mkdocs.yml `hooks:`): CHANGELOG.md on the site, its links to the documentation working.

CHANGELOG.md links a page of the documentation by its path in the repository (`docs/versioning.md`),
which GitHub follows. docs/changelog.md includes the file as it is (`--8<-- "CHANGELOG.md"`); here
each such link is made relative to the changelog page (`versioning.md`) before the page is rendered,
so mkdocs checks it as any other link (a strict build fails on a broken one) and it leads to the
page of this build, not to the published site.
"""

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
INCLUDE = '--8<-- "CHANGELOG.md"'
#: A link into docs/: inline (`](docs/versioning.md)`) or a reference definition (`[x]: docs/...`).
DOCS_LINK = re.compile(r"(\]\(|^\[[^\]\n]+\]:[ \t]*)docs/", re.M)


def changelog_for_the_site(text: str) -> str:
    """CHANGELOG.md's text with its links into docs/ relative to docs/changelog.md."""
    return DOCS_LINK.sub(r"\1", text)


def on_page_markdown(markdown: str, *, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != "changelog.md":
        return markdown
    changelog = changelog_for_the_site((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    return markdown.replace(INCLUDE, changelog)
