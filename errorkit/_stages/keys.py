"""Managing API keys in a key store: register, issue, revoke, disable a workspace."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from errorkit._principal import APIKeyRecord, KeyScope, hash_secret, new_token, split_token
from errorkit._stores.protocols import KeyStore


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
    """Store a key whose token you already have (fixtures, demos, migrations)."""
    parts = split_token(token)
    if parts is None:
        raise ValueError("a token is '<key id>.<secret>': printable ASCII, a secret of at least 8 characters")
    record = APIKeyRecord(
        key_id=parts[0],
        secret_hash=hash_secret(parts[1]),
        workspace_id=workspace_id,
        project_id=project_id,
        scopes=frozenset(scopes),
        key_scope=key_scope,
        plan=plan,
        expires_at=expires_at.timestamp() if expires_at is not None else None,
    )
    await store.put_api_key(record)
    return record


async def issue_api_key(store: KeyStore, *, prefix: str = "ek_", **fields: object) -> str:
    """Create a key with a random secret; returns the token, which is shown only this once."""
    token = new_token(prefix)
    await register_api_key(store, token, **fields)  # type: ignore[arg-type]
    return token


async def revoke_api_key(store: KeyStore, key_id: str) -> bool:
    """Mark a key revoked (it then answers 401 `invalid_api_key`); False when there is no such key."""
    record = await store.get_api_key(key_id)
    if record is None:
        return False
    await store.put_api_key(replace(record, revoked=True))
    return True


async def set_workspace_disabled(store: KeyStore, workspace_id: str, disabled: bool, reason: str | None = None) -> int:
    """Disable (or enable) every key of a workspace; returns how many keys changed."""
    changed = 0
    for record in await store.list_api_keys(workspace_id):
        await store.put_api_key(
            replace(record, workspace_disabled=disabled, disabled_reason=reason if disabled else None)
        )
        changed += 1
    return changed
