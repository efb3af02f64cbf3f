from typing import NoReturn

import jwt  # PyJWT
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, SimpleUser, requires
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from errorkit import ErrorKit, Idempotency, Limit, Quotas, RateLimiter, backend_from_env, get_principal, per_user

SECRET = "a-secret-of-at-least-32-bytes-for-hs256"  # yours comes from your settings
kit = ErrorKit(format="envelope")


class TokenUser(SimpleUser):  # any object will do: errorkit reads the attributes listed below
    def __init__(self, claims: dict) -> None:
        super().__init__(claims["sub"])  # the user id: SimpleUser's `username`
        self.tenant_id = claims.get("tenant")  # the workspace
        self.plan = claims.get("plan")  # the plan quotas read


class JWTBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, TokenUser] | None:
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None  # anonymous: counted by client address
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["sub", "exp"]})
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(str(exc)) from exc  # answered by on_error below
        return AuthCredentials(claims.get("scope", "").split()), TokenUser(claims)


def on_error(conn: HTTPConnection, exc: Exception) -> NoReturn:
    """A bad or expired token: the kit's 401, in the kit's format (Starlette's own is a 400 in plain text)."""
    raise kit.error("unauthorized", message=str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def whoami(request: Request) -> JSONResponse:
    principal = get_principal(request.scope)  # the user as errorkit counts it; None when anonymous
    if principal is None:
        return JSONResponse({"user": None})
    return JSONResponse({"user": principal.key_id, "workspace": principal.workspace_id, "plan": principal.plan})


@requires("widgets:write")  # the token's scopes, as request.auth holds them
async def create_widget(request: Request) -> JSONResponse:
    return JSONResponse({"created_by": request.user.username}, status_code=201)


app = Starlette(routes=[Route("/whoami", whoami), Route("/widgets", create_widget, methods=["POST"])])
app.add_middleware(AuthenticationMiddleware, backend=JWTBackend(), on_error=on_error)  # before install()

store = backend_from_env()  # REDIS_URL
kit.install(  # no auth=: the stages read request.user
    app,
    rate_limit=RateLimiter(store, limits=[Limit(100, 60)], identity=per_user),  # each user its own limit
    idempotency=Idempotency(store, scope_of=per_user),  # in the user's Redis slot, beside the limit
    quotas=Quotas(store, limits={"widgets": {"Free": 3, "Pro": None}}, creates={"POST /widgets": "widgets"}),
)
