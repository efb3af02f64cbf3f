"""Both example servers under uvicorn, in-memory and on Redis: every documented code by a real request."""

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from errorkit import ErrorKit, Registry, catalogs
from errorkit.client import error_from_response
from errorkit.testing import assert_error
from tests.support.servers import free_port, redis_server, uvicorn

ADMIN = {"X-API-Key": "ont_admin.demo-admin-secret"}
READER = {"Authorization": "Bearer ont_reader.demo-reader-secret"}
DEV = {"Authorization": "Bearer sk-orq-dev.demo-dev-secret"}


@pytest.fixture(scope="module", params=["memory", "redis"])
def backend_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "memory":
        yield {"REDIS_URL": "memory://"}
    else:
        with redis_server() as redis:
            yield {"REDIS_URL": redis.url}


class ErrorTally:
    """Every error response the walk received (replays aside), to compare with the server's metrics."""

    def __init__(self, catalog: Registry) -> None:
        self.catalog = catalog
        self.errors: Counter[tuple[str, str]] = Counter()

    def hook(self, response: httpx.Response) -> None:
        if response.status_code >= 400 and "idempotent-replayed" not in response.headers:
            response.read()  # (the client parser reads a detail-format validation body as the catalog's code)
            self.errors[error_from_response(response, self.catalog).code, str(response.status_code)] += 1

    def assert_scraped(self, client: httpx.Client) -> None:
        """/metrics counts exactly the errors the walk saw, by code and status."""
        scraped = client.get("/metrics")
        assert scraped.status_code == 200
        counted = {
            (s.labels["code"], s.labels["status"]): s.value
            for family in text_string_to_metric_families(scraped.text)
            for s in family.samples
            if s.name == "errorkit_errors_total"
        }
        assert counted == dict(self.errors)
        assert sum(self.errors.values()) > 10


