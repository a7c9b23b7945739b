"""Events per second end to end through vcredit's messaging, next to raw aiokafka.

vcredit path, as in distributed mode: a producing service commits state changes with their
events into its outbox (50, or 1, events per transaction, 16 transactions in flight) and its relay
publishes them to Kafka; a consuming service, in another process, applies each event in
its inbox transaction. Timed from the first outbox write until the consumer has applied
the last event. Two handlers: ``inbox`` (nothing but the inbox row: the machinery's own
cost) and ``row`` (one row written per event, like a projection update: kept by the handler
and written for the whole batch in one statement by the consumer's ``finish`` hook, as the
services' projections write theirs).

Raw path: aiokafka producer (same idempotent, acks=all settings) -> consumer group in the
same process, the same payload bytes and keys, same broker and partition count.

Beside them, the producing side's transactions alone at 1 event each (no relay, no
consumer): the ceiling of the 1 ev/tx row with this producer, whose three round trips per
transaction (BEGIN, INSERT, COMMIT) are the bench's, not the outbox's.

Targets (issue 27), shares of raw: inbox at 50 events per transaction >= 0.5, row >= 0.25,
1 event per transaction >= 0.05.

    python -m bench.bus [--events 20000]   # VCREDIT_TEST_KAFKA / VCREDIT_TEST_DATABASE_URL or loopback
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.databases import temporary_database
from bench.probe import create_probe_db, probe_event
from bench.report import Figure, Target
from bench.suite import Benchmark, Servers, main_one
from shared.bus.kafka import KafkaBus
from shared.db import create_sessionmaker
from shared.events import Envelope
from shared.messaging import Relay, emit, session_class_for

PARTITIONS = 12
# The producing service's transactions in flight at once, as its requests are under load
# (bench/api.py drives 16): one at a time, the figure at 1 event per transaction is the
# commit's fsync latency (~1.4 ms here), not what the outbox and relay can carry.
IN_FLIGHT = 16
ROOT = Path(__file__).resolve().parents[1]
# Issue 27's targets, as shares of raw aiokafka's rate measured in the same run.
HALF_OF_RAW = Target(">=", 0.5, ">= 0.5x raw aiokafka", on_ratio=True)
QUARTER_OF_RAW = Target(">=", 0.25, ">= 0.25x raw aiokafka", on_ratio=True)
TWENTIETH_OF_RAW = Target(">=", 0.05, ">= 0.05x raw aiokafka", on_ratio=True)


def _events(n: int) -> list[Envelope]:
    return [probe_event(f"4101000010{i % 100:02d}", i) for i in range(n)]


async def raw_kafka(bootstrap: str, n: int) -> float:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    bus = KafkaBus(bootstrap, partitions=PARTITIONS, replication_factor=1)
    await bus.ensure_topics([topic])
    payloads = [(e.key.encode(), e.to_bytes()) for e in _events(n)]
    async with AsyncExitStack() as stack:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=topic,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            request_timeout_ms=30_000,
        )
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=2, request_timeout_ms=30_000
        )
        await producer.start()
        stack.push_async_callback(producer.stop)
        received = 0

        async def consume() -> None:
            nonlocal received
            while received < n:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                received += sum(len(b) for b in batches.values())
                if batches:
                    await consumer.commit()

        started = time.perf_counter()
        task = asyncio.create_task(consume())
        stack.push_async_callback(_cancel, task)
        futures = [await producer.send(topic, value=v, key=k) for k, v in payloads]
        await asyncio.gather(*futures)
        await task
        elapsed = time.perf_counter() - started
    return n / elapsed


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _reap(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


async def vcredit_pipeline(bootstrap: str, admin_url: str, n: int, per_tx: int, handler: str) -> float:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    # Unwound in reverse on the way out, failure or not: relay, consumer process, engine, bus, databases.
    async with AsyncExitStack() as stack:
        producer_url = await stack.enter_async_context(temporary_database(admin_url, prefix + "producer"))
        consumer_url = await stack.enter_async_context(temporary_database(admin_url, prefix + "consumer"))
        bus = KafkaBus(bootstrap, client_id="bench", partitions=PARTITIONS, replication_factor=1)
        await bus.start()
        stack.push_async_callback(bus.stop)
        await bus.ensure_topics([prefix + "registry.events"])
        engine, _ = await create_probe_db(producer_url)
        stack.push_async_callback(engine.dispose)
        # As in a service (shared/runtime.py): a commit that wrote outbox rows wakes the relay.
        sessions = create_sessionmaker(engine, session_class_for(lambda: relay.wake()))
        await (await create_probe_db(consumer_url))[0].dispose()
        command = [
            sys.executable,
            "-m",
            "bench.probe",
            "consume",
            "--db",
            consumer_url,
            "--prefix",
            prefix,
            "--kafka",
            bootstrap,
            "--until",
            str(n),
        ] + (["--inbox-only"] if handler == "inbox" else ["--deferred-rows"])
        consumer = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        stack.push_async_callback(_reap, consumer)
        relay = Relay("probe", sessions, bus, topic_prefix=prefix)
        stack.push_async_callback(_cancel, asyncio.create_task(relay.run()))
        events = _events(n)
        await asyncio.sleep(4)  # the consumer process starts and joins its group before the clock starts

        started = time.time()
        await _produce(sessions, events, per_tx)
        out, _ = await asyncio.wait_for(consumer.communicate(), 600)
        if consumer.returncode != 0:
            raise RuntimeError(f"the consumer process exited with status {consumer.returncode}")
        reached_at = float(json.loads(out.decode().strip().splitlines()[-1])["reached_at"])
    return n / (reached_at - started)


async def _produce(sessions: async_sessionmaker[AsyncSession], events: Sequence[Envelope], per_tx: int) -> None:
    """Emit ``events``, ``per_tx`` to a transaction, ``IN_FLIGHT`` transactions at a time."""
    transactions = iter(range(0, len(events), per_tx))

    async def produce() -> None:
        for i in transactions:
            async with sessions() as session, session.begin():
                await emit(session, *events[i : i + per_tx])

    await asyncio.gather(*(produce() for _ in range(IN_FLIGHT)))


async def producer_alone(admin_url: str, n: int) -> float:
    """The producing side's own transactions at 1 event each, 16 in flight, with no relay
    and no consumer: the most the 1 ev/tx row can reach with this producer. Each is a
    SQLAlchemy session's BEGIN, one outbox INSERT and COMMIT, three round trips whatever
    the outbox does (a service's transaction does its own work besides)."""
    async with temporary_database(admin_url, f"bench{uuid.uuid4().hex[:8]}.alone") as url:
        engine, sessions = await create_probe_db(url)
        try:
            events = _events(n)
            started = time.perf_counter()
            await _produce(sessions, events, 1)
            return n / (time.perf_counter() - started)
        finally:
            await engine.dispose()


@dataclass(frozen=True)
class Sizes:
    events: int


async def measure(servers: Servers, sizes: Sizes) -> list[Figure]:
    raw = await raw_kafka(servers.kafka, sizes.events)
    anchor = f"raw aiokafka produce → consume, {PARTITIONS} partitions"
    figures = []
    for handler, per_tx, target in (
        ("inbox", 50, HALF_OF_RAW),
        ("row", 50, QUARTER_OF_RAW),
        ("inbox", 1, TWENTIETH_OF_RAW),
    ):
        # One transaction per event is slow enough that 5,000 tell the rate.
        n = sizes.events if per_tx > 1 else min(sizes.events, 5_000)
        rate = await vcredit_pipeline(servers.kafka, servers.database_url, n, per_tx, handler)
        name = f"outbox → Kafka → inbox, handler={handler}, {per_tx} ev/tx, {n:,} events"
        figures.append(Figure(name, rate, "events/s", target, anchor, raw))
    n = min(sizes.events, 5_000)
    alone = await producer_alone(servers.database_url, n)
    name = f"  the producing transactions alone (1 ev/tx, no relay, no consumer), {n:,} events"
    figures.append(Figure(name, alone, "events/s", None, anchor, raw))
    return figures


BENCHMARK = Benchmark("bus", full=Sizes(events=20_000), quick=Sizes(events=1_000), measure=measure)

if __name__ == "__main__":
    main_one(BENCHMARK, __doc__)
