"""A team's own authentication in front of errorkit: `build()` in process, or `app` under uvicorn.

Starlette's `AuthenticationMiddleware` with a backend decoding `Authorization: Bearer <JWT>`
(HS256; claims `sub`, `tenant`, `plan`, `scope`), and errorkit installed without `APIKeyAuth`:
per-user rate limits and concurrency, per-tenant quotas, idempotency keys per user. A bad or
expired token is answered by the middleware's own `on_error`, before errorkit sees the request.
Under uvicorn, EK_JWT_APP=1 builds `app`: EK_FRAMEWORK (starlette | fastapi), REDIS_URL and
EK_PREFIX choose it.
"""

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import jwt
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    requires,
)
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from errorkit import (
    Backend,
    ConcurrencyLimit,
    ErrorKit,
    Idempotency,
    Limit,
    Principal,
    Quotas,
    RateLimiter,
    RedisBackend,
    catalogs,
    get_principal,
    per_user,
)

SECRET = "jwt-app-test-secret-of-at-least-32-bytes"
PING_LIMIT = Limit(3, 3600)  # per user on GET /ping; every other route 100 an hour
WIDGETS = {"Widgets": {"free": 2, "pro": None}}  # per tenant
ScopeOf = Callable[[Scope, Principal | None], str | None]


def token(
    sub: str, tenant: str | None = None, *, plan: str | None = None, scope: str = "", expires_in: int = 3600
) -> str:
    """A token as the team's identity provider would sign it."""
    claims: dict[str, Any] = {"sub": sub, "scope": scope, "exp": int(time.time()) + expires_in}
    if tenant is not None:
        claims["tenant"] = tenant
    if plan is not None:
        claims["plan"] = plan
    return jwt.encode(claims, SECRET, algorithm="HS256")


class TokenUser(BaseUser):
    """The team's own user: `identity` and `tenant_id`, as errorkit's `User` protocol reads them."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return str(self.claims["sub"])

    @property
    def identity(self) -> str:
        return str(self.claims["sub"])

    @property
    def tenant_id(self) -> str | None:
        return self.claims.get("tenant")

    @property
    def plan(self) -> str | None:
        return self.claims.get("plan")


class JWTBackend(AuthenticationBackend):
    """No `Authorization: Bearer`: anonymous. A bad, tampered or expired token: `AuthenticationError`."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            claims = jwt.decode(credentials, SECRET, algorithms=["HS256"], options={"require": ["sub", "exp"]})
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(str(exc)) from exc
        return AuthCredentials(claims.get("scope", "").split()), TokenUser(claims)


def on_error(conn: HTTPConnection, exc: Exception) -> Response:
    """The team's own answer to a bad token."""
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return JSONResponse({"error": "invalid_token", "reason": str(exc)}, status_code=401, headers=headers)


def build(backend: Backend, framework: str = "starlette", *, idempotency_scope: ScopeOf | None = per_user) -> Starlette:
    """The app, its own authentication outside errorkit's gateway, errorkit's stages on `backend`
    (idempotency keys scoped by `idempotency_scope`; None: errorkit's default, the tenant's slot)."""
    runs: Counter[str] = Counter()  # (one worker: runs of each order reference)

    async def whoami(request: Request) -> Response:
        principal = get_principal(request.scope)
        if principal is None:
            return JSONResponse({"principal": None})
        fields = ("key_id", "workspace_id", "project_id", "key_scope", "plan")
        seen = {name: getattr(principal, name) for name in fields}
        return JSONResponse({"principal": {**seen, "scopes": sorted(principal.scopes)}})

    async def ping(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @requires("widgets:write")
    async def create_widget(request: Request) -> Response:
        return JSONResponse({"created_by": request.user.identity}, status_code=201)

    async def orders(request: Request) -> Response:
        ref = (await request.json())["ref"]
        runs[ref] += 1
        return JSONResponse({"ref": ref, "run": runs[ref]}, status_code=201)

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("sleep", "0.5")))
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.initialize()  # (no API key is registered to mark this Redis as holding errorkit's data)
        yield

    endpoints: list[tuple[str, Any, str]] = [
        ("/whoami", whoami, "GET"),
        ("/ping", ping, "GET"),
        ("/widgets", create_widget, "POST"),
        ("/orders", orders, "POST"),
        ("/slow", slow, "GET"),
    ]
    if framework == "fastapi":
        api = FastAPI(lifespan=lifespan)
        for path, endpoint, method in endpoints:  # (each takes `request: Request`, as `requires()` wants)
            api.add_api_route(path, endpoint, methods=[method])
        app: Starlette = api
    else:
        routes = [Route(path, endpoint, methods=[method]) for path, endpoint, method in endpoints]
        app = Starlette(routes=routes, lifespan=lifespan)

    app.add_middleware(AuthenticationMiddleware, backend=JWTBackend(), on_error=on_error)
    ErrorKit(catalog=catalogs.ENVELOPE_API).install(
        app,  # no auth=: the stages read the user the middleware above put in scope["user"]
        rate_limit=RateLimiter(
            backend, limits=[Limit(100, 3600)], routes={"GET /ping": [PING_LIMIT]}, identity=per_user
        ),
        idempotency=Idempotency(backend, scope_of=idempotency_scope),  # per_user: limit and claim in one script
        concurrency=ConcurrencyLimit(backend, routes={"/slow": 1}, identity=per_user),
        quotas=Quotas(backend, limits=WIDGETS, resources={"widgets": "Widgets"}, creates={"POST /widgets": "widgets"}),
    )
    return app


app = (
    build(
        RedisBackend(os.environ["REDIS_URL"], prefix=os.environ.get("EK_PREFIX", "jwt")),
        os.environ.get("EK_FRAMEWORK", "starlette"),
    )
    if os.environ.get("EK_JWT_APP")
    else None
)
