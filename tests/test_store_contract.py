"""One contract over every store: each atomic step pinned directly, on memory and on a real Redis."""

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from hashlib import blake2b
from typing import Any

import pytest

from errorkit import (
    APIKeyRecord,
    Backend,
    RedisBackend,
    StoreDataLost,
    revoke_api_key,
    set_workspace_disabled,
)
from errorkit._stages.algorithms import ALGORITHMS
from errorkit._stores.protocols import Claim, ClaimState
from tests.support.stores import NewBackend

GCRA, FIXED = ALGORITHMS["gcra"], ALGORITHMS["fixed"]
HOUR_US = 3_600_000_000

Run = Callable[[Callable[[Backend], Awaitable[None]]], None]


@pytest.fixture
def run(new_backend: NewBackend) -> Iterator[Run]:
    """Run an async check against a fresh store (its own key prefix on the shared Redis)."""

    def runner(check: Callable[[Backend], Awaitable[None]]) -> None:
        async def main() -> None:
            store = new_backend()
            if not isinstance(store, RedisBackend):
                await check(store)
                return
            try:
                assert await store.initialize() == 1  # a new prefix: its dataset marker is written once
                await check(store)
            finally:
                await store.close()

        asyncio.run(main())

    yield runner


def record(key_id: str = "ek_a", **fields: Any) -> APIKeyRecord:
    return APIKeyRecord(key_id=key_id, secret_hash="f" * 64, workspace_id=fields.pop("workspace_id", "ws_1"), **fields)


# -- API keys ---------------------------------------------------------------------------------


def test_initialize_is_idempotent(run: Run) -> None:
    async def check(store: Backend) -> None:
        assert await store.initialize() == 0  # marked already (Redis), or nothing to mark (memory)
        assert await store.get_api_key("ek_unknown") is None  # unknown, not lost

    run(check)


def test_keys_round_trip_and_replace_whole(run: Run) -> None:
    async def check(store: Backend) -> None:
        assert await store.get_api_key("ek_a") is None
        full = record(project_id="p_1", scopes=frozenset({"a:read", "b:write"}), plan="growth", expires_at=1.5)
        await store.put_api_key(full)
        assert await store.get_api_key("ek_a") == full
        plain = record()  # no project, plan or expiry any more: the old fields must not linger
        await store.put_api_key(plain)
        assert await store.get_api_key("ek_a") == plain

    run(check)


