"""Unique strings without a system call each: a random prefix per process and a counter.

Request ids and the owner tokens naming who holds a claim, a slot or a quota unit must differ
between all the processes sharing a store or a log; they are not secrets and are predictable
(never accept one from a client). `secrets.token_hex(8)` reads the kernel's random source on
every call (a system call: 0.77 µs against 0.23 µs for a prefix and a counter, `python -m
timeit`; the instructions in the process are the same). Tokens and request ids have prefixes
and counters of their own, so the ids a client sees tell nothing of the tokens.

The prefixes and the counters' starts are drawn again in a child made by `os.fork()` (a server
that imports the app, then forks its workers, would otherwise give every worker the same
sequences). A copy of a process made another way (a snapshot restored several times) keeps
its sequences: such a platform must start its workers anew.
"""

from __future__ import annotations

import itertools
import os
import secrets

_MASK = 0xFFFF_FFFF


def unique_token() -> str:
    """16 hex characters: the process's 8 for tokens, then the low 32 bits of their counter."""
    return _TOKEN_PREFIX + (next(_TOKENS) & _MASK).to_bytes(4, "big").hex()


def unique_id() -> str:
    """32 hex characters: the process's 16 for ids, then their counter (request ids)."""
    return _ID_PREFIX + next(_IDS).to_bytes(8, "big").hex()  # (2.4k instructions; f"{n:016x}" took 3.6k)


def _draw() -> None:
    global _ID_PREFIX, _IDS, _TOKEN_PREFIX, _TOKENS
    _ID_PREFIX = secrets.token_hex(8)
    _IDS = itertools.count(int.from_bytes(secrets.token_bytes(4), "big"))
    _TOKEN_PREFIX = secrets.token_hex(4)
    _TOKENS = itertools.count(int.from_bytes(secrets.token_bytes(4), "big"))


_ID_PREFIX = _TOKEN_PREFIX = ""
_IDS = _TOKENS = itertools.count()
_draw()
if hasattr(os, "register_at_fork"):  # (not on Windows, which does not fork)
    os.register_at_fork(after_in_child=_draw)
