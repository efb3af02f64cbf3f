"""OpenAPI documents from the registry: FastAPI and Starlette, stages included, checked by schemathesis."""

import asyncio
import copy
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import Depends, FastAPI, Header, Security
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from errorkit import (
    APIError,
    APIKeyAuth,
    ConfigurationError,
    DetailFormat,
    EnvelopeFormat,
    ErrorContext,
    ErrorKit,
    Format,
    Idempotency,
    Limit,
    MemoryBackend,
    RateLimiter,
    catalogs,
    raises,
)
from errorkit._stores.protocols import ClaimState
from tests.support.servers import free_port, redis_server, uvicorn

ROOT = Path(__file__).parent.parent
CONFIGS = Path(__file__).parent / "schemathesis"


def codes(response: dict[str, Any]) -> list[str]:
    return sorted(response["content"]["application/json"]["examples"])


def statuses(document: dict[str, Any], path: str, method: str) -> dict[str, list[str]]:
    responses = document["paths"][path][method]["responses"]
    return {status: codes(r) if "content" in r and "examples" in r["content"].get("application/json", {}) else []
            for status, r in responses.items()}  # fmt: skip


@pytest.fixture(scope="module")
def detail_document() -> dict[str, Any]:
    from examples.detail_api import app

    return app.openapi()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def envelope_document() -> dict[str, Any]:
    from examples.envelope_api import app

    with TestClient(app) as client:
        return client.get("/openapi.json").json()  # type: ignore[no-any-return]


def test_a_fastapi_operation_declares_what_its_route_and_the_stages_can_answer(
    detail_document: dict[str, Any],
) -> None:
    assert statuses(detail_document, "/workspaces/{workspace_id}/campaigns/{campaign_id}/start", "post") == {
        "200": [],
        "400": ["invalid_idempotency_key"],
        "401": ["expired_api_key", "invalid_api_key"],
        "403": ["insufficient_scope", "workspace_disabled", "workspace_forbidden"],
        "404": ["not_found"],
        "409": ["campaign_locked", "idempotency_key_in_use", "idempotency_response_unavailable"],
        "413": ["payload_too_large"],
        "422": ["idempotency_key_reused", "validation_error"],
        "429": ["rate_limited"],
        "500": ["internal_error"],
        "503": ["service_unavailable"],
    }
    # a body: the malformed-JSON 400 too; a GET: no Idempotency-Key and none of its errors
    assert statuses(detail_document, "/workspaces/{workspace_id}/topics", "post")["400"] == [
        "invalid_idempotency_key", "invalid_json"
    ]  # fmt: skip
    get = detail_document["paths"]["/workspaces/{workspace_id}/campaigns/{campaign_id}/results"]["get"]
    assert sorted(get["responses"]) == ["200", "401", "403", "404", "409", "422", "429", "500", "503"]
    assert [p["name"] for p in get["parameters"]] == ["workspace_id", "campaign_id"]
    # the export's concurrency limit: its own 429 beside the rate limiter's (errorkit's definition)
    export = "/workspaces/{workspace_id}/campaigns/{campaign_id}/export"
    assert statuses(detail_document, export, "post")["429"] == ["rate_limited", "too_many_concurrent_requests"]
    assert "too_many_concurrent_requests" not in str(
        statuses(detail_document, "/workspaces/{workspace_id}/topics", "post")
    )
    # public and exempt from limits: only a crash is possible
    assert statuses(detail_document, "/health", "get") == {"200": [], "500": ["internal_error"]}
    assert "security" not in detail_document["paths"]["/health"]["get"]