def test_detail_api_walk(backend_env: dict[str, str]) -> None:
    seen: dict[str, int] = {}
    tally = ErrorTally(catalogs.DETAIL_API)
    kit = ErrorKit(catalog=catalogs.DETAIL_API)  # the example's (its doc URLs aside: the detail format shows none)
    with (
        uvicorn("examples.detail_api:app", env={**backend_env, "EXAMPLE_EXPORT_SECONDS": "0.5"}) as server,
        httpx.Client(base_url=server.url, event_hooks={"response": [tally.hook]}) as c,
    ):

        def expect(r: httpx.Response, status: int, code: str | None = None) -> Any:
            assert r.status_code == status, r.text
            assert r.headers["x-request-id"]
            if code is not None:
                # the catalog's status, the detail format, the request id, x-should-retry and Retry-After
                assert_error(r, code, registry=kit)
                assert r.json() == {"detail": r.json()["detail"], "code": code, "request_id": r.headers["x-request-id"]}
                seen[code] = status
            return r.json()

        ws = "/workspaces/ws_demo"
        assert c.get("/health").json() == {"status": "ok"}
        first = c.post(f"{ws}/campaigns", json={"name": "Q3"}, headers={**ADMIN, "Idempotency-Key": "create-q3"})
        cmp = expect(first, 201)["id"]
        replay = c.post(f"{ws}/campaigns", json={"name": "Q3"}, headers={**ADMIN, "Idempotency-Key": "create-q3"})
        assert (replay.status_code, replay.content, replay.headers["idempotent-replayed"]) == (
            201,
            first.content,
            "true",
        )
        expect(c.get(f"{ws}/campaigns/{cmp}", headers={"X-API-Key": "ont_admin.wrong-secret"}), 401, "invalid_api_key")
        expect(c.get(f"{ws}/campaigns/{cmp}"), 401, "invalid_api_key")  # the document: "Key is missing, ..."
        expect(c.post(f"{ws}/campaigns", json={"name": "x"}, headers=READER), 403, "insufficient_scope")
        expect(c.get(f"/workspaces/ws_other/campaigns/{cmp}", headers=ADMIN), 403, "workspace_forbidden")
        expect(c.get(f"{ws}/campaigns/{cmp}/results", headers=READER), 409, "synthesis_pending")
        expect(c.post(f"{ws}/campaigns/{cmp}/start", headers=ADMIN), 200)
        expect(c.get(f"{ws}/campaigns/{cmp}/graph", headers=READER), 409, "graph_not_ready")
        expect(c.post(f"{ws}/campaigns/{cmp}/start", headers=ADMIN), 409, "campaign_locked")
        expect(c.post(f"{ws}/campaigns/{cmp}/complete", headers=ADMIN), 200)
        assert expect(c.get(f"{ws}/campaigns/{cmp}/results", headers=READER), 200)["summary"] == "Results of Q3"
        expect(c.post(f"{ws}/campaigns/{cmp}/start", headers=ADMIN), 409, "campaign_locked")
        expect(c.get(f"{ws}/campaigns/cmp_nope", headers=ADMIN), 404, "not_found")
        r = c.post(f"{ws}/topics", json={"topics": [{"weight": 0}]}, headers=ADMIN)
        assert r.status_code == 422
        assert [i["loc"] for i in r.json()["detail"]] == [
            ["body", "topics", 0, "name"],
            ["body", "topics", 0, "weight"],
        ]
        expect(
            c.post(f"{ws}/topics", content=b"{oops", headers={**ADMIN, "content-type": "application/json"}),
            400,
            "invalid_json",
        )
        # one export at a time: two at once give a 202 and a 429 from the concurrency limit (both counted
        # by the rate limit of 2 a minute, so the next is the rate limiter's 429)
        with ThreadPoolExecutor(2) as pool:
            at_once = list(pool.map(lambda _: c.post(f"{ws}/campaigns/{cmp}/export", headers=ADMIN), range(2)))
        assert sorted(r.status_code for r in at_once) == [202, 429]
        busy = next(r for r in at_once if r.status_code == 429)
        assert_error(busy, "too_many_concurrent_requests", registry=kit)  # Retry-After: 1, x-should-retry: true
        assert busy.json() == {
            "detail": "The workspace has too many requests in progress at once.",
            "code": "too_many_concurrent_requests",
            "request_id": busy.headers["x-request-id"],
        }
        assert (busy.headers["retry-after"], busy.headers["x-ratelimit-limit"]) == ("1", "2")  # rate headers too
        r = c.post(f"{ws}/campaigns/{cmp}/export", headers=ADMIN)
        expect(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1 and r.headers["x-ratelimit-remaining"] == "0"
        tally.assert_scraped(c)
        # a requests response reads the same (after the scrape: the tally counts httpx's responses)
        gone = requests.get(
            f"{server.url}{ws}/campaigns/cmp_gone", headers={**ADMIN, "X-Request-ID": "req-r"}, timeout=10
        )
        assert assert_error(gone, "not_found", registry=kit).request_id == "req-r"
    detail_codes = {
        "invalid_api_key",
        "insufficient_scope",
        "workspace_forbidden",
        "synthesis_pending",
        "graph_not_ready",
        "campaign_locked",
        "rate_limited",
    }
    assert detail_codes <= set(seen)
    assert {code: catalogs.DETAIL_API[code].definition.status for code in seen} == seen


def test_envelope_api_walk(backend_env: dict[str, str]) -> None:
    seen: dict[str, int] = {}
    port = free_port()  # doc URLs point at the reference pages the example serves (tests/test_reference.py)
    env = {**backend_env, "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    tally = ErrorTally(catalogs.ENVELOPE_API)
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API, doc_url=f"http://127.0.0.1:{port}/errors/{{code}}")  # the example's
    with (
        uvicorn("examples.envelope_api:app", env=env, port=port) as server,
        httpx.Client(base_url=server.url, event_hooks={"response": [tally.hook]}) as c,
    ):

        def expect(
            r: httpx.Response, status: int, code: str | None = None, details: dict[str, Any] | None = None
        ) -> Any:
            assert r.status_code == status, r.text
            if code is not None:
                # the code and the catalog's status, message and doc URL, in the envelope format, with the request
                # id, x-should-retry and Retry-After; then every detail, none left out
                message = catalogs.ENVELOPE_API[code].definition.message
                error = assert_error(r, code, registry=kit, message=message, **(details or {}))
                assert error.details == (details or {})
                assert r.json()["error"]["doc_url"] == f"{server.url}/errors/{code}"
                seen[code] = status
            return r.json()

        def key(name: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {name}"}

        inv = {"prompt": "hi"}
        expect(c.get("/v2/deployments/legacy-bot"), 401, "authentication_required")
        expect(c.get("/v2/deployments/legacy-bot", headers=key("sk-orq-dev.wrong-secret")), 401, "invalid_api_key")
        expect(
            c.get("/v2/deployments/legacy-bot", headers=key("sk-orq-old.demo-expired-secret")),
            401,
            "expired_api_key",
            {"expired_at": "2025-01-01T00:00:00Z"},
        )
        expect(
            c.post(
                "/v2/deployments",
                json={"key": "a", "model": "openai/gpt-4o"},
                headers=key("sk-orq-public.demo-public-secret"),
            ),
            403,
            "insufficient_scope",
            {"required_permission": "deployments:write", "key_scope": "PUBLIC"},
        )
        expect(
            c.get("/v2/deployments/support-router", headers=key("sk-orq-proj.demo-project-secret")),
            403,
            "wrong_project",
            {"key_project_id": "proj_a", "resource_project_id": "proj_b"},
        )
        expect(
            c.get("/v2/deployments/x", headers=key("sk-orq-off.demo-disabled-secret")),
            403,
            "workspace_disabled",
            {"reason": "payment overdue"},
        )
        r = expect(
            c.post("/v2/deployments", json={"key": 5}, headers=DEV),
            400,
            "invalid_request_body",
            {
                "issues": [
                    {"loc": ["body", "key"], "msg": "Input should be a valid string", "type": "string_type"},
                    {"loc": ["body", "model"], "msg": "Field required", "type": "missing"},
                ]
            },
        )
        expect(
            c.post("/v2/deployments", json={"key": "a", "model": "gpt-9"}, headers=DEV),
            400,
            "unsupported_engine",
            {"engine": "gpt-9", "supported": ["openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-sonnet"]},
        )
        for i in range(3):
            r = c.post("/v2/deployments", json={"key": f"bot-{i}", "model": "openai/gpt-4o"}, headers=DEV)
            assert (r.status_code, r.headers["location"]) == (201, f"/v2/deployments/bot-{i}")
        expect(
            c.post("/v2/deployments", json={"key": "bot-3", "model": "openai/gpt-4o"}, headers=DEV),
            402,
            "quota_exceeded",
            {"usage": 3, "limit": 3},
        )
        growth = key("sk-orq-growth.demo-growth-secret")
        assert all(
            c.post("/v2/deployments", json={"key": f"g-{i}", "model": "openai/gpt-4o"}, headers=growth).status_code
            == 201
            for i in range(5)
        )  # Growth: unlimited
        expect(c.post("/v2/webhooks", json={"name": "w1"}, headers=DEV), 201)
        expect(
            c.post("/v2/webhooks", json={"name": "w2"}, headers=DEV), 402, "quota_exceeded", {"usage": 1, "limit": 1}
        )
        expect(c.post("/v2/knowledge-bases", json={"name": "kb"}, headers=DEV), 201)
        expect(c.post("/v2/memory-stores", json={"name": "mem"}, headers=DEV), 201)
        expect(
            c.post("/v2/memory-stores", json={"name": "mem2"}, headers=DEV),
            402,
            "quota_exceeded",
            {"usage": 2, "limit": 2},
        )
        expect(c.get("/v2/deployments/nope", headers=DEV), 404, "deployment_not_found", {"key": "nope"})
        expect(c.get("/v2/integrations/int_x", headers=DEV), 404, "integration_not_found", {"identifier": "int_x"})
        expect(
            c.post("/v2/deployments/support-router/invoke", json={**inv, "context": {"locale": "en"}}, headers=DEV),
            422,
            "variant_not_resolved",
            {"context_keys": ["locale"]},
        )
        expect(
            c.post("/v2/deployments/legacy-bot/invoke", json=inv, headers=DEV),
            422,
            "model_configuration_missing",
            {"model_db_id": "mdl_removed"},
        )
        expect(
            c.post("/v2/deployments/broken-creds/invoke", json=inv, headers=DEV),
            422,
            "provider_credential_invalid",
            {"provider": "anthropic", "field": "api_key"},
        )
        expect(
            c.post("/v2/deployments/bot-0/invoke", json={**inv, "snippets": ["missing"]}, headers=DEV),
            404,
            "prompt_snippet_not_found",
            {"key": "missing"},
        )
        assert expect(c.post("/v2/deployments/bot-0/invoke", json=inv, headers=DEV), 200)["output"] == "echo: hi"
        expect(
            c.post("/v2/deployments/bot-1/invoke", json=inv, headers={**DEV, "X-Simulate-Provider": "error"}),
            502,
            "provider_error",
            {"provider": "openai", "provider_status": 500, "raw": "upstream server error"},
        )
        expect(
            c.post("/v2/deployments/bot-1/invoke", json=inv, headers={**DEV, "X-Simulate-Provider": "timeout"}),
            504,
            "provider_timeout",
            {"provider": "openai", "timeout_ms": 10000},
        )
        r = c.post("/v2/deployments/bot-1/invoke", json=inv, headers={**DEV, "X-Simulate-Provider": "overloaded"})
        expect(r, 503, "provider_overloaded", {"provider": "openai"})
        assert r.headers["retry-after"] == "5"
        expect(
            c.post("/v2/deployments/bot-2/invoke", json={**inv, "timeout_ms": 1}, headers=DEV),
            408,
            "request_timeout",
            {"timeout_ms": 1},
        )
        expect(c.post("/v2/deployments/bot-2/batch", headers=DEV), 501, "not_implemented", {"feature": "batch_invoke"})
        expect(
            c.post("/v2/knowledge-bases/kb_1/search", headers={**DEV, "X-Simulate-Outage": "vector_store"}),
            503,
            "service_unavailable",
            {"dependency": "vector_store"},
        )
        r = c.get("/v2/debug/crash", headers=DEV)
        expect(r, 500, "internal_error")
        assert "hunter2" not in r.text
        statuses = [c.post("/v2/deployments/g-0/invoke", json=inv, headers=growth).status_code for _ in range(12)]
        assert statuses.count(429) >= 2  # 10 invocations per 10 s
        r = c.post("/v2/deployments/g-0/invoke", json=inv, headers=growth)
        retry = int(r.headers["retry-after"])
        expect(r, 429, "rate_limit_exceeded", {"retry_after_seconds": retry, "limit": 10})
        tally.assert_scraped(c)
    envelope_codes = {
        "authentication_required",
        "invalid_api_key",
        "expired_api_key",
        "insufficient_scope",
        "wrong_project",
        "workspace_disabled",
        "quota_exceeded",
        "invalid_request_body",
        "unsupported_engine",
        "variant_not_resolved",
        "model_configuration_missing",
        "provider_credential_invalid",
        "deployment_not_found",
        "integration_not_found",
        "prompt_snippet_not_found",
        "rate_limit_exceeded",
        "provider_error",
        "provider_timeout",
        "provider_overloaded",
        "internal_error",
        "not_implemented",
        "service_unavailable",
        "request_timeout",
    }
    assert set(seen) == envelope_codes
    assert {code: catalogs.ENVELOPE_API[code].definition.status for code in seen} == seen
