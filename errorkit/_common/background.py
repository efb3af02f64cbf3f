"""Work errorkit starts that no request waits for: giving back a quota unit or a slot, releasing an
idempotency key, compensating a command whose connection was dropped before it answered.

Each `Background` keeps its tasks referenced until they are done. Every one of them is known
here, so the gateway can finish them when the server shuts down (`finish()`, called as the
lifespan's shutdown arrives): a graceful shutdown cancels the requests still running, and the
server closes the event loop right after the lifespan; a give-back still running then, in a
background task or in a cancelled request's own clean-up, would leave its unit held until its
lease ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from errorkit._common.exceptions import StoreDataLost, StoreError, StoreUnavailable

logger = logging.getLogger("errorkit.store")
_EVERY: weakref.WeakSet[Background] = weakref.WeakSet()


class Background:
    """Tasks a stage or a store starts and nobody awaits, kept referenced until done."""

    __slots__ = ("__weakref__", "tasks")

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        _EVERY.add(self)

    def spawn(self, step: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(step)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def unfinished(loop: asyncio.AbstractEventLoop) -> set[asyncio.Task[Any]]:
    """Every background task of `loop` still running, and every task of it being cancelled (a
    request the server cancelled, still cleaning up: giving back what it took), but the caller."""
    found = {task for background in list(_EVERY) for task in background.tasks if task.get_loop() is loop}
    found.update(task for task in asyncio.all_tasks(loop) if task.cancelling() and not task.done())
    found.discard(asyncio.current_task(loop))
    return found


async def finish(timeout: float) -> int:
    """Wait up to `timeout` seconds for every background task of this event loop and every task
    being cancelled, including the tasks those start (a give-back tried again); returns how many
    still run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    running = unfinished(loop)
    while running and loop.time() < deadline:
        await asyncio.wait(running, timeout=deadline - loop.time())
        running = unfinished(loop)
    return len(running)


async def keep_trying(
    step: Callable[[], Awaitable[object]], within: float, what: str, *, again_after: float | None = None
) -> None:
    """Run a step that may safely run twice (a give-back by token, a confirmation by token) until the
    store takes it, for at most `within` seconds: 50 ms between tries, doubling up to 1 s, jittered.

    `again_after`: once taken, send it once more after that many seconds. A give-back for a
    command whose connection was dropped goes out on a new connection, and may reach Redis
    before the command it undoes (a stalled Redis reads both when it resumes); the second one
    comes after it. Only an outage is tried again: any other store error (a missing permission,
    a script Redis refuses) would fail the same way every time, so it is logged at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = 0.05

    while True:
        try:
            await step()
            break
        except StoreDataLost:
            return  # nothing left to give back or to count: the store lost it (its own 503s say so)
        except StoreUnavailable as exc:
            if loop.time() + pause > deadline:
                logger.warning("gave up on %s after %.0f s (%s)", what, within, exc)
                return
        except StoreError as exc:
            logger.error("could not finish %s: %s", what, exc)
            return
        await asyncio.sleep(pause * random.uniform(0.5, 1.0))
        pause = min(1.0, pause * 2)

    if again_after is not None:
        await asyncio.sleep(again_after)
        with contextlib.suppress(StoreError):
            await step()
