"""The delivery guarantees of issue 2, each run on both backends with the same body:
embedded (SQLite + SQLite log bus) and real Kafka + PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.probe import (
    ProbeHandler,
    ProbeHappened,
    applied_count,
    applied_rows,
    create_probe_db,
    probe_consumer,
    probe_event,
)
from shared.bus.base import Bus, Message, Record
from shared.cloudevents import is_kafka_header as is_cloudevent_header
from shared.cloudevents import kafka_headers
from shared.events import Envelope, parse_payload
from shared.logs import ContextFilter
from shared.messaging import Relay, emit, list_dead_letters, read_to_end, replay_dead_letters
from shared.messaging.headers import H_EVENT_ID
from shared.platform_tables import outbox
from tests.conftest import Infra
from tests.support.system import System
from tests.support.waiting import wait_until


async def _publish(bus: Bus, infra: Infra, events: Sequence[Envelope]) -> None:
    # With the CloudEvents headers, as the relay publishes.
    await bus.publish([Record(infra.topic_prefix + e.topic, e.key, e.to_bytes(), kafka_headers(e)) for e in events])


async def _start(bus: Bus, infra: Infra) -> None:
    await bus.start()
    topics = [infra.topic_prefix + "registry.events"]
    await bus.ensure_topics(topics + [t + ".dlq" for t in topics])


async def _run(coro_task: asyncio.Task[None]) -> None:
    coro_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await coro_task


async def test_state_change_reaches_another_service(infra: Infra) -> None:
    async with System(infra, ["registry", "risk"]) as system:
        r = await system["registry"].post("/v1/townships", json={"code": "410100001", "name": "湖滨镇"})
        assert r.status_code == 201, r.text
        r = await system["registry"].post(
            "/v1/villages", json={"code": "410100001001", "name": "东村", "township_code": "410100001"}
        )
        assert r.status_code == 201, r.text

        async def risk_knows_village() -> bool:
            return (await system["risk"].get("/v1/villages/410100001001")).status_code == 200

        await wait_until(risk_knows_village, what="risk to project the village")
        village = (await system["risk"].get("/v1/villages/410100001001")).json()
        assert (village["code"], village["name"], village["township_code"]) == ("410100001001", "东村", "410100001")
        assert (village["npl_ratio"], village["outstanding"], village["frozen"]) == ("0.0000", "0.00", False)

        async def township_counts_village() -> bool:
            r = await system["risk"].get("/v1/townships/410100001")
            return r.status_code == 200 and r.json()["villages"] == 1

        await wait_until(township_counts_village, what="risk to project the township")


async def test_duplicate_delivery_changes_state_once(infra: Infra) -> None:
    bus = infra.bus()
    await _start(bus, infra)
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    consumer = probe_consumer(sessions, bus, ProbeHandler(), infra.topic_prefix)
    task = asyncio.create_task(consumer.run())
    try:
        event = probe_event("V1", 1)
        await _publish(bus, infra, [event, event])
        await _publish(bus, infra, [event, probe_event("V1", 2)])
        await wait_until(lambda: _stats_seen(consumer, 4), what="four deliveries")
        rows = await applied_rows(sessions)
        assert [(v, s) for _, v, s in rows] == [("V1", 1), ("V1", 2)]
        assert consumer.stats.duplicates == 2
    finally:
        await _run(task)
        await bus.stop()
        await engine.dispose()


async def _stats_seen(consumer: object, n: int) -> bool:
    stats = consumer.stats  # type: ignore[attr-defined]
    return bool(stats.processed + stats.duplicates >= n)


async def test_consumer_killed_mid_batch_resumes_without_loss_or_double(infra: Infra) -> None:
    total = 120
    bus = infra.bus()
    await _start(bus, infra)
    db_url = await infra.database_url("probe")
    engine, sessions = await create_probe_db(db_url)
    try:
        await _publish(bus, infra, [probe_event(f"V{i % 7}", i) for i in range(total)])
        command = [
            sys.executable,
            "-m",
            "bench.probe",
            "consume",
            "--db",
            db_url,
            "--prefix",
            infra.topic_prefix,
            *infra.bus_args(),
            "--delay",
            "0.02",
            "--batch",
            "10",
            "--until",
            str(total),
        ]
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        first = await asyncio.create_subprocess_exec(*command, stdout=subprocess.DEVNULL, env=env)
        try:
            await wait_until(lambda: _at_least(sessions, 20), seconds=60, what="the first consumer to apply 20")
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        killed_at = await applied_count(sessions)
        assert 0 < killed_at < total, "the kill must land mid-stream"

        second = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(second.communicate(), 120)
        assert second.returncode == 0, err.decode()[-3000:]
        stats = json.loads(out.decode().strip().splitlines()[-1])

        rows = await applied_rows(sessions)
        assert sorted(s for _, _, s in rows) == list(range(total)), "every event applied exactly once"
        # What the first process had applied but not committed came again and was skipped.
        assert stats["processed"] == total - killed_at
    finally:
        await bus.stop()
        await engine.dispose()


async def _at_least(sessions: object, n: int) -> bool:
    return await applied_count(sessions) >= n  # type: ignore[arg-type]


class _DiesAfterPublish:
    """A bus whose publish succeeds and then the process 'dies' before the relay marks sent."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def send(self, records: Sequence[Record]) -> asyncio.Future[None]:
        await self.bus.publish(records)
        raise SystemExit("relay killed after publishing")


