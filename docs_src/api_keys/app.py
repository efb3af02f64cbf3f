from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from errorkit import APIKeyAuth, ErrorKit, MemoryBackend, Principal, backend_from_env, issue_api_key

store = backend_from_env()  # REDIS_URL: redis://... for every worker, or memory:// for one process
auth = APIKeyAuth(store, public_paths=["/health", "/docs*", "/openapi.json", "/redoc"])


@asynccontextmanager
async def lifespan(app: FastAPI):
    if isinstance(store, MemoryBackend):  # keys in this process's memory: issue one here
        token = await issue_api_key(store, workspace_id="ws_1", scopes={"campaigns:write"})
        print(f"API key of workspace ws_1: {token}")  # shown once: only a hash of its secret is kept
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@app.get("/me")
async def me(principal: Principal = Depends(auth.require())) -> dict[str, object]:
    return {"key_id": principal.key_id, "workspace_id": principal.workspace_id, "scopes": sorted(principal.scopes)}


@app.post("/workspaces/{workspace_id}/campaigns", status_code=201)
async def create_campaign(
    workspace_id: str, principal: Principal = Depends(auth.require("campaigns:write"))
) -> dict[str, str]:
    return {"workspace_id": workspace_id, "created_by": principal.key_id}


ErrorKit(format="envelope").install(app, auth=auth)
