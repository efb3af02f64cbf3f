"""An LLM-gateway-like API in the second document's style (`{"error": {...}}`), on plain Starlette.

    scripts/example envelope_api          # in-memory backend
    REDIS_URL=redis://127.0.0.1:6379/0 scripts/example envelope_api

Demo keys (Authorization: Bearer):
    sk-orq-dev.demo-dev-secret          workspace ws_dev (Developer plan), every permission
    sk-orq-growth.demo-growth-secret    workspace ws_growth (Growth plan)
    sk-orq-public.demo-public-secret    ws_dev, PUBLIC scope: read only
    sk-orq-proj.demo-project-secret     ws_dev, PROJECT scope for proj_a
    sk-orq-old.demo-expired-secret      ws_dev, expired
    sk-orq-off.demo-disabled-secret     ws_off, a disabled workspace
The simulated upstream provider obeys `X-Simulate-Provider: error | timeout | overloaded`;
`X-Simulate-Outage: vector_store` takes the knowledge-base index down.

The example's own data (campaigns, deployments) lives in this process; keys, rate-limit
counters and idempotency records live in the backend (shared by every worker on Redis).
"""

import asyncio
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    Idempotency,
    Limit,
    Principal,
    PrometheusMetrics,
    Quotas,
    RateLimiter,
    backend_from_env,
    catalogs,
    raises,
    register_api_key,
    set_workspace_disabled,
)
from errorkit.catalogs.envelope_api import PLAN_LIMITS
from errorkit.catalogs.pages import ENVELOPE_PAGE

# doc_url points at the reference pages this app serves at /errors/{code} (PUBLIC_URL: where clients reach it)
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000")
kit = ErrorKit(catalog=catalogs.ENVELOPE_API, doc_url=f"{PUBLIC_URL}/errors/{{code}}")
backend = backend_from_env()
auth = APIKeyAuth(backend, public_paths=["/health", "/openapi.json", "/errors*", "/metrics"])
limiter = RateLimiter(
    backend,
    limits=[Limit(int(os.environ.get("EXAMPLE_RATE_LIMIT", "300")), 60)],  # per workspace, per minute
    routes={"POST /v2/deployments/{key}/invoke": [Limit(10, 10)]},
    exempt=["/health", "/metrics"],
)
# the plan table of quota_exceeded, enforced by the library: one atomic reservation per creation,
# given back when the creation fails; knowledge bases and memory stores share one limit
KNOWLEDGE = "Knowledge Bases + Memory Stores"
quotas = Quotas(
    backend,
    limits=PLAN_LIMITS,
    resources={"deployments": "Deployments", "agents": "Agents", "knowledge_bases": KNOWLEDGE,
               "memory_stores": KNOWLEDGE, "webhooks": "Webhooks"},
    creates={"POST /v2/deployments": "deployments", "POST /v2/agents": "agents",
             "POST /v2/knowledge-bases": "knowledge_bases", "POST /v2/memory-stores": "memory_stores",
             "POST /v2/webhooks": "webhooks"},
    default_plan="Developer",
)  # fmt: skip
# Prometheus scrapes /metrics (with several workers: set PROMETHEUS_MULTIPROC_DIR, see the README)
metrics = PrometheusMetrics()

ALL = {
    "deployments:read",
    "deployments:write",
    "deployments:invoke",
    "agents:write",
    "knowledge:write",
    "knowledge:read",
    "webhooks:write",
    "integrations:read",
}
DEMO_KEYS: dict[str, dict[str, Any]] = {
    "sk-orq-dev.demo-dev-secret": {"workspace_id": "ws_dev", "scopes": ALL, "plan": "Developer"},
    "sk-orq-growth.demo-growth-secret": {"workspace_id": "ws_growth", "scopes": ALL, "plan": "Growth"},
    "sk-orq-public.demo-public-secret": {
        "workspace_id": "ws_dev",
        "scopes": {"deployments:read"},
        "key_scope": "PUBLIC",
    },
    "sk-orq-proj.demo-project-secret": {"workspace_id": "ws_dev", "scopes": ALL, "project_id": "proj_a"},
    "sk-orq-old.demo-expired-secret": {
        "workspace_id": "ws_dev",
        "scopes": ALL,
        "expires_at": datetime(2025, 1, 1, tzinfo=UTC),
    },
    "sk-orq-off.demo-disabled-secret": {"workspace_id": "ws_off", "scopes": ALL},
}
ENGINES = ["openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-sonnet"]
MODELS = {"mdl_gpt4o": "openai/gpt-4o", "mdl_sonnet": "anthropic/claude-sonnet"}  # model_db_id -> engine
INTEGRATIONS = {
    "int_openai": {"provider": "openai", "credential": "ok"},
    "int_broken": {"provider": "anthropic", "credential": None},
}  # could not be decrypted
SNIPPETS = {"greeting": "Hello!"}

