"""Events per second end to end through vcredit's messaging, next to raw aiokafka.

vcredit path, as in distributed mode: a producing service commits state changes with their
events into its outbox (``--per-transaction`` events per transaction) and its relay
publishes them to Kafka; a consuming service, in another process, applies each event in
its inbox transaction. Timed from the first outbox write until the consumer has applied
the last event. Two handlers: ``inbox`` (nothing but the inbox row: the machinery's own
cost) and ``row`` (one row written per event, like a projection update).

Raw path: aiokafka producer (same idempotent, acks=all settings) -> consumer group in the
same process, the same payload bytes and keys, same broker and partition count.

    python -m bench.bus            # uses VCREDIT_TEST_KAFKA / VCREDIT_TEST_DATABASE_URL or loopback
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.databases import add_database_argument, temporary_database
from shared.bus.kafka import KafkaBus
from shared.events import Envelope
from shared.messaging import Relay, emit
from tests.harness import create_probe_db, probe_event

PARTITIONS = 12
ROOT = Path(__file__).resolve().parents[1]


def _events(n: int) -> list[Envelope]:
    return [probe_event(f"4101000010{i % 100:02d}", i) for i in range(n)]


async def raw_kafka(bootstrap: str, n: int) -> float:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    bus = KafkaBus(bootstrap, partitions=PARTITIONS, replication_factor=1)
    await bus.ensure_topics([topic])
    payloads = [(e.key.encode(), e.to_bytes()) for e in _events(n)]
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=topic, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=100)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=2)
    await producer.start()
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
    futures = [await producer.send(topic, value=v, key=k) for k, v in payloads]
    await asyncio.gather(*futures)
    await task
    elapsed = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()
    return n / elapsed


async def vcredit_pipeline(bootstrap: str, admin_url: str, n: int, per_tx: int, handler: str) -> float:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    databases = AsyncExitStack()
    producer_url = await databases.enter_async_context(temporary_database(admin_url, prefix + "producer"))
    consumer_url = await databases.enter_async_context(temporary_database(admin_url, prefix + "consumer"))
    bus = KafkaBus(bootstrap, client_id="bench", partitions=PARTITIONS, replication_factor=1)
    await bus.start()
    await bus.ensure_topics([prefix + "registry.events"])
    engine, sessions = await create_probe_db(producer_url)
    (await create_probe_db(consumer_url))[0].sync_engine.dispose()
    command = [
        sys.executable,
        "-m",
        "tests.harness",
        "consume",
        "--db",
        consumer_url,
        "--prefix",
        prefix,
        "--kafka",
        bootstrap,
        "--until",
        str(n),
    ] + (["--inbox-only"] if handler == "inbox" else [])
    consumer = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    relay = Relay("probe", sessions, bus, topic_prefix=prefix)
    relay_task = asyncio.create_task(relay.run())
    events = _events(n)
    await asyncio.sleep(4)  # the consumer process starts and joins its group before the clock starts

    started = time.time()
    for i in range(0, n, per_tx):
        async with sessions() as session, session.begin():
            await emit(session, *events[i : i + per_tx])
    out, _ = await asyncio.wait_for(consumer.communicate(), 600)
    reached_at = json.loads(out.decode().strip().splitlines()[-1])["reached_at"]

    relay_task.cancel()
    await asyncio.gather(relay_task, return_exceptions=True)
    await bus.stop()
    await engine.dispose()
    await databases.aclose()
    return n / (reached_at - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kafka", default=os.environ.get("VCREDIT_TEST_KAFKA", "127.0.0.1:9092"))
    add_database_argument(parser)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()

    raw = await raw_kafka(args.kafka, args.events)
    rows: list[tuple[str, float, float | None, str]] = [("raw aiokafka produce -> consume", raw, None, "anchor")]
    for handler, per_tx, target in (("inbox", 50, ">= 50%"), ("row", 50, ""), ("inbox", 1, "")):
        n = args.events if per_tx > 1 else min(args.events, 5_000)
        rate = await vcredit_pipeline(args.kafka, args.database_url, n, per_tx, handler)
        rows.append((f"vcredit end to end, handler={handler}, {per_tx} ev/tx", rate, rate / raw, target))

    print(f"\nbus benchmark: {args.events} events, {PARTITIONS} partitions, {os.cpu_count()} cores")
    print(f"{'figure':<48} {'events/s':>10} {'of raw':>8}  target")
    for name, rate, ratio, target in rows:
        print(f"{name:<48} {rate:>10,.0f} {'' if ratio is None else f'{ratio:.0%}':>8}  {target}")


if __name__ == "__main__":
    asyncio.run(main())
