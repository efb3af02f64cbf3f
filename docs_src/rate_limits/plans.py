from fastapi import FastAPI

import errorkit
from errorkit import APIKeyAuth, ErrorKit, PlanLimits, Principal, RateLimiter

store = errorkit.backend_from_env()
app = FastAPI()

PLAN_LIMITS = {"free": "60/minute", "pro": "600/minute; 20000/hour"}  # or read from your database


async def limits_of(principal: Principal) -> str | None:
    return PLAN_LIMITS.get(principal.plan or "")  # None: the limiter's own limits


@app.get("/campaigns")
async def list_campaigns() -> list[str]:
    return ["c_1", "c_2"]


limiter = RateLimiter(
    store,
    limits="30/minute",  # a workspace whose plan has no entry
    plans=PlanLimits(limits_of, ttl=60),  # each workspace's answer kept for 60 s
)
ErrorKit(format="envelope").install(app, auth=APIKeyAuth(store), rate_limit=limiter)
