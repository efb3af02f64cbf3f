from fastapi import FastAPI

import errorkit
from errorkit import ErrorKit, RateLimiter

store = errorkit.backend_from_env()  # slowapi's storage_uri: REDIS_URL=redis://... (or memory://)
app = FastAPI()


@app.get("/search")
@errorkit.limit("5/minute")  # was @limiter.limit("5/minute"); the endpoint needs no `request: Request`
async def search(q: str = "") -> dict[str, object]:
    return {"q": q, "results": []}


@app.get("/items")
async def items() -> list[str]:  # was counted by default_limits=["100/minute"]
    return ["i_1"]


# was SlowAPIMiddleware, app.state.limiter and the RateLimitExceeded handler; with no auth=, every
# request is counted by its client address, as key_func=get_remote_address counted it
ErrorKit().install(app, rate_limit=RateLimiter(store, limits="100/minute"))
