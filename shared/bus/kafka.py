"""Kafka backend (aiokafka): idempotent producer with acks=all, one consumer group per
service, offsets committed by the caller after its database transaction commits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError, for_code

from shared.bus.base import Message, Record
from shared.deadlines import within

log = logging.getLogger(__name__)

# What a service gives a topic it finds missing, as deploy/k8s/topics.toml says
# (tests/unit/project/test_deploy.py holds them equal): without it the broker's default retention
# (7 days) would delete events, which are the system of record and replayed from offset 0.
EVENT_TOPIC_CONFIG = {"retention.ms": "-1", "cleanup.policy": "delete"}
# Dead letters are an operator's inbox: 30 days to look and replay.
DLQ_TOPIC_CONFIG = {"retention.ms": str(30 * 24 * 3600 * 1000), "cleanup.policy": "delete"}


class TopicCreationError(RuntimeError):
    """The cluster refused to create a topic (e.g. more replicas than it has brokers)."""


def capped_min_insync(replication_factor: int, wanted: int) -> int:
    """The ``min.insync.replicas`` a topic gets: ``wanted``, but never more than its replicas.

    With acks=all a write is acknowledged once this many replicas hold it, so the default of
    2 out of 3 survives the loss of any one broker without losing an acknowledged event. A
    topic asking for more in-sync replicas than it has could never be written to (every
    produce NOT_ENOUGH_REPLICAS): a single-broker setup's topics get 1."""
    return max(1, min(wanted, replication_factor))


async def create_topics(admin: AIOKafkaAdminClient, topics: Sequence[NewTopic]) -> list[str]:
    """Create ``topics``; the names the cluster created (not those that already existed).

    aiokafka returns the broker's per-topic errors instead of raising them: without this
    check a topic the cluster refused (three replicas asked of one broker) went unnoticed,
    and the first producer then auto-created it with the broker's defaults (7 days'
    retention, one replica)."""
    if not topics:
        return []
    response = await admin.create_topics(list(topics))
    created, refused = [], []
    # (topic, error_code[, error_message]): version 0 of the response has no message.
    for name, code, *message in response.topic_errors:
        if code == 0:
            created.append(name)
        elif for_code(code) is not TopicAlreadyExistsError:
            refused.append(f"{name}: {for_code(code).__name__}: {' '.join(map(str, message))}")
    if refused:
        raise TopicCreationError("Kafka refused to create topics: " + "; ".join(refused))
    return created


class KafkaBus:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "vcredit",
        partitions: int = 12,
        replication_factor: int = 1,
        min_insync_replicas: int = 2,
        request_timeout_ms: int = 30_000,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.min_insync_replicas = capped_min_insync(replication_factor, min_insync_replicas)
        # Every broker call is bounded (VCREDIT_KAFKA_REQUEST_TIMEOUT_MS); a dead broker
        # fails the call, which the relay and consumer retry, instead of hanging them.
        self.request_timeout_ms = request_timeout_ms
        self.session_timeout_ms = session_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._users = 0
        self._lock = asyncio.Lock()
        self._renew_producer = False

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            # Idempotence keeps per-partition order and drops broker-side duplicates of
            # retried batches; acks=all waits for every in-sync replica.
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            request_timeout_ms=self.request_timeout_ms,
        )

    async def start(self) -> None:
        async with self._lock:
            self._users += 1
            if self._producer is not None:
                return
            producer = self._new_producer()
            try:
                await producer.start()
            except BaseException:
                self._users -= 1
                await producer.stop()
                raise
            self._producer = producer

    async def stop(self) -> None:
        async with self._lock:
            self._users = max(0, self._users - 1)
            if self._users == 0 and self._producer is not None:
                producer, self._producer = self._producer, None
                await producer.stop()

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaBus not started")
        return self._producer

    async def publish(self, records: Sequence[Record]) -> None:
        await (await self.send(records))

    async def send(self, records: Sequence[Record]) -> asyncio.Future[None]:
        if self._renew_producer:
            await self._renew()
        producer = self.producer
        try:
            # send() only appends to the accumulator (in order); the returned futures resolve
            # once the broker has acknowledged, so awaiting them all means "durably stored".
            pending = [
                await producer.send(
                    record.topic,
                    value=record.value,
                    key=record.key.encode(),
                    headers=[(k, v.encode()) for k, v in record.headers.items()],
                )
                for record in records
            ]
        except KafkaError:
            self._renew_producer = True
            raise
        return asyncio.ensure_future(self._stored(pending))

    async def _stored(self, pending: Sequence[asyncio.Future[Any]]) -> None:
        results = await asyncio.gather(*pending, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                # A batch that failed (e.g. expired while the broker was away) leaves a gap in
                # the idempotent producer's sequence numbers, and the broker then refuses every
                # later batch of that partition with OutOfOrderSequenceNumber, for good. The
                # caller retries on a new producer (a new producer id); what was stored twice
                # the consumers' inboxes drop.
                self._renew_producer = True
                raise result

    async def _renew(self) -> None:
        async with self._lock:
            if not self._renew_producer or self._producer is None:
                return
            fresh = self._new_producer()
            try:
                await fresh.start()
            except BaseException:
                await fresh.stop()
                raise
            stale, self._producer, self._renew_producer = self._producer, fresh, False
        try:
            await within(stale.stop(), 10)
        except (TimeoutError, KafkaError):
            log.warning("a replaced Kafka producer did not close cleanly", exc_info=True)

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaBusConsumer:
        return KafkaBusConsumer(
            self.bootstrap_servers,
            group,
            topics,
            client_id=self.client_id,
            request_timeout_ms=self.request_timeout_ms,
            session_timeout_ms=self.session_timeout_ms,
        )

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            request_timeout_ms=self.request_timeout_ms,
        )
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in dict.fromkeys(topics) if t not in existing]
            if not missing:
                return
            isr = {"min.insync.replicas": str(self.min_insync_replicas)}
            new = [
                NewTopic(
                    name=t,
                    num_partitions=1 if t.endswith(".dlq") else self.partitions,
                    replication_factor=self.replication_factor,
                    topic_configs={**(DLQ_TOPIC_CONFIG if t.endswith(".dlq") else EVENT_TOPIC_CONFIG), **isr},
                )
                for t in missing
            ]
            # Another process may create one between list and create: create_topics lets
            # "already exists" pass.
            await create_topics(admin, new)
        finally:
            await admin.close()

    async def ping(self) -> None:
        await within(self.producer.client.fetch_all_metadata(), 5)