def test_the_fastapi_document_uses_the_kits_format_not_fastapis_validation_models(
    detail_document: dict[str, Any],
) -> None:
    schemas = detail_document["components"]["schemas"]
    assert schemas["Error"] == DetailFormat().schema()
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    unprocessable = detail_document["paths"]["/workspaces/{workspace_id}/topics"]["post"]["responses"]["422"]
    assert unprocessable["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert unprocessable["content"]["application/json"]["examples"]["idempotency_key_reused"]["value"] == {
        "detail": "This Idempotency-Key was already used with a different request.",
        "code": "idempotency_key_reused",
        "request_id": "5f0c2b8e9a1d4c7b0000000000000001",
    }
    assert unprocessable["description"] == (
        "`idempotency_key_reused`: This Idempotency-Key was already used with a different request.; "
        "`validation_error`: Unprocessable Entity"
    )


def test_every_example_is_valid_against_the_documented_schema(
    detail_document: dict[str, Any], envelope_document: dict[str, Any]
) -> None:
    problem = FastAPI()

    @problem.post("/things/{thing_id}")
    @raises("conflict")
    async def thing(thing_id: int) -> None:
        return None

    backend = MemoryBackend()
    ErrorKit(catalog=catalogs.ENVELOPE_API, format="problem").install(
        problem, auth=APIKeyAuth(backend), rate_limit=RateLimiter(backend), idempotency=Idempotency(backend)
    )
    problem_document = problem.openapi()
    media = problem_document["paths"]["/things/{thing_id}"]["post"]["responses"]["409"]["content"]
    assert list(media) == ["application/problem+json"]
    checked = 0
    for document in (detail_document, envelope_document, problem_document):
        validator = jsonschema.Draft202012Validator(document["components"]["schemas"]["Error"])
        for item in document["paths"].values():
            for operation in item.values():
                for response in operation["responses"].values():
                    for media in response.get("content", {}).values():
                        for example in media.get("examples", {}).values():
                            validator.validate(example["value"])
                            checked += 1
    assert checked > 170