async def test_relay_killed_after_publish_republishes_and_inbox_absorbs(infra: Infra) -> None:
    bus = infra.bus()
    await _start(bus, infra)
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    events = [probe_event("V9", i) for i in range(10)]
    async with sessions() as session, session.begin():
        await emit(session, *events)

    dying = Relay("probe", sessions, _DiesAfterPublish(bus), topic_prefix=infra.topic_prefix)  # type: ignore[arg-type]
    with pytest.raises(SystemExit):
        await dying.relay_once()
    assert await dying.backlog() == 10, "nothing was marked sent"

    restarted = Relay("probe", sessions, bus, topic_prefix=infra.topic_prefix)
    assert await restarted.relay_once() == 10
    assert await restarted.backlog() == 0

    consumer = probe_consumer(sessions, bus, ProbeHandler(), infra.topic_prefix)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(lambda: _stats_seen(consumer, 20), what="both copies of every event")
        assert consumer.stats.duplicates == 10
        assert [s for _, _, s in await applied_rows(sessions)] == list(range(10))
    finally:
        await _run(task)
        await bus.stop()
        await engine.dispose()


class _Records(logging.Handler):
    """Keeps the records shared.messaging logs, with the ids shared.logs puts on them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_poison_event_is_dead_lettered_then_replayed(infra: Infra) -> None:
    captured = _Records()
    logging.getLogger("shared.messaging").addHandler(captured)
    bus = infra.bus()
    await _start(bus, infra)
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    handler = ProbeHandler()
    consumer = probe_consumer(sessions, bus, handler, infra.topic_prefix, max_attempts=3, backoff_seconds=0.01)
    task = asyncio.create_task(consumer.run())
    try:
        poison = probe_event("V3", 2, poison=True)
        await _publish(bus, infra, [probe_event("V3", 1), poison, probe_event("V3", 3)])
        await wait_until(lambda: _at_least(sessions, 2), what="the healthy events")
        await wait_until(lambda: _dead_lettered(consumer), what="the poison event to be parked")
        assert consumer.stats.retries == 2, "tried three times in all"
        assert [s for _, _, s in await applied_rows(sessions)] == [1, 3]
        metrics = consumer.metrics.registry
        labels = {"topic": "registry.events", "type": poison.type}
        assert metrics.get_sample_value("vcredit_event_handler_retries_total", labels) == 2
        assert metrics.get_sample_value("vcredit_events_consumed_total", {**labels, "outcome": "dead_lettered"}) == 1
        assert metrics.get_sample_value("vcredit_events_consumed_total", {**labels, "outcome": "applied"}) == 2
        await consumer.sample_bus()
        assert metrics.get_sample_value("vcredit_dlq_messages", {"topic": "registry.events.dlq"}) == 1
        about_poison = [r for r in captured.records if "poison" in r.getMessage() or "parking" in r.getMessage()]
        assert len(about_poison) == 4, "three failed tries and the parking"
        assert {(r.service, r.event_id) for r in about_poison} == {("probe", str(poison.event_id))}  # type: ignore[attr-defined]

        letters = await list_dead_letters(bus, "probe", ["registry.events"], topic_prefix=infra.topic_prefix)
        assert [(d.event_id, d.attempts, d.topic) for d in letters] == [(str(poison.event_id), 3, "registry.events")]
        assert "poison from 110***********663X" in letters[0].error, "the ID number is masked"

        handler.refuse_poison = False  # the operator fixed the cause
        replayed = await replay_dead_letters(bus, "probe", ["registry.events"], topic_prefix=infra.topic_prefix)
        assert [d.event_id for d in replayed] == [str(poison.event_id)]
        await wait_until(lambda: _at_least(sessions, 3), what="the replayed event")
        assert sorted(s for _, _, s in await applied_rows(sessions)) == [1, 2, 3]

        again = await replay_dead_letters(
            bus, "probe", ["registry.events"], topic_prefix=infra.topic_prefix, idle_ms=1500
        )
        assert again == [], "a dead letter is replayed once"
        # The replayed record is the same CloudEvent as the one that was parked.
        stored = await read_to_end(bus, "cloudevents-reader", [infra.topic_prefix + "registry.events"], idle_ms=1000)
        (replayed_record,) = [m for m in stored if "vcredit.replayed_from" in m.headers]
        assert {k: v for k, v in replayed_record.headers.items() if is_cloudevent_header(k)} == kafka_headers(poison)
    finally:
        logging.getLogger("shared.messaging").removeHandler(captured)
        await _run(task)
        await bus.stop()
        await engine.dispose()


async def _dead_lettered(consumer: object) -> bool:
    return bool(consumer.stats.dead_lettered == 1)  # type: ignore[attr-defined]


async def _stable_members(infra: Infra, group: str, n: int) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        (described,) = response.to_object()["groups"]
        return bool(described["state"] == "Stable" and len(described["members"]) == n)
    finally:
        await admin.close()


async def test_events_of_one_village_arrive_in_order(infra: Infra) -> None:
    bus = infra.bus()
    await _start(bus, infra)
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    # Two members of one group on Kafka share the partitions; embedded runs one member.
    members = 2 if infra.backend == "kafka" else 1
    consumers = [probe_consumer(sessions, bus, ProbeHandler(), infra.topic_prefix) for _ in range(members)]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    relay = Relay("probe", sessions, bus, topic_prefix=infra.topic_prefix, batch_size=37)
    try:
        if members == 2:
            # Publish only once both members hold partitions, or one may drain everything first.
            await wait_until(lambda: _stable_members(infra, consumers[0].group, 2), seconds=60, what="two members")
        villages = [f"41010000{i}" for i in range(8)]
        seq = defaultdict(int)
        for round_ in range(30):  # many small transactions, villages interleaved
            async with sessions() as session, session.begin():
                batch = []
                for v in villages[round_ % 3 :: 2]:
                    seq[v] += 1
                    batch.append(probe_event(v, seq[v]))
                await emit(session, *batch)
        while await relay.relay_once():
            pass
        expected = sum(seq.values())
        await wait_until(lambda: _at_least(sessions, expected), seconds=60, what=f"{expected} events")
        by_village: dict[str, list[int]] = defaultdict(list)
        for _, village, s in await applied_rows(sessions):
            by_village[village].append(s)
        assert {v: s for v, s in by_village.items()} == {v: list(range(1, n + 1)) for v, n in seq.items()}
        if members == 2:
            assert all(c.stats.processed > 0 for c in consumers), "both members took partitions"
    finally:
        for t in tasks:
            await _run(t)
        await bus.stop()
        await engine.dispose()


class _Deferring(ProbeHandler):
    """Defers its row to the consumer's ``finish``, as scoring defers registrations' ratings."""

    async def __call__(self, session: AsyncSession, event: Envelope) -> None:
        probe = parse_payload(event, ProbeHappened)
        if probe.poison:
            raise RuntimeError(f"probe {probe.village}/{probe.seq} refused")
        session.info.setdefault("deferred", []).append(event)

    @staticmethod
    async def finish(session: AsyncSession) -> None:
        for event in session.info.pop("deferred", []):
            await ProbeHandler()(session, event)


async def test_finish_runs_after_a_batch_and_after_each_event_applied_alone(infra: Infra) -> None:
    bus = infra.bus()
    await _start(bus, infra)
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    consumer = probe_consumer(
        sessions, bus, _Deferring(), infra.topic_prefix, finish=_Deferring.finish, max_attempts=2, backoff_seconds=0.01
    )
    task = asyncio.create_task(consumer.run())
    try:
        # A healthy batch: finish writes every row in the batch's transaction.
        await _publish(bus, infra, [probe_event("V5", i) for i in range(1, 6)])
        await wait_until(lambda: _at_least(sessions, 5), what="the deferred rows of a batch")
        # A batch with a poison event is rolled back and applied one by one: finish runs
        # after each event alone, so the healthy ones still get their rows, once.
        await _publish(bus, infra, [probe_event("V5", 6), probe_event("V5", 7, poison=True), probe_event("V5", 8)])
        await wait_until(lambda: _dead_lettered(consumer), what="the poison event to be parked")
        await wait_until(lambda: _at_least(sessions, 7), what="the deferred rows applied alone")
        assert [s for _, _, s in await applied_rows(sessions)] == [1, 2, 3, 4, 5, 6, 8]
    finally:
        await _run(task)
        await bus.stop()
        await engine.dispose()


async def _emit_rounds(sessions: async_sessionmaker[AsyncSession], rounds: int) -> dict[str, list[str]]:
    """Many small transactions, villages interleaved; each village's event ids in order."""
    villages = [f"41010000{i}" for i in range(8)]
    emitted: dict[str, list[str]] = defaultdict(list)
    for round_ in range(rounds):
        async with sessions() as session, session.begin():
            batch = [probe_event(v, len(emitted[v]) + 1) for v in villages[round_ % 3 :: 2]]
            await emit(session, *batch)
        for e in batch:
            emitted[e.key].append(str(e.event_id))
    return emitted


