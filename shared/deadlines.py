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
    return task.result()
