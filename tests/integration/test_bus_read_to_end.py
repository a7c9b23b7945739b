"""A reader that replays a topic (risk's rebuild, the fault tests' fresh replay) reads it to
the end the broker gives, however slowly the group forms or the fetches come: it does not
stop at the first quiet spell, as it did when a busy machine made the fault test's replay of
scoring miss six households."""

from __future__ import annotations

import uuid

import pytest

from shared.bus.base import Message, Record, batches_to_end
from tests.support.infra import Infra

pytestmark = pytest.mark.integration


async def _read(infra: Infra, topics: list[str]) -> list[Message]:
    bus = infra.bus()
    reader = bus.consumer(f"{infra.topic_prefix}reader-{uuid.uuid4()}", topics)
    await reader.start()
    try:
        # No wait at all between fetches: a reader that ended on an empty fetch would end
        # before Kafka's group has even assigned it a partition.
        return [m async for batch in batches_to_end(reader, max_records=7, poll_ms=0) for m in batch]
    finally:
        await reader.stop()


async def test_every_record_is_read_with_no_quiet_spell_allowed(infra: Infra) -> None:
    topic, empty = infra.topic_prefix + "registry.events", infra.topic_prefix + "scoring.events"
    bus = infra.bus()
    await bus.ensure_topics([topic, empty])
    await bus.start()
    try:
        await bus.publish([Record(topic, f"village-{i % 5}", str(i).encode()) for i in range(300)])
        got = await _read(infra, [topic, empty])
    finally:
        await bus.stop()
    assert sorted(int(m.value) for m in got) == list(range(300))
    # Per key, in the order published (the partitions' order).
    for k in range(5):
        assert [int(m.value) for m in got if m.key == f"village-{k}"] == list(range(k, 300, 5))


async def test_topics_with_nothing_on_them_end_the_read_at_once(infra: Infra) -> None:
    topic = infra.topic_prefix + "notify.events"
    bus = infra.bus()
    await bus.ensure_topics([topic])
    await bus.start()
    try:
        assert await _read(infra, [topic]) == []
    finally:
        await bus.stop()