def _first_copies(messages: Sequence[Message]) -> dict[str, list[str]]:
    """Each key's event ids in the order their first copies were stored."""
    seen: set[str] = set()
    by_key: dict[str, list[str]] = defaultdict(list)
    for m in messages:
        event_id = m.headers[H_EVENT_ID]
        if event_id not in seen:
            seen.add(event_id)
            by_key[m.key or ""].append(event_id)
    return by_key


class _FailsOneBatch:
    """A bus on which the ``failing``-th batch handed over is never stored: its
    acknowledgement fails a moment later. Behind it, as on Kafka's idempotent producer (a
    partition's later batches refused after a gap in its sequence), records of the failed
    batch's keys are refused and the others stored."""

    def __init__(self, bus: Bus, failing: int) -> None:
        self.bus = bus
        self.failing = failing
        self.handed = 0
        self.refused: set[str] = set()

    async def send(self, records: Sequence[Record]) -> asyncio.Future[None]:
        self.handed += 1
        if self.handed == self.failing:
            self.refused = {r.key for r in records}
        stored = [r for r in records if r.key not in self.refused]
        if len(stored) == len(records):
            return await self.bus.send(records)
        if stored:
            await self.bus.publish(stored)

        async def fail() -> None:
            await asyncio.sleep(0.3)
            raise ConnectionError("the broker went away")

        return asyncio.ensure_future(fail())


