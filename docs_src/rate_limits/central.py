from fastapi import FastAPI

import errorkit
from errorkit import APIKeyAuth, ErrorKit, Limit, RateLimiter

store = errorkit.backend_from_env()
app = FastAPI()


@app.post("/campaigns/{campaign_id}/start")
async def start(campaign_id: str) -> dict[str, str]:
    return {"campaign_id": campaign_id, "state": "starting"}


@app.get("/internal/status")
async def status() -> dict[str, str]:
    return {"status": "ok"}


limiter = RateLimiter(
    store,
    limits=[Limit(10, 1), Limit(1000, 3600)],  # the same as "10/second; 1000/hour"
    routes={
        "POST /campaigns/{campaign_id}/start": "5/minute",  # the route template, never a concrete URL
        "/internal/status": None,  # every method of this route: not limited
    },
)
ErrorKit(format="envelope").install(app, auth=APIKeyAuth(store), rate_limit=limiter)
