"""API-key authentication: the gateway's first stage, plus per-route permission checks.

The stage turns the presented key into a `Principal` and puts it where Starlette's own
`AuthenticationMiddleware` does: `scope["user"]` (`request.user`) and `scope["auth"]`
(`request.auth`, whose scopes are the key's permissions). Nothing the client sends
besides the key chooses the workspace. Failures are `Refusal`s; the gateway renders them.

Every stage asks `get_principal()` who a request is. Without this stage, that is the user your
own authentication put in `scope["user"]`, read through the `User` protocol (`errorkit._common.user`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from errorkit._common.exceptions import Refused, StoreUnavailable
from errorkit._common.paths import PathPatterns
from errorkit._common.principal import Principal, split_token
from errorkit._common.refusal import Refusal
from errorkit._common.user import CONVERTED, principal_of
from errorkit._observe.log_context import log_extra
from errorkit._stages.failure import FailureMode, FailurePolicy
from errorkit._stages.key_cache import KeyCache, Known, KnownKeys
from errorkit._stages.permissions import PERMISSIONS_MARK, missing_permission
from errorkit._stages.routes import HEALTH, AppRoutes
from errorkit._stores.protocols import KeyStore

logger = logging.getLogger("errorkit.auth")
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])
Header = tuple[bytes, bytes]

_BEARER = b"bearer "
_MAX_TOKEN = 512
_PUBLIC_AUTH = AuthCredentials()
_ANONYMOUS = UnauthenticatedUser()
#: A missing key: the document's code for it, else the catalog's plain 401.
_MISSING_KEY = ("authentication_required", "invalid_api_key")


def get_principal(scope: Scope) -> Principal | None:
    """Who the request is counted as: the `Principal` of its API key, or the user your own
    authentication put in `scope["user"]`, read through the `User` protocol; None on public
    routes, for an unauthenticated user and without authentication. A user of your own is read
    once per request (the stages each ask); one without an id raises `TypeError` (see `User`)."""
    user = scope.get("user")
    if type(user) is Principal:  # errorkit's APIKeyAuth put it there: every request's way, one check
        return user
    if user is None or user is _ANONYMOUS:  # no authentication at all, or APIKeyAuth's public route
        return None

    converted: tuple[object, Principal | None] | None = scope.get(CONVERTED)
    if converted is None or converted[0] is not user:  # (compared by identity: the user may change hands)
        principal = user if isinstance(user, Principal) else principal_of(user, scope.get("auth"))
        converted = scope[CONVERTED] = (user, principal)
    return converted[1]


class APIKeyAuth:
    """Authenticates every request by API key, except `public_paths`.

    The key is read from `X-API-Key` or `Authorization: Bearer <key>`. `public_paths` are
    exact paths, or prefixes when they end in `*`. `cache` says how records are kept in
    this process (`KeyCache`). `on_failure` is what happens while the key store cannot
    answer (`FailurePolicy`; by default fail open: keys verified in the last
    `cache.stale_for` seconds keep working, others get 503). Route checks compare the
    `workspace_param` and `project_param` path parameters with the key's.
    """

    def __init__(
        self,
        keys: KeyStore,
        *,
        public_paths: Iterable[str] = HEALTH,
        cache: KeyCache = KeyCache(),
        on_failure: FailurePolicy | FailureMode = "fail_open",
        workspace_param: str = "workspace_id",
        project_param: str = "project_id",
        realm: str = "api",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.public_paths = PathPatterns(public_paths, "APIKeyAuth(public_paths=...)")
        self.cache = cache
        self.on_failure = FailurePolicy.of(on_failure)
        self.workspace_param = workspace_param
        self.project_param = project_param
        self.clock = clock
        self._challenge = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
        self._invalid_token = {"WWW-Authenticate": f'Bearer realm="{realm}", error="invalid_token"'}
        self.records = KnownKeys(keys, cache)

    def check_routes(self, app: AppRoutes) -> None:
        """When the app starts: every `public_paths=` path reaches a route of the app."""
        app.check_paths(self.public_paths.patterns, "APIKeyAuth(public_paths=...)")

    def is_public(self, path: str) -> bool:
        return self.public_paths.matches(path)

    def route_refusals(self, path: str, permissions: Sequence[str] | None) -> list[Refusal]:
        """What this stage may refuse on a route (`path` a template), for its documentation.

        `permissions`: those a `require()`/`requires()` on the route asks for; None without one.
        """
        if self.is_public(path) and permissions is None:
            return []

        refusals = [
            Refusal(_MISSING_KEY, 401, headers=self._challenge, fallback="status"),
            self._invalid(),
            Refusal(("expired_api_key",), 401, headers=self._invalid_token),
            Refusal(("workspace_disabled",), 403),
            self.on_failure.refusal(self.keys.name),  # the store unreachable and the key not seen lately
        ]

        if permissions is not None:
            if "{" + self.workspace_param + "}" in path:
                refusals.append(Refusal(("workspace_forbidden",), 403))
            if "{" + self.project_param + "}" in path:
                refusals.append(Refusal(("wrong_project",), 403))
            if permissions:
                refusals.append(Refusal(("insufficient_scope",), 403))
        return refusals

    async def admit(self, scope: Scope, headers: list[Header]) -> Refusal | None:
        """The gateway's stage: put the principal in the scope, or refuse."""
        if self.public_paths.matches_request(scope):
            scope["auth"], scope["user"] = _PUBLIC_AUTH, _ANONYMOUS
            return None

        token = _presented_key(scope)
        if token is None:
            return _refused(scope, Refusal(_MISSING_KEY, 401, headers=self._challenge, fallback="status"))
        parts = split_token(token) if len(token) <= _MAX_TOKEN else None
        if parts is None:
            return _refused(scope, self._invalid())
        key_id, secret = parts

        try:
            known = self.records.served(key_id)  # (from memory without a coroutine: the common case)
            if known is None:
                known = await self.records.lookup(key_id)
        except StoreUnavailable as exc:
            recent = f"keys this process verified in the last {self.cache.stale_for:g} seconds pass"
            passes = f"{recent}, other keys get {self.on_failure.answer}"
            refusal = self.on_failure.failed("authentication", self.keys.name, exc, passes=passes)
            stale = self.records.stale(key_id) if self.on_failure.fails_open else None
            if stale is None:
                return _refused(scope, refusal)
            known = stale

        if known is not None and known.record.unreadable is not None:
            return _refused(scope, self._unreadable(known, scope))
        record = known.record if known is not None else None
        if known is None or record is None or not record.matches(secret) or record.revoked:
            invalid = self._invalid()
            logger.info(
                "rejected API key %s: %s",
                key_id,
                "unknown" if known is None else "bad secret or revoked",
                extra=log_extra(invalid.codes[0], scope),
            )
            return _refused(scope, invalid)

        if record.expires_at is not None and record.expires_at <= self.clock():
            expired = Refusal(
                ("expired_api_key",),
                401,
                details={"expired_at": known.principal.expires_at},
                headers=self._invalid_token,
            )
            return _refused(scope, expired)
        if record.workspace_disabled:
            return _refused(scope, Refusal(("workspace_disabled",), 403, details={"reason": record.disabled_reason}))

        scope["auth"], scope["user"] = known.credentials, known.principal
        return None

    def check(self, principal: Principal, path_params: Mapping[str, Any], permissions: Iterable[str]) -> None:
        """Raise the documented 403 when the key may not act on this route."""
        workspace = path_params.get(self.workspace_param)
        if workspace is not None and str(workspace) != principal.workspace_id:
            details = {"key_workspace_id": principal.workspace_id, "resource_workspace_id": str(workspace)}
            raise Refused(Refusal(("workspace_forbidden",), 403, details=details))

        project = path_params.get(self.project_param)
        if project is not None and principal.project_id is not None and str(project) != principal.project_id:
            self.check_project(principal, str(project))

        refusal = missing_permission(principal, permissions)
        if refusal is not None:
            raise Refused(refusal)

    def check_project(self, principal: Principal, resource_project_id: str) -> None:
        """Raise `wrong_project` when a project-scoped key touches another project's resource."""
        if principal.project_id is not None and principal.project_id != resource_project_id:
            details = {"key_project_id": principal.project_id, "resource_project_id": resource_project_id}
            raise Refused(Refusal(("wrong_project",), 403, details=details))

    def require(self, *permissions: str) -> Callable[[Request], Awaitable[Principal]]:
        """A FastAPI dependency: `principal: Principal = Depends(auth.require("campaigns:write"))`."""

        async def dependency(request: Request) -> Principal:
            return self._checked(request, permissions)

        setattr(dependency, PERMISSIONS_MARK, permissions)  # read by the OpenAPI document
        return dependency

    def requires(self, *permissions: str) -> Callable[[Endpoint], Endpoint]:
        """A Starlette endpoint decorator: `@auth.requires("deployments:write")`."""

        def decorate(endpoint: Endpoint) -> Endpoint:
            @functools.wraps(endpoint)
            async def checked(request: Request, *args: Any, **kwargs: Any) -> Response:
                self._checked(request, permissions)
                return await endpoint(request, *args, **kwargs)

            setattr(checked, PERMISSIONS_MARK, permissions)
            # (typing needs it: functools.wraps types the wrapper as `_Wrapped[...]`, not as `Endpoint`)
            return checked  # type: ignore[return-value]

        return decorate

    def _checked(self, request: Request, permissions: Iterable[str]) -> Principal:
        principal = get_principal(request.scope)
        if principal is None:  # a public route asking for a principal: treat as unauthenticated
            raise Refused(Refusal(_MISSING_KEY, 401, headers=self._challenge, fallback="status"))
        self.check(principal, request.path_params, permissions)
        return principal

    def _invalid(self) -> Refusal:
        return Refusal(("invalid_api_key",), 401, headers=self._invalid_token)

    def _unreadable(self, known: Known, scope: Scope) -> Refusal:
        """A record the store holds but cannot read authenticates nothing; a warning says so once."""
        invalid = self._invalid()
        if not known.warned:
            known.warned = True
            logger.warning(
                "API key %s has a stored record errorkit cannot read (%s): it is refused as invalid_api_key "
                "until the key is registered again",
                known.record.key_id,
                known.record.unreadable,
                extra=log_extra(invalid.codes[0], scope),
            )
        return invalid


def _refused(scope: Scope, refusal: Refusal) -> Refusal:
    """A refused request is anonymous to the stages after this one (the limiter counts it by client
    address), whatever user a middleware outside errorkit put in the scope."""
    scope["auth"], scope["user"] = _PUBLIC_AUTH, _ANONYMOUS
    return refusal


def _presented_key(scope: Scope) -> str | None:
    """The key from `X-API-Key`, else from `Authorization: Bearer`; None when neither is there."""
    bearer = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value.decode("latin-1").strip() or None
        if name == b"authorization" and value[:7].lower() == _BEARER:
            bearer = value[7:].decode("latin-1").strip() or None
    return bearer