async def _sent_ids(sessions: async_sessionmaker[AsyncSession]) -> tuple[list[int], list[int]]:
    async with sessions() as session:
        rows = (await session.execute(select(outbox.c.id, outbox.c.sent_at).order_by(outbox.c.id))).all()
    return [r.id for r in rows if r.sent_at is not None], [r.id for r in rows if r.sent_at is None]


async def test_relay_failed_batch_marks_nothing_after_it_and_the_retry_keeps_each_key_in_order(infra: Infra) -> None:
    bus = infra.bus()
    await _start(bus, infra)
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    try:
        emitted = await _emit_rounds(sessions, 30)
        total = sum(map(len, emitted.values()))
        failing = _FailsOneBatch(bus, failing=3)
        relay = Relay("probe", sessions, failing, topic_prefix=infra.topic_prefix, batch_size=7, pipeline_batches=4)  # type: ignore[arg-type]
        with pytest.raises(ConnectionError):
            await relay.drain()
        assert failing.handed > 3, "batches behind the failed one were handed over"
        sent, unsent = await _sent_ids(sessions)
        assert len(sent) == 2 * 7 and max(sent) < min(unsent), "the two batches before it, and nothing after"

        retried = Relay("probe", sessions, bus, topic_prefix=infra.topic_prefix, batch_size=7, pipeline_batches=4)
        assert await retried.drain() == total - 2 * 7
        assert await retried.backlog() == 0
        stored = await read_to_end(bus, "order-reader", [infra.topic_prefix + "registry.events"], idle_ms=1500)
        assert len(stored) >= total
        assert _first_copies(stored) == emitted
    finally:
        await bus.stop()
        await engine.dispose()


