from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from errorkit import APIKeyAuth, ErrorKit, backend_from_env

store = backend_from_env()
auth = APIKeyAuth(store)  # public_paths: ("/health",) by default


@auth.requires("campaigns:write")  # the key's workspace against {workspace_id}, then its scopes
async def create_campaign(request: Request) -> JSONResponse:
    principal = request.user  # the key's Principal
    return JSONResponse({"workspace_id": principal.workspace_id, "created_by": principal.key_id}, status_code=201)


@requires("campaigns:read")  # Starlette's own decorator reads the same scopes (request.auth.scopes)
async def list_campaigns(request: Request) -> JSONResponse:
    return JSONResponse({"campaigns": [], "scopes": sorted(request.auth.scopes)})


app = Starlette(
    routes=[
        Route("/workspaces/{workspace_id}/campaigns", create_campaign, methods=["POST"]),
        Route("/workspaces/{workspace_id}/campaigns", list_campaigns, methods=["GET"]),
    ]
)
ErrorKit(format="envelope").install(app, auth=auth)
