from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Record:
    """Something to publish."""

    topic: str
    key: str
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """Something consumed: a record plus where it sits in its topic."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: Mapping[str, str]


class BusConsumer(Protocol):
    """A member of a consumer group. Offsets are committed only when the caller says so."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Message]:
        """Next messages in order within each partition; empty after the timeout."""
        ...

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Record (topic, partition) -> next offset to read, for the group."""
        ...

    async def lag(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> records this member holds and has not yet read."""
        ...

    async def sizes(self, topics: Sequence[str]) -> dict[str, int]:
        """Records held in each of ``topics`` (any topics, not only the subscribed)."""
        ...

    async def caught_up(self) -> bool:
        """Whether this member holds every partition of its topics and has read each to the
        end the broker gives now."""
        ...


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, records: Sequence[Record]) -> None:
        """Return only once every record is durably stored, in order per key."""
        ...

    async def send(self, records: Sequence[Record]) -> asyncio.Future[None]:
        """Hand the records over in order, behind everything handed over before, and return
        without waiting for them to be stored: the future resolves once every one of them is
        durably stored, or fails with the first error. A record whose key's earlier record
        failed is not stored after it (Kafka: the idempotent producer's sequence gap refuses
        the partition's later batches; embedded: stored before ``send`` returns), so the
        caller's retry, in the same order, keeps each key's first copies in order.
        ``publish`` is ``await (await send(records))``."""
        ...

    def consumer(self, group: str, topics: Sequence[str]) -> BusConsumer: ...

    async def ensure_topics(self, topics: Sequence[str]) -> None: ...

    async def ping(self) -> None:
        """Raise if the bus cannot be reached."""
        ...


def next_offsets(messages: Sequence[Message]) -> dict[tuple[str, int], int]:
    """The commit position after handling ``messages``: last offset + 1 per partition."""
    positions: dict[tuple[str, int], int] = {}
    for message in messages:
        tp = (message.topic, message.partition)
        positions[tp] = max(positions.get(tp, 0), message.offset + 1)
    return positions


async def batches_to_end(consumer: BusConsumer, max_records: int, poll_ms: int = 500) -> AsyncIterator[list[Message]]:
    """The consumer's batches until it has read its topics to their end. Not until a quiet
    spell: on a busy machine a group's join or a fetch can be slower than any such spell, and
    a replay that ended there would miss events (the fault test's replay once did)."""
    while True:
        if batch := await consumer.getmany(timeout_ms=poll_ms, max_records=max_records):
            yield batch
        elif await consumer.caught_up():
            return