def test_stages_add_headers_parameters_and_security(detail_document: dict[str, Any]) -> None:
    operation = detail_document["paths"]["/workspaces/{workspace_id}/campaigns/{campaign_id}/start"]["post"]
    assert operation["security"] == [{"apiKeyHeader": []}, {"bearer": []}]
    assert detail_document["components"]["securitySchemes"] == {
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "bearer": {"type": "http", "scheme": "bearer"},
    }
    assert operation["parameters"][-1] == {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "A unique value (a UUID) that makes retries safe: the same key within 24 hours replays the "
        "first response instead of running the request again.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]*[!-~][ -~]*$"},
    }
    responses = operation["responses"]
    assert list(responses["200"]["headers"]) == ["X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                                                 "X-RateLimit-Reset"]  # fmt: skip
    assert list(responses["429"]["headers"]) == ["X-Request-ID", "x-should-retry", "X-RateLimit-Limit",
                                                 "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After",
                                                 "retry-after-ms"]  # fmt: skip
    assert "WWW-Authenticate" in responses["401"]["headers"] and "Retry-After" not in responses["401"]["headers"]
    assert "Retry-After" in responses["409"]["headers"]  # the in-flight 409 says when to come back


def test_a_starlette_document_from_docstrings_gets_the_same_errors(envelope_document: dict[str, Any]) -> None:
    assert statuses(envelope_document, "/v2/deployments", "post") == {
        "201": [],
        "400": ["invalid_idempotency_key", "invalid_request_body", "unsupported_engine"],
        "401": ["authentication_required", "expired_api_key", "invalid_api_key"],
        "402": ["quota_exceeded"],
        "403": ["insufficient_scope", "workspace_disabled", "wrong_project"],
        "409": ["conflict", "idempotency_key_in_use", "idempotency_response_unavailable"],  # conflict: a key taken
        "413": ["payload_too_large"],
        "422": ["idempotency_key_reused"],
        "429": ["rate_limit_exceeded"],
        "500": ["internal_error"],
        "503": ["service_unavailable"],
    }
    quota = envelope_document["paths"]["/v2/deployments"]["post"]["responses"]["402"]
    assert quota["content"]["application/json"]["examples"]["quota_exceeded"]["value"] == {
        "error": {
            "code": "quota_exceeded",
            "message": "The workspace has reached the limit for a resource on its current plan.",
            "doc_url": "http://127.0.0.1:8000/errors/quota_exceeded",
            "details": {"usage": 1, "limit": 1},
            "request_id": "5f0c2b8e9a1d4c7b0000000000000001",
        }
    }
    schemas = envelope_document["components"]["schemas"]
    assert schemas["Error"] == EnvelopeFormat().schema()
    assert sorted(schemas) == ["DeploymentIn", "Error", "InvokeIn", "NamedIn"]
    body = envelope_document["paths"]["/v2/deployments"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DeploymentIn"}
    # endpoints without a docstring (the crash route, the unimplemented batch route) stay out
    assert "/v2/debug/crash" not in envelope_document["paths"]
    assert "/openapi.json" not in envelope_document["paths"]


def test_the_document_is_computed_once_and_never_changed_by_requests() -> None:
    kit = ErrorKit(catalog=catalogs.DETAIL_API)
    app = FastAPI()

    @app.get("/items/{item_id}")
    @raises("not_found")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise kit.error("not_found")
        return {"id": item_id}

    kit.install(app)
    client = TestClient(app)
    first = client.get("/openapi.json").json()
    snapshot = copy.deepcopy(app.openapi())
    assert app.openapi() is app.openapi()
    assert client.get("/items/0").status_code == 404 and client.get("/items/x").status_code == 422
    assert client.get("/openapi.json").json() == first and app.openapi() == snapshot
    assert sorted(first["paths"]["/items/{item_id}"]["get"]["responses"]) == ["200", "404", "422", "500"]


def test_raises_takes_classes_and_codes_on_endpoints_and_dependencies() -> None:
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    archived = kit.define("campaign_archived", status=409, message="The campaign is archived.")

    @raises(archived, "deployment_not_found")
    async def load_campaign() -> str:
        return "c_1"

    app = FastAPI()

    @app.post("/campaigns")
    @raises("quota_exceeded")
    async def create(campaign: str = Depends(load_campaign)) -> dict[str, str]:
        return {"id": campaign}

    kit.install(app)
    assert statuses(app.openapi(), "/campaigns", "post") == {
        "200": [],
        "402": ["quota_exceeded"],
        "404": ["deployment_not_found"],
        "409": ["campaign_archived"],
        "500": ["internal_error"],
    }
    with pytest.raises(TypeError, match=r"raises\(\) takes error codes or APIError classes, not 404"):
        raises(404)  # type: ignore[arg-type]

    unknown = FastAPI()

    @unknown.get("/")
    @raises("no_such_code")
    async def root() -> None:
        return None

    kit.install(unknown)
    with pytest.raises(
        ConfigurationError, match=r"raises\('no_such_code'\) on .*root \(/\): no error code 'no_such_code'"
    ):
        unknown.openapi()  # (the start-up check, run first: the document is not made)
    assert unknown.openapi_schema is None


class Compact(Format):
    """A custom format: `{"e": code}`."""

    name = "compact"

    def render(self, error: APIError, context: ErrorContext) -> dict[str, Any]:
        return {"e": error.code}

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "required": ["e"], "properties": {"e": {"type": "string"}}}


def test_a_custom_format_documents_its_own_schema_and_a_starlette_app_its_stages() -> None:
    kit = ErrorKit(format=Compact())
    backend = MemoryBackend()
    auth = APIKeyAuth(backend, public_paths=["/openapi.json"])

    @auth.requires("things:write")
    @raises("conflict")
    async def things(request: Request) -> Response:
        """Create a thing
        ---
        responses:
          201:
            description: Created
        """
        return JSONResponse({}, status_code=201)

    schemas = kit.schemas({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}})
    app = Starlette(routes=[schemas.route(), Route("/things", things, methods=["POST"])])
    kit.install(app, auth=auth, rate_limit=RateLimiter(backend), idempotency=Idempotency(backend))
    document = TestClient(app).get("/openapi.json").json()
    assert document["components"]["schemas"]["Error"] == Compact().schema()
    responses = document["paths"]["/things"]["post"]["responses"]
    assert {s: codes(r) for s, r in responses.items() if s != "201"} == {
        "400": ["invalid_idempotency_key"],
        "401": ["expired_api_key", "invalid_api_key", "unauthorized"],
        "403": ["insufficient_scope", "workspace_disabled"],
        "409": ["conflict", "idempotency_key_in_use", "idempotency_response_unavailable"],
        "413": ["payload_too_large"],
        "422": ["idempotency_key_reused"],
        "429": ["rate_limit_exceeded"],
        "500": ["internal_error"],
        "503": ["service_unavailable"],
    }
    assert responses["409"]["content"]["application/json"]["examples"]["conflict"]["value"] == {"e": "conflict"}
    assert schemas.document(app) is schemas.document(app)


