"""Write examples/README.md: a curl walk-through of both example servers, with the real responses.

    python -m examples.walkthrough     # starts both examples (in-memory backend) on free ports

Each step prints the curl command a reader can paste and the response the server gave.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
SHOWN_HEADERS = ("retry-after", "location", "idempotent-replayed", "www-authenticate", "allow",
                 "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")  # fmt: skip

DETAIL: list[tuple[str, str, str, dict[str, str], Any]] = [
    # title, method, path, headers, json body
    ("Create a campaign (with an Idempotency-Key)", "POST", "/workspaces/ws_demo/campaigns",
     {"X-API-Key": "ont_admin.demo-admin-secret", "Idempotency-Key": "walk-1"}, {"name": "Q3 launch"}),
    ("Retry it: the original response, replayed", "POST", "/workspaces/ws_demo/campaigns",
     {"X-API-Key": "ont_admin.demo-admin-secret", "Idempotency-Key": "walk-1"}, {"name": "Q3 launch"}),
    ("The same key with another body", "POST", "/workspaces/ws_demo/campaigns",
     {"X-API-Key": "ont_admin.demo-admin-secret", "Idempotency-Key": "walk-1"}, {"name": "Q4"}),
    ("invalid_api_key", "GET", "/workspaces/ws_demo/campaigns/cmp_1", {"X-API-Key": "ont_admin.wrong"}, None),
    ("No key at all", "GET", "/workspaces/ws_demo/campaigns/cmp_1", {}, None),
    ("insufficient_scope", "POST", "/workspaces/ws_demo/campaigns",
     {"Authorization": "Bearer ont_reader.demo-reader-secret"}, {"name": "x"}),
    ("workspace_forbidden", "GET", "/workspaces/ws_other/campaigns/cmp_1",
     {"X-API-Key": "ont_admin.demo-admin-secret"}, None),
    ("synthesis_pending", "GET", "/workspaces/ws_demo/campaigns/cmp_1/results",
     {"X-API-Key": "ont_admin.demo-admin-secret"}, None),
    ("Start the campaign", "POST", "/workspaces/ws_demo/campaigns/cmp_1/start",
     {"X-API-Key": "ont_admin.demo-admin-secret"}, None),
    ("graph_not_ready", "GET", "/workspaces/ws_demo/campaigns/cmp_1/graph",
     {"X-API-Key": "ont_admin.demo-admin-secret"}, None),
    ("campaign_locked", "POST", "/workspaces/ws_demo/campaigns/cmp_1/start",
     {"X-API-Key": "ont_admin.demo-admin-secret"}, None),
    ("Validation: the 422 detail array", "POST", "/workspaces/ws_demo/topics",
     {"X-API-Key": "ont_admin.demo-admin-secret"}, {"topics": [{"weight": 0}]}),
    ("Export (limited to 2 a minute)", "POST", "/workspaces/ws_demo/campaigns/cmp_1/export",
     {"X-API-Key": "ont_admin.demo-admin-secret"}, None),
    ("Export again", "POST", "/workspaces/ws_demo/campaigns/cmp_1/export",
     {"X-API-Key": "ont_admin.demo-admin-secret"}, None),
    ("rate_limited", "POST", "/workspaces/ws_demo/campaigns/cmp_1/export",
     {"X-API-Key": "ont_admin.demo-admin-secret"}, None),
]  # fmt: skip

DEV = {"Authorization": "Bearer sk-orq-dev.demo-dev-secret"}
INV = {"prompt": "hi"}
ENVELOPE: list[tuple[str, str, str, dict[str, str], Any]] = [
    ("authentication_required", "GET", "/v2/deployments/legacy-bot", {}, None),
    ("invalid_api_key", "GET", "/v2/deployments/legacy-bot", {"Authorization": "Bearer sk-orq-dev.nope-nope"}, None),
    ("expired_api_key", "GET", "/v2/deployments/legacy-bot", {"Authorization": "Bearer sk-orq-old.demo-expired-secret"}, None),
    ("insufficient_scope", "POST", "/v2/deployments", {"Authorization": "Bearer sk-orq-public.demo-public-secret"},
     {"key": "a", "model": "openai/gpt-4o"}),
    ("wrong_project", "GET", "/v2/deployments/support-router", {"Authorization": "Bearer sk-orq-proj.demo-project-secret"}, None),
    ("workspace_disabled", "GET", "/v2/deployments/x", {"Authorization": "Bearer sk-orq-off.demo-disabled-secret"}, None),
    ("invalid_request_body", "POST", "/v2/deployments", DEV, {"key": 5}),
    ("unsupported_engine", "POST", "/v2/deployments", DEV, {"key": "a", "model": "gpt-9"}),
    ("Create a deployment", "POST", "/v2/deployments", {**DEV, "Idempotency-Key": "dep-1"}, {"key": "bot-1", "model": "openai/gpt-4o"}),
    ("Create two more", "POST", "/v2/deployments", DEV, {"key": "bot-2", "model": "openai/gpt-4o"}),
    ("...", "POST", "/v2/deployments", DEV, {"key": "bot-3", "model": "openai/gpt-4o"}),
    ("quota_exceeded (Developer plan: 3 deployments)", "POST", "/v2/deployments", DEV, {"key": "bot-4", "model": "openai/gpt-4o"}),
    ("deployment_not_found", "GET", "/v2/deployments/nope", DEV, None),
    ("integration_not_found", "GET", "/v2/integrations/int_x", DEV, None),
    ("variant_not_resolved", "POST", "/v2/deployments/support-router/invoke", DEV, {**INV, "context": {"locale": "en"}}),
    ("model_configuration_missing", "POST", "/v2/deployments/legacy-bot/invoke", DEV, INV),
    ("provider_credential_invalid", "POST", "/v2/deployments/broken-creds/invoke", DEV, INV),
    ("prompt_snippet_not_found", "POST", "/v2/deployments/bot-1/invoke", DEV, {**INV, "snippets": ["missing"]}),
    ("A successful invocation", "POST", "/v2/deployments/bot-1/invoke", DEV, INV),
    ("provider_error", "POST", "/v2/deployments/bot-1/invoke", {**DEV, "X-Simulate-Provider": "error"}, INV),
    ("provider_timeout", "POST", "/v2/deployments/bot-1/invoke", {**DEV, "X-Simulate-Provider": "timeout"}, INV),
    ("provider_overloaded", "POST", "/v2/deployments/bot-1/invoke", {**DEV, "X-Simulate-Provider": "overloaded"}, INV),
    ("request_timeout", "POST", "/v2/deployments/bot-1/invoke", DEV, {**INV, "timeout_ms": 1}),
    ("not_implemented", "POST", "/v2/deployments/bot-1/batch", DEV, None),
    ("service_unavailable", "POST", "/v2/knowledge-bases/kb_1/search", {**DEV, "X-Simulate-Outage": "vector_store"}, None),
    ("internal_error", "GET", "/v2/debug/crash", DEV, None),
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def curl(method: str, url: str, headers: dict[str, str], body: Any) -> str:
    parts = [f"curl -i -X {method} {url}"]
    parts += [f"-H '{k}: {v}'" for k, v in headers.items()]
    if body is not None:
        parts += ["-H 'Content-Type: application/json'", f"-d '{json.dumps(body)}'"]
    return " \\\n  ".join(parts)


def walk(app: str, steps: list[tuple[str, str, str, dict[str, str], Any]], extra: list[str]) -> str:
    port = free_port()
    env = {**os.environ, "REDIS_URL": "memory://"}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning"],
                              env=env, cwd=HERE.parent)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(base + "/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        out = []
        with httpx.Client(base_url=base) as client:
            for title, method, path, headers, body in steps:
                r = client.request(method, path, headers=headers, json=body)
                shown = "".join(f"{k}: {r.headers[k]}\n" for k in SHOWN_HEADERS if k in r.headers)
                text = json.dumps(r.json(), indent=2, ensure_ascii=False) if r.content else ""
                out.append(
                    f"**{title}**\n\n```\n{curl(method, 'http://127.0.0.1:8000' + path, headers, body)}\n```\n"
                    f"```\nHTTP/1.1 {r.status_code} {r.reason_phrase}\ncontent-type: {r.headers.get('content-type', '')}\n"
                    f"x-request-id: {r.headers['x-request-id']}\n{shown}\n{text}\n```\n"
                )
        return "\n".join(extra + out)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    detail = walk("examples.detail_api:app", DETAIL, ["## detail_api: campaigns, FastAPI, `{\"detail\", \"code\"}`\n",
                  "Start it with `scripts/example` (or `scripts/example detail_api`).\n"])  # fmt: skip
    envelope = walk("examples.envelope_api:app", ENVELOPE, ["## envelope_api: LLM gateway, Starlette, `{\"error\": {...}}`\n",
                    "Start it with `scripts/example envelope_api`.\n"])  # fmt: skip
    text = (
        "# Example walk-through\n\nEvery documented response of both APIs, produced by real requests to the "
        "example servers (in-memory backend). Generated by `python -m examples.walkthrough`, which runs the "
        "servers and pastes what they answered; request ids and reset times differ on every run.\n\n"
        + detail
        + "\n"
        + envelope
    )
    (HERE / "README.md").write_text(text)


if __name__ == "__main__":
    main()
