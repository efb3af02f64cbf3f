import asyncio

from fastapi import FastAPI

import errorkit
from errorkit import APIKeyAuth, ConcurrencyLimit, ErrorKit, RateLimiter

store = errorkit.backend_from_env()  # REDIS_URL: redis://127.0.0.1:6379/0, or memory:// for one process
kit = ErrorKit(format="envelope")
app = FastAPI()


@app.get("/campaigns")
async def list_campaigns() -> list[str]:
    return ["c_1", "c_2"]


@app.post("/exports", status_code=201)
async def export() -> dict[str, str]:
    await asyncio.sleep(0.5)  # an expensive request
    return {"export": "ready"}


concurrency = ConcurrencyLimit(
    store,
    limit=20,  # per workspace, every route together
    routes={"POST /exports": 2},  # this route's own limit, counted apart
    lease=30,  # a slot not renewed for 30 s comes back (its worker died)
)
kit.install(
    app,
    auth=APIKeyAuth(store),
    rate_limit=RateLimiter(store, limits="100/minute"),
    concurrency=concurrency,
)
