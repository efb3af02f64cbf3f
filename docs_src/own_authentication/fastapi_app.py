from fastapi import Depends, FastAPI, HTTPException, Request
from jwt_app import JWTBackend, TokenUser, kit, on_error  # the Starlette example's backend and kit, as they are
from starlette.authentication import requires
from starlette.middleware.authentication import AuthenticationMiddleware

from errorkit import Idempotency, Quotas, RateLimiter, backend_from_env, per_user


def current_user(request: Request) -> TokenUser:
    """Your dependency: it returns the user the middleware decoded, instead of decoding again."""
    if not request.user.is_authenticated:
        raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return request.user


app = FastAPI()


@app.get("/me")
async def me(user: TokenUser = Depends(current_user)) -> dict[str, str | None]:
    return {"user": user.username, "workspace": user.tenant_id}


@app.post("/widgets", status_code=201)
@requires("widgets:write")  # Starlette's, under the route decorator: the endpoint takes `request`
async def create_widget(request: Request) -> dict[str, str]:
    return {"created_by": request.user.username}


app.add_middleware(AuthenticationMiddleware, backend=JWTBackend(), on_error=on_error)
store = backend_from_env()
kit.install(
    app,
    rate_limit=RateLimiter(store, limits="100/minute", identity=per_user),
    idempotency=Idempotency(store, scope_of=per_user),
    quotas=Quotas(store, limits={"widgets": {"Free": 3, "Pro": None}}, creates={"POST /widgets": "widgets"}),
)
