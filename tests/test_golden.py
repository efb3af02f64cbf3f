"""Every built-in code, in every format, through a real request, against hand-checked golden files.

Regenerate with `ERRORKIT_UPDATE_GOLDEN=1 scripts/test tests/test_golden.py`, then read the diff.
"""

import json
import os
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from errorkit import ErrorKit, Registry, catalogs
from errorkit.testing import assert_error
from tests.apps.routes import build_app

GOLDEN = Path(__file__).parent / "golden"
CATALOGS = {"detail_api": catalogs.DETAIL_API, "envelope_api": catalogs.ENVELOPE_API}


def render_all(catalog: Registry, format: str) -> dict[str, Any]:
    kit = ErrorKit(catalog=catalog, format=format)
    client = TestClient(build_app("starlette", kit))
    rendered = {}
    for definition in sorted(kit.registry, key=lambda d: d.code):
        r = client.get(f"/raise/{definition.code}", headers={"X-Request-ID": "req-golden"})
        # the code's status, the kit's format and doc URL, the request id, x-should-retry and Retry-After
        assert assert_error(r, definition.code, registry=kit).request_id == "req-golden"
        entry: dict[str, Any] = {"status": r.status_code, "content_type": r.headers["content-type"]}
        if "retry-after" in r.headers:
            entry["retry_after"] = r.headers["retry-after"]
        entry["body"] = r.json()
        rendered[definition.code] = entry
    return rendered


@pytest.mark.parametrize("format", ["detail", "envelope", "problem"])
@pytest.mark.parametrize("catalog", sorted(CATALOGS))
def test_every_builtin_code_renders_as_documented(catalog: str, format: str) -> None:
    path = GOLDEN / f"{catalog}.{format}.json"
    rendered = render_all(CATALOGS[catalog], format)
    if os.environ.get("ERRORKIT_UPDATE_GOLDEN"):
        path.write_text(json.dumps(rendered, indent=2, ensure_ascii=False) + "\n")
    assert rendered == json.loads(path.read_text())
    for code, entry in rendered.items():  # the status is always the definition's
        assert entry["status"] == CATALOGS[catalog][code].definition.status
