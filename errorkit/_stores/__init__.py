"""Stores: the storage protocols, the in-memory store and the Redis store, and the one rule that
picks a store from the environment.

`backend_from_env()` reads `REDIS_URL` (or the variable it is given):

| value | store |
|---|---|
| a Redis URL (`redis://`, `rediss://`, `unix://`, `redis+sentinel://`, `redis+cluster://`...) | `RedisBackend` |
| `memory://` | `MemoryBackend`, chosen: nothing is logged |
| unset, empty or blank | `MemoryBackend`, with a WARNING on `errorkit.store` saying what that costs |
| anything else | `ConfigurationError` naming the variable, the value (redacted) and the nearest scheme |

Memory without the variable keeps a first run working; the warning is there because a
deployment with several workers that forgot the variable would otherwise limit and
deduplicate per process, and nothing would say so.
"""

from __future__ import annotations

import difflib
import logging
import os
import re

from errorkit._common.exceptions import ConfigurationError
from errorkit._observe.log_context import log_extra
from errorkit._stores.memory import MemoryBackend
from errorkit._stores.protocols import Backend
from errorkit._stores.redis.backend import RedisBackend
from errorkit._stores.redis.urls import SCHEMES, URLError, parse_url, redact

logger = logging.getLogger("errorkit.store")

#: The value that chooses the in-memory store on purpose.
MEMORY_URL = "memory://"
_ACCEPTED = ", ".join(f"{scheme}://" for scheme in ("memory", *SCHEMES))
_SCHEME_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_NO_STORE = (
    "{variable} is {state}: errorkit keeps rate limits, idempotency records, quotas, concurrency slots and "
    "API keys in this process's memory; each worker counts alone and they are lost on restart. Set "
    "{variable}=redis://... for a shared store, or {variable}={memory} to choose memory and silence this warning."
)


def backend_from_env(variable: str = "REDIS_URL") -> Backend:
    """The store `variable` names: `RedisBackend` for a Redis URL, `MemoryBackend` for `memory://`,
    or, unset, `MemoryBackend` with a WARNING; a `ConfigurationError` for anything else."""
    value = os.environ.get(variable)
    if value is None or not value.strip():
        state = "not set" if value is None else "empty"
        logger.warning(_NO_STORE.format(variable=variable, state=state, memory=MEMORY_URL), extra=log_extra())
        return MemoryBackend()

    url = redis_url_of(variable, value)
    return MemoryBackend() if url is None else RedisBackend(url)


def redis_url_of(name: str, value: str) -> str | None:
    """The Redis URL `value` (from `name`, not empty) names, blanks around it removed, or None for
    `memory://`; anything else is a `ConfigurationError` naming `name` and the value, redacted.

    (A Redis URL is parsed here and again by `RedisBackend`: twice at start-up, never per request.)
    """
    text = value.strip()
    if text.lower() == MEMORY_URL:
        return None

    shown = repr(redact(text))
    scheme, sep, _ = text.partition("://")
    if not sep:
        nearest = _nearest_scheme(text)
        raise ConfigurationError(
            f"{name}={shown} is not a URL (no '://'): did you mean {nearest}://? errorkit accepts {_ACCEPTED}"
        )
    if scheme.lower() == "memory":
        raise ConfigurationError(f"{name}={shown}: the in-memory store is {MEMORY_URL} exactly, with nothing after it")
    if scheme.lower() not in SCHEMES:
        nearest = _nearest_scheme(scheme)
        raise ConfigurationError(
            f"{name}={shown}: unknown scheme {scheme!r}: did you mean {nearest}://? errorkit accepts {_ACCEPTED}"
        )

    try:
        parse_url(text)
    except URLError as exc:
        raise ConfigurationError(f"{name}={shown}: {exc.problem}") from None
    return text


def _nearest_scheme(text: str) -> str:
    """The accepted scheme closest to what `text` starts with (`redis` when none is close: most URLs are)."""
    start = _SCHEME_LIKE.match(text)
    written = start.group().lower() if start else ""
    close = difflib.get_close_matches(written, ["memory", *SCHEMES], n=1, cutoff=0.6)
    return close[0] if close else "redis"


__all__ = ["MEMORY_URL", "backend_from_env", "redis_url_of"]
