import asyncio
from datetime import UTC, datetime, timedelta

from errorkit import MemoryBackend, issue_api_key, register_api_key, revoke_api_key, set_workspace_disabled


async def main() -> None:
    store = MemoryBackend()  # or RedisBackend(url): the same calls

    token = await issue_api_key(
        store,
        workspace_id="ws_1",
        scopes={"campaigns:write", "campaigns:read"},
        plan="Growth",
        expires_at=datetime.now(UTC) + timedelta(days=30),
    )
    key_id = token.split(".", 1)[0]
    print("issued", key_id)

    # a token you already have (a test fixture, a key migrated from elsewhere)
    await register_api_key(store, "ek_fixture.a-secret-of-the-tests", workspace_id="ws_2", project_id="p_1")

    print("revoked:", await revoke_api_key(store, key_id))
    print("keys disabled:", await set_workspace_disabled(store, "ws_2", True, reason="payment overdue"))


asyncio.run(main())
