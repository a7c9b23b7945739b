"""Dead letters: the headers that say why and where from, listing and replaying them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from shared.bus.base import Bus, Message, Record, next_offsets
from shared.cloudevents import is_kafka_header as is_cloudevent_header
from shared.events import Envelope, dlq_topic_of
from shared.messaging.headers import (
    H_ATTEMPTS,
    H_CONSUMER,
    H_ERROR,
    H_EVENT_ID,
    H_EVENT_TYPE,
    H_ORIGINAL_OFFSET,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_TOPIC,
)
from shared.tracing import TRACE_HEADERS

# --- dead letters -------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    consumer: str
    error: str
    attempts: int
    event_type: str | None
    event_id: str | None
    message: Message


async def read_to_end(bus: Bus, group: str, topics: Sequence[str], *, idle_ms: int) -> list[Message]:
    """Read everything after the group's committed position until the topics go quiet."""
    consumer = bus.consumer(group, topics)
    await consumer.start()
    seen: list[Message] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms, max_records=500)
            if not batch:
                return seen
            seen.extend(batch)
    finally:
        await consumer.stop()


def _as_dead_letter(message: Message) -> DeadLetter:
    h = message.headers
    event_type, event_id = h.get(H_EVENT_TYPE), h.get(H_EVENT_ID)
    with contextlib.suppress(ValidationError):  # a malformed envelope is parked as it came
        envelope = Envelope.from_bytes(message.value)
        event_type, event_id = envelope.type, str(envelope.event_id)
    return DeadLetter(
        topic=h.get(H_ORIGINAL_TOPIC, ""),
        partition=int(h.get(H_ORIGINAL_PARTITION, "0")),
        offset=int(h.get(H_ORIGINAL_OFFSET, "-1")),
        consumer=h.get(H_CONSUMER, ""),
        error=h.get(H_ERROR, ""),
        attempts=int(h.get(H_ATTEMPTS, "0")),
        event_type=event_type,
        event_id=event_id,
        message=message,
    )


def _dlq_topics(topics: Sequence[str], topic_prefix: str) -> list[str]:
    return [topic_prefix + dlq_topic_of(t) for t in topics]


async def list_dead_letters(
    bus: Bus, consumer: str, topics: Sequence[str], *, topic_prefix: str = "", idle_ms: int = 3000
) -> list[DeadLetter]:
    """Every dead letter parked by ``consumer`` (replayed or not), oldest first."""
    group = f"{topic_prefix}vcredit-{consumer}-dlq-list-{uuid.uuid4()}"
    messages = await read_to_end(bus, group, _dlq_topics(topics, topic_prefix), idle_ms=idle_ms)
    letters = [_as_dead_letter(m) for m in messages]
    return [d for d in letters if d.consumer == consumer]


async def replay_dead_letters(
    bus: Bus, consumer: str, topics: Sequence[str], *, topic_prefix: str = "", idle_ms: int = 3000
) -> list[DeadLetter]:
    """Put ``consumer``'s dead letters not yet replayed back on their original topics.

    The replay group's committed offset remembers what was put back, so running it twice
    does not replay twice. Other consumers receive the event again and their inbox skips it.
    """
    group = f"{topic_prefix}vcredit-{consumer}-dlq-replay"
    reader = bus.consumer(group, _dlq_topics(topics, topic_prefix))
    await reader.start()
    replayed: list[DeadLetter] = []
    try:
        while batch := await reader.getmany(timeout_ms=idle_ms, max_records=500):
            letters = [d for d in map(_as_dead_letter, batch) if d.consumer == consumer]
            await bus.publish(
                [
                    Record(
                        topic=topic_prefix + d.topic,
                        key=d.message.key or "",
                        value=d.message.value,
                        # The trace headers too: the replayed event goes on in its trace; and
                        # its CloudEvent headers, so it is the same CloudEvent as before.
                        headers={
                            k: v
                            for k, v in d.message.headers.items()
                            if k in (H_EVENT_TYPE, H_EVENT_ID, *TRACE_HEADERS) or is_cloudevent_header(k)
                        }
                        | {"vcredit.replayed_from": d.message.topic},
                    )
                    for d in letters
                ]
            )
            # Commit only after the republish was acknowledged: a crash in between replays
            # again, which the inbox absorbs.
            await reader.commit(next_offsets(batch))
            replayed.extend(letters)
    finally:
        await reader.stop()
    return replayed
