"""API-key authentication: the gateway's first step, plus per-route permission checks.

The gateway middleware calls `APIKeyAuth.resolve`, which turns the presented key into a
`Principal` (or a documented error) and puts it in the ASGI scope
(`request.state.principal`), where the rate limiter, the idempotency cache and handlers
read it. Nothing the client sends besides the key
chooses the workspace.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from errorkit.auth.codes import AUTH_CODES
from errorkit.auth.keys import ApiKeyRecord, Principal, split_token
from errorkit.backends.base import Backend, BackendUnavailable
from errorkit.errors import APIError
from errorkit.handlers import bare_error
from errorkit.paths import PathPatterns

if TYPE_CHECKING:
    from errorkit.kit import ErrorKit

logger = logging.getLogger("errorkit.auth")
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])

_BEARER = b"bearer "
_MAX_TOKEN = 512


def get_principal(scope: Scope) -> Principal | None:
    """The authenticated principal of a request (None on public routes)."""
    state = scope.get("state")
    return state.get("principal") if state else None


class APIKeyAuth:
    """Authenticates every request by API key, except `public_paths`.

    The key is read from `X-API-Key` or `Authorization: Bearer <key>`. `public_paths`
    are exact paths, or prefixes when they end in `*`. `cache_ttl` (seconds, 0 = off)
    keeps resolved keys in this process: a revoked key keeps working for at most that
    long in each worker. Route checks compare the `workspace_param` and `project_param`
    path parameters with the key's.
    """

    def __init__(
        self,
        kit: ErrorKit,
        backend: Backend,
        *,
        public_paths: Iterable[str] = ("/health",),
        cache_ttl: float = 0.0,
        cache_size: int = 10_000,
        workspace_param: str = "workspace_id",
        project_param: str = "project_id",
        realm: str = "api",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kit = kit
        self.backend = backend
        self.public_paths = PathPatterns(public_paths)
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self.workspace_param = workspace_param
        self.project_param = project_param
        self.realm = realm
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, ApiKeyRecord | None]] = OrderedDict()

    def is_public(self, path: str) -> bool:
        return self.public_paths.matches(path)

    async def authenticate(self, scope: Scope) -> Principal:
        """The principal of the request's key, or raise the documented error."""
        token = _presented_key(scope)
        if token is None:
            raise bare_error(self.kit.registry.for_status(401))
        parts = split_token(token) if len(token) <= _MAX_TOKEN else None
        if parts is None:
            raise self._error("invalid_api_key")
        key_id, secret = parts
        record = await self._record(key_id)
        if record is None or not record.matches(secret) or record.revoked:
            logger.info("rejected API key %s: %s", key_id, "unknown" if record is None else "bad secret or revoked")
            raise self._error("invalid_api_key")
        if record.expires_at is not None and record.expires_at <= self.clock():
            raise self._error("expired_api_key", expired_at=record.principal().expires_at)
        if record.workspace_disabled:
            raise self._error("workspace_disabled", reason=record.disabled_reason)
        return record.principal()

    def check(self, principal: Principal, path_params: Mapping[str, Any], permissions: Iterable[str]) -> None:
        """Raise the documented 403 when the key may not act on this route."""
        workspace = path_params.get(self.workspace_param)
        if workspace is not None and str(workspace) != principal.workspace_id:
            raise self._error(
                "workspace_forbidden", key_workspace_id=principal.workspace_id, resource_workspace_id=str(workspace)
            )
        project = path_params.get(self.project_param)
        if project is not None and principal.project_id is not None and str(project) != principal.project_id:
            self.check_project(principal, str(project))
        for permission in permissions:
            if permission not in principal.scopes:
                raise self._error("insufficient_scope", required_permission=permission, key_scope=principal.key_scope)

    def check_project(self, principal: Principal, resource_project_id: str) -> None:
        """Raise `wrong_project` when a project-scoped key touches another project's resource."""
        if principal.project_id is not None and principal.project_id != resource_project_id:
            raise self._error(
                "wrong_project", key_project_id=principal.project_id, resource_project_id=resource_project_id
            )

    def require(self, *permissions: str) -> Callable[[Request], Awaitable[Principal]]:
        """A FastAPI dependency: `principal: Principal = Depends(auth.require("campaigns:write"))`."""

        async def dependency(request: Request) -> Principal:
            return self._checked(request, permissions)

        return dependency

    def requires(self, *permissions: str) -> Callable[[Endpoint], Endpoint]:
        """A Starlette endpoint decorator: `@auth.requires("deployments:write")`."""

        def decorate(endpoint: Endpoint) -> Endpoint:
            @functools.wraps(endpoint)
            async def checked(request: Request, *args: Any, **kwargs: Any) -> Response:
                self._checked(request, permissions)
                return await endpoint(request, *args, **kwargs)

            return checked  # type: ignore[return-value]

        return decorate

    def _checked(self, request: Request, permissions: Iterable[str]) -> Principal:
        principal = get_principal(request.scope)
        if principal is None:  # a public route asking for a principal: treat as unauthenticated
            raise bare_error(self.kit.registry.for_status(401))
        self.check(principal, request.path_params, permissions)
        return principal

    async def _record(self, key_id: str) -> ApiKeyRecord | None:
        if not self.cache_ttl:
            return await self.backend.get_api_key(key_id)
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self.backend.get_api_key(key_id)
        if record is not None:  # unknown ids are not cached: guessing cannot fill the cache
            self._cache[key_id] = (now + self.cache_ttl, record)
            self._cache.move_to_end(key_id)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return record

    def _error(self, code: str, **details: Any) -> APIError:
        return self.kit.component_error(code, AUTH_CODES, **details)

    async def resolve(self, scope: Scope) -> tuple[Principal | None, APIError | None]:
        """The gateway's step: the principal (also put in the scope), or the error to answer with."""
        if self.is_public(scope["path"]):
            return None, None
        try:
            principal = await self.authenticate(scope)
        except APIError as error:
            if error.status == 401:
                error.headers.setdefault("WWW-Authenticate", self.challenge(error))
            return None, error
        except BackendUnavailable as exc:
            logger.warning("cannot authenticate: key store unavailable (%s)", exc)
            return None, self.kit.component_error("service_unavailable", None, dependency=self.backend.name)
        scope.setdefault("state", {})["principal"] = principal
        return principal, None

    def challenge(self, error: APIError) -> str:
        """The `WWW-Authenticate` value for a 401 (RFC 6750)."""
        if error.code in ("invalid_api_key", "expired_api_key"):
            return f'Bearer realm="{self.realm}", error="invalid_token"'
        return f'Bearer realm="{self.realm}"'


def _presented_key(scope: Scope) -> str | None:
    """The key from `X-API-Key`, else from `Authorization: Bearer`; None when neither is there."""
    bearer = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value.decode("latin-1").strip() or None
        if name == b"authorization" and value[:7].lower() == _BEARER:
            bearer = value[7:].decode("latin-1").strip() or None
    return bearer
