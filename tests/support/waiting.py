"""Polling for a condition the system reaches asynchronously (a consumer catching up, a
relay publishing, a server answering), with a deadline that fails the test by name."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def wait_until(check: Callable[[], Awaitable[bool]], seconds: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.05)
