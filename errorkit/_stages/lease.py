"""Holding something leased while a request runs: renewal, and settling what a request took
(giving it back, or confirming it) whatever way the request ends.

Every settling step can safely run twice (it names what it settles by token), so one the store
failed, or whose outcome is unknown, is simply sent again in the background. A cancelled
request *awaits* its give-back before the cancellation goes on: a graceful shutdown cancels
the requests still running, then closes the event loop, and a give-back merely spawned there
would never run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from errorkit._common.background import Background, keep_trying
from errorkit._common.exceptions import StoreDataLost, StoreError
from errorkit._observe.log_context import log_extra

T = TypeVar("T")
logger = logging.getLogger("errorkit.store")

#: How long a give-back the store failed is tried again (seconds): what it gives back is leased,
#: so after that it has lapsed by itself anyway (a slot's lease, an idempotency claim's: 30 s).
GIVE_BACK_WITHIN = 60.0


async def renew_while_held(renew: Callable[[], Awaitable[bool]], interval: float) -> None:
    """Call `renew` every `interval` seconds until it says the lease is gone (or the task is cancelled).

    A store failure skips one renewal; the lease may then lapse, which is what leases are for."""
    while True:
        with contextlib.suppress(StoreError):
            if not await renew():
                return
        await asyncio.sleep(interval)


async def taken(
    step: Awaitable[T],
    took: Callable[[T], bool],
    background: Background,
    what: str,
    give_back: Callable[..., Awaitable[object]],
    *args: object,
) -> T:
    """Await a step that takes something by token (a quota unit, a slot); if the caller is cancelled
    after the store answered but before it resumed, and the step `took` it, give it back
    (`give_back(*args)`) before the cancellation goes on, so nothing is held for nobody.

    (A reply later than the caller's deadline is the store's `late` hook's to give back.)"""
    pending = asyncio.ensure_future(step)  # (a Future as it is; a coroutine, e.g. Cluster's routing, in a task)
    try:
        return await pending
    except asyncio.CancelledError:
        if pending.done() and not pending.cancelled() and pending.exception() is None and took(pending.result()):
            await settle(background, GIVE_BACK_WITHIN, what, give_back, *args)
        raise


async def settle(
    background: Background, within: float, what: str, step: Callable[..., Awaitable[object]], *args: object
) -> None:
    """Run a step that may safely run twice (a give-back, a confirmation: by token), `step(*args)`, and
    wait for it; if the store fails it, or this request is cancelled meanwhile, it goes on in
    `background`, tried again for up to `within` seconds. (Step and arguments apart: nothing is
    built for the retry unless it is needed.)

    A request being cancelled awaits this too: a graceful shutdown cancels the requests still
    running, waits for those still cleaning up (the gateway's lifespan), then closes the event
    loop, where a step merely spawned would never run."""
    try:
        await step(*args)
    except StoreDataLost as exc:
        logger.warning("could not finish %s: %s", what, exc, extra=log_extra())
    except StoreError:
        background.spawn(keep_trying(functools.partial(step, *args), within, what))
    except asyncio.CancelledError:
        background.spawn(keep_trying(functools.partial(step, *args), within, what))
        raise
