"""Embedded backend: a durable, append-only log in one SQLite file.

It mirrors what the services rely on from Kafka: a record is stored before publish()
returns, each topic is read in order, every consumer group keeps its own committed
position (new groups start at the beginning), and uncommitted records are delivered again
after a restart. Each topic is a single partition, so order holds for every key. One member
per group: embedded mode runs one instance of each service.

Processes that share the file see each other's records within ``poll_seconds``; inside one
process a publish wakes the waiting consumers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.bus.base import Message, Record
from shared.db import DbTimeouts, create_engine, ping

metadata = MetaData()

log_table = Table(
    "bus_log",
    metadata,
    Column("offset", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("headers", Text, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
    Index("ix_bus_log_topic_offset", "topic", "offset"),
    sqlite_autoincrement=True,
)

offsets_table = Table(
    "bus_offsets",
    metadata,
    Column("group_id", String(255), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("next_offset", Integer, nullable=False),
    PrimaryKeyConstraint("group_id", "topic"),
)


class EmbeddedBus:
    def __init__(self, path: Path, *, poll_seconds: float = 0.25, timeouts: DbTimeouts | None = None) -> None:
        self.path = path
        self.poll_seconds = poll_seconds
        self._engine = create_engine(f"sqlite+aiosqlite:///{path.resolve()}", timeouts=timeouts)
        self._published = asyncio.Condition()
        self._users = 0
        self._tables_ready = False

    async def start(self) -> None:
        # Reference-counted like KafkaBus: the five services of one process share it.
        self._users += 1
        if self._tables_ready:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        self._tables_ready = True

    async def stop(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users == 0:
            await self._engine.dispose()

    async def publish(self, records: Sequence[Record]) -> None:
        if not records:
            return
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(log_table),
                [
                    {
                        "topic": r.topic,
                        "key": r.key,
                        "value": r.value,
                        "headers": json.dumps(dict(r.headers)),
                        "stored_at": now,
                    }
                    for r in records
                ],
            )
        async with self._published:
            self._published.notify_all()

    async def send(self, records: Sequence[Record]) -> asyncio.Future[None]:
        # Stored before it returns (one SQLite transaction): nothing is left in flight.
        await self.publish(records)
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stored.set_result(None)
        return stored

    def consumer(self, group: str, topics: Sequence[str]) -> EmbeddedBusConsumer:
        return EmbeddedBusConsumer(self, group, topics)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        return None  # topics exist implicitly in the log

    async def ping(self) -> None:
        await ping(self._engine)

    async def _wait_for_publish(self, seconds: float) -> None:
        async with self._published:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._published.wait(), seconds)


class EmbeddedBusConsumer:
    def __init__(self, bus: EmbeddedBus, group: str, topics: Sequence[str]) -> None:
        self._bus = bus
        self._group = group
        self._topics = list(dict.fromkeys(topics))
        self._positions: dict[str, int] = {}

    async def start(self) -> None:
        async with self._bus._engine.connect() as conn:
            rows = await conn.execute(
                select(offsets_table.c.topic, offsets_table.c.next_offset).where(
                    offsets_table.c.group_id == self._group
                )
            )
            committed = {topic: offset for topic, offset in rows}
        self._positions = {t: committed.get(t, 0) for t in self._topics}

    async def stop(self) -> None:
        return None

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Message]:
        deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        while True:
            messages = await self._fetch(max_records)
            remaining = deadline - asyncio.get_running_loop().time()
            if messages or remaining <= 0:
                return messages
            await self._bus._wait_for_publish(min(remaining, self._bus.poll_seconds))

    async def _fetch(self, max_records: int) -> list[Message]:
        t = log_table.c
        condition = or_(*[(t.topic == topic) & (t.offset >= pos) for topic, pos in self._positions.items()])
        async with self._bus._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(t.offset, t.topic, t.key, t.value, t.headers)
                    .where(condition)
                    .order_by(t.offset)
                    .limit(max_records)
                )
            ).all()
        messages = [
            Message(
                topic=row.topic,
                partition=0,
                offset=row.offset,
                key=row.key,
                value=row.value,
                headers=json.loads(row.headers),
            )
            for row in rows
        ]
        for m in messages:
            self._positions[m.topic] = m.offset + 1
        return messages

    async def lag(self) -> dict[tuple[str, int], int]:
        t = log_table.c
        async with self._bus._engine.connect() as conn:
            behind = {
                topic: await conn.scalar(
                    select(func.count()).select_from(log_table).where(t.topic == topic, t.offset >= position)
                )
                for topic, position in self._positions.items()
            }
        return {(topic, 0): int(n or 0) for topic, n in behind.items()}

    async def sizes(self, topics: Sequence[str]) -> dict[str, int]:
        t = log_table.c
        async with self._bus._engine.connect() as conn:
            rows = await conn.execute(select(t.topic, func.count()).where(t.topic.in_(list(topics))).group_by(t.topic))
            held = {topic: int(n) for topic, n in rows}
        return {topic: held.get(topic, 0) for topic in topics}

    async def caught_up(self) -> bool:
        return not any((await self.lag()).values())

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        if not offsets:
            return
        stmt = sqlite_insert(offsets_table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["group_id", "topic"], set_={"next_offset": stmt.excluded.next_offset}
        )
        async with self._bus._engine.begin() as conn:
            await conn.execute(
                stmt,
                [{"group_id": self._group, "topic": topic, "next_offset": o} for (topic, _), o in offsets.items()],
            )