async def test_pipelined_relay_publishes_what_the_batch_at_a_time_relay_publishes(infra: Infra) -> None:
    """drain (pipelined) against relay_once in a loop (one batch published, acknowledged and
    marked before the next is read, the relay before issue 27), on the same outbox."""
    bus = infra.bus()
    await _start(bus, infra)
    pipelined_prefix = infra.topic_prefix + "pipelined."
    await bus.ensure_topics([pipelined_prefix + "registry.events"])
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    try:
        await _emit_rounds(sessions, 40)
        one_at_a_time = Relay("probe", sessions, bus, topic_prefix=infra.topic_prefix, batch_size=9)
        while await one_at_a_time.relay_once():
            pass
        async with sessions() as session, session.begin():
            await session.execute(update(outbox).values(sent_at=None))
        pipelined = Relay("probe", sessions, bus, topic_prefix=pipelined_prefix, batch_size=9, pipeline_batches=3)
        await pipelined.drain()
        assert await pipelined.backlog() == 0

        def stored(messages: Sequence[Message]) -> list[tuple[int, str | None, bytes, dict[str, str]]]:
            return [(m.partition, m.key, m.value, dict(m.headers)) for m in messages]

        before = await read_to_end(bus, "compare", [infra.topic_prefix + "registry.events"], idle_ms=1500)
        after = await read_to_end(bus, "compare", [pipelined_prefix + "registry.events"], idle_ms=1500)
        assert sorted(stored(after), key=lambda m: m[0]) == sorted(stored(before), key=lambda m: m[0])
    finally:
        await bus.stop()
        await engine.dispose()


class _CommitsLateRowOnFirstSend:
    """A bus that, while the relay hands over its first batch, lets a transaction commit
    whose outbox row has a lower id than that batch's (it took its id first)."""

    def __init__(self, bus: Bus, late: AsyncSession) -> None:
        self.bus = bus
        self.late: AsyncSession | None = late

    async def send(self, records: Sequence[Record]) -> asyncio.Future[None]:
        if self.late is not None:
            late, self.late = self.late, None
            await late.commit()
        return await self.bus.send(records)


