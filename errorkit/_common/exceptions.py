"""Everything errorkit raises, under one root.

```
ErrorkitError                  the root: `except errorkit.ErrorkitError` catches all of them
├── APIError                   an error of the API's catalog: raised by apps, rendered by the kit
│                              (errorkit._errors.errors; one subclass per code, made by `define()`)
├── Refused                    a stage's refusal raised inside a route (e.g. `auth.require()`);
│                              the kit renders it as the app's registry error
├── ConfigurationError         a stage or the kit configured with something the app cannot have
│                              meant (a route key naming no route, "5/minut"): raised at
│                              construction or at start-up                   (also a ValueError)
├── DefinitionError            a mistake in declaring or raising errors: a bug in the app
│   ├── DuplicateCode          a code declared twice, differently           (also a ValueError)
│   ├── UnknownCode            `kit.error(code)` with a code nobody declared (also a LookupError)
│   └── InvalidDetails         details that do not match the code's schema  (also a TypeError)
└── StoreError                 a store could not do what a stage asked
    ├── StoreUnavailable       unreachable, too slow, or it says it cannot serve now (Redis OOM,
    │   │                      READONLY, LOADING, BUSY, ...): the stage's failure policy applies
    │   └── StoreDataLost      it answers, but has lost errorkit's data (restarted empty, flushed,
    │                          evicted): answered as unavailable, logged as an error
    └── RedisError             Redis refused the command for good (NOPERM, WRONGTYPE, ...): a
                               misconfiguration, answered as a 500 and logged
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from errorkit._common.refusal import Refusal


class ErrorkitError(Exception):
    """The root of every exception errorkit defines."""


class Refused(ErrorkitError):
    """A stage's `Refusal` raised from inside a route; the kit turns it into the registry error."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.codes[0] if refusal.codes else str(refusal.status))
        self.refusal = refusal


class ConfigurationError(ErrorkitError, ValueError):
    """A configuration errorkit refuses: the message names the option, the stage and the nearest
    correct value. Raised by a constructor, or when the app starts (its routes are known then)."""


class DefinitionError(ErrorkitError):
    """Errors were declared or raised wrongly (a bug in the application, found by its tests)."""


class DuplicateCode(DefinitionError, ValueError):
    """A code was declared twice with different definitions."""


class UnknownCode(DefinitionError, LookupError):
    """`kit.error(code)` was given a code the registry does not hold."""


class InvalidDetails(DefinitionError, TypeError):
    """Details given to an error do not match its declared schema (a bug in the app: a 500)."""

    def __init__(self, code: str, error: ValidationError) -> None:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(details)'}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        super().__init__(f"invalid details for error {code!r}: {problems}")
        self.code = code


class StoreError(ErrorkitError):
    """A store (Redis, memory) could not perform a step."""


class StoreUnavailable(StoreError, ConnectionError):
    """The store cannot answer now (down, slow, out of memory, read-only, loading).

    Stages answer it with their failure policy (fail open or closed), never with a 500.
    """


class StoreDataLost(StoreUnavailable):
    """The store answers, but the data errorkit keeps in it is gone (its dataset marker is missing).

    A Redis restarted without persistence, flushed, or evicting errorkit's keys would
    otherwise make every valid API key look unknown (401) and let repeated requests run
    again. Stages answer it like any unavailability (503 naming the store); the failure
    policy logs it as an error. It lasts until the data is back (restored, or the keys
    registered again) or `initialize()` adopts the emptied store.

    `counted`: when a rate-limit count and a claim went in one step, the count the store did
    make (its headers and its refusal still stand); None otherwise.
    """

    counted: object | None = None


class RedisError(StoreError):
    """Redis answered with an error reply that retrying will not fix (a bug or a misconfiguration)."""
