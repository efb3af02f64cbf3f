"""Managing API keys in a key store: register, issue, revoke, disable a workspace.

What a key carries is checked before anything is stored, the same for the Python API and for
`errorkit keys` (a `ValueError` whose message names the problem, never echoing the value):

| value | rule |
|---|---|
| workspace id, project id, scope | 1 to 128 printable characters, no whitespace; at most 100 scopes |
| plan | 1 to 128 printable characters (spaces allowed) |
| expiry | a time between the years 1 and 9999 in UTC; for a new key (`issue_api_key`), in the future |
| disable reason | 1 to 256 printable characters (spaces allowed) |

"Printable" is `str.isprintable()`: no control characters (newlines, ESC), no invisible
format characters. `register_api_key` takes a past expiry (fixtures, migrations of keys
that have expired); `issue_api_key` makes new keys, which must expire in the future.

A stored key changes only through `KeyStore.update_api_key`, one atomic step touching just
the fields it sets, never by writing back a record read earlier: a key revoked while its
workspace is being disabled or enabled stays revoked, and nothing undoes a revocation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from datetime import datetime
from typing import Required, TypedDict, Unpack

from errorkit._common.principal import APIKeyRecord, KeyScope, hash_secret, moment_of, new_token, split_token
from errorkit._stores.protocols import KeyStore

#: The longest workspace id, project id, scope or plan a key may carry (characters).
MAX_NAME = 128
#: The most scopes (permissions) one key may carry.
MAX_SCOPES = 100
#: The longest reason a workspace may be disabled with (characters).
MAX_REASON = 256


async def register_api_key(
    store: KeyStore,
    token: str,
    *,
    workspace_id: str,
    scopes: frozenset[str] | set[str] = frozenset(),
    project_id: str | None = None,
    key_scope: KeyScope | None = None,
    plan: str | None = None,
    expires_at: datetime | None = None,
) -> APIKeyRecord:
    """Store a key whose token you already have (fixtures, demos, migrations).

    `ValueError` for a value the rules above refuse; a past `expires_at` is kept (the key is expired).
    """
    parts = split_token(token)
    if parts is None:
        raise ValueError("a token is '<key id>.<secret>': printable ASCII, a secret of at least 8 characters")

    check_name("workspace id", workspace_id)
    if project_id is not None:
        check_name("project id", project_id)
    if plan is not None:
        check_name("plan", plan, spaces=True)
    _check_scopes(scopes)

    record = APIKeyRecord(
        key_id=parts[0],
        secret_hash=hash_secret(parts[1]),
        workspace_id=workspace_id,
        project_id=project_id,
        scopes=frozenset(scopes),
        key_scope=key_scope,
        plan=plan,
        expires_at=_timestamp(expires_at) if expires_at is not None else None,
    )
    await store.put_api_key(record)
    return record


class KeyFields(TypedDict, total=False):
    """What a key carries besides its token: `register_api_key`'s keywords, which the functions that
    make keys for it (`issue_api_key`, `errorkit.testing`'s helpers) pass on."""

    workspace_id: Required[str]
    scopes: frozenset[str] | set[str]
    project_id: str | None
    key_scope: KeyScope | None
    plan: str | None
    expires_at: datetime | None


async def issue_api_key(store: KeyStore, *, prefix: str = "ek_", **fields: Unpack[KeyFields]) -> str:
    """Create a key with a random secret; returns the token, which is shown only this once.

    Takes `register_api_key`'s fields; its expiry, if any, must be in the future (`ValueError`).
    """
    expires_at = fields.get("expires_at")
    if expires_at is not None and _timestamp(expires_at) <= time.time():
        raise ValueError(f"the expiry {expires_at.isoformat()} has passed: a new key must expire in the future")

    token = new_token(prefix)
    await register_api_key(store, token, **fields)
    return token


async def revoke_api_key(store: KeyStore, key_id: str) -> bool:
    """Mark a key revoked for good (it then answers 401 `invalid_api_key`); False when there is no such key.

    `ValueError` for a value no key id can be (a token's part before the dot)."""
    check_key_id(key_id)
    return await store.update_api_key(key_id, {"revoked": "1"})


async def set_workspace_disabled(store: KeyStore, workspace_id: str, disabled: bool, reason: str | None = None) -> int:
    """Disable (or enable) every key of a workspace; returns how many keys changed.

    Each key changes in a step of its own that sets only `workspace_disabled` and
    `disabled_reason`, so a key revoked meanwhile stays revoked.
    """
    check_name("workspace id", workspace_id)
    if reason is not None:
        check_name("reason", reason, spaces=True, limit=MAX_REASON)
    fields: dict[str, str | None] = {"workspace_disabled": "1" if disabled else "0"}
    fields["disabled_reason"] = reason if disabled else None  # None: the field is removed

    changed = 0
    for record in await store.list_api_keys(workspace_id):
        if record.workspace_id == workspace_id and await store.update_api_key(record.key_id, fields):
            changed += 1
    return changed


def check_key_id(key_id: object) -> None:
    """Refuse (`ValueError`) a value no key id can be: 1 to 128 printable ASCII characters, no dot or space."""
    if not isinstance(key_id, str) or split_token(f"{key_id}.--------") is None:
        raise ValueError("a key id is 1 to 128 printable ASCII characters without spaces or dots")


def check_name(what: str, value: object, *, spaces: bool = False, limit: int = MAX_NAME) -> None:
    """Refuse an empty, overlong or unprintable value (`spaces`: inner spaces are allowed)."""
    if not isinstance(value, str):
        raise TypeError(f"the {what} must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError(f"the {what} is empty")
    if len(value) > limit:
        raise ValueError(f"the {what} is {len(value)} characters long, more than {limit}")

    if not value.isprintable():
        raise ValueError(f"the {what} contains a character that is not printable (a control character)")
    if not spaces and any(character.isspace() for character in value):
        raise ValueError(f"the {what} contains a space")
    if spaces and value != value.strip():
        raise ValueError(f"the {what} starts or ends with a space")


def _check_scopes(scopes: Collection[str]) -> None:
    if isinstance(scopes, str):
        raise TypeError("scopes are a set of permissions, not one string")
    if len(scopes) > MAX_SCOPES:
        raise ValueError(f"a key carries at most {MAX_SCOPES} scopes, not {len(scopes)}")
    for scope in scopes:
        check_name("scope", scope)


def _timestamp(expires_at: datetime) -> float:
    """The Unix time of an expiry `datetime` can hold in UTC (a naive one is local time)."""
    if not isinstance(expires_at, datetime):
        raise TypeError(f"the expiry must be a datetime, not {type(expires_at).__name__}")
    try:
        timestamp = expires_at.timestamp()
    except (OverflowError, ValueError, OSError):
        timestamp = math.nan
    if moment_of(timestamp) is None:
        raise ValueError("the expiry is not a time between the years 1 and 9999 in UTC")
    return timestamp
