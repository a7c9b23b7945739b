"""shared/deadlines.within: a deadline that holds when the work ignores cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.deadlines import WorkCancelled, asked_to_stop, within


async def _deaf(released: asyncio.Event) -> None:
    # Swallows cancellation until released, as aiokafka's consumer stop did with its
    # coordinator dead (the broker-outage fault test hung for good on it).
    while not released.is_set():
        try:
            await released.wait()
        except asyncio.CancelledError:
            continue


async def test_work_that_ignores_cancellation_is_left_behind_at_the_deadline() -> None:
    released = asyncio.Event()
    work = asyncio.ensure_future(_deaf(released))
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(work, 0.2)
    # asyncio.wait_for would still be waiting here; the margin is wide for a busy machine.
    assert time.monotonic() - began < 5
    assert not work.done(), "left behind, still running"
    released.set()
    await asyncio.wait([work], timeout=5)
    assert work.done()


async def test_a_result_in_time_is_returned_and_an_error_raised() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fail() -> None:
        raise ValueError("boom")

    assert await within(answer(), 5) == 42
    with pytest.raises(ValueError, match="boom"):
        await within(fail(), 5)


async def test_cancelling_the_caller_cancels_the_work() -> None:
    started = asyncio.Event()

    async def long() -> None:
        started.set()
        await asyncio.sleep(3600)

    work = asyncio.ensure_future(long())
    caller = asyncio.ensure_future(within(work, 3600))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.wait([work], timeout=5)
    assert work.cancelled()


async def test_work_cancelled_from_inside_is_a_failure_not_a_stop_of_the_caller() -> None:
    async def cancels_itself() -> None:
        raise asyncio.CancelledError  # as aiokafka's stop re-raises its coordinator task's

    with pytest.raises(WorkCancelled):
        await within(cancels_itself(), 5)
    assert not asked_to_stop()
