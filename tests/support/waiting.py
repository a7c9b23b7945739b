"""Polling for a condition the system reaches asynchronously (a consumer catching up, a
relay publishing, a server answering), with a deadline that fails the test by name."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def wait_until(check: Callable[[], Awaitable[bool]], seconds: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.05)


async def until_a_session_waits_on_a_lock(sessions: async_sessionmaker[AsyncSession], what: str) -> None:
    """Until some session of this PostgreSQL database waits on a lock (a row lock the test's
    open transaction holds): the race the test stages has begun."""

    async def waiting() -> bool:
        async with sessions() as reader:
            found = await reader.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            )
        return bool(found)

    await wait_until(waiting, what=what)
