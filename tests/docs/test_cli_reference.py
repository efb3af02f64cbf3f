"""docs/reference/cli.md: every command shown (docs_src/cli/*.sh) runs for real, and prints what the page shows.

Each snippet runs in one bash process, in a fresh folder, with the virtualenv's `errorkit` (and
`python`) first on PATH and `REDIS_URL` naming a new throwaway redis-server; the transcript
(`$ command`, its standard output and error as a terminal shows them, `[exit N]` after a
non-zero status) must match the `text` block that follows the snippet on the page, where `…`
stands for what changes between runs, and the page's `redis://127.0.0.1:6379/0` for the real URL.
"""

import re
import shutil
from pathlib import Path

import pytest

from tests.docs.support import DOCS_SRC, VENV_BIN, assert_lines, commands, like, load, output_after, transcript
from tests.support.servers import redis_server

PAGE = "reference/cli.md"
SHOWN_URL = "redis://127.0.0.1:6379/0"
SNIPPETS = sorted(str(p.relative_to(DOCS_SRC)) for p in (DOCS_SRC / "cli").glob("*.sh"))
# every snippet, named for tests/docs/test_site.py: cli/help.sh cli/docs_help.sh cli/docs.sh cli/keys_help.sh cli/contract_help.sh
# cli/keys.sh cli/store_help.sh cli/store.sh, and the app cli/myapp/main.py


def shown_output(snippet: str) -> str:
    """The `text` block that directly follows the `bash` block including `snippet` on the page."""
    return output_after(PAGE, snippet, langs=["text"], directly=True)


def test_every_snippet_is_on_the_page() -> None:
    assert SNIPPETS == [
        "cli/contract_help.sh",
        "cli/docs.sh",
        "cli/docs_help.sh",
        "cli/help.sh",
        "cli/keys.sh",
        "cli/keys_help.sh",
        "cli/store.sh",
        "cli/store_help.sh",
    ]
    for snippet in SNIPPETS:
        shown_output(snippet)


def test_the_commands_are_errorkit_of_the_virtualenv() -> None:
    assert (VENV_BIN / "errorkit").is_file()
    for snippet in SNIPPETS:
        for command in commands(snippet):
            assert re.match(r"(TOKEN=\$\()?(errorkit|python -m errorkit|redis-cli) ", command), command


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_the_page_shows_what_each_command_prints(snippet: str, tmp_path: Path) -> None:
    shutil.copytree(DOCS_SRC / "cli" / "myapp", tmp_path / "myapp", ignore=shutil.ignore_patterns("__pycache__"))
    with redis_server() as redis:
        # COLUMNS: argparse wraps its help to the terminal's width
        actual = transcript(commands(snippet), {"REDIS_URL": redis.url, "COLUMNS": "100"}, cwd=tmp_path)
        actual = actual.replace(redis.url, SHOWN_URL)
    assert_lines(shown_output(snippet), actual)
    if snippet == "cli/docs.sh":
        check_written_pages(tmp_path)


def check_written_pages(folder: Path) -> None:
    """What `errorkit docs` wrote: each page holds its catalog's codes, in the format and doc URLs asked for."""
    envelope = (folder / "errors.md").read_text()
    assert envelope.startswith("# ") and "`quota_exceeded`" in envelope and "https://docs.orq.ai/errors/" in envelope
    detail_html = (folder / "errors.html").read_text()
    assert detail_html.lstrip().lower().startswith("<!doctype html>") and "synthesis_pending" in detail_html
    generic = (folder / "generic.md").read_text()
    assert (
        "https://docs.example.com/errors/not_found" in generic
        and '"type": "https://docs.example.com/errors/' in generic
    )
    kit_page = (folder / "kit-errors.md").read_text()
    assert "`campaign_locked`" in kit_page and "The campaign cannot change while it runs." in kit_page
    app_page = (folder / "app-errors.md").read_text()
    assert "`campaign_locked`" in app_page and app_page != kit_page
    assert sorted(p.name for p in (folder / "pages").iterdir()) == [
        "detail_api.html",
        "detail_api.md",
        "envelope_api.html",
        "envelope_api.md",
        "generic.html",
        "generic.md",
    ]


def test_the_app_of_the_docs_example() -> None:
    """myapp/main.py: a kit of one code of its own, installed on an app (whose handlers answer in its format)."""
    from starlette.testclient import TestClient

    module = load("cli/myapp/main.py")
    kit, app = module["kit"], module["app"]
    error = kit.error("campaign_locked")
    assert (error.status, error.code) == (409, "campaign_locked")
    assert kit.doc_url_for(error.definition) == "https://docs.example.com/errors/campaign_locked"
    with TestClient(app) as client:
        response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "Not Found",
        "code": "not_found",
        "request_id": response.headers["x-request-id"],
    }


def test_an_elided_part_stays_within_its_line() -> None:
    assert like("ek_…  active\n", "ek_1f  active\n")
    assert not like("ek_…  active\n", "ek_1f\nrevoked  active\n")
    assert not like("ek_…  active\n", "ek_1f  revoked\n")
