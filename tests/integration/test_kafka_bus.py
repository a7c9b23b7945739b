"""The Kafka bus's producer after a failed batch (found by the broker-outage fault test)."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import OutOfOrderSequenceNumber

from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.messaging import read_to_end
from tests.infra import new_topic_prefix

pytestmark = pytest.mark.integration


async def test_a_producer_left_with_a_sequence_gap_is_replaced_and_publishing_resumes(
    servers: tuple[str, str],
) -> None:
    kafka, _ = servers
    topic = new_topic_prefix() + "loans.events"
    bus = KafkaBus(kafka, client_id="test-sequence-gap", partitions=1)
    await bus.ensure_topics([topic])
    await bus.start()
    try:
        await bus.publish([Record(topic, "v", b"first")])
        # What a batch that expired while the broker was away leaves behind: the producer's
        # next sequence number is ahead of what the broker stored. Before the fix every later
        # publish was refused like the next one, until the process restarted.
        bus.producer._txn_manager.increment_sequence_number(TopicPartition(topic, 0), 3)
        with pytest.raises(OutOfOrderSequenceNumber):
            await bus.publish([Record(topic, "v", b"refused")])
        await bus.publish([Record(topic, "v", b"retried")])
        await bus.publish([Record(topic, "v", b"next")])
        stored = await read_to_end(bus, f"{topic}-reader", [topic], idle_ms=2000)
    finally:
        await bus.stop()
    assert [m.value for m in stored] == [b"first", b"retried", b"next"]
