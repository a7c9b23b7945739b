"""Transactional outbox, inbox, relay, consumer runner and dead letters.

The guarantees, and where each comes from:
- An event exists iff its state change committed: ``emit`` writes the event into the
  service's own ``outbox`` table inside the caller's transaction.
- Nothing is lost: the relay marks outbox rows sent only after the bus acknowledged them;
  a relay that dies in between publishes them again on restart (at-least-once).
- Effects happen once: a consumer records ``(consumer, event_id)`` in its ``inbox`` in the
  same transaction as the handler's effects, and skips events already recorded. Offsets are
  committed only after that transaction, so a crash means redelivery, never loss.
- A handler that keeps failing does not stall its partition forever: after the configured
  tries the event is parked in ``<topic>.dlq`` with the error, and ``replay_dead_letters``
  puts it back on its topic once the cause is fixed.

Write the outbox row after locking the aggregate it describes: rows of one village then
get ids in commit order, and the relay publishes in id order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import event as _sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from shared.bulk import insert_rows
from shared.bus.base import Bus, BusConsumer, Message, Record, next_offsets
from shared.db import dialect_of, insert_ignore, unavailable
from shared.events import Envelope, dlq_topic_of
from shared.logs import bind_service, event_context
from shared.metrics import SAMPLE_TIMEOUT_SECONDS, ServiceMetrics
from shared.platform_tables import inbox as inbox
from shared.platform_tables import outbox as outbox
from shared.redaction import redact
from shared.tracing import TRACE_HEADERS, Tracing, current_carrier, dead_lettered, failed_try

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
# Loads, in a few queries, the rows a batch's handlers will read, before they run one by one.
Prefetch = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]
# Runs after the handlers, in their transaction (a batch's, or one event's when applied
# alone): work that handlers deferred to do for many events at once.
Finish = Callable[[AsyncSession], Awaitable[None]]


def topics_of(handlers: Mapping[str, Handler]) -> list[str]:
    """The topics a set of handlers consumes: ``<source>.events`` for each event type's source."""
    return sorted({f"{t.split('.', 1)[0]}.events" for t in handlers})


# Header names carried by dead letters, so an operator sees why and where from.
H_CONSUMER = "vcredit.consumer"
H_ERROR = "vcredit.error"
H_ATTEMPTS = "vcredit.attempts"
H_ORIGINAL_TOPIC = "vcredit.original_topic"
H_ORIGINAL_PARTITION = "vcredit.original_partition"
H_ORIGINAL_OFFSET = "vcredit.original_offset"
H_FAILED_AT = "vcredit.failed_at"
H_EVENT_TYPE = "vcredit.type"
H_EVENT_ID = "vcredit.event_id"

# --- outbox -------------------------------------------------------------------------------


class OutboxSession(Session):
    """Session class whose commits wake the relay when they wrote outbox rows."""

    wake_relay: Callable[[], None] | None = None


def session_class_for(wake: Callable[[], None]) -> type[OutboxSession]:
    return type("ServiceSession", (OutboxSession,), {"wake_relay": staticmethod(wake)})


def _after_commit(session: Session) -> None:
    if session.info.pop("vcredit_outbox", False) and isinstance(session, OutboxSession) and session.wake_relay:
        session.wake_relay()


def _after_rollback(session: Session) -> None:
    session.info.pop("vcredit_outbox", None)


_sa_event.listen(OutboxSession, "after_commit", _after_commit)
_sa_event.listen(OutboxSession, "after_soft_rollback", lambda session, _tx: _after_rollback(session))


async def emit(session: AsyncSession, *events: Envelope) -> None:
    """Record events in the outbox, in the caller's transaction."""
    if not events:
        return
    now = datetime.now(UTC)
    trace_context = current_carrier()
    await session.execute(
        insert(outbox),
        [
            {
                "event_id": str(e.event_id),
                "topic": e.topic,
                "key": e.key,
                "type": e.type,
                "envelope": e.model_dump_json(),
                "created_at": now,
                "trace_context": trace_context,
            }
            for e in events
        ],
    )
    session.info["vcredit_outbox"] = True


