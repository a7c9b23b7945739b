"""The Kafka bus: its producer after a failed batch (found by the broker-outage fault test),
the topics it creates, and what it tells /metrics."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import OutOfOrderSequenceNumber

from shared.bus.base import Record
from shared.bus.kafka import KafkaBus, TopicCreationError, create_topics
from shared.messaging import read_to_end
from vcredit.infra import new_topic_prefix

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


async def test_topics_it_creates_keep_events_forever_and_dead_letters_30_days(servers: tuple[str, str]) -> None:
    kafka, _ = servers
    topic = new_topic_prefix() + "risk.events"
    bus = KafkaBus(kafka, client_id="test-topic-config", partitions=3)
    await bus.ensure_topics([topic, topic + ".dlq"])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in (topic, topic + ".dlq")]
        )
        partitions = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics([topic, topic + ".dlq"])}
    finally:
        await admin.close()
    retention = {
        resource[3]: {c[0]: c[1] for c in resource[4]}["retention.ms"]
        for response in described
        for resource in response.resources
    }
    assert retention == {topic: "-1", topic + ".dlq": "2592000000"}
    assert partitions == {topic: 3, topic + ".dlq": 1}


async def test_a_topic_the_cluster_refuses_is_an_error_not_left_for_the_producer_to_auto_create(
    servers: tuple[str, str],
) -> None:
    kafka, _ = servers
    topic = new_topic_prefix() + "loans.events"
    # Three replicas asked of the single test broker. aiokafka returns the refusal instead of
    # raising it: before, nothing was created and nothing said so, and the first publish
    # auto-created the topic with the broker's defaults (one replica, 7 days' retention).
    bus = KafkaBus(kafka, client_id="test-refused-topic", partitions=1, replication_factor=3)
    with pytest.raises(TopicCreationError, match=r"InvalidReplicationFactorError.*replication factor of 3"):
        await bus.ensure_topics([topic])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=10_000)
    await admin.start()
    try:
        assert topic not in await admin.list_topics()
        # One that exists already (another process made it meanwhile) is no refusal.
        assert await create_topics(admin, [NewTopic(topic, 1, 1)]) == [topic]
        assert await create_topics(admin, [NewTopic(topic, 1, 1)]) == []
    finally:
        await admin.close()


async def test_lag_and_topic_sizes(servers: tuple[str, str]) -> None:
    kafka, _ = servers
    topic = new_topic_prefix() + "scoring.events"
    # One partition: a member knows a partition's end only once a fetch of it came back.
    bus = KafkaBus(kafka, client_id="test-lag", partitions=1)
    await bus.ensure_topics([topic, topic + ".dlq"])
    await bus.start()
    consumer = bus.consumer(f"{topic}-group", [topic])
    try:
        await bus.publish([Record(topic, f"k{i}", b"x") for i in range(10)])
        await bus.publish([Record(topic + ".dlq", "k", b"parked")])
        await consumer.start()
        read = await consumer.getmany(timeout_ms=5000, max_records=4)
        assert read
        lag = await consumer.lag()
        assert lag == {(topic, 0): 10 - len(read)}
        assert await consumer.sizes([topic, topic + ".dlq", topic + ".nothing"]) == {
            topic: 10,
            topic + ".dlq": 1,
            topic + ".nothing": 0,
        }
    finally:
        await consumer.stop()
        await bus.stop()
