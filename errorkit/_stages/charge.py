"""A rate-limit charge that the stage after the limiter makes in its own store step.

When a request will be claimed for idempotency on a store that counts and claims in one step
(`CountsAndClaims`), the limiter does not count it on its own: it hands a `Charge` to the
idempotency stage, whose claim counts and claims in one atomic script, so the request costs
one Redis command instead of two. A request the limit refuses claims nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from errorkit._common.exceptions import StoreUnavailable
from errorkit._common.refusal import Refusal
from errorkit._stores.protocols import Claim, ClaimRequest, Counted, CounterAlgorithm


class Charge(Protocol):
    """What to count (the limiter's algorithm, identity, buckets, arguments and cost), and how to judge it."""

    algorithm: CounterAlgorithm
    identity: str
    buckets: Sequence[str]
    args: Sequence[int]
    cost: int

    def count_and_claim(self, claim: ClaimRequest) -> Awaitable[tuple[Counted, Claim | None]]:
        """Count, and make `claim` only if admitted, in one store step (None: refused, nothing claimed)."""
        ...

    def settle(self, counted: Counted) -> Refusal | None:
        """The limiter's verdict on the store's count (adds its headers to the response)."""
        ...

    def failed(self, error: StoreUnavailable) -> Refusal | None:
        """The limiter's failure policy, when the combined step could not run."""
        ...

    async def count(self) -> Refusal | None:
        """Count on its own after all (the request will not be claimed)."""
        ...
