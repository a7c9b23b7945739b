"""The inbox and the consumer runner: effects once per event, offsets committed after the
transaction, a failing event parked in its dead-letter topic after the configured tries."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bulk import insert_rows
from shared.bus.base import Bus, BusConsumer, Message, Record, next_offsets
from shared.db import insert_ignore, unavailable
from shared.deadlines import WorkCancelled, asked_to_stop, within
from shared.events import Envelope, dlq_topic_of
from shared.logs import bind_service, event_context
from shared.messaging.headers import (
    H_ATTEMPTS,
    H_CONSUMER,
    H_ERROR,
    H_EVENT_TYPE,
    H_FAILED_AT,
    H_ORIGINAL_OFFSET,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_TOPIC,
)
from shared.messaging.watchdog import Stall, StallWatch
from shared.metrics import SAMPLE_TIMEOUT_SECONDS, ServiceMetrics
from shared.platform_tables import inbox
from shared.redaction import redact
from shared.tracing import Tracing, dead_lettered, failed_try

log = logging.getLogger("shared.messaging")


# What a group member being replaced is given to leave its group.
STOP_MEMBER_SECONDS = 10

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
# Loads, in a few queries, the rows a batch's handlers will read, before they run one by one.
Prefetch = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]
# Runs after the handlers, in their transaction (a batch's, or one event's when applied
# alone): work that handlers deferred to do for many events at once.
Finish = Callable[[AsyncSession], Awaitable[None]]


def topics_of(handlers: Mapping[str, Handler]) -> list[str]:
    """The topics a set of handlers consumes: ``<source>.events`` for each event type's source."""
    return sorted({f"{t.split('.', 1)[0]}.events" for t in handlers})


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
        stall_seconds: float = 120.0,
        stall_restarts: int = 3,
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
        self.stall_seconds = stall_seconds
        self.stall_restarts = stall_restarts
        # Set once members keep stalling (more than ``stall_restarts`` in a row): the reason
        # the process is not live (/healthz). Cleared when a member moves again.
        self.stalled: str | None = None
        # The group member of the running loop, which /metrics asks for lag and dead letters.
        self._live: BusConsumer | None = None
        # What the loop reports to the watchdog: events taken so far, the bus call under way
        # and since when, whether it is in the handlers.
        self._moved = 0
        self._waiting_in: str | None = None
        self._waiting_since = 0.0
        self._handling = False
        self._failures = 0
        self._stalls_in_row = 0

    @property
    def group(self) -> str:
        return f"{self.topic_prefix}vcredit-{self.name}"

    async def run(self) -> None:
        if not self.topics:
            return
        bind_service(self.name)
        while True:
            consumer = self.bus.consumer(self.group, [self.topic_prefix + t for t in self.topics])
            serving = asyncio.create_task(self._serve(consumer), name=f"{self.name}-member")
            try:
                stall = await self._watch(serving, consumer)
                if stall is None:
                    if serving.cancelled():
                        raise WorkCancelled("the group member's task was cancelled from inside")
                    serving.result()  # it ended: with the error it died of
                    raise RuntimeError("the consumer loop returned")
                self._replace(stall)
            except (Exception, asyncio.CancelledError) as exc:
                # A CancelledError nobody asked this task for came out of the bus client:
                # ending here would leave the service consuming nothing, silently.
                if isinstance(exc, asyncio.CancelledError) and asked_to_stop():
                    raise
                self._failures += 1
                delay = min(30.0, 0.2 * 2**self._failures)
                log.exception("consumer %s lost its bus or database; reconnecting in %.1fs", self.name, delay)
                await asyncio.sleep(delay)
            finally:
                self._live = None
                self._waiting_in = None
                self._handling = False
                serving.cancel()
                # A member stuck in a call that ignores cancellation is abandoned, not waited for.
                await asyncio.wait([serving], timeout=STOP_MEMBER_SECONDS)
                try:
                    await within(consumer.stop(), STOP_MEMBER_SECONDS)
                except TimeoutError:
                    log.error("consumer %s did not leave its group within %ss", self.name, STOP_MEMBER_SECONDS)
                except Exception as exc:
                    log.warning("consumer %s did not leave its group cleanly: %s", self.name, exc)

    async def _serve(self, consumer: BusConsumer) -> None:
        """One group member's life: join, then take, apply and commit batches until it fails."""
        with self._on_bus("start"):
            await consumer.start()
        self._live = consumer
        self._failures = 0
        while True:
            with self._on_bus("getmany"):
                messages = await consumer.getmany(timeout_ms=1000, max_records=self.max_batch)
            self._handling = True
            try:
                await self.process_batch(messages)
            finally:
                self._handling = False
            with self._on_bus("commit"):
                await consumer.commit(next_offsets(messages))
            self._moved += len(messages)

    @contextmanager
    def _on_bus(self, call: str) -> Iterator[None]:
        self._waiting_in, self._waiting_since = call, time.monotonic()
        try:
            yield
        finally:
            self._waiting_in = None

    async def _watch(self, serving: asyncio.Task[None], consumer: BusConsumer) -> Stall | None:
        """Wait while ``serving`` runs; the stall that ends it, or None if it ended by itself."""
        started, moved = time.monotonic(), self._moved
        watch = StallWatch(self.stall_seconds, started, moved)
        # A stall is seen within a quarter of the limit, and the broker is asked for this
        # member's lag at most every 5 s.
        every = min(5.0, self.stall_seconds / 4)
        while True:
            done, _ = await asyncio.wait([serving], timeout=every)
            if done:
                return None
            stall = watch.observe(
                time.monotonic(),
                moved=self._moved,
                behind=await self._behind(consumer, every),
                waiting_in=self._waiting_in,
                waiting_since=self._waiting_since,
                handling=self._handling,
            )
            if stall is not None:
                return stall
            if self._moved != moved or time.monotonic() - started >= self.stall_seconds:
                # This member moved, or outlived the limit unstalled: stalls are no longer in a row.
                self._stalls_in_row = 0
                self.stalled = None

    async def _behind(self, consumer: BusConsumer, seconds: float) -> int | None:
        try:
            return sum((await within(consumer.lag(), seconds)).values())
        except asyncio.CancelledError:
            raise
        except Exception:
            return None  # the broker did not answer: not a stall of this member

    def _replace(self, stall: Stall) -> None:
        self._stalls_in_row += 1
        self.metrics.consumer_stalls.inc()
        log.error(
            "consumer %s stalled: %s; replacing its group member (%d in a row); it resumes from the committed offsets",
            self.name,
            stall.describe(),
            self._stalls_in_row,
        )
        if self._stalls_in_row > self.stall_restarts:
            # Fresh members stall too: the fault is the process's or its surroundings'. The
            # watchdog keeps trying, and /healthz asks the orchestrator for a new process.
            self.stalled = f"stalled {self._stalls_in_row} times in a row, last: {stall.describe()}"

    async def sample_bus(self) -> None:
        """Set the lag and dead-letter gauges from the running group member. A broker that
        does not answer leaves them absent rather than stale, which alerting can tell."""
        live = self._live
        if live is None:
            return
        dlq = [self.topic_prefix + dlq_topic_of(t) for t in self.topics]
        try:
            lag = await within(live.lag(), SAMPLE_TIMEOUT_SECONDS)
            sizes = await within(live.sizes(dlq), SAMPLE_TIMEOUT_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: could not read consumer lag and dead letters from the bus: %s", self.name, exc)
            self.metrics.consumer_lag.clear()
            self.metrics.dead_letters.clear()
            return
        self.metrics.set_lag({(t.removeprefix(self.topic_prefix), p): n for (t, p), n in lag.items()})
        self.metrics.set_dead_letters({t.removeprefix(self.topic_prefix): n for t, n in sizes.items()})

    def _count(self, topic: str, event_type: str, outcome: str, n: int = 1) -> None:
        self.metrics.events_consumed.labels(topic.removeprefix(self.topic_prefix), event_type, outcome).inc(n)

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
                self._count(message.topic, "malformed", "dead_lettered")
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
        # Counted once committed: a batch that fails is applied again one by one. One
        # increment per label set, not per event (2.4% of risk's consumer in bench/risk.py).
        pairs = zip(batch, outcomes, strict=True)
        counts = Counter((message.topic, envelope.type, outcome) for (message, envelope), outcome in pairs)
        for (topic, event_type, outcome), n in counts.items():
            self._count(topic, event_type, outcome, n)
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
                        self._count(message.topic, envelope.type, "duplicate")
                        return
                    await handler(session, envelope)
                    if self.finish is not None:
                        await self.finish(session)
                self.stats.processed += 1
                self._count(message.topic, envelope.type, "applied")
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
        self._count(message.topic, envelope.type, "dead_lettered")

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
