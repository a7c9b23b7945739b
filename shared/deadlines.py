"""Deadlines that hold even when the awaited work ignores cancellation.

``asyncio.wait_for`` cancels the work at its deadline and then *waits for the cancellation to
finish*: work that swallows ``CancelledError`` (aiokafka's consumer ``stop`` while its group
coordinator is dead did, in the broker-outage fault test) holds the caller for good, past the
deadline meant to free it. ``within`` cancels and leaves such work behind instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(work: Awaitable[T], seconds: float) -> T:
    """``work``'s result, or TimeoutError after ``seconds`` with the work cancelled and not
    waited for. Cancelling the caller cancels the work too."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait([task], timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        # Its eventual outcome is nobody's: retrieve it so asyncio does not log it as lost.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise TimeoutError(f"gave up after {seconds}s")
    if task.cancelled():
        # Cancelled from inside (aiokafka's stop re-raises the cancellation of its own tasks),
        # not by the caller: a failure of the work, which a CancelledError would disguise as a
        # request to stop the caller.
        raise WorkCancelled("the awaited work was cancelled from inside")
    return task.result()


class WorkCancelled(RuntimeError):
    """The awaited work ended cancelled although its caller was not."""


def asked_to_stop() -> bool:
    """Whether the current task has been asked to cancel: a CancelledError raised in it
    otherwise came from inside the work it awaited, and is a failure to handle, not a stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