# per workspace: deployments by key (the library counts them against the plan)
deployments: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
SEEDED = {  # every workspace starts with these, the setup behind the documented failures
    "legacy-bot": {"model_db_id": "mdl_removed", "integration": "int_openai", "project_id": "proj_a", "variants": {}},
    "broken-creds": {"model_db_id": "mdl_sonnet", "integration": "int_broken", "project_id": "proj_a", "variants": {}},
    "support-router": {
        "model_db_id": "mdl_gpt4o",
        "integration": "int_openai",
        "project_id": "proj_b",
        "variants": {"locale": ["en", "fr"], "tier": ["free", "pro"]},
    },
}


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    for token, fields in DEMO_KEYS.items():
        await register_api_key(backend, token, **fields)
    await set_workspace_disabled(backend, "ws_off", True, reason="payment overdue")
    yield


class DeploymentIn(BaseModel):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")
    model: str
    project_id: str = "proj_a"


class InvokeIn(BaseModel):
    prompt: str = Field(min_length=1)
    context: dict[str, str] = {}
    snippets: list[str] = []
    timeout_ms: int = Field(default=30_000, gt=0)


class NamedIn(BaseModel):
    name: str = Field(min_length=1)


def workspace_deployments(principal: Principal) -> dict[str, dict[str, Any]]:
    mine = deployments[principal.workspace_id]
    if not mine:
        mine.update({k: dict(v, key=k) for k, v in SEEDED.items()})
    return mine


@auth.requires("deployments:write")
@raises("unsupported_engine", "wrong_project", "conflict")  # quota_exceeded: documented by the quotas stage
async def create_deployment(request: Request) -> Response:
    """Create a deployment
    ---
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: "#/components/schemas/DeploymentIn"}
    responses:
      201:
        description: Create a deployment
    """
    principal: Principal = request.user
    body = DeploymentIn.model_validate(await request.json())
    auth.check_project(principal, body.project_id)
    if body.model not in ENGINES:
        raise kit.error("unsupported_engine", engine=body.model, supported=ENGINES)
    mine = workspace_deployments(principal)
    if mine.get(body.key, {}).get("created"):  # (a 409: the quota unit reserved for it is given back)
        raise kit.error("conflict", message=f"A deployment with key {body.key!r} already exists.")
    model_db_id = (
        next(i for i, engine in MODELS.items() if engine == body.model) if body.model in MODELS.values() else "mdl_new"
    )
    MODELS.setdefault(model_db_id, body.model)
    mine[body.key] = {
        "key": body.key,
        "model_db_id": model_db_id,
        "integration": "int_openai",
        "project_id": body.project_id,
        "variants": {},
        "created": True,
    }
    return JSONResponse(
        {"key": body.key, "model": body.model}, status_code=201, headers={"Location": f"/v2/deployments/{body.key}"}
    )


def deployment_of(principal: Principal, key: str) -> dict[str, Any]:
    deployment = workspace_deployments(principal).get(key)
    if deployment is None:
        raise kit.error("deployment_not_found", key=key)
    auth.check_project(principal, deployment["project_id"])
    return deployment


@auth.requires("deployments:read")
@raises("deployment_not_found", "wrong_project")
async def get_deployment(request: Request) -> Response:
    """Read a deployment
    ---
    parameters:
      - {name: key, in: path, required: true, schema: {type: string}}
    responses:
      200:
        description: The deployment
    """
    d = deployment_of(request.user, request.path_params["key"])
    return JSONResponse({"key": d["key"], "model": MODELS.get(d["model_db_id"]), "project_id": d["project_id"]})


@auth.requires("deployments:invoke")
@raises(
    "deployment_not_found",
    "wrong_project",
    "variant_not_resolved",
    "model_configuration_missing",
    "provider_credential_invalid",
    "prompt_snippet_not_found",
    "request_timeout",
    "provider_error",
    "provider_timeout",
    "provider_overloaded",
)
async def invoke(request: Request) -> Response:
    """Invoke a deployment
    ---
    parameters:
      - {name: key, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: "#/components/schemas/InvokeIn"}
    responses:
      200:
        description: The model's output
    """
    d = deployment_of(request.user, request.path_params["key"])
    body = InvokeIn.model_validate(await request.json())
    if d["variants"] and not all(k in body.context for k in d["variants"]):
        raise kit.error("variant_not_resolved", context_keys=sorted(body.context))
    engine = MODELS.get(d["model_db_id"])
    if engine is None:
        raise kit.error("model_configuration_missing", model_db_id=d["model_db_id"])
    integration = INTEGRATIONS[d["integration"]]
    if integration["credential"] is None:
        raise kit.error("provider_credential_invalid", provider=integration["provider"], field="api_key")
    for snippet in body.snippets:
        if snippet not in SNIPPETS:
            raise kit.error("prompt_snippet_not_found", key=snippet)
    provider = engine.split("/")[0]
    simulate = request.headers.get("x-simulate-provider")
    try:
        output = await asyncio.wait_for(upstream(provider, body.prompt, simulate), timeout=body.timeout_ms / 1000)
    except TimeoutError:
        raise kit.error("request_timeout", timeout_ms=body.timeout_ms) from None
    return JSONResponse({"deployment": d["key"], "output": output})


