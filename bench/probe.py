"""A probe service for testing the messaging guarantees: one event type, one table that
records every application of a handler (no unique constraint, so a double application
shows up as two rows), and a handler that can be told to refuse "poison" events.

Also runnable as a separate process, so tests can SIGKILL a real consumer:
    python -m bench.probe consume --db URL --prefix P (--kafka H:P | --embedded-bus F) --until N
and SIGTERM a real loans service (uvicorn, as ``vcredit serve loans`` runs it) mid close of
business, its days slowed down so that the signal lands inside a run:
    python -m bench.probe serve-loans --db URL --prefix P (--kafka H:P | --embedded-bus F)
        --port N --data-dir D --start-date YYYY-MM-DD --token T [--day-seconds S]

Used by the tests and by bench/bus.py; it lives in bench/ (formerly tests/harness.py) since
bench/ imports nothing from tests/ (tests/unit/project/test_architecture.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bulk import insert_rows
from shared.bus.base import Bus
from shared.bus.embedded import EmbeddedBus
from shared.bus.kafka import KafkaBus
from shared.db import create_engine, create_sessionmaker, include_shared_tables, new_metadata, read_only
from shared.events import Envelope, EventType, new_event, parse_payload, register
from shared.messaging import Consumer

metadata = new_metadata()
include_shared_tables(metadata)
applied = Table(
    "applied",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("village", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("pid", Integer, nullable=False),
)


class ProbeHappened(BaseModel):
    village: str
    seq: int
    poison: bool = False


PROBE_TYPE = "registry.probe.happened"
register(EventType(PROBE_TYPE, 1, ProbeHappened, "Test-only probe event.", public=False))


def probe_event(village: str, seq: int, *, poison: bool = False) -> Envelope:
    return new_event(PROBE_TYPE, village, ProbeHappened(village=village, seq=seq, poison=poison))


POISONER = "11010119900307663X"


class ProbeHandler:
    """``deferred``: the handler keeps its row in the transaction's ``session.info`` and
    ``finish`` (the consumer's hook after a batch's handlers, or one event's) writes them
    all in one statement, as the services' projections do (services/risk/rows.py); without
    it, one INSERT per event, in the handler."""

    def __init__(self, delay: float = 0.0, write_row: bool = True, *, deferred: bool = False) -> None:
        self.refuse_poison = True
        self.delay = delay
        self.write_row = write_row
        self.deferred = deferred

    async def __call__(self, session: AsyncSession, event: Envelope) -> None:
        probe = parse_payload(event, ProbeHappened)
        if probe.poison and self.refuse_poison:
            # Quotes an ID number, as a real handler's error may: the dead letter must not.
            raise RuntimeError(f"probe {probe.village}/{probe.seq} refused: poison from {POISONER}")
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.write_row:
            return
        row = {"event_id": str(event.event_id), "village": probe.village, "seq": probe.seq, "pid": os.getpid()}
        if self.deferred:
            session.info.setdefault(_DEFERRED, []).append(row)
            return
        await session.execute(insert(applied).values(row))

    @staticmethod
    async def finish(session: AsyncSession) -> None:
        await insert_rows(session, applied, session.info.pop(_DEFERRED, []))


_DEFERRED = "probe_rows"


async def create_probe_db(url: str) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return engine, create_sessionmaker(engine)


def probe_consumer(
    sessions: async_sessionmaker[AsyncSession], bus: Bus, handler: ProbeHandler, prefix: str, **kwargs: object
) -> Consumer:
    if handler.deferred:
        kwargs.setdefault("finish", handler.finish)
    return Consumer("probe", sessions, bus, {PROBE_TYPE: handler}, topic_prefix=prefix, **kwargs)  # type: ignore[arg-type]


async def applied_rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, int]]:
    async with _reader(sessions) as session:
        rows = await session.execute(
            select(applied.c.event_id, applied.c.village, applied.c.seq).order_by(applied.c.id)
        )
        return [(r.event_id, r.village, r.seq) for r in rows]


async def applied_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with _reader(sessions) as session:
        return int(await session.scalar(select(func.count()).select_from(applied)) or 0)


def _reader(sessions: async_sessionmaker[AsyncSession]) -> AsyncSession:
    bind = sessions.kw["bind"]
    return AsyncSession(read_only(bind))


async def _consume(args: argparse.Namespace) -> None:
    bus: Bus = EmbeddedBus(Path(args.embedded_bus)) if args.embedded_bus else KafkaBus(args.kafka, client_id="probe")
    engine = create_engine(args.db)
    sessions = create_sessionmaker(engine)
    handler = ProbeHandler(delay=args.delay, write_row=not args.inbox_only, deferred=args.deferred_rows)
    consumer = probe_consumer(sessions, bus, handler, args.prefix, max_batch=args.batch)
    await bus.start()
    # Rows written count across restarts; the inbox-only handler writes none.
    rows_before = 0 if args.inbox_only else await applied_count(sessions)
    task = asyncio.create_task(consumer.run())
    try:
        # Each event applied here writes one row: the table is counted only once the events
        # applied say it is time (counting it every 10 ms took a share of the database's CPU
        # from the consumer that the benchmark times).
        while rows_before + consumer.stats.processed < args.until or (
            not args.inbox_only and await applied_count(sessions) < args.until
        ):
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        reached_at = time.time()
        # Let the consumer commit its last batch before reporting.
        await asyncio.sleep(1.5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.stop()
        await engine.dispose()
    stats = {"processed": consumer.stats.processed, "duplicates": consumer.stats.duplicates, "reached_at": reached_at}
    print(json.dumps(stats), flush=True)


def _serve_loans(args: argparse.Namespace) -> None:
    import uvicorn

    from services.loans import cob
    from shared.migrations import upgrade
    from shared.runtime import ServiceRuntime, create_app
    from shared.settings import CommonSettings
    from vcredit.cli import _ServeServer
    from vcredit.infra import TEST_PARTITIONS
    from vcredit.services import load_spec

    real = cob.close_day

    async def slow_day(sessions: async_sessionmaker[AsyncSession], day: Any, run_id: str) -> int:
        processed = await real(sessions, day, run_id)
        await asyncio.sleep(args.day_seconds)  # a day of a large book, so SIGTERM lands in a run
        return processed

    cob.close_day = slow_day
    common = CommonSettings(
        data_dir=Path(args.data_dir),
        bootstrap_token=args.token,
        start_date=args.start_date,
        topic_prefix=args.prefix,
        topic_partitions=TEST_PARTITIONS,
        topic_replication_factor=1,
        relay_idle_seconds=0.05,
    )
    spec = load_spec("loans")
    upgrade(spec.migrations_dir, args.db)
    bus: Bus = (
        EmbeddedBus(Path(args.embedded_bus))
        if args.embedded_bus
        else KafkaBus(args.kafka, client_id="serve-loans", partitions=TEST_PARTITIONS, replication_factor=1)
    )
    runtime = ServiceRuntime(spec, args.db, bus, common)
    config = uvicorn.Config(
        create_app(runtime, args.token), host="127.0.0.1", port=args.port, log_level="warning", log_config=None
    )
    _ServeServer(config, runtime).run()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["consume", "serve-loans"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--kafka")
    parser.add_argument("--embedded-bus")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--until", type=int, help="stop once this many events were handled")
    parser.add_argument("--inbox-only", action="store_true", help="handler writes nothing but the inbox row")
    parser.add_argument(
        "--deferred-rows", action="store_true", help="handler rows written by the consumer's finish, one statement"
    )
    parser.add_argument("--port", type=int)
    parser.add_argument("--data-dir")
    parser.add_argument("--start-date")
    parser.add_argument("--day-seconds", type=float, default=0.0)
    parser.add_argument("--token", help="serve-loans: the bootstrap token its callers send")
    args = parser.parse_args()
    if args.command == "serve-loans":
        if args.token is None:
            parser.error("serve-loans needs --token")
        _serve_loans(args)
        return
    if args.until is None:
        parser.error("consume needs --until")
    asyncio.run(_consume(args))


if __name__ == "__main__":
    main()