class KafkaBusConsumer:
    def __init__(
        self,
        bootstrap_servers: str,
        group: str,
        topics: Sequence[str],
        *,
        client_id: str,
        request_timeout_ms: int,
        session_timeout_ms: int,
    ) -> None:
        self._request_timeout_ms = request_timeout_ms
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap_servers,
            group_id=group,
            client_id=client_id,
            enable_auto_commit=False,
            # A new group (a new service, or a projection rebuilt by replay) reads the
            # whole history, never just what arrives after it joined.
            auto_offset_reset="earliest",
            max_poll_interval_ms=300_000,
            request_timeout_ms=request_timeout_ms,
            session_timeout_ms=session_timeout_ms,
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Message]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [
            Message(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key.decode() if record.key is not None else None,
                value=record.value,
                headers={k: v.decode() for k, v in (record.headers or ())},
            )
            for records in batches.values()
            for record in records
        ]

    async def lag(self) -> dict[tuple[str, int], int]:
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        # Asked of the broker, not the highwater of the last fetch response: a member that
        # stopped fetching (the stall the consumer's watchdog looks for) keeps a stale
        # highwater, or none, and would show no lag while events pile up.
        ends = await self._consumer.end_offsets(assigned)
        return {(tp.topic, tp.partition): max(0, ends[tp] - await self._consumer.position(tp)) for tp in assigned}

    async def sizes(self, topics: Sequence[str]) -> dict[str, int]:
        # The member's metadata covers only its subscription; ask the cluster for the rest.
        # aiokafka has no public call for another topic's partitions (AIOKafkaConsumer.topics()
        # makes this same request and keeps only the names).
        cluster = await self._consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]
        if not partitions:
            return {t: 0 for t in topics}
        ends = await self._consumer.end_offsets(partitions)
        starts = await self._consumer.beginning_offsets(partitions)
        sizes = dict.fromkeys(topics, 0)
        for tp in partitions:
            sizes[tp.topic] += ends[tp] - starts[tp]
        return sizes

    async def caught_up(self) -> bool:
        # The partitions as the broker has them now, not this member's metadata, which may
        # not have them yet right after joining.
        cluster = await self._consumer._client.fetch_all_metadata()
        topics = self._consumer.subscription()
        partitions = {TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or ()}
        assigned = self._consumer.assignment()
        if not partitions <= assigned:
            return False
        ends = await self._consumer.end_offsets(list(partitions))
        for tp, end in ends.items():
            if await self._consumer.position(tp) < end:
                return False
        return True

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        if not offsets:
            return
        try:
            # aiokafka retries a commit without end while the group coordinator is unknown or
            # answers a retriable error. Bounded, the TimeoutError makes the consumer loop
            # reconnect with a fresh member instead of waiting for good on a coordinator that
            # does not come back; the uncommitted events come again and the inbox drops them.
            await within(
                self._consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()}),
                self._request_timeout_ms / 1000,
            )
        except CommitFailedError:
            # The group rebalanced and these partitions moved to another member, which will
            # redeliver from the last committed offset; the inbox absorbs the repeats.
            log.warning("offset commit refused after a rebalance; events will be redelivered")
        except KafkaError:
            log.exception("offset commit failed; events will be redelivered")