def test_a_used_key_on_a_route_without_that_method_is_the_routers_405_not_a_reuse() -> None:
    kit = ErrorKit(catalog=catalogs.DETAIL_API)
    app = FastAPI()

    @app.get("/things")
    async def things() -> dict[str, bool]:
        return {"ok": True}

    backend = MemoryBackend()
    kit.install(app, idempotency=Idempotency(backend))
    client = TestClient(app)
    for body in (b"{}", b'{"other": 1}'):  # the second would be a reuse with another body
        r = client.post("/things", content=body, headers={"Idempotency-Key": "k-1"})
        assert (r.status_code, r.json()["code"], r.headers["allow"]) == (405, "method_not_allowed", "GET")
        r = client.post("/nowhere", content=body, headers={"Idempotency-Key": "k-1"})
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
    # nothing kept: each claim was released, so the key is free for a request a route takes
    claim = asyncio.run(backend.claim("ip:testclient", "k-1", b"fp", "owner", 1000))
    assert claim.state is ClaimState.CLAIMED


CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance," \
         "response_headers_conformance"  # fmt: skip


@pytest.mark.parametrize(("example", "key"), [
    ("detail_api", "X-API-Key: ont_admin.demo-admin-secret"),
    ("envelope_api", "Authorization: Bearer sk-orq-dev.demo-dev-secret"),
])  # fmt: skip
def test_schemathesis_finds_nothing_undocumented(example: str, key: str) -> None:
    """Real uvicorn on a real Redis; schemathesis's coverage, fuzzing and stateful phases, bounded."""
    port = free_port()
    with redis_server() as redis:
        env = {"REDIS_URL": redis.url, "PUBLIC_URL": f"http://127.0.0.1:{port}", "EXAMPLE_RATE_LIMIT": "100000"}
        with uvicorn(f"examples.{example}:app", port=port, env=env) as server:
            done = subprocess.run(
                [
                    str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(CONFIGS / f"{example}.toml"),
                    "run", f"{server.url}/openapi.json", "--checks", CHECKS, "--max-examples", "15",
                    "--max-time", "40", "--seed", "7", "--header", key, "--request-timeout", "10",
                ],
                capture_output=True, text=True, timeout=240, cwd=ROOT,
            )  # fmt: skip
            log = server.log.read_text()
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    generated, passed = re.search(r"Test cases:\s+(\d+) generated, (\d+) passed\n", done.stdout).groups()  # type: ignore[union-attr]
    assert generated == passed and int(generated) > 500, done.stdout[-3000:]
    assert "Traceback" not in log, log[-3000:]


def test_dependency_parameters_document_the_validation_error() -> None:
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)

    async def tenant(x_tenant: str = Header()) -> str:
        return x_tenant

    app = FastAPI()

    @app.get("/reports")
    async def reports(who: str = Depends(tenant)) -> dict[str, str]:
        return {"who": who}

    kit.install(app)
    assert statuses(app.openapi(), "/reports", "get") == {
        "200": [], "400": ["invalid_request_parameters"], "500": ["internal_error"]
    }  # fmt: skip
    r = TestClient(app).get("/reports")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_request_parameters")


