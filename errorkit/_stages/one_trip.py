"""Rate limiting and idempotency in one store step: the wrapping stage `install()` builds when the
limiter and idempotency share a store that counts and claims at once (`CountsAndClaims`).

A request that will be claimed (a valid `Idempotency-Key` on a guarded route) is not counted
by the limiter's own step: the limiter defers its charge, and the claim's script counts it
first and claims only if the limit admits, so a first-time POST through the whole stack costs
one Redis command for both, and a request the limit refuses claims nothing. Every other
request goes through the limiter and idempotency as usual.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import cast

from starlette.types import ASGIApp, Receive, Scope, Send

from errorkit._common.refusal import Refusal
from errorkit._stages.idempotency import Idempotency
from errorkit._stages.ratelimit import Header, PendingCharge, RateLimiter
from errorkit._stores.protocols import CountsAndClaims

_ClaimedKey = Callable[[Scope], str | None]
_Charge = Callable[[Scope, list[Header]], Awaitable[PendingCharge | Refusal | None]]
_Wrap = Callable[[Scope, Receive, Send, ASGIApp, PendingCharge | None, str], Awaitable[Refusal | None]]


class OneTrip:
    """The limiter's count riding on the idempotency claim, for the requests `claimed_key()` names
    the key of; the gateway runs this in place of the limiter and idempotency for them: first
    `charge()`, then `wrap()` with the charge and the key.

    - `claimed_key(scope)`: the key this request will be claimed under (a valid key on a guarded
      route), else None;
    - `charge(scope, headers)`: the limiter's count for this request, not counted yet (None: exempt;
      a refusal: the limiter's shield refused it without asking the store);
    - `wrap(scope, receive, send, app, charge, key)`: count and claim in one store step, then replay,
      refuse or run `app` once, as idempotency does.

    They are the stages' own methods, bound once, so no forwarding frame of this class runs: three
    calls fewer for every claimed request (see benchmarks/README.md, issue 25).

    Two steps the gateway awaits in turn, not one coroutine around both: a request waiting for
    Redis then keeps one frame fewer alive, and at 50 requests in flight that frame alone pushed
    a replay over the collector's threshold twice as often (measured: 40 young collections per
    1,000 replays instead of 21, +2.3 % instructions; see benchmarks/README.md)."""

    def __init__(self, limiter: RateLimiter, idempotency: Idempotency, store: CountsAndClaims) -> None:
        self.methods = idempotency.methods  # (the gateway asks `claimed_key` only for these)

        self.claimed_key: _ClaimedKey = idempotency.claimed_key
        # (the store bound by position: a keyword would build a dict on every call, which cost more than the frame)
        self.charge: _Charge = functools.partial(limiter.defer, store)
        self.wrap: _Wrap = idempotency.wrap


def one_trip(limiter: RateLimiter | None, idempotency: Idempotency | None) -> OneTrip | None:
    """The one-step stage, when the limiter and idempotency share a store that counts and claims at once."""
    if limiter is None or idempotency is None:
        return None

    store = idempotency.records
    shared = cast(object, limiter.counters) is store
    if not shared or not isinstance(store, CountsAndClaims):
        return None
    return OneTrip(limiter, idempotency, store)
