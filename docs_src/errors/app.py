from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import errorkit

kit = errorkit.ErrorKit(format="envelope", doc_url="https://docs.example.com/errors/{code}")

SynthesisPending = kit.define(
    "synthesis_pending",
    status=409,
    message="Campaign {campaign_id} hasn't completed synthesis yet",
    when="The campaign is still synthesizing.",
    fix="Wait for the campaign to finish, then ask again.",
    details={"campaign_id": str},
)
kit.define(
    "quota_exceeded",
    status=402,
    message="You have used {usage} of your {limit} campaigns.",
    when="The workspace's plan allows no more campaigns.",
    fix="Delete a campaign or upgrade the plan.",
    details={"usage": int, "limit": int},
)
ProviderOverloaded = kit.define(
    "provider_overloaded",
    status=503,  # retryable by default, as 408, 425, 429, 500, 502 and 504 are
    message="{provider} is overloaded.",
    retry_after=30,  # seconds: Retry-After: 30, retry-after-ms: 30000
    details={"provider": str, "region": (str | None, None)},  # region: optional
)

app = FastAPI()
kit.install(app)


class Campaign(BaseModel):
    name: str


@app.get("/campaigns/{campaign_id}/report")
async def report(campaign_id: str):
    raise SynthesisPending(campaign_id=campaign_id)  # by class


@app.post("/campaigns")
async def create(campaign: Campaign):
    raise kit.error("quota_exceeded", usage=3, limit=3)  # by code


@app.get("/completions")
async def completions():
    raise ProviderOverloaded(provider="openai", retry_after=5, headers={"X-Provider": "openai"})


@app.get("/campaigns/{campaign_id}")
async def campaign(campaign_id: str):
    raise HTTPException(404, detail=f"No campaign {campaign_id}")


@app.post("/campaigns/{campaign_id}/export")
async def export(campaign_id: str):
    raise RuntimeError("connection to db:5432 refused")  # a bug: a 500 that shows nothing of it
