from fastapi import Depends, FastAPI

import errorkit
from errorkit import APIKeyAuth, Idempotency, MemoryBackend, Principal, RateLimiter

store = MemoryBackend()
auth = APIKeyAuth(store, public_paths=["/health", "/docs*", "/openapi.json"])
kit = errorkit.ErrorKit(format="problem")
app = FastAPI(title="Campaigns", version="1")


@app.post("/workspaces/{workspace_id}/campaigns")
async def create(workspace_id: str, _: Principal = Depends(auth.require("campaigns:write"))) -> dict[str, str]:
    return {"workspace_id": workspace_id}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


kit.install(
    app,
    auth=auth,
    rate_limit=RateLimiter(store, limits="100/minute"),
    idempotency=Idempotency(store),
)
