from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit

kit = errorkit.ErrorKit(format="envelope")
DeploymentExists = kit.define(
    "deployment_exists", status=409, message="A deployment named {key} exists", details={"key": str}
)


class DeploymentIn(BaseModel):
    key: str
    model: str


@errorkit.raises(DeploymentExists)
async def create(request: Request) -> JSONResponse:
    """
    summary: Create a deployment
    requestBody:
      content:
        application/json:
          schema: {$ref: "#/components/schemas/DeploymentIn"}
    responses:
      201:
        description: The deployment.
    """
    deployment = DeploymentIn.model_validate_json(await request.body())  # a ValidationError: the kit's 400
    if deployment.key == "chat":
        raise DeploymentExists(key=deployment.key)
    return JSONResponse(deployment.model_dump(), status_code=201)


schemas = kit.schemas({"openapi": "3.1.0", "info": {"title": "Gateway", "version": "1"}}, models=[DeploymentIn])
app = Starlette(routes=[schemas.route("/openapi.json"), Route("/v2/deployments", create, methods=["POST"])])
kit.install(app)
