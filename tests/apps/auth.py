"""An app for the authentication tests, run under uvicorn.

EK_DOCUMENT (detail_api | envelope_api) and EK_FRAMEWORK (starlette | fastapi) choose it;
REDIS_URL, when set, selects the Redis backend. The keys below are registered at startup.
"""

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    Principal,
    backend_from_env,
    catalogs,
    get_principal,
    register_api_key,
    revoke_api_key,
    set_workspace_disabled,
)

logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s %(message)s")

KEYS: dict[str, dict[str, Any]] = {
    "ek_admin.admin-secret-1": {"workspace_id": "ws_1", "scopes": {"campaigns:read", "campaigns:write"}},
    "ek_reader.reader-secret-1": {"workspace_id": "ws_1", "scopes": {"campaigns:read"}},
    "ek_public.public-secret-1": {"workspace_id": "ws_1", "scopes": set(), "key_scope": "PUBLIC"},
    "ek_project.project-secret-1": {"workspace_id": "ws_1", "project_id": "proj_a", "scopes": {"campaigns:read"}},
    "ek_expired.expired-secret-1": {
        "workspace_id": "ws_1",
        "scopes": {"campaigns:read"},
        "expires_at": datetime(2020, 1, 1, tzinfo=UTC),
    },
    "ek_revoked.revoked-secret-1": {"workspace_id": "ws_1", "scopes": {"campaigns:read"}},
    "ek_temp.temporary-secret-1": {"workspace_id": "ws_1", "scopes": {"campaigns:read"}},
    "ek_disabled.disabled-secret-1": {"workspace_id": "ws_3", "scopes": {"campaigns:read"}},
    "ek_other.other-secret-1": {"workspace_id": "ws_2", "scopes": {"campaigns:read", "campaigns:write"}},
}

catalog = catalogs.ENVELOPE_API if os.environ.get("EK_DOCUMENT") == "envelope_api" else catalogs.DETAIL_API
kit = ErrorKit(catalog=catalog)
backend = backend_from_env()
auth = APIKeyAuth(backend, public_paths=["/health", "/docs*"])


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    for token, fields in KEYS.items():
        await register_api_key(backend, token, **fields)
    await revoke_api_key(backend, "ek_revoked")
    await set_workspace_disabled(backend, "ws_3", True, reason="billing")
    yield


def principal_json(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {"principal": None}
    return {
        "key_id": principal.key_id,
        "workspace_id": principal.workspace_id,
        "project_id": principal.project_id,
        "scopes": sorted(principal.scopes),
        "key_scope": principal.key_scope,
    }


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True, **principal_json(get_principal(request.scope))})


async def whoami(request: Request) -> Response:
    return JSONResponse(principal_json(request.user))


async def revoke(request: Request) -> Response:  # test-only admin route
    await revoke_api_key(backend, request.path_params["key_id"])
    return JSONResponse({"revoked": True})


if os.environ.get("EK_FRAMEWORK") == "fastapi":
    app: Starlette = FastAPI(lifespan=lifespan)
    app.add_api_route("/health", health)
    app.add_api_route("/docs/page", health)
    app.add_api_route("/whoami", whoami)
    app.add_api_route("/_test/revoke/{key_id}", revoke, methods=["POST"])

    @app.get("/workspaces/{workspace_id}/campaigns")
    async def list_campaigns(workspace_id: str, p: Principal = Depends(auth.require("campaigns:read"))) -> Any:
        return {"workspace_id": workspace_id, "by": p.key_id}

    @app.post("/workspaces/{workspace_id}/campaigns", status_code=201)
    async def create_campaign(workspace_id: str, p: Principal = Depends(auth.require("campaigns:write"))) -> Any:
        return {"workspace_id": workspace_id, "by": p.key_id}

    @app.get("/workspaces/{workspace_id}/projects/{project_id}/items")
    async def items(workspace_id: str, project_id: str, p: Principal = Depends(auth.require("campaigns:read"))) -> Any:
        return {"project_id": project_id, "by": p.key_id}

else:

    @auth.requires("campaigns:read")
    async def list_campaigns(request: Request) -> Response:
        return JSONResponse({"workspace_id": request.path_params["workspace_id"], "by": request.user.key_id})

    @auth.requires("campaigns:write")
    async def create_campaign(request: Request) -> Response:
        body = {"workspace_id": request.path_params["workspace_id"], "by": request.user.key_id}
        return JSONResponse(body, status_code=201)

    @auth.requires("campaigns:read")
    async def items(request: Request) -> Response:
        return JSONResponse({"project_id": request.path_params["project_id"], "by": request.user.key_id})

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/health", health),
            Route("/docs/page", health),
            Route("/whoami", whoami),
            Route("/_test/revoke/{key_id}", revoke, methods=["POST"]),
            Route("/workspaces/{workspace_id}/campaigns", list_campaigns),
            Route("/workspaces/{workspace_id}/campaigns", create_campaign, methods=["POST"]),
            Route("/workspaces/{workspace_id}/projects/{project_id}/items", items),
        ],
    )

kit.install(app, auth=auth)
