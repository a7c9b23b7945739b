"""The database dropping a service's connections (a restart, a failover), on a real
PostgreSQL: found by the PostgreSQL fault test (tests/e2e/test_faults.py).

The connections are ended with pg_terminate_backend, what a fast shutdown does to them,
without stopping the server other tests share."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bench.probe import ProbeHandler, applied_rows, create_probe_db, probe_consumer, probe_event
from shared.bus.base import Record
from shared.events import Envelope
from tests.support.infra import Infra, new_topic_prefix
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


async def test_a_consumer_whose_database_drops_it_waits_and_parks_nothing(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    kafka, pg = servers
    infra = Infra("kafka", tmp_path, new_topic_prefix(), kafka=kafka, pg_admin_url=pg)
    bus = infra.bus()
    await bus.start()
    topic = infra.topic_prefix + "registry.events"
    await bus.ensure_topics([topic, topic + ".dlq"])
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    probe = ProbeHandler()
    dropped = 0

    async def handler(session: AsyncSession, event: Envelope) -> None:
        # The first tries lose their connection, more of them than the consumer tries an
        # event before parking it: before the fix the event went to the dead-letter topic
        # and never reached the projection.
        nonlocal dropped
        if dropped < 4:
            dropped += 1
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        await probe(session, event)

    consumer = probe_consumer(sessions, bus, probe, infra.topic_prefix, max_attempts=2, backoff_seconds=0.01)
    consumer.handlers[next(iter(consumer.handlers))] = handler
    task = asyncio.create_task(consumer.run())
    try:
        event = probe_event("V1", 1)
        await bus.publish([Record(topic, event.key, event.to_bytes())])
        await wait_until(lambda: _applied(sessions), seconds=60, what="the event to be applied")
        assert [(v, s) for _, v, s in await applied_rows(sessions)] == [("V1", 1)]
        assert (dropped, consumer.stats.dead_lettered, consumer.stats.processed) == (4, 0, 1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.stop()
        await engine.dispose()
        await infra.drop_databases()


async def _applied(sessions: object) -> bool:
    return len(await applied_rows(sessions)) == 1  # type: ignore[arg-type]
