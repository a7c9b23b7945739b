"""The relay: publishes committed outbox rows to the bus in id order, marking them sent
only once the bus acknowledged them.

Batches are pipelined: while the bus acknowledges batch N and its rows are marked sent, the
rows of batch N+1 are read and handed to the bus, behind N's in the producer (so in order per
key). At most ``pipeline_batches`` batches are between the bus and their mark. Batches are
marked strictly in order, each only once it and every batch before it were acknowledged: when
one fails, nothing from its first row on is marked, the batches behind it are let settle, and
the next round reads the unsent rows again from the lowest id and publishes them in id
order. What a failed round had stored after the failure is then stored twice, and the
consumers' inboxes drop the second copy; the first copy of every event still comes after the
first copies of the events before it, since a row is published only after every lower row
still unsent at that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bulk import among
from shared.bus.base import Bus, Record
from shared.cloudevents import kafka_headers
from shared.db import read_only
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

_COLUMNS = (
    outbox.c.id,
    outbox.c.topic,
    outbox.c.key,
    outbox.c.envelope,
    outbox.c.type,
    outbox.c.event_id,
    outbox.c.trace_context,
)


# A row of ``_COLUMNS``.
_OutboxRow = Row[*tuple[Any, ...]]


class _Failed:
    """What the reading side leaves in the queue when it fails: the marking side raises it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


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
        pipeline_batches: int = 4,
        linger_seconds: float = 0.01,
        idle_seconds: float = 0.5,
        retention: timedelta = timedelta(days=7),
        metrics: ServiceMetrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.service = service
        self.metrics = metrics or ServiceMetrics(service)
        self.tracing = tracing or Tracing(service)
        self.sessions = sessions
        engine = sessions.kw["bind"]
        assert isinstance(engine, AsyncEngine), "the relay's sessions are bound to one engine"
        self._engine = engine
        self._reads = async_sessionmaker(read_only(engine), expire_on_commit=False)
        # PostgreSQL: the relay's reads and marks are one statement each, run outside an
        # explicit transaction (one round trip, where BEGIN + statement + COMMIT were three;
        # 4 of the 6 round trips of a batch, which at one event per transaction is a batch
        # of a few events). A lone statement is atomic, and its commit as durable
        # (synchronous_commit applies to it too). SQLite keeps its explicit transactions,
        # whose BEGIN IMMEDIATE (shared/db.py) is how its writers queue for the lock.
        self._single_statements = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else None
        )
        self.bus = bus
        self.topic_prefix = topic_prefix
        self.batch_size = batch_size
        self.pipeline_batches = max(1, pipeline_batches)
        self.linger_seconds = linger_seconds
        self.idle_seconds = idle_seconds
        self.retention = retention
        # One relay per service publishes at a time (replicas would interleave the order).
        self._lock_id = zlib.crc32(f"vcredit-relay-{service}".encode())
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()
        self._last_cleanup = datetime.min.replace(tzinfo=UTC)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        bind_service(self.service)
        failures = 0
        while True:
            # Cleared before reading: a commit during the round wakes the next one at once.
            self._wake.clear()
            try:
                await self.drain()
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
            await self._maybe_cleanup()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_seconds)

    async def relay_once(self) -> int:
        """Publish one batch and mark it sent, unpipelined; the number of rows (0 when there
        was nothing, or another replica's relay is publishing)."""
        async with self._publishing() as publishing:
            if not publishing:
                return 0
            rows = await self._unsent(())
            if rows:
                await (await self._send(rows))
                await self._mark_sent(rows)
            return len(rows)

    async def drain(self) -> int:
        """Publish every unsent row, ``pipeline_batches`` batches at a time; the number
        published. Returns once a read finds nothing more (0 at once when another replica's
        relay is publishing); raises what failed, with every batch it handed to the bus
        settled and nothing marked from the failed batch on."""
        async with self._publishing() as publishing:
            if not publishing:
                return 0
            return await self._pipeline()

    async def _pipeline(self) -> int:
        queue: asyncio.Queue[tuple[list[_OutboxRow], asyncio.Future[None]] | _Failed | None] = asyncio.Queue()
        room = asyncio.Semaphore(self.pipeline_batches)
        # Handed to the bus and not yet marked sent: the next read skips them.
        in_flight: set[int] = set()
        unmarked: deque[asyncio.Future[None]] = deque()

        async def read_and_send() -> None:
            try:
                while True:
                    await room.acquire()
                    rows = await self._unsent(in_flight)
                    if not rows:
                        break
                    in_flight.update(row.id for row in rows)
                    acknowledged = await self._send(rows)
                    unmarked.append(acknowledged)
                    queue.put_nowait((rows, acknowledged))
                    if len(rows) < self.batch_size:
                        # Caught up: the next read waits for this batch's acknowledgement
                        # (not its mark) and at least ``linger_seconds``, so that rows
                        # committed meanwhile go as one batch. Reading again at once spent a
                        # read, a publish and a mark (a commit) on every row or two of a
                        # stream of one-event transactions, and took the producing service's
                        # database and CPU from its own transactions.
                        lingered = asyncio.ensure_future(asyncio.sleep(self.linger_seconds))
                        await asyncio.wait([acknowledged, lingered], return_when=asyncio.ALL_COMPLETED)
                queue.put_nowait(None)
            except BaseException as exc:
                queue.put_nowait(_Failed(exc))
                raise

        reader = asyncio.create_task(read_and_send(), name=f"{self.service}-relay-reader")
        published = 0
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, _Failed):
                    raise item.error
                rows, acknowledged = item
                await acknowledged
                await self._mark_sent(rows)
                unmarked.popleft()
                in_flight.difference_update(row.id for row in rows)
                published += len(rows)
                room.release()
            await reader
        except asyncio.CancelledError:
            # Stopping: what is in flight is not waited for (its rows stay unsent, and the
            # next start publishes them again).
            for pending in unmarked:
                pending.cancel()
            raise
        finally:
            reader.cancel()
            # Everything handed to the bus settles before the caller tries again: a retry on
            # a renewed producer must not overtake records still in flight on the old one.
            await asyncio.gather(reader, *unmarked, return_exceptions=True)
        return published

    @contextlib.asynccontextmanager
    async def _publishing(self) -> AsyncIterator[bool]:
        """Whether this relay is the one publishing the service's outbox, for the block.

        PostgreSQL: a session-level advisory lock, held by a connection of its own for a
        whole round (its batches are in flight across several transactions) and released at
        the end of it. SQLite: one instance, whose rounds wait for each other."""
        if self._engine.dialect.name != "postgresql":
            # Rounds of this relay one after another (``relay_once`` beside ``run``): its
            # reads take no write lock that would keep two of them from reading the same rows.
            async with self._round:
                yield True
            return
        conn = await self._engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            held = bool(await conn.scalar(select(func.pg_try_advisory_lock(self._lock_id))))
            yield held
            if held:
                await conn.scalar(select(func.pg_advisory_unlock(self._lock_id)))
        except BaseException:
            # A lock left on a pooled connection would stop every replica's relay for good:
            # closing the connection releases whatever it holds.
            await conn.invalidate()
            raise
        finally:
            await conn.close()

    async def _unsent(self, skip: Collection[int]) -> list[_OutboxRow]:
        """The next unsent rows in id order, but for ``skip`` (handed to the bus, not yet
        marked). A row committed late with a lower id than those in flight is among them."""
        query = select(*_COLUMNS).where(outbox.c.sent_at.is_(None))
        if self._single_statements is not None:
            if skip:
                query = query.where(~among("postgresql", outbox.c.id, skip))
            async with self._single_statements.connect() as conn:
                return list((await conn.execute(query.order_by(outbox.c.id).limit(self.batch_size))).all())
        async with self._reads() as session, session.begin():
            if skip:
                query = query.where(~among(session, outbox.c.id, skip))
            return list((await session.execute(query.order_by(outbox.c.id).limit(self.batch_size))).all())

    async def _send(self, rows: Sequence[_OutboxRow]) -> asyncio.Future[None]:
        """Hand the rows' records to the bus, in order; the future of their acknowledgement.
        Their PRODUCER spans end with it."""
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
        spans = contextlib.ExitStack()
        traced = spans.enter_context(self.tracing.publishing(records, [row.trace_context for row in rows]))
        try:
            acknowledged = await self.bus.send(traced)
        except BaseException:
            spans.__exit__(*sys.exc_info())
            raise

        async def settled() -> None:
            with spans:
                await acknowledged

        return asyncio.ensure_future(settled())

    async def _mark_sent(self, rows: Sequence[_OutboxRow]) -> None:
        ids = [row.id for row in rows]
        marked = update(outbox).values(sent_at=datetime.now(UTC))
        if self._single_statements is not None:
            async with self._single_statements.connect() as conn:
                await conn.execute(marked.where(among("postgresql", outbox.c.id, ids)))
        else:
            async with self.sessions() as session, session.begin():
                await session.execute(marked.where(among(session, outbox.c.id, ids)))
        # One increment per label set, not per row (a label lookup per event was 17% of the
        # relay's marking in bench/bus.py's profile, issue 27).
        for (topic, event_type), n in Counter((row.topic, row.type) for row in rows).items():
            self.metrics.events_produced.labels(topic, event_type).inc(n)

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
