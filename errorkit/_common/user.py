"""Your own authentication's user as errorkit's stages see it: the `User` protocol, and its
conversion into a `Principal`.

Without errorkit's `APIKeyAuth`, `scope["user"]` holds whatever your authentication put there
(Starlette's `AuthenticationMiddleware` with a backend of yours, or an outer middleware). The
stages work on a `Principal` (workspace, user, plan, permissions, project), so `principal_of()`
reads one from that user attribute by attribute, with the fallbacks `User` documents: a
Starlette `SimpleUser`, or a user class written long before errorkit, works as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, cast

from errorkit._common.principal import Principal

#: Where `get_principal` keeps, per request, the user of your own authentication and the principal it
#: stands for (read by the log records too).
CONVERTED = "errorkit.principal"
#: Where the user id and the workspace id are looked for, in order (the first present wins).
# (never `display_name`: a label two users may share would give them one bucket and one replay cache)
USER_ID_ATTRIBUTES = ("identity", "id", "user_id", "username")
WORKSPACE_ID_ATTRIBUTES = ("workspace_id", "tenant_id")


class User(Protocol):
    """What errorkit reads of the user your authentication puts in `scope["user"]`.

    Only the user id is needed; every other attribute may be missing. "Missing" is an absent
    attribute, one whose property raises `NotImplementedError` (as Starlette's `BaseUser` does),
    None or an empty string. Ids and the plan are read as strings (`str(42)` is `"42"`).

    - authenticated: `is_authenticated`; missing, it is. False (Starlette's
      `UnauthenticatedUser`): the request is anonymous, counted by client address.
    - user id: `identity`, else `id`, `user_id`, `username`; missing: `TypeError` (a 500),
      since errorkit cannot tell this user from any other.
    - workspace (tenant): `workspace_id`, else `tenant_id`; missing: `user:<user id>`, a workspace
      of the user's own (never the bare id: user "acme" would share tenant "acme"'s quota).
    - plan: `plan`; missing: None (quotas then take their `default_plan`).
    - permissions: `scope["auth"].scopes` (Starlette's `AuthCredentials`), else the user's
      `scopes`; missing: none. A string is split on spaces, as OAuth 2 writes `scope`.
    - project: `project_id`; missing: None.

    The request is then counted as a `Principal` whose `key_id` is the user id and whose
    `key_scope` is `"PROJECT"` with a project, else `"WORKSPACE"`. `scope["auth"]`, when there,
    wins over the user's own `scopes` even when empty: errorkit then checks the permissions
    `starlette.authentication.requires()` checks. A `Principal` is itself a `User`.
    """

    @property
    def is_authenticated(self) -> bool: ...

    @property
    def identity(self) -> str: ...

    @property
    def workspace_id(self) -> str: ...

    @property
    def plan(self) -> str | None: ...

    @property
    def scopes(self) -> Iterable[str]: ...

    @property
    def project_id(self) -> str | None: ...


def principal_of(user: object, credentials: object = None) -> Principal | None:
    """The principal `user` stands for, None when it is not authenticated.

    `credentials` is the request's `scope["auth"]` (None when absent); see `User` for what is
    read, and `TypeError` for an authenticated user without an id."""
    if not _read(user, "is_authenticated", True):
        return None

    user_id = _first(user, USER_ID_ATTRIBUTES)
    if user_id is None:
        raise TypeError(
            f"the authenticated {type(user).__name__} in scope['user'] has no user id errorkit can read: give it "
            f"one of {', '.join(USER_ID_ATTRIBUTES)} (see errorkit.User)"
        )

    project = _first(user, ("project_id",))
    return Principal(
        key_id=user_id,
        workspace_id=_first(user, WORKSPACE_ID_ATTRIBUTES) or f"user:{user_id}",
        project_id=project,
        scopes=_permissions(user, credentials),
        key_scope="PROJECT" if project is not None else "WORKSPACE",
        plan=_first(user, ("plan",)),
    )


def _permissions(user: object, credentials: object) -> frozenset[str]:
    """`credentials.scopes` when there are credentials (what Starlette's `requires()` checks), else the user's."""
    scopes = _read(credentials, "scopes", None) if credentials is not None else None
    if scopes is None:
        scopes = _read(user, "scopes", None)
    if scopes is None:
        return frozenset()
    if isinstance(scopes, str):  # an OAuth 2 `scope` claim: iterating it would give its characters
        return frozenset(scopes.split())
    return frozenset(str(scope) for scope in cast("Iterable[object]", scopes))


def _first(user: object, names: Iterable[str]) -> str | None:
    """The first of `names` the user has a value for, as a string."""
    for name in names:
        value = _read(user, name, None)
        if value is not None and value != "":
            return str(value)
    return None


def _read(obj: object, name: str, default: object) -> object:
    """An attribute, or `default` when absent or not implemented (Starlette's `BaseUser` raises)."""
    try:
        return getattr(obj, name, default)
    except NotImplementedError:
        return default