def test_keys_listed_by_workspace(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.put_api_key(record("ek_a"))
        await store.put_api_key(record("ek_b"))
        await store.put_api_key(record("ek_c", workspace_id="ws_2"))
        assert sorted(r.key_id for r in await store.list_api_keys("ws_1")) == ["ek_a", "ek_b"]
        assert [r.key_id for r in await store.list_api_keys("ws_2")] == ["ek_c"]
        assert await store.list_api_keys("ws_none") == []
        await store.put_api_key(replace(record("ek_b"), revoked=True))
        assert {r.key_id: r.revoked for r in await store.list_api_keys("ws_1")} == {"ek_a": False, "ek_b": True}

    run(check)


def test_an_update_changes_only_the_fields_it_names_and_never_makes_a_record(run: Run) -> None:
    async def check(store: Backend) -> None:
        full = record(project_id="p_1", scopes=frozenset({"a:read"}), plan="growth", expires_at=1.5)
        await store.put_api_key(full)
        changes = {"plan": "scale", "workspace_disabled": "1", "disabled_reason": "billing"}
        assert await store.update_api_key("ek_a", changes) is True
        assert await store.get_api_key("ek_a") == replace(
            full, plan="scale", workspace_disabled=True, disabled_reason="billing"
        )
        removals = {"workspace_disabled": "0", "disabled_reason": None, "expires_at": None}  # None removes a field
        assert await store.update_api_key("ek_a", removals) is True
        assert await store.get_api_key("ek_a") == replace(full, plan="scale", expires_at=None)

        assert await store.update_api_key("ek_none", {"revoked": "1"}) is False
        assert await store.get_api_key("ek_none") is None  # an update never brings a record into being
        assert await store.list_api_keys("ws_1") == [replace(full, plan="scale", expires_at=None)]

    run(check)


def test_an_update_a_record_cannot_take_is_refused_and_changes_nothing(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.put_api_key(record())
        refused = {
            "workspace_id": "'workspace_id' is not a field a stored key record may change",
            "secret_hash": "'secret_hash' is not a field a stored key record may change",
            "key_id": "'key_id' is not a field a stored key record may change",
            "colour": "'colour' is not a field a stored key record may change",
        }
        for name, message in refused.items():
            with pytest.raises(ValueError) as caught:
                await store.update_api_key("ek_a", {name: "x"})
            assert str(caught.value) == message
        refused: list[tuple[dict[str, str | None], str]] = [
            ({"revoked": "0"}, "a revoked key stays revoked: 'revoked' can only be set to '1'"),
            ({"revoked": None}, "a revoked key stays revoked: 'revoked' can only be set to '1'"),
            ({"expires_at": "soon"}, "expires_at is not a number"),
            ({"expires_at": "253402300800.0"}, "expires_at is not a time between the years 1 and 9999"),
            ({"expires_at": "nan"}, "expires_at is not a time between the years 1 and 9999"),
            ({"key_scope": "ROOT"}, "key_scope is not PUBLIC, WORKSPACE or PROJECT"),
        ]
        for fields, message in refused:
            with pytest.raises(ValueError) as caught:
                await store.update_api_key("ek_a", fields)
            assert str(caught.value) == message
        assert await store.get_api_key("ek_a") == record()

    run(check)


def test_once_revoked_always_revoked(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.put_api_key(record(plan="growth"))
        assert await store.update_api_key("ek_a", {"revoked": "1"}) is True
        assert await store.update_api_key("ek_a", {"workspace_disabled": "1", "disabled_reason": "billing"}) is True
        assert await store.update_api_key("ek_a", {"workspace_disabled": "0", "disabled_reason": None}) is True
        assert await store.get_api_key("ek_a") == record(plan="growth", revoked=True)

        await store.put_api_key(record(plan="scale"))  # registered again, unrevoked: the revocation stays
        assert await store.get_api_key("ek_a") == record(plan="scale", revoked=True)
        await store.put_api_key(record("ek_b", plan="scale"))  # a key never revoked is stored as given
        assert await store.get_api_key("ek_b") == record("ek_b", plan="scale")

    run(check)


# -- rate limiting ----------------------------------------------------------------------------


def test_gcra_charges_until_full_and_a_refusal_changes_nothing(run: Run) -> None:
    async def check(store: Backend) -> None:
        args = (HOUR_US, 2)  # 2 per hour: one every 1800 s
        first = await store.count(GCRA, "ws:1", ["b"], args, 1)
        assert first.admitted and first.values[0] - first.now_us == pytest.approx(1_800_000_000, abs=2)
        second = await store.count(GCRA, "ws:1", ["b"], args, 1)
        assert second.admitted and second.values[0] == first.values[0] + 1_800_000_000
        refused = await store.count(GCRA, "ws:1", ["b"], args, 1)
        assert not refused.admitted and refused.values[0] == second.values[0]  # unchanged state
        again = await store.count(GCRA, "ws:1", ["b"], args, 1)
        assert not again.admitted and again.values[0] == second.values[0]
        other = await store.count(GCRA, "ws:2", ["b"], args, 1)  # another identity: its own state
        assert other.admitted

    run(check)


def test_several_limits_are_charged_all_or_nothing(run: Run) -> None:
    for algorithm in (GCRA, FIXED):

        async def check(store: Backend, algorithm: Any = algorithm) -> None:
            args = (HOUR_US, 1, HOUR_US, 100)  # the first limit allows one, the second many
            assert (await store.count(algorithm, "ws:1", ["tight", "loose"], args, 1)).admitted
            before = await store.count(algorithm, "ws:1", ["loose"], (HOUR_US, 100), 0)
            refused = await store.count(algorithm, "ws:1", ["tight", "loose"], args, 1)
            assert not refused.admitted
            after = await store.count(algorithm, "ws:1", ["loose"], (HOUR_US, 100), 0)
            assert after.values == before.values  # the loose limit was not charged for the refusal

        run(check)


def test_a_shadow_limit_never_refuses_and_is_charged_only_when_it_would_admit(run: Run) -> None:
    for algorithm in (GCRA, FIXED):

        async def check(store: Backend, algorithm: Any = algorithm) -> None:
            args = (HOUR_US, 100, HOUR_US, -1)  # enforced: 100 an hour; shadow: 1 an hour
            first = await store.count(algorithm, "ws:1", ["loose", "shadow"], args, 1)
            assert (first.admitted, first.shadowed) == (True, 0)
            second = await store.count(algorithm, "ws:1", ["loose", "shadow"], args, 1)
            assert (second.admitted, second.shadowed) == (True, 0b10)  # the shadow limit would have refused
            assert second.values[1] == first.values[1]  # and was not charged for it
            loose = await store.count(algorithm, "ws:1", ["loose"], (HOUR_US, 100), 0)
            charged = 2 if algorithm is FIXED else first.values[0] + HOUR_US // 100  # GCRA: one interval more
            assert loose.values[0] == charged  # the enforced limit was charged both times
            alone = [await store.count(algorithm, "ws:2", ["shadow"], (HOUR_US, -1), 1) for _ in range(3)]
            assert [(c.admitted, c.shadowed) for c in alone] == [(True, 0), (True, 1), (True, 1)]

        run(check)


def test_fixed_window_counts_and_refuses_a_cost_that_does_not_fit(run: Run) -> None:
    async def check(store: Backend) -> None:
        args = (HOUR_US, 5)
        assert list((await store.count(FIXED, "ip:1", ["b"], args, 3)).values) == [3]
        refused = await store.count(FIXED, "ip:1", ["b"], args, 3)
        assert (refused.admitted, list(refused.values)) == (False, [3])
        assert list((await store.count(FIXED, "ip:1", ["b"], args, 2)).values) == [5]

    run(check)


def test_counters_expire(run: Run) -> None:
    async def check(store: Backend) -> None:
        for algorithm in (GCRA, FIXED):
            args = (200_000, 1)  # one per 0.2 s
            assert (await store.count(algorithm, f"ws:{algorithm.name}", ["b"], args, 1)).admitted
            assert not (await store.count(algorithm, f"ws:{algorithm.name}", ["b"], args, 1)).admitted
            await asyncio.sleep(0.45)
            assert (await store.count(algorithm, f"ws:{algorithm.name}", ["b"], args, 1)).admitted

    run(check)


def test_the_clock_is_the_stores(run: Run) -> None:
    async def check(store: Backend) -> None:
        counted = await store.count(GCRA, "ws:1", ["b"], (HOUR_US, 10), 1)
        assert abs(counted.now_us / 1e6 - time.time()) < 2

    run(check)


# -- idempotency ------------------------------------------------------------------------------


def test_claim_complete_replay(run: Run) -> None:
    async def check(store: Backend) -> None:
        assert await store.claim("t", "k", b"fp1", "owner-a", 10_000) == Claim(ClaimState.CLAIMED)
        assert await store.claim("t", "k", b"fp2", "owner-b", 10_000) == Claim(ClaimState.IN_PROGRESS, b"fp1")
        assert await store.complete("t", "k", "owner-b", b"stolen", 10_000) is False  # not the owner
        assert await store.claim("t", "k", b"fp1", "owner-b", 10_000) == Claim(ClaimState.IN_PROGRESS, b"fp1")
        assert await store.complete("t", "k", "owner-a", b"201\n[]\n{}", 10_000) is True
        assert await store.claim("t", "k", b"fp1", "owner-c", 10_000) == Claim(
            ClaimState.COMPLETED, b"fp1", b"201\n[]\n{}"
        )
        assert await store.complete("t", "k", "owner-a", b"again", 10_000) is False  # done is done
        assert await store.release("t", "k", "owner-a") is False  # a completed record stays
        assert (await store.claim("t", "k", b"fp1", "x", 10_000)).state is ClaimState.COMPLETED

    run(check)


def test_a_response_too_big_to_keep_is_completed_unstored(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.claim("t", "big", b"fp", "o", 10_000)
        assert await store.complete("t", "big", "o", None, 10_000) is True
        assert await store.claim("t", "big", b"fp", "p", 10_000) == Claim(ClaimState.COMPLETED_UNSTORED, b"fp")

    run(check)


def test_release_by_the_owner_only(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.claim("t", "k", b"fp", "owner-a", 10_000)
        assert await store.release("t", "k", "owner-b") is False
        assert (await store.claim("t", "k", b"fp", "owner-b", 10_000)).state is ClaimState.IN_PROGRESS
        assert await store.release("t", "k", "owner-a") is True
        assert await store.claim("t", "k", b"fp", "owner-b", 10_000) == Claim(ClaimState.CLAIMED)

    run(check)


def test_lease_expires_and_renewal_extends_it(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.claim("t", "lapse", b"fp", "o", 150)
        await store.claim("t", "kept", b"fp", "o", 150)
        assert await store.renew("t", "kept", "someone-else", 5_000) is False
        assert await store.renew("t", "kept", "o", 5_000) is True
        await asyncio.sleep(0.3)
        assert await store.claim("t", "lapse", b"fp", "p", 10_000) == Claim(ClaimState.CLAIMED)  # lease gone
        assert (await store.claim("t", "kept", b"fp", "p", 10_000)).state is ClaimState.IN_PROGRESS
        assert await store.renew("t", "missing", "o", 5_000) is False

    run(check)


def test_completed_records_expire_after_their_ttl(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.claim("t", "k", b"fp", "o", 10_000)
        await store.complete("t", "k", "o", b"resp", 150)
        assert (await store.claim("t", "k", b"fp", "p", 10_000)).state is ClaimState.COMPLETED
        await asyncio.sleep(0.3)
        assert await store.claim("t", "k", b"fp", "p", 10_000) == Claim(ClaimState.CLAIMED)

    run(check)


def test_tenants_are_separate(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.claim("ws:1", "same-key", b"fp", "o", 10_000)
        assert await store.claim("ws:2", "same-key", b"fp", "o", 10_000) == Claim(ClaimState.CLAIMED)
        assert await store.claim("ws:{1}", "same-key", b"fp", "o", 10_000) == Claim(ClaimState.CLAIMED)

    run(check)


# -- the Redis store's key layout -------------------------------------------------------------


# -- quotas ----------------------------------------------------------------------------------


def test_quota_holds_up_to_the_limit_and_a_refusal_changes_nothing(run: Run) -> None:
    async def check(store: Backend) -> None:
        held = [tuple(await store.reserve("ws_1", "agents", 2, f"t{i}", 60_000)) for i in range(3)]
        assert held == [(True, 1), (True, 2), (False, 2)]
        assert await store.usage("ws_1", ["agents", "webhooks"]) == [2, 0]  # held units count
        assert await store.usage("ws_1", []) == []
        assert tuple(await store.reserve("ws_2", "agents", 2, "t0", 60_000)) == (True, 1)  # its own count
        assert tuple(await store.reserve("ws_1", "agents", None, "t9", 60_000)) == (True, 3)  # unlimited, counted

    run(check)


def test_quota_confirm_counts_once_and_cancel_gives_back(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.reserve("ws_1", "agents", 3, "a", 60_000)
        await store.reserve("ws_1", "agents", 3, "b", 60_000)
        assert await store.confirm("ws_1", "agents", "a") == 1
        assert await store.confirm("ws_1", "agents", "a") == 1  # sent again: counted once
        assert await store.cancel("ws_1", "agents", "b") is True
        assert await store.cancel("ws_1", "agents", "b") is False  # given back already
        assert await store.usage("ws_1", ["agents"]) == [1]
        assert await store.renew_hold("ws_1", "agents", "b", 60_000) is False  # not taken again

    run(check)


def test_a_lapsed_hold_comes_back_and_a_late_confirmation_still_counts(run: Run) -> None:
    async def check(store: Backend) -> None:
        assert (await store.reserve("ws_1", "agents", 2, "dead", 1000)).admitted  # its worker died
        assert (await store.reserve("ws_1", "agents", 2, "slow", 1000)).admitted  # its handler runs long
        await asyncio.sleep(0.5)
        assert await store.renew_hold("ws_1", "agents", "slow", 2000) is True
        await asyncio.sleep(0.7)  # "dead" lapsed, "slow" was renewed
        assert await store.usage("ws_1", ["agents"]) == [1]
        assert tuple(await store.reserve("ws_1", "agents", 2, "new", 60_000)) == (True, 2)
        assert tuple(await store.reserve("ws_1", "agents", 2, "more", 60_000)) == (False, 2)
        await asyncio.sleep(1.5)  # "slow" lapses too, then its resource turns out to exist
        assert await store.confirm("ws_1", "agents", "slow") == 1  # counted all the same
        assert await store.usage("ws_1", ["agents"]) == [2]  # 1 counted + "new" held

    run(check)


def test_quota_unreserve_once_per_token_never_below_zero_and_set_usage_overwrites(run: Run) -> None:
    async def check(store: Backend) -> None:
        await store.reserve("ws_1", "kb", 5, "made", 60_000)
        await store.confirm("ws_1", "kb", "made")
        assert await store.unreserve("ws_1", "kb", "d1") == 0
        assert await store.unreserve("ws_1", "kb", "d2") == 0  # never below 0
        assert await store.unreserve("ws_1", "never-used", "d3") == 0
        await store.set_usage("ws_1", "kb", 4)
        assert await store.unreserve("ws_1", "kb", "d4") == 3
        assert await store.unreserve("ws_1", "kb", "d4") == 3  # the same deletion sent again: once
        assert tuple(await store.reserve("ws_1", "kb", 5, "x", 60_000)) == (True, 4)
        assert tuple(await store.reserve("ws_1", "kb", 5, "y", 60_000)) == (True, 5)
        assert tuple(await store.reserve("ws_1", "kb", 5, "z", 60_000)) == (False, 5)
        assert await store.usage("ws_1", ["kb"]) == [5]

    run(check)


def test_quota_usage_is_exact_under_concurrent_reservations(run: Run) -> None:
    async def check(store: Backend) -> None:
        results = await asyncio.gather(*(store.reserve("ws_1", "g", 7, f"t{i}", 60_000) for i in range(30)))
        assert sorted(r.usage for r in results if r.admitted) == [1, 2, 3, 4, 5, 6, 7]
        assert [r.usage for r in results if not r.admitted] == [7] * 23

    run(check)


# -- concurrency slots --------------------------------------------------------------------------


def test_slots_up_to_the_limit_released_by_token(run: Run) -> None:
    async def check(store: Backend) -> None:
        taken = [tuple(await store.acquire("ws:1", "*", 2, f"t{i}", 60_000)) for i in range(3)]
        assert taken == [(True, 1), (True, 2), (False, 2)]
        assert tuple(await store.acquire("ws:1", "POST /exports", 2, "t9", 60_000)) == (True, 1)  # its own bucket
        assert tuple(await store.acquire("ws:2", "*", 2, "t0", 60_000)) == (True, 1)  # its own identity
        assert await store.release_slot("ws:1", "*", "t0") is True
        assert await store.release_slot("ws:1", "*", "t0") is False
        assert tuple(await store.acquire("ws:1", "*", 2, "t3", 60_000)) == (True, 2)

    run(check)


def test_a_lapsed_lease_frees_its_slot_and_renewal_keeps_one(run: Run) -> None:
    async def check(store: Backend) -> None:
        assert (await store.acquire("ws:1", "*", 2, "short", 150)).acquired
        assert (await store.acquire("ws:1", "*", 2, "kept", 150)).acquired
        await asyncio.sleep(0.1)
        assert await store.renew_slot("ws:1", "*", "kept", 300) is True
        await asyncio.sleep(0.1)  # "short" lapsed, "kept" was renewed
        assert tuple(await store.acquire("ws:1", "*", 2, "new", 1000)) == (True, 2)
        assert await store.renew_slot("ws:1", "*", "short", 1000) is False  # a lapsed slot is not taken again
        assert tuple(await store.acquire("ws:1", "*", 2, "more", 1000)) == (False, 2)

    run(check)


@pytest.mark.parametrize("disabled", [True, False], ids=["disable", "enable"])
def test_a_key_revoked_while_a_workspace_of_2000_keys_is_disabled_or_enabled_stays_revoked(
    redis_url: str, disabled: bool
) -> None:
    """The revocation lands after the change read every record and before it wrote the last one."""

    async def main() -> None:
        store = RedisBackend(redis_url, prefix=f"race-{uuid.uuid4().hex[:8]}", timeout=5.0)
        for start in range(0, 2000, 250):
            batch = (record(f"ek_{i:04d}", workspace_disabled=not disabled) for i in range(start, start + 250))
            await asyncio.gather(*(store.put_api_key(r) for r in batch))
        order = [k.decode() for k in await store.redis.execute("SMEMBERS", f"{store.prefix}:workspace-keys:{{ws_1}}")]

        changing = asyncio.create_task(set_workspace_disabled(store, "ws_1", disabled, "billing" if disabled else None))
        first_written = f"{store.prefix}:apikey:{{{order[0]}}}"
        while await store.redis.execute("HGET", first_written, "workspace_disabled") != (b"1" if disabled else b"0"):
            await asyncio.sleep(0.001)
        assert await revoke_api_key(store, order[-1]) is True
        assert not changing.done()  # the workspace's last key is still to be changed

        assert await changing == 2000
        records = await store.list_api_keys("ws_1")
        assert [r.key_id for r in records if r.revoked] == [order[-1]]
        assert {(r.workspace_disabled, r.disabled_reason) for r in records} == {
            (disabled, "billing" if disabled else None)
        }
        await store.close()

    asyncio.run(main())


def test_redis_keys_carry_the_prefix_and_one_hash_tag_per_step(redis_url: str) -> None:
    async def main() -> None:
        prefix = f"layout-{uuid.uuid4().hex[:8]}"
        store = RedisBackend(redis_url, prefix=prefix)
        await store.put_api_key(record("ek_{x}"))
        await store.count(GCRA, "ws:{a}", ["*:5/60", "*:100/3600"], (60_000_000, 5, HOUR_US, 100), 1)
        await store.claim("ws:a:key:ek", "idem-1", b"fp", "o", 10_000)
        await store.reserve("{a}", "Knowledge Bases", 5, "token", 10_000)
        await store.confirm("{a}", "Knowledge Bases", "token")
        await store.acquire("ws:{a}", "POST /exports", 2, "token", 10_000)
        keys = sorted(k.decode() for k in await store.redis.execute("KEYS", f"{prefix}:*"))
        assert (
            keys
            == [
                f"{prefix}:apikey:{{ek_%7Bx%7D}}",
                f"{prefix}:cc:{{ws:%7Ba%7D}}:POST /exports",  # the workspace's slot, as its rate limits
                f"{prefix}:dataset",  # one marker on a single node (on Cluster, one per slot)
                f"{prefix}:ik:{{ws:a:key:ek}}:{base64.urlsafe_b64encode(blake2b(b'idem-1', digest_size=16).digest())[:22].decode()}",
                f"{prefix}:quota-settled:{{ws:%7Ba%7D}}",  # the token counted (kept an hour)
                f"{prefix}:quota:{{ws:%7Ba%7D}}",
                f"{prefix}:rl:{{ws:%7Ba%7D}}:*:100/3600",
                f"{prefix}:rl:{{ws:%7Ba%7D}}:*:5/60",
                f"{prefix}:workspace-keys:{{ws_1}}",
            ]
        )
        outside = [k for k in await store.redis.execute("KEYS", "*") if b"ek_%7Bx%7D" in k or b"ws:%7Ba%7D" in k]
        assert all(k.startswith(prefix.encode()) for k in outside)  # nothing outside the prefix
        await store.close()

    asyncio.run(main())


def test_quota_usage_of_a_redis_that_lost_its_data_is_not_zero_but_unknown(redis_url: str) -> None:
    async def main() -> None:
        store = RedisBackend(redis_url, prefix=f"lost-{uuid.uuid4().hex[:8]}")  # never initialized: no marker
        with pytest.raises(StoreDataLost, match="quota usage"):
            await store.reserve("ws_1", "agents", 3, "t1", 60_000)
        with pytest.raises(StoreDataLost, match="quota usage"):
            await store.usage("ws_1", ["agents"])
        with pytest.raises(StoreDataLost, match="quota usage"):  # a give-back writes no trusted 0 either
            await store.unreserve("ws_1", "agents", "t2")
        with pytest.raises(StoreDataLost, match="quota usage"):  # nor a confirmation a trusted 1
            await store.confirm("ws_1", "agents", "t3")
        await store.set_usage("ws_1", "agents", 2)  # the repair: this count is trusted again
        assert tuple(await store.reserve("ws_1", "agents", 3, "t4", 60_000)) == (True, 3)
        with pytest.raises(StoreDataLost, match="quota usage"):  # the workspace's other groups are not
            await store.reserve("ws_1", "webhooks", 3, "t5", 60_000)
        assert await store.initialize() == 1
        assert tuple(await store.reserve("ws_1", "webhooks", 3, "t6", 60_000)) == (True, 1)
        await store.close()

    asyncio.run(main())


def test_a_fingerprint_is_at_most_255_bytes(redis_url: str) -> None:
    async def main() -> None:
        store = RedisBackend(redis_url, prefix=f"fp-{uuid.uuid4().hex[:8]}")
        await store.initialize()
        with pytest.raises(ValueError, match="at most 255 bytes"):
            store.claim("t", "k", b"x" * 256, "o", 1000)
        claim = await store.claim("t", "k", b"x" * 255, "o", 1000)
        assert claim == Claim(ClaimState.CLAIMED)
        assert await store.claim("t", "k", b"y", "p", 1000) == Claim(ClaimState.IN_PROGRESS, b"x" * 255)
        await store.close()

    asyncio.run(main())


def test_identities_that_differ_only_in_braces_never_share_a_key(redis_url: str) -> None:
    async def main() -> None:
        store = RedisBackend(redis_url, prefix=f"tag-{uuid.uuid4().hex[:8]}")
        await store.initialize()
        for i in range(3):  # "acme{eu}" at its limit
            await store.reserve("acme{eu}", "agents", 3, f"t{i}", 60_000)
            await store.confirm("acme{eu}", "agents", f"t{i}")
        await store.count(GCRA, "ws:acme{eu}", ["*"], (60_000_000, 1), 1)
        await store.acquire("ws:acme{eu}", "*", 1, "slot", 60_000)
        assert tuple(await store.reserve("acme(eu)", "agents", 3, "u", 60_000)) == (True, 1)  # its own count
        assert (await store.count(GCRA, "ws:acme(eu)", ["*"], (60_000_000, 1), 1)).admitted
        assert tuple(await store.acquire("ws:acme(eu)", "*", 1, "slot", 60_000)) == (True, 1)
        assert await store.usage("acme{eu}", ["agents"]) == [3]
        assert await store.usage("acme%7Beu%7D", ["agents"]) == [0]  # the escape itself is escaped
        await store.close()

    asyncio.run(main())


def test_the_key_feed_names_a_key_id_with_braces_exactly(redis_url: str) -> None:
    async def main() -> None:
        store = RedisBackend(redis_url, prefix=f"feed-{uuid.uuid4().hex[:8]}")
        heard: list[str | None] = []
        watch = store.watch_keys(heard.append)
        watch.start()
        for _ in range(100):
            if watch.live:
                break
            await asyncio.sleep(0.05)
        await store.put_api_key(record("ek_{a}%"))
        for _ in range(100):
            if "ek_{a}%" in heard:
                break
            await asyncio.sleep(0.02)
        assert "ek_{a}%" in heard
        await store.close()

    asyncio.run(main())
