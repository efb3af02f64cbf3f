"""Who is calling: the principal, the stored API-key record (hash only) and the token format.

A token is `<key id>.<secret>`. The key id (which may carry a prefix such as `sk-orq-`)
finds the record; the secret is checked against the record's SHA-256 with a
constant-time comparison. Only the hash is ever stored.

A record always stands for a usable principal: its expiry is a time `datetime` can hold and
its key scope one of `KeyScope`, or it is not built (`ValueError`). Stored fields that make
no such record are read as an *unreadable* record (`APIKeyRecord.unreadable` says why),
which authenticates nothing, so one damaged record never fails a request or a listing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast, get_args

from starlette.authentication import BaseUser

KeyScope = Literal["PUBLIC", "WORKSPACE", "PROJECT"]
"""What a key is scoped to, as `Principal.key_scope` and the `key_scope` detail say it.

A key with a project is `"PROJECT"`, else `"WORKSPACE"`, unless it was issued with a scope of
its own (`issue_api_key(key_scope=...)`, `errorkit keys issue --key-scope`).
"""
_KEY_SCOPES = get_args(KeyScope)
#: The fields of a stored record that `KeyStore.update_api_key` may change; the identity
#: (`key_id`, `secret_hash`, `workspace_id`) is written only by `put_api_key`.
UPDATABLE_FIELDS = frozenset(
    {"project_id", "scopes", "key_scope", "plan", "expires_at", "revoked", "workspace_disabled", "disabled_reason"}
)


@dataclass(frozen=True, slots=True)
class Principal(BaseUser):
    """Who is calling: the authenticated key and the workspace it belongs to.

    The auth stage puts it where Starlette's own `AuthenticationMiddleware` does:
    `request.user` is the principal, `request.auth.scopes` its permissions, so
    `starlette.authentication.requires("campaigns:write")` works too.
    """

    key_id: str
    workspace_id: str
    project_id: str | None
    scopes: frozenset[str]
    key_scope: KeyScope
    plan: str | None = None
    expires_at: datetime | None = None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.key_id

    @property
    def identity(self) -> str:
        return self.key_id


@dataclass(frozen=True, slots=True)
class APIKeyRecord:
    """What a store keeps about a key."""

    key_id: str
    secret_hash: str
    workspace_id: str
    project_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    key_scope: KeyScope | None = None  # derived from project_id when not given
    plan: str | None = None
    expires_at: float | None = None  # Unix time
    revoked: bool = False
    workspace_disabled: bool = False
    disabled_reason: str | None = None
    unreadable: str | None = None  # why the stored fields make no record: the key then authenticates nothing

    def __post_init__(self) -> None:
        if self.expires_at is not None and moment_of(self.expires_at) is None:
            raise ValueError("expires_at is not a time between the years 1 and 9999")
        if self.key_scope is not None and self.key_scope not in _KEY_SCOPES:
            raise ValueError("key_scope is not PUBLIC, WORKSPACE or PROJECT")

    @classmethod
    def unreadable_record(cls, key_id: str, problem: str, workspace_id: str = "") -> APIKeyRecord:
        """What a store gives for a record it holds but cannot read: no secret matches it."""
        return cls(key_id=key_id, secret_hash="", workspace_id=workspace_id, unreadable=problem)

    def principal(self) -> Principal:
        return Principal(
            key_id=self.key_id,
            workspace_id=self.workspace_id,
            project_id=self.project_id,
            scopes=self.scopes,
            key_scope=self.key_scope or ("PROJECT" if self.project_id else "WORKSPACE"),
            plan=self.plan,
            expires_at=moment_of(self.expires_at) if self.expires_at is not None else None,
        )

    def matches(self, secret: str) -> bool:
        """Constant-time check of a presented secret against the stored hash."""
        return hmac.compare_digest(hash_secret(secret), self.secret_hash)

    def to_fields(self) -> dict[str, str]:
        """Flat string fields, as a Redis hash stores them."""
        fields = {
            "key_id": self.key_id,
            "secret_hash": self.secret_hash,
            "workspace_id": self.workspace_id,
            "scopes": " ".join(sorted(self.scopes)),
            "revoked": "1" if self.revoked else "0",
            "workspace_disabled": "1" if self.workspace_disabled else "0",
        }

        optional = {
            "project_id": self.project_id,
            "key_scope": self.key_scope,
            "plan": self.plan,
            "expires_at": repr(self.expires_at) if self.expires_at is not None else None,
            "disabled_reason": self.disabled_reason,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> APIKeyRecord:
        """The record flat fields stand for; `ValueError` naming the field when they make none."""
        missing = [name for name in ("key_id", "secret_hash", "workspace_id") if name not in fields]
        if missing:
            raise ValueError(f"the field {missing[0]} is missing")

        expires_at = fields.get("expires_at")
        try:
            expiry = float(expires_at) if expires_at is not None else None
        except ValueError:
            raise ValueError("expires_at is not a number") from None

        return cls(
            key_id=fields["key_id"],
            secret_hash=fields["secret_hash"],
            workspace_id=fields["workspace_id"],
            project_id=fields.get("project_id"),
            scopes=frozenset(fields.get("scopes", "").split()),
            key_scope=cast("KeyScope | None", fields.get("key_scope")),  # checked by __post_init__
            plan=fields.get("plan"),
            expires_at=expiry,
            revoked=fields.get("revoked") == "1",
            workspace_disabled=fields.get("workspace_disabled") == "1",
            disabled_reason=fields.get("disabled_reason"),
        )


def check_update(fields: Mapping[str, str | None]) -> None:
    """Refuse (`ValueError`) a change `KeyStore.update_api_key` must not make.

    Only `UPDATABLE_FIELDS`, each to a value a record can hold (None removes the field), and
    `revoked` only to "1": a revocation is never undone.
    """
    for name in fields:
        if name not in UPDATABLE_FIELDS:
            raise ValueError(f"{name!r} is not a field a stored key record may change")
    if "revoked" in fields and fields["revoked"] != "1":
        raise ValueError("a revoked key stays revoked: 'revoked' can only be set to '1'")

    given = {name: value for name, value in fields.items() if value is not None}
    APIKeyRecord.from_fields({"key_id": "-", "secret_hash": "", "workspace_id": "-", **given})


def moment_of(timestamp: float) -> datetime | None:
    """The UTC time of a Unix timestamp, or None when `datetime` cannot hold it (NaN, year 10000...)."""
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def hash_secret(secret: str) -> str:
    """The SHA-256 of a secret, as stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """`(key_id, secret)` of a well-formed token, else None."""
    key_id, dot, secret = token.partition(".")  # (string methods, not a regex: a third of the instructions)
    if not dot or not 1 <= len(key_id) <= 128 or not 8 <= len(secret) <= 256 or "." in secret:
        return None
    if not token.isascii() or not token.isprintable() or " " in token:  # visible ASCII only, \x21-\x7e
        return None
    return key_id, secret


def new_token(prefix: str = "ek_") -> str:
    """A fresh `<key id>.<secret>` with a random id and a 256-bit secret."""
    return f"{prefix}{secrets.token_hex(8)}.{secrets.token_urlsafe(32).replace('.', '')}"
