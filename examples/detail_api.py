"""A campaigns API in the first document's style (`{"detail": ..., "code": ...}`), on FastAPI.

    scripts/example detail_api          # in-memory backend
    REDIS_URL=redis://127.0.0.1:6379/0 scripts/example detail_api

Demo keys (X-API-Key or Authorization: Bearer):
    ont_admin.demo-admin-secret    workspace ws_demo, every scope
    ont_reader.demo-reader-secret  workspace ws_demo, campaigns:read only
    ont_other.demo-other-secret    workspace ws_other

The example's own data (campaigns, deployments) lives in this process; keys, rate-limit
counters and idempotency records live in the backend (shared by every worker on Redis).
"""

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from errorkit import (
    APIKeyAuth,
    ConcurrencyLimit,
    ErrorKit,
    Idempotency,
    Limit,
    Principal,
    PrometheusMetrics,
    RateLimiter,
    backend_from_env,
    catalogs,
    raises,
    register_api_key,
)
from errorkit.catalogs.pages import DETAIL_PAGE

# the reference pages are served by this app, at /errors/{code} (PUBLIC_URL: where clients reach it)
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000")
kit = ErrorKit(catalog=catalogs.DETAIL_API, doc_url=f"{PUBLIC_URL}/errors/{{code}}")
backend = backend_from_env()
auth = APIKeyAuth(backend, public_paths=["/health", "/docs", "/openapi.json", "/errors*", "/metrics"])
limiter = RateLimiter(
    backend,
    limits=[Limit(int(os.environ.get("EXAMPLE_RATE_LIMIT", "120")), 60)],  # per workspace, per minute
    routes={"POST /workspaces/{workspace_id}/campaigns/{campaign_id}/export": [Limit(2, 60)]},  # and 2 a minute
    exempt=["/health", "/metrics"],
)
# exports are slow and expensive: at most one per workspace running at once (a 429 too_many_concurrent_requests)
EXPORT = "POST /workspaces/{workspace_id}/campaigns/{campaign_id}/export"
concurrency = ConcurrencyLimit(backend, routes={EXPORT: 1})
EXPORT_SECONDS = float(os.environ.get("EXAMPLE_EXPORT_SECONDS", "0"))  # how long an export takes here
# Prometheus scrapes /metrics (with several workers: set PROMETHEUS_MULTIPROC_DIR, see the README)
metrics = PrometheusMetrics()

DEMO_KEYS = {
    "ont_admin.demo-admin-secret": ("ws_demo", {"campaigns:read", "campaigns:write", "topics:write"}),
    "ont_reader.demo-reader-secret": ("ws_demo", {"campaigns:read"}),
    "ont_other.demo-other-secret": ("ws_other", {"campaigns:read", "campaigns:write", "topics:write"}),
}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    for token, (workspace, scopes) in DEMO_KEYS.items():
        await register_api_key(backend, token, workspace_id=workspace, scopes=scopes)
    yield


app = FastAPI(title="Campaigns (detail-shape errors)", lifespan=lifespan)

Status = Literal["draft", "synthesizing", "completed"]
campaigns: dict[tuple[str, str], dict[str, Any]] = {}
ids = itertools.count(1)


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class TopicIn(BaseModel):
    name: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)


class TopicsIn(BaseModel):
    topics: list[TopicIn] = Field(min_length=1)


def campaign_of(workspace_id: str, campaign_id: str) -> dict[str, Any]:
    campaign = campaigns.get((workspace_id, campaign_id))
    if campaign is None:
        raise kit.error("not_found")
    return campaign


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/workspaces/{workspace_id}/campaigns", status_code=201)
async def create_campaign(
    workspace_id: str, body: CampaignIn, _: Principal = Depends(auth.require("campaigns:write"))
) -> dict[str, Any]:
    campaign = {"id": f"cmp_{next(ids)}", "name": body.name, "status": "draft"}
    campaigns[(workspace_id, campaign["id"])] = campaign
    return campaign


@app.get("/workspaces/{workspace_id}/campaigns/{campaign_id}")
@raises("not_found")
async def get_campaign(
    workspace_id: str, campaign_id: str, _: Principal = Depends(auth.require("campaigns:read"))
) -> dict[str, Any]:
    return campaign_of(workspace_id, campaign_id)


@app.post("/workspaces/{workspace_id}/campaigns/{campaign_id}/start")
@raises("not_found", "campaign_locked")
async def start_campaign(
    workspace_id: str, campaign_id: str, _: Principal = Depends(auth.require("campaigns:write"))
) -> dict[str, Any]:
    campaign = campaign_of(workspace_id, campaign_id)
    if campaign["status"] != "draft":
        raise kit.error("campaign_locked")
    campaign["status"] = "synthesizing"
    return campaign


@app.post("/workspaces/{workspace_id}/campaigns/{campaign_id}/complete")
@raises("not_found", "campaign_locked")
async def complete_campaign(
    workspace_id: str, campaign_id: str, _: Principal = Depends(auth.require("campaigns:write"))
) -> dict[str, Any]:
    """Simulates the synthesis pipeline finishing."""
    campaign = campaign_of(workspace_id, campaign_id)
    if campaign["status"] != "synthesizing":
        raise kit.error("campaign_locked")
    campaign["status"] = "completed"
    return campaign


@app.get("/workspaces/{workspace_id}/campaigns/{campaign_id}/results")
@raises("not_found", "synthesis_pending")
async def results(
    workspace_id: str, campaign_id: str, _: Principal = Depends(auth.require("campaigns:read"))
) -> dict[str, Any]:
    campaign = campaign_of(workspace_id, campaign_id)
    if campaign["status"] != "completed":
        raise kit.error("synthesis_pending")
    return {"campaign_id": campaign_id, "summary": f"Results of {campaign['name']}"}


@app.get("/workspaces/{workspace_id}/campaigns/{campaign_id}/graph")
@raises("not_found", "graph_not_ready")
async def graph(
    workspace_id: str, campaign_id: str, _: Principal = Depends(auth.require("campaigns:read"))
) -> dict[str, Any]:
    campaign = campaign_of(workspace_id, campaign_id)
    if campaign["status"] != "completed":  # entity extraction runs as part of synthesis
        raise kit.error("graph_not_ready")
    return {"campaign_id": campaign_id, "nodes": [], "edges": []}


@app.post("/workspaces/{workspace_id}/campaigns/{campaign_id}/export", status_code=202)
@raises("not_found")
async def export(
    workspace_id: str, campaign_id: str, _: Principal = Depends(auth.require("campaigns:read"))
) -> dict[str, Any]:
    """Expensive: limited to 2 a minute per workspace, one at a time."""
    campaign_of(workspace_id, campaign_id)
    await asyncio.sleep(EXPORT_SECONDS)
    return {"campaign_id": campaign_id, "export": "queued"}


@app.post("/workspaces/{workspace_id}/topics", status_code=201)
async def create_topics(
    workspace_id: str, body: TopicsIn, _: Principal = Depends(auth.require("topics:write"))
) -> dict[str, Any]:
    return {"created": [t.name for t in body.topics]}


app.mount("/errors", kit.reference_app(DETAIL_PAGE))
app.add_route("/metrics", metrics.app(), include_in_schema=False)
kit.install(
    app, auth=auth, rate_limit=limiter, idempotency=Idempotency(backend), concurrency=concurrency, metrics=metrics
)
