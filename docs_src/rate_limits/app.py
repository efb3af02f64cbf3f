from fastapi import Depends, FastAPI

import errorkit
from errorkit import APIKeyAuth, ErrorKit, RateLimiter

store = errorkit.backend_from_env()  # REDIS_URL: redis://127.0.0.1:6379/0, or memory:// for one process
kit = ErrorKit(format="envelope")
app = FastAPI()


@app.get("/campaigns")
async def list_campaigns() -> list[str]:
    return ["c_1", "c_2"]


@app.post("/campaigns/{campaign_id}/start")
@errorkit.limit("5/minute")  # this route's own limit, beside it: under the route decorator
async def start(campaign_id: str) -> dict[str, str]:
    return {"campaign_id": campaign_id, "state": "starting"}


@app.post("/exports", dependencies=[Depends(errorkit.limit("2/minute; 20/day").dependency)])
async def export() -> dict[str, str]:  # the same, as a FastAPI dependency
    return {"export": "queued"}


kit.install(
    app,
    auth=APIKeyAuth(store),
    rate_limit=RateLimiter(store, limits="10/second; 1000/hour"),  # every other route: both at once
)