async def test_relay_single_statements_read_and_mark_what_its_transactions_did(infra: Infra) -> None:
    """On PostgreSQL the relay reads and marks in lone statements outside a transaction
    (issue 27); on the same outbox they find and mark the rows its transactions do (the path
    SQLite keeps, and PostgreSQL's before)."""
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    try:
        await _emit_rounds(sessions, 12)
        single = Relay("probe", sessions, infra.bus(), batch_size=7)
        transactions = Relay("probe", sessions, infra.bus(), batch_size=7)
        transactions._single_statements = None
        _, ids = await _sent_ids(sessions)
        for skip in ((), set(ids[1:12:3])):
            assert await single._unsent(skip) == await transactions._unsent(skip)
        first = await single._unsent(())
        await single._mark_sent(first[:3])
        await transactions._mark_sent(first[3:])
        sent, unsent = await _sent_ids(sessions)
        assert sent == [row.id for row in first] and unsent == ids[7:]
        assert await single._unsent(()) == await transactions._unsent(())
    finally:
        await engine.dispose()


async def test_relay_publishes_a_row_committed_late_below_those_in_flight(infra: Infra) -> None:
    if infra.backend == "embedded":
        pytest.skip("SQLite has one writer at a time: no transaction commits an older id late")
    bus = infra.bus()
    await _start(bus, infra)
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    try:
        late_event = probe_event("V1", 1)
        async with sessions() as late:
            await late.begin()
            await emit(late, late_event)  # takes the lowest id, and waits
            async with sessions() as session, session.begin():
                await emit(session, *[probe_event("V2", i) for i in range(20)])
            relay = Relay(
                "probe",
                sessions,
                _CommitsLateRowOnFirstSend(bus, late),  # type: ignore[arg-type]
                topic_prefix=infra.topic_prefix,
                batch_size=5,
                pipeline_batches=4,
            )
            assert await relay.drain() == 21, "the late row goes in the same round"
        assert await relay.backlog() == 0
        stored = await read_to_end(bus, "late-reader", [infra.topic_prefix + "registry.events"], idle_ms=1500)
        assert str(late_event.event_id) in {m.headers[H_EVENT_ID] for m in stored}
    finally:
        await bus.stop()
        await engine.dispose()


async def test_deferred_probe_rows_are_the_rows_written_one_by_one(infra: Infra) -> None:
    """bench/bus.py's row handler (rows kept by the handler, one INSERT per batch in finish)
    against the handler writing its row itself, on the same events, a poison one among them."""
    bus = infra.bus()
    await _start(bus, infra)
    events = [probe_event(f"V{i % 3}", i, poison=i == 7) for i in range(1, 13)]
    await _publish(bus, infra, events)
    applied: dict[bool, list[tuple[str, int]]] = {}
    for deferred in (False, True):
        engine, sessions = await create_probe_db(await infra.database_url(f"probe{int(deferred)}"))
        prefix_consumer = probe_consumer(
            sessions,
            bus,
            ProbeHandler(deferred=deferred),
            infra.topic_prefix,
            max_attempts=1,
            backoff_seconds=0.01,
        )
        prefix_consumer.name = f"probe{int(deferred)}"  # a group of its own: each reads everything
        task = asyncio.create_task(prefix_consumer.run())
        try:
            await wait_until(lambda c=prefix_consumer: _stats_seen(c, 11), what="the healthy events")  # type: ignore[misc]
            await wait_until(lambda c=prefix_consumer: _dead_lettered(c), what="the poison event")  # type: ignore[misc]
            applied[deferred] = [(v, s) for _, v, s in await applied_rows(sessions)]
        finally:
            await _run(task)
            await engine.dispose()
    await bus.stop()
    assert (
        sorted(applied[True])
        == sorted(applied[False])
        == sorted((e.key, i + 1) for i, e in enumerate(events) if i != 6)
    )
