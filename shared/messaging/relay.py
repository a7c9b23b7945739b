"""The relay: publishes committed outbox rows to the bus in id order, marking them sent
only once the bus acknowledged them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus.base import Bus, Record
from shared.cloudevents import kafka_headers
from shared.db import dialect_of
from shared.events import Envelope
from shared.logs import bind_service
from shared.messaging.headers import (
    H_EVENT_ID,
    H_EVENT_TYPE,
)
from shared.metrics import ServiceMetrics
from shared.platform_tables import outbox
from shared.tracing import Tracing

log = logging.getLogger("shared.messaging")


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
                    # The CloudEvent in binary mode beside the envelope (shared/cloudevents.py).
                    headers={
                        H_EVENT_TYPE: row.type,
                        H_EVENT_ID: row.event_id,
                        **kafka_headers(Envelope.model_validate_json(row.envelope)),
                    },
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
