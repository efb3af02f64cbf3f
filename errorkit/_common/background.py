"""Work errorkit starts that no request waits for: giving back a quota unit or a slot, releasing an
idempotency key, compensating a command whose connection was dropped before it answered.

Each `Background` keeps its tasks referenced until they are done. Every one of them is known
here, so the gateway can finish them when the server shuts down (`finish()`, called as the
app's lifespan ends): a closing event loop cancels what is still running, and a give-back
cancelled there would leave its unit held until its lease ran out.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from errorkit._common.exceptions import StoreDataLost, StoreError

logger = logging.getLogger("errorkit.store")
_EVERY: weakref.WeakSet[Background] = weakref.WeakSet()


class Background:
    """Tasks a stage or a store starts and nobody awaits, kept referenced until done; and the
    requests settling what they took right now (`settling`), which a shutdown waits for too."""

    __slots__ = ("__weakref__", "settling", "tasks")

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.settling: set[asyncio.Task[Any]] = set()
        _EVERY.add(self)

    def spawn(self, step: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(step)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def unfinished(loop: asyncio.AbstractEventLoop) -> set[asyncio.Task[Any]]:
    """Every background task of `loop` still running, and every request of it settling."""
    found: set[asyncio.Task[Any]] = set()
    for background in list(_EVERY):
        found.update(task for task in background.tasks if task.get_loop() is loop)
        found.update(task for task in background.settling if task.get_loop() is loop)
    return found


async def finish(timeout: float) -> int:
    """Wait up to `timeout` seconds for every background task of this event loop and every request
    settling, including the tasks those start (a give-back tried again); returns how many still run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    running = unfinished(loop)
    while running and loop.time() < deadline:
        await asyncio.wait(running, timeout=deadline - loop.time())
        running = unfinished(loop)
    return len(running)


async def keep_trying(step: Callable[[], Awaitable[object]], within: float, what: str) -> None:
    """Run a step that may safely run twice (a give-back by token, a confirmation by token) until the
    store takes it, for at most `within` seconds: 50 ms between tries, doubling up to 1 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = 0.05
    while True:
        try:
            await step()
            return
        except StoreDataLost:
            return  # nothing left to give back or to count: the store lost it (its own 503s say so)
        except StoreError as exc:
            if loop.time() + pause > deadline:
                logger.warning("gave up on %s after %.0f s (%s)", what, within, exc)
                return
        await asyncio.sleep(pause)
        pause = min(1.0, pause * 2)
