"""The consumer runner replaces a failed group member even when the old member's ``stop``
never returns: in the broker-outage fault test, risk's and notify's members failed an offset
commit while the broker was down, and their loop waited for good on aiokafka's stop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from shared.bus.base import Message
from shared.messaging import consumer as consumer_module
from shared.messaging.consumer import Consumer


class _Member:
    def __init__(self, number: int, released: asyncio.Event, failure: BaseException) -> None:
        self.number = number
        self.released = released
        self.failure = failure
        self.fetched = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if isinstance(self.failure, asyncio.CancelledError):
            raise asyncio.CancelledError  # cancelled from inside, as aiokafka's close can be
        while not self.released.is_set():  # deaf to cancellation, like the stuck aiokafka stop
            try:
                await self.released.wait()
            except asyncio.CancelledError:
                continue

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Message]:
        if self.number == 1:
            raise self.failure
        self.fetched.set()
        await asyncio.sleep(timeout_ms / 1000)
        return []

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        return None

    async def lag(self) -> dict[tuple[str, int], int]:
        return {}

    async def sizes(self, topics: Sequence[str]) -> dict[str, int]:
        return dict.fromkeys(topics, 0)


class _Bus:
    def __init__(self, failure: BaseException) -> None:
        self.released = asyncio.Event()
        self.failure = failure
        self.members: list[_Member] = []

    def consumer(self, group: str, topics: Sequence[str]) -> _Member:
        member = _Member(len(self.members) + 1, self.released, self.failure)
        self.members.append(member)
        return member


async def _handler(session: Any, envelope: Any) -> None:
    return None


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionError("the group coordinator is dead"),
        # aiokafka re-raises its own tasks' cancellation out of getmany and stop: nobody asked
        # the consumer to stop, so it must reconnect, not end (it ended, silently, before).
        asyncio.CancelledError(),
    ],
    ids=["error", "stray-cancellation"],
)
async def test_a_failed_member_whose_stop_never_returns_is_abandoned_and_replaced(
    failure: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "STOP_MEMBER_SECONDS", 0.2)
    bus = _Bus(failure)
    runner = Consumer("probe", None, bus, {"registry.household.registered": _handler})  # type: ignore[arg-type]
    running = asyncio.create_task(runner.run())
    try:

        async def replaced() -> bool:
            return len(bus.members) >= 2 and bus.members[1].fetched.is_set()

        deadline = asyncio.get_running_loop().time() + 30  # the loop needs under 1 s; wide for CI
        while not await replaced():
            assert not running.done(), running
            assert asyncio.get_running_loop().time() < deadline, "the failed member was never replaced"
            await asyncio.sleep(0.05)
    finally:
        bus.released.set()
        running.cancel()
        await asyncio.wait([running], timeout=10)
