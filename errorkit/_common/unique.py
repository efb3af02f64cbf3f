"""Unique strings without a system call each: a random prefix per process and a counter.

Request ids and the tokens naming who holds a claim, a slot or a quota unit must differ
between all the processes sharing a store or a log; they need not be unguessable (a token
never leaves the server, a request id authorizes nothing). `secrets.token_hex(8)` reads the
kernel's random source on every call (a system call: 0.77 µs against 0.23 µs for a prefix and
a counter, `python -m timeit`; the instructions in the process are the same).

The prefix and the counter's start are drawn again in a forked child (a server that imports
the app, then forks its workers, would otherwise give every worker the same sequence).
"""

from __future__ import annotations

import itertools
import os
import secrets

_MASK = 0xFFFF_FFFF


def new_token() -> str:
    """16 hex characters: 8 of this process's prefix, then the counter's low 32 bits."""
    return _SHORT_PREFIX + (next(_COUNTER) & _MASK).to_bytes(4, "big").hex()


def new_long_token() -> str:
    """32 hex characters: 16 of this process's prefix, then the counter (request ids)."""
    return _PREFIX + next(_COUNTER).to_bytes(8, "big").hex()  # (2.4k instructions; f"{n:016x}" took 3.6k)


def _draw() -> None:
    global _PREFIX, _SHORT_PREFIX, _COUNTER
    _PREFIX = secrets.token_hex(8)
    _SHORT_PREFIX = _PREFIX[:8]
    _COUNTER = itertools.count(int.from_bytes(secrets.token_bytes(4), "big"))


_PREFIX = _SHORT_PREFIX = ""
_COUNTER = itertools.count()
_draw()
if hasattr(os, "register_at_fork"):  # (not on Windows, which does not fork)
    os.register_at_fork(after_in_child=_draw)