def test_the_apps_own_schemas_security_and_earlier_document_are_respected() -> None:
    class Error(BaseModel):  # the app's own model of that name
        reason: str

    kit = ErrorKit()
    backend = MemoryBackend()
    app = FastAPI()
    oauth = OAuth2PasswordBearer(tokenUrl="/token", scopes={"admin": "everything"})

    @app.get("/admin", responses={418: {"model": Error}})
    async def admin(token: str = Security(oauth, scopes=["admin"])) -> dict[str, str]:
        return {"token": token}

    before = app.openapi()  # made before install(): replaced, not kept
    assert "401" not in before["paths"]["/admin"]["get"]["responses"]
    kit.install(app, auth=APIKeyAuth(backend))
    document = app.openapi()
    schemas = document["components"]["schemas"]
    assert schemas["Error"]["properties"] == {"reason": {"type": "string", "title": "Reason"}}
    assert schemas["ErrorkitError"] == DetailFormat().schema()
    responses = document["paths"]["/admin"]["get"]["responses"]
    assert responses["418"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert responses["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorkitError"}
    # both apply: the route's OAuth2 scope and errorkit's API key (either header)
    assert document["paths"]["/admin"]["get"]["security"] == [
        {"OAuth2PasswordBearer": ["admin"], "apiKeyHeader": []},
        {"OAuth2PasswordBearer": ["admin"], "bearer": []},
    ]


def test_documents_share_no_objects() -> None:
    documents = []
    for _ in range(2):
        kit = ErrorKit()
        app = FastAPI()

        @app.get("/a")
        async def a() -> None:
            return None

        kit.install(app, rate_limit=RateLimiter(MemoryBackend()))
        documents.append(app.openapi())
    first, second = (d["paths"]["/a"]["get"]["responses"] for d in documents)
    first["500"]["content"]["application/json"]["schema"]["$ref"] = "#/changed"
    first["200"]["headers"]["X-Request-ID"]["schema"]["type"] = "changed"
    assert second["500"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert second["200"]["headers"]["X-Request-ID"]["schema"] == {"type": "string"}


def test_constrained_and_nested_details_still_have_samples() -> None:
    class Line(BaseModel):
        sku: str
        quantity: int

    kit = ErrorKit(format="envelope")
    kit.define(
        "order_rejected",
        status=422,
        message="The order was rejected.",
        details={
            "minimum": (int, Field(ge=5)),
            "reference": (str, Field(pattern=r"^ord_")),
            "batch": uuid.UUID,
            "lines": list[Line],
            "note": (str, Field(examples=["over the credit limit"])),
        },
    )
    app = FastAPI()

    @app.post("/orders")
    @raises("order_rejected")
    async def orders() -> None:
        return None

    kit.install(app)
    example = app.openapi()["paths"]["/orders"]["post"]["responses"]["422"]["content"]["application/json"]
    assert example["examples"]["order_rejected"]["value"]["error"]["details"] == {
        "minimum": 1,
        "reference": "<reference>",
        "batch": "00000000-0000-0000-0000-000000000001",
        "lines": [{"sku": "<sku>", "quantity": 1}],
        "note": "over the credit limit",
    }
    assert "| `lines` | list of Line | yes |" in kit.reference().markdown()


def test_a_key_sent_to_a_route_that_refuses_the_method_is_not_kept_even_in_an_endpoint_class() -> None:
    kit = ErrorKit(catalog=catalogs.DETAIL_API)

    class Things(HTTPEndpoint):
        async def get(self, request: Request) -> Response:
            return JSONResponse({"ok": True})

    backend = MemoryBackend()
    app = Starlette(routes=[Route("/things", Things)])
    kit.install(app, idempotency=Idempotency(backend))
    client = TestClient(app)
    for body in (b"{}", b'{"other": 1}'):
        r = client.post("/things", content=body, headers={"Idempotency-Key": "k-2"})
        assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")


@pytest.mark.parametrize("wrapped", ["middleware", "plain ASGI"])
def test_a_post_into_a_mount_whose_routes_cannot_be_seen_still_runs_once(wrapped: str) -> None:
    runs = []

    async def pay(request: Request) -> Response:
        runs.append(1)
        return JSONResponse({"n": len(runs)}, status_code=201)

    inner = Starlette(routes=[Route("/payments", pay, methods=["POST"])])
    mounted: Any = CORSMiddleware(inner, allow_origins=["*"]) if wrapped == "middleware" else _plain(inner)
    kit = ErrorKit()
    app = Starlette(routes=[Mount("/v1", app=mounted)])
    kit.install(app, idempotency=Idempotency(MemoryBackend()))
    client = TestClient(app)
    first = client.post("/v1/payments", content=b"{}", headers={"Idempotency-Key": "pay-1"})
    again = client.post("/v1/payments", content=b"{}", headers={"Idempotency-Key": "pay-1"})
    assert (first.status_code, first.json(), again.json(), again.headers["idempotent-replayed"]) == (
        201, {"n": 1}, {"n": 1}, "true"
    )  # fmt: skip
    assert runs == [1]
    # a 404 from inside such a mount is the app's answer (it ran): kept and replayed like any other
    missing = client.post("/v1/nothing", content=b"{}", headers={"Idempotency-Key": "pay-2"})
    assert missing.status_code == 404
    replay = client.post("/v1/nothing", content=b"{}", headers={"Idempotency-Key": "pay-2"})
    assert replay.headers.get("idempotent-replayed") == "true"


def _plain(app: Any) -> Any:
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)

    return asgi


def test_retry_hints_on_errors_say_what_a_retry_would_do() -> None:
    kit = ErrorKit()
    app = FastAPI()

    @app.get("/boom")
    @app.post("/boom")
    async def boom() -> None:
        raise RuntimeError("broken")

    limiter = RateLimiter(MemoryBackend(), limits=[Limit(10, 60)])  # (one more every 6 s: a slow run stays refused)

    @app.get("/limited")
    async def limited() -> None:
        return None

    kit.install(app, rate_limit=limiter, idempotency=Idempotency(MemoryBackend()))
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/boom").headers["x-should-retry"] == "true"
    assert client.post("/boom").headers["x-should-retry"] == "false"  # it may have done its work: not again
    keyed = client.post("/boom", headers={"Idempotency-Key": "b-1"})
    assert keyed.status_code == 500 and keyed.headers["x-should-retry"] == "true"  # a retry is safe with the key
    for _ in range(10):
        client.get("/limited")
    refused = client.get("/limited")
    assert refused.status_code == 429
    seconds, ms = int(refused.headers["retry-after"]), int(refused.headers["retry-after-ms"])
    assert 1 <= seconds <= 6 and (seconds - 1) * 1000 < ms <= seconds * 1000  # the exact wait; Retry-After rounds up


def test_a_replayed_error_keeps_its_retry_hint() -> None:
    kit = ErrorKit(catalog=catalogs.DETAIL_API)
    app = FastAPI()

    @app.post("/campaigns/{campaign_id}/start")
    async def start(campaign_id: str) -> None:
        raise kit.error("not_found")

    kit.install(app, idempotency=Idempotency(MemoryBackend()))
    client = TestClient(app)
    first, again = (client.post("/campaigns/c/start", headers={"Idempotency-Key": "s-1"}) for _ in range(2))
    assert (first.status_code, first.headers["x-should-retry"]) == (404, "false")
    assert (again.headers["idempotent-replayed"], again.headers["x-should-retry"]) == ("true", "false")
