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


def test_json_logging_set_up_prints_the_request_fields() -> None:
    import io
    import json
    import logging

    from starlette.applications import Starlette
    from starlette.routing import Route

    from errorkit import ErrorKit

    code = re.search(r"A JSON set-up with the standard library alone:\n\n```python\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # (basicConfig does nothing: pytest's handlers are on root)
    handler = namespace["handler"]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(io.StringIO())
    logger = logging.getLogger("errorkit")
    logger.addHandler(handler)
    try:

        async def boom(request: object) -> None:
            raise RuntimeError("the password is hunter2")

        app = Starlette(routes=[Route("/boom", boom)])
        ErrorKit().install(app)
        response = TestClient(app, raise_server_exceptions=False).get("/boom", headers={"X-Request-ID": "json-1"})
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 500 and "hunter2" not in response.text
    (line,) = handler.stream.getvalue().splitlines()[:1]
    record = json.loads(line)
    assert {k: record[k] for k in ("level", "logger", "message", "request_id", "code", "workspace_id")} == {
        "level": "ERROR",
        "logger": "errorkit",
        "message": "Unhandled RuntimeError in GET /boom (request id json-1)",
        "request_id": "json-1",
        "code": "internal_error",
        "workspace_id": None,
    }
    assert record["exception"].startswith("Traceback") and record["exception"].endswith(
        "RuntimeError: the password is hunter2"
    )
