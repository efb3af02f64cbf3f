"""Rate-limit algorithms: each one object with its Lua script, its Python twin and its arithmetic.

- `GCRA` (default): the generic cell rate algorithm. A limit of L per P seconds allows a
  burst of L, then one request every P/L seconds; state is one timestamp (the theoretical
  arrival time) per limit; decisions are exact.
- `FixedWindow`: at most L per calendar window of P seconds, windows aligned to the epoch;
  bursts of 2L can straddle a window edge.

A store runs `lua` (Redis) or `step` (memory) and hands back the state values; the limiter
asks the algorithm what they mean: how many requests remain, when the quota is whole
again, how long a refused request must wait.

A negative limit in `args` is a shadow limit of that size: it never refuses; it is charged
only when it would have admitted, as if enforced, and the step reports each one that would
have refused (bit `i` of `shadowed` for limit `i`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources
from typing import Protocol

from errorkit._stores.protocols import Cells


def _lua(name: str) -> str:
    return resources.files("errorkit._stages").joinpath(name).read_text(encoding="utf-8")


class Algorithm(Protocol):
    """A counter algorithm (see `CounterAlgorithm`) plus what its state values mean."""

    name: str
    lua: str

    def step(
        self, cells: Cells, keys: Sequence[str], args: Sequence[int], cost: int, now_us: int
    ) -> tuple[bool, int, list[int]]: ...

    def remaining(self, limit: int, period_us: int, value: int, now_us: int) -> tuple[int, int]:
        """After an admitted request: (requests left now, when the quota is whole again, in µs)."""
        ...

    def wait(self, limit: int, period_us: int, value: int, now_us: int, cost: int) -> int:
        """After a refusal: microseconds until `cost` more units fit (0 if they fit now)."""
        ...


class GCRA:
    """The generic cell rate algorithm; the state value is the theoretical arrival time (µs)."""

    name = "gcra"
    lua = _lua("gcra.lua")

    def step(
        self, cells: Cells, keys: Sequence[str], args: Sequence[int], cost: int, now_us: int
    ) -> tuple[bool, int, list[int]]:
        admitted = True
        shadowed = 0
        old: list[int] = []
        new: list[int] = []

        for i, key in enumerate(keys):
            period, limit = args[2 * i], args[2 * i + 1]
            tat = max(cells.get(key, now_us) or now_us, now_us)
            new.append(math.ceil(tat + cost * period / abs(limit)))
            if new[i] - period > now_us:
                if limit > 0:
                    admitted = False
                else:
                    shadowed |= 1 << i
            old.append(tat)

        if not admitted:
            return False, shadowed, old

        for i, key in enumerate(keys):
            if not shadowed >> i & 1:
                cells.set(key, new[i], new[i])
                old[i] = new[i]
        return True, shadowed, old

    def remaining(self, limit: int, period_us: int, value: int, now_us: int) -> tuple[int, int]:
        interval = period_us / limit
        # the step rounds each arrival time up to the microsecond: allow for that drift
        used = math.ceil((value - now_us) / interval - 0.01)
        return max(0, limit - used), value

    def wait(self, limit: int, period_us: int, value: int, now_us: int, cost: int) -> int:
        return max(0, math.ceil(value + cost * period_us / limit - period_us - now_us))


class FixedWindow:
    """Counts per calendar window; the state value is the count in the current window."""

    name = "fixed"
    lua = _lua("fixed_window.lua")

    def step(
        self, cells: Cells, keys: Sequence[str], args: Sequence[int], cost: int, now_us: int
    ) -> tuple[bool, int, list[int]]:
        admitted = True
        shadowed = 0
        windows: list[int] = []
        counts: list[int] = []

        for i, key in enumerate(keys):
            period, limit = args[2 * i], args[2 * i + 1]
            windows.append(now_us // period)
            state = cells.get(key, now_us)
            count = state[1] if state is not None and state[0] == windows[i] else 0
            if count + cost > abs(limit):
                if limit > 0:
                    admitted = False
                else:
                    shadowed |= 1 << i
            counts.append(count)

        if not admitted:
            return False, shadowed, counts

        for i, key in enumerate(keys):
            if not shadowed >> i & 1:
                counts[i] += cost
                cells.set(key, (windows[i], counts[i]), (windows[i] + 1) * args[2 * i])
        return True, shadowed, counts

    def remaining(self, limit: int, period_us: int, value: int, now_us: int) -> tuple[int, int]:
        return max(0, limit - value), (now_us // period_us + 1) * period_us

    def wait(self, limit: int, period_us: int, value: int, now_us: int, cost: int) -> int:
        if value + cost <= limit:
            return 0
        return (now_us // period_us + 1) * period_us - now_us


#: Algorithms by the name `RateLimiter(algorithm=...)` takes.
ALGORITHMS: dict[str, Algorithm] = {"gcra": GCRA(), "fixed": FixedWindow()}
