"""The README's quick start runs as written."""

import re
from pathlib import Path

from starlette.testclient import TestClient

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_quick_start_runs() -> None:
    code = re.search(r"## Quick start\n\n```python\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    r = TestClient(namespace["app"]).post("/campaigns/c_1/report", headers={"X-Request-ID": "q"})  # type: ignore[arg-type]
    assert r.status_code == 409
    assert r.json() == {
        "error": {
            "code": "synthesis_pending",
            "message": "Campaign c_1 hasn't completed synthesis yet",
            "doc_url": "https://docs.example.com/errors/synthesis_pending",
            "details": {"campaign_id": "c_1"},
            "request_id": "q",
        }
    }
