"""Holding something leased while a request runs: renewal, giving back what a cancelled step took,
and the background tasks that give back or release without the request waiting for them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from errorkit._exceptions import StoreError

T = TypeVar("T")


async def renew_while_held(renew: Callable[[], Awaitable[bool]], interval: float) -> None:
    """Call `renew` every `interval` seconds until it says the lease is gone (or the task is cancelled).

    A store failure skips one renewal; the lease may then lapse, which is what leases are for."""
    while True:
        with contextlib.suppress(StoreError):
            if not await renew():
                return
        await asyncio.sleep(interval)


async def taken(step: Awaitable[T], give_back: Callable[[T], None]) -> T:
    """Await a step that takes something (a quota unit, a slot); if the caller is cancelled after the
    store answered but before it resumed, `give_back(result)` so nothing is held for nobody.

    (A reply later than the caller's deadline is the store's `late` hook's to give back.)"""
    pending = asyncio.ensure_future(step)  # (a Future as it is; a coroutine, e.g. Cluster's routing, in a task)
    try:
        return await pending
    except asyncio.CancelledError:
        if pending.done() and not pending.cancelled() and pending.exception() is None:
            give_back(pending.result())
        raise


class Background:
    """Tasks a stage starts and nobody awaits (a give-back, a release), kept referenced until done."""

    __slots__ = ("tasks",)

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, step: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(step)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