async def upstream(provider: str, prompt: str, simulate: str | None) -> str:
    """A simulated model provider that can be told to fail."""
    if simulate == "error":
        raise kit.error("provider_error", provider=provider, provider_status=500, raw="upstream server error")
    if simulate == "timeout":
        raise kit.error("provider_timeout", provider=provider, timeout_ms=10_000)
    if simulate == "overloaded":
        raise kit.error("provider_overloaded", provider=provider, retry_after=5)
    await asyncio.sleep(0.02)  # the model thinking
    return f"echo: {prompt}"


@auth.requires("deployments:invoke")
@raises("not_implemented")
async def batch(request: Request) -> Response:
    raise kit.error("not_implemented", feature="batch_invoke")


def counted_create(resource: str) -> Any:
    async def create(request: Request) -> Response:
        """Create a plan-limited resource
        ---
        requestBody:
          required: true
          content:
            application/json:
              schema: {$ref: "#/components/schemas/NamedIn"}
        responses:
          201:
            description: Create a plan-limited resource
        """
        principal: Principal = request.user
        body = NamedIn.model_validate(await request.json())  # (invalid: a 400, and the unit is given back)
        usage = await quotas.usage(principal.workspace_id, resource)
        return JSONResponse({"name": body.name, "usage": usage}, status_code=201)

    return create


@auth.requires("knowledge:read")
@raises("service_unavailable")
async def search_knowledge(request: Request) -> Response:
    """Search a knowledge base
    ---
    parameters:
      - {name: kb_id, in: path, required: true, schema: {type: string}}
    responses:
      200:
        description: The hits
    """
    if request.headers.get("x-simulate-outage") == "vector_store":
        raise kit.error("service_unavailable", dependency="vector_store")
    return JSONResponse({"knowledge_base": request.path_params["kb_id"], "hits": []})


@auth.requires("integrations:read")
@raises("integration_not_found")
async def get_integration(request: Request) -> Response:
    """Read an integration
    ---
    parameters:
      - {name: integration_id, in: path, required: true, schema: {type: string}}
    responses:
      200:
        description: The integration
    """
    integration = INTEGRATIONS.get(request.path_params["integration_id"])
    if integration is None:
        raise kit.error("integration_not_found", identifier=request.path_params["integration_id"])
    return JSONResponse({"id": request.path_params["integration_id"], "provider": integration["provider"]})


async def health(request: Request) -> Response:
    """Liveness
    ---
    responses:
      200:
        description: The service is up
    """
    return JSONResponse({"status": "ok"})


async def crash(request: Request) -> Response:
    raise RuntimeError("simulated bug: the database password is hunter2")  # never shown to clients


schemas = kit.schemas(
    {"openapi": "3.1.0", "info": {"title": "LLM gateway (envelope errors)", "version": "1.0"}},
    models=[DeploymentIn, InvokeIn, NamedIn],
)
app = Starlette(
    lifespan=lifespan,
    routes=[
        schemas.route("/openapi.json"),
        Mount("/errors", kit.reference_app(ENVELOPE_PAGE)),
        Route("/health", health),
        Route("/metrics", metrics.app(), include_in_schema=False),
        Route("/v2/deployments", create_deployment, methods=["POST"]),
        Route("/v2/deployments/{key}", get_deployment),
        Route("/v2/deployments/{key}/invoke", invoke, methods=["POST"]),
        Route("/v2/deployments/{key}/batch", batch, methods=["POST"]),
        Route("/v2/agents", auth.requires("agents:write")(counted_create("agents")), methods=["POST"]),
        Route(
            "/v2/knowledge-bases",
            auth.requires("knowledge:write")(counted_create("knowledge_bases")),
            methods=["POST"],
        ),
        Route(
            "/v2/memory-stores",
            auth.requires("knowledge:write")(counted_create("memory_stores")),
            methods=["POST"],
        ),
        Route("/v2/knowledge-bases/{kb_id}/search", search_knowledge, methods=["POST"]),
        Route("/v2/webhooks", auth.requires("webhooks:write")(counted_create("webhooks")), methods=["POST"]),
        Route("/v2/integrations/{integration_id}", get_integration),
        Route("/v2/debug/crash", crash),
    ],
)
kit.install(app, auth=auth, rate_limit=limiter, idempotency=Idempotency(backend), quotas=quotas, metrics=metrics)