class Relay:
    """Publishes outbox rows in id order and marks them sent after the bus acknowledged."""

    def __init__(
        self,
        service: str,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        topic_prefix: str = "",
        batch_size: int = 500,
        idle_seconds: float = 0.5,
        retention: timedelta = timedelta(days=7),
        metrics: ServiceMetrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.service = service
        self.metrics = metrics or ServiceMetrics(service)
        self.tracing = tracing or Tracing(service)
        self.sessions = sessions
        self.bus = bus
        self.topic_prefix = topic_prefix
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.retention = retention
        # One relay per service publishes at a time (replicas would interleave the order).
        self._lock_id = zlib.crc32(f"vcredit-relay-{service}".encode())
        self._wake = asyncio.Event()
        self._last_cleanup = datetime.min.replace(tzinfo=UTC)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        bind_service(self.service)
        failures = 0
        while True:
            try:
                sent = await self.relay_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                # Capped low: after an outage of the bus or the database, events should
                # leave within seconds of its return (an attempt against a broker that is
                # away already waits for the producer's request timeout).
                delay = min(5.0, 0.1 * 2**failures)
                log.exception("outbox relay of %s failed; retrying in %.1fs", self.service, delay)
                await asyncio.sleep(delay)
                continue
            if sent < self.batch_size:
                await self._maybe_cleanup()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
                self._wake.clear()

    async def relay_once(self) -> int:
        async with self.sessions() as session, session.begin():
            if dialect_of(session) == "postgresql":
                got_lock = await session.scalar(select(func.pg_try_advisory_xact_lock(self._lock_id)))
                if not got_lock:
                    return 0
            rows = (
                await session.execute(
                    select(
                        outbox.c.id,
                        outbox.c.topic,
                        outbox.c.key,
                        outbox.c.envelope,
                        outbox.c.type,
                        outbox.c.event_id,
                        outbox.c.trace_context,
                    )
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                return 0
            records = [
                Record(
                    topic=self.topic_prefix + row.topic,
                    key=row.key,
                    value=row.envelope.encode(),
                    headers={H_EVENT_TYPE: row.type, H_EVENT_ID: row.event_id},
                )
                for row in rows
            ]
            with self.tracing.publishing(records, [row.trace_context for row in rows]) as traced:
                await self.bus.publish(traced)
            await session.execute(
                update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(sent_at=datetime.now(UTC))
            )
        for row in rows:
            self.metrics.events_produced.labels(row.topic, row.type).inc()
        return len(rows)

    async def _maybe_cleanup(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_cleanup < timedelta(minutes=10):
            return
        self._last_cleanup = now
        async with self.sessions() as session, session.begin():
            await session.execute(
                delete(outbox).where(outbox.c.sent_at.is_not(None), outbox.c.sent_at < now - self.retention)
            )

    async def backlog(self) -> int:
        async with self.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))
            return int(count or 0)


# --- inbox and consumer -------------------------------------------------------------------


def _inbox_row(consumer: str, event_id: str, message: Message, now: datetime) -> dict[str, Any]:
    return {
        "consumer": consumer,
        "event_id": event_id,
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "processed_at": now,
    }


async def _record_in_inbox(session: AsyncSession, consumer: str, envelope: Envelope, message: Message) -> bool:
    """Insert the inbox row; False when this consumer already processed the event."""
    return await insert_ignore(session, inbox, _inbox_row(consumer, str(envelope.event_id), message, datetime.now(UTC)))


async def record_batch_in_inbox(
    session: AsyncSession, consumer: str, batch: Sequence[tuple[Message, Envelope]]
) -> set[str]:
    """Insert inbox rows for a batch in one statement; the event ids not seen before."""
    now = datetime.now(UTC)
    rows: dict[str, dict[str, Any]] = {}
    for m, e in batch:
        event_id = str(e.event_id)  # UUID.__str__ is slow enough to show in a batch's profile
        rows[event_id] = _inbox_row(consumer, event_id, m, now)
    return set(await insert_rows(session, inbox, list(rows.values()), conflict="ignore", returning=inbox.c.event_id))


@dataclass
class ConsumerStats:
    processed: int = 0
    duplicates: int = 0
    retries: int = 0
    dead_lettered: int = 0


class Consumer:
    """Runs a service's handlers over its subscribed topics, one consumer group per service."""

    def __init__(
        self,
        name: str,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        handlers: Mapping[str, Handler],
        *,
        topic_prefix: str = "",
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        backoff_max_seconds: float = 10.0,
        max_batch: int = 500,
        prefetch: Prefetch | None = None,
        finish: Finish | None = None,
        metrics: ServiceMetrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.name = name
        self.tracing = tracing or Tracing(name)
        self.sessions = sessions
        self.bus = bus
        self.handlers = dict(handlers)
        self.topic_prefix = topic_prefix
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.max_batch = max_batch
        self.prefetch = prefetch
        self.finish = finish
        self.stats = ConsumerStats()
        self.metrics = metrics or ServiceMetrics(name)
        self.topics = topics_of(self.handlers)
        # The group member of the running loop, which /metrics asks for lag and dead letters.
        self._live: BusConsumer | None = None

    @property
    def group(self) -> str:
        return f"{self.topic_prefix}vcredit-{self.name}"

    async def run(self) -> None:
        if not self.topics:
            return
        bind_service(self.name)
        failures = 0
        while True:
            consumer = self.bus.consumer(self.group, [self.topic_prefix + t for t in self.topics])
            try:
                await consumer.start()
                self._live = consumer
                failures = 0
                while True:
                    messages = await consumer.getmany(timeout_ms=1000, max_records=self.max_batch)
                    await self.process_batch(messages)
                    await consumer.commit(next_offsets(messages))
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                delay = min(30.0, 0.2 * 2**failures)
                log.exception("consumer %s lost its bus or database; reconnecting in %.1fs", self.name, delay)
                await asyncio.sleep(delay)
            finally:
                self._live = None
                try:
                    await asyncio.wait_for(consumer.stop(), 10)
                except TimeoutError:
                    log.error("consumer %s did not leave its group within 10s", self.name)

    async def sample_bus(self) -> None:
        """Set the lag and dead-letter gauges from the running group member. A broker that
        does not answer leaves them absent rather than stale, which alerting can tell."""
        live = self._live
        if live is None:
            return
        dlq = [self.topic_prefix + dlq_topic_of(t) for t in self.topics]
        try:
            lag = await asyncio.wait_for(live.lag(), SAMPLE_TIMEOUT_SECONDS)
            sizes = await asyncio.wait_for(live.sizes(dlq), SAMPLE_TIMEOUT_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: could not read consumer lag and dead letters from the bus: %s", self.name, exc)
            self.metrics.consumer_lag.clear()
            self.metrics.dead_letters.clear()
            return
        self.metrics.set_lag({(t.removeprefix(self.topic_prefix), p): n for (t, p), n in lag.items()})
        self.metrics.set_dead_letters({t.removeprefix(self.topic_prefix): n for t, n in sizes.items()})

    def _count(self, message: Message, event_type: str, outcome: str) -> None:
        topic = message.topic.removeprefix(self.topic_prefix)
        self.metrics.events_consumed.labels(topic, event_type, outcome).inc()

    async def process_batch(self, messages: Sequence[Message]) -> None:
        """Apply a batch in one transaction (one commit for many events); if anything in it
        fails, roll back and apply the events one by one, so only the failing event is
        retried and, in the end, dead-lettered."""
        batch: list[tuple[Message, Envelope]] = []
        for message in messages:
            try:
                envelope = Envelope.from_bytes(message.value)
            except ValidationError as exc:
                with self.tracing.consuming(message, self.group, message.headers.get(H_EVENT_TYPE), None):
                    await self._dead_letter(message, f"malformed envelope: {exc}", attempts=0)
                self._count(message, "malformed", "dead_lettered")
                continue
            if envelope.type in self.handlers:
                batch.append((message, envelope))
        if len(batch) > 1:
            try:
                await self._apply_together(batch)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if unavailable(exc):
                    raise
                log.info("%s: batch of %d failed (%s); applying one by one", self.name, len(batch), exc)
        for message, envelope in batch:
            await self._apply_alone(message, envelope)

    async def _apply_together(self, batch: Sequence[tuple[Message, Envelope]]) -> None:
        outcomes: list[str] = []
        ids = [str(e.event_id) for _, e in batch]
        async with self.sessions() as session, session.begin():
            fresh = await record_batch_in_inbox(session, self.name, batch)
            if self.prefetch is not None:
                await self.prefetch(session, [e for (_, e), i in zip(batch, ids, strict=True) if i in fresh])
            for (message, envelope), event_id in zip(batch, ids, strict=True):
                if event_id not in fresh:
                    outcomes.append("duplicate")
                    continue
                fresh.discard(event_id)  # the same event twice in one batch applies once
                with self.tracing.consuming(message, self.group, envelope.type, event_id), event_context(event_id):
                    await self.handlers[envelope.type](session, envelope)
                outcomes.append("applied")
            if self.finish is not None:
                await self.finish(session)
        # Counted once committed: a batch that fails is applied again one by one.
        for (message, envelope), outcome in zip(batch, outcomes, strict=True):
            self._count(message, envelope.type, outcome)
        self.stats.processed += outcomes.count("applied")
        self.stats.duplicates += outcomes.count("duplicate")

    async def _apply_alone(self, message: Message, envelope: Envelope) -> None:
        # One span for all tries: its events are the failed ones, its end the outcome. Every
        # log line about the event, its failed tries and its parking included, names it.
        event_id = str(envelope.event_id)
        with self.tracing.consuming(message, self.group, envelope.type, event_id), event_context(event_id):
            await self._apply_with_retries(message, envelope)

    async def _apply_with_retries(self, message: Message, envelope: Envelope) -> None:
        handler = self.handlers[envelope.type]
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.sessions() as session, session.begin():
                    if not await _record_in_inbox(session, self.name, envelope, message):
                        self.stats.duplicates += 1
                        self._count(message, envelope.type, "duplicate")
                        return
                    await handler(session, envelope)
                    if self.finish is not None:
                        await self.finish(session)
                self.stats.processed += 1
                self._count(message, envelope.type, "applied")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if unavailable(exc):
                    # Not the event's fault: parking it would drop it from this projection
                    # until someone replays the dead letters. Leave the batch uncommitted;
                    # ``run`` reconnects and the events come again once the database is back.
                    raise
                error = "".join(traceback.format_exception_only(exc)).strip()
                failed_try(exc)
                log.warning(
                    "%s: handler for %s %s failed (try %d of %d): %s",
                    self.name,
                    envelope.type,
                    envelope.event_id,
                    attempt,
                    self.max_attempts,
                    error,
                )
                if attempt < self.max_attempts:
                    self.stats.retries += 1
                    self.metrics.handler_retries.labels(
                        message.topic.removeprefix(self.topic_prefix), envelope.type
                    ).inc()
                    await asyncio.sleep(self._backoff(attempt))
        await self._dead_letter(message, error, attempts=self.max_attempts)
        self._count(message, envelope.type, "dead_lettered")

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max_seconds, self.backoff_seconds * 2.0 ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)  # jitter spreads retries of many consumers

    async def _dead_letter(self, message: Message, error: str, *, attempts: int) -> None:
        logical_topic = message.topic.removeprefix(self.topic_prefix)
        log.error(
            "%s: parking event at %s[%d]@%d in the dead-letter topic: %s",
            self.name,
            logical_topic,
            message.partition,
            message.offset,
            error,
        )
        dead_lettered(error)
        await self.bus.publish(
            [
                Record(
                    topic=self.topic_prefix + dlq_topic_of(logical_topic),
                    key=message.key or "",
                    value=message.value,
                    headers={
                        **message.headers,
                        H_CONSUMER: self.name,
                        # Outlives the logs by weeks (30-day DLQ retention): masked as they are.
                        H_ERROR: redact(error)[:4000],
                        H_ATTEMPTS: str(attempts),
                        H_ORIGINAL_TOPIC: logical_topic,
                        H_ORIGINAL_PARTITION: str(message.partition),
                        H_ORIGINAL_OFFSET: str(message.offset),
                        H_FAILED_AT: datetime.now(UTC).isoformat(),
                    },
                )
            ]
        )
        self.stats.dead_lettered += 1


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
                        # The trace headers too: the replayed event goes on in its trace.
                        headers={
                            k: v
                            for k, v in d.message.headers.items()
                            if k in (H_EVENT_TYPE, H_EVENT_ID, *TRACE_HEADERS)
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
