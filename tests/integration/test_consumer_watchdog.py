"""A consumer that hangs for good (issue 21 item 8), reproduced on purpose on both backends:
a group member that stops fetching while events pile up, one whose fetch never returns (as
aiokafka's getmany does while it waits for an assignment that never comes), and members that
keep hanging until the service reports itself not live. The watchdog (shared/messaging/
watchdog.py) must see each, replace the member, and the inbox catch up with every event once.

The times to detect and to recover are printed whatever pytest's -r flags."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import pytest

from bench.probe import ProbeHandler, applied_rows, create_probe_db, probe_consumer, probe_event
from shared.bus.base import Bus, BusConsumer, Message, Record
from shared.bus.kafka import KafkaBusConsumer
from shared.messaging import Consumer
from tests.conftest import Infra
from tests.support.system import System
from tests.support.waiting import wait_until


def _stall_seconds(infra: Infra) -> float:
    # Above what joining the group takes on Kafka (the broker holds a new group's first
    # rebalance for 3 s; a busy two-core machine adds to it), short enough to run.
    return 10.0 if infra.backend == "kafka" else 2.0


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def errors() -> Iterator[_Records]:
    records = _Records()
    logger = logging.getLogger("shared.messaging")
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)


class _HangingMember:
    """A real group member whose getmany does not return until released: it has joined the
    group and holds its partitions, and takes nothing."""

    def __init__(self, real: BusConsumer, release: asyncio.Event) -> None:
        self.real = real
        self.release = release

    async def start(self) -> None:
        await self.real.start()

    async def stop(self) -> None:
        await self.real.stop()

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Message]:
        await self.release.wait()
        return await self.real.getmany(timeout_ms, max_records)

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        await self.real.commit(offsets)

    async def lag(self) -> dict[tuple[str, int], int]:
        return await self.real.lag()

    async def sizes(self, topics: Sequence[str]) -> dict[str, int]:
        return await self.real.sizes(topics)


class _Hang:
    """Makes the next ``members`` group members a bus hands out hang (``None``: all of them)."""

    def __init__(self, members: int | None) -> None:
        self.left = members
        self.release = asyncio.Event()
        self.hung = 0

    def patch(self, monkeypatch: pytest.MonkeyPatch, bus_class: type[Any]) -> None:
        original = bus_class.consumer

        def consumer(bus: Bus, group: str, topics: Sequence[str]) -> BusConsumer:
            real: BusConsumer = original(bus, group, topics)
            if self.left is not None and self.left <= 0:
                return real
            if self.left is not None:
                self.left -= 1
            self.hung += 1
            return _HangingMember(real, self.release)

        monkeypatch.setattr(bus_class, "consumer", consumer)


async def _publish(bus: Bus, infra: Infra, first: int, n: int) -> None:
    events = [probe_event(f"V{i % 5}", i) for i in range(first, first + n)]
    await bus.publish([Record(infra.topic_prefix + e.topic, e.key, e.to_bytes()) for e in events])


def _stalls(consumer: Consumer) -> float:
    return consumer.metrics.registry.get_sample_value("vcredit_consumer_stalls_total") or 0.0


async def _applied(sessions: Any) -> list[int]:
    return sorted(seq for _, _, seq in await applied_rows(sessions))


@contextlib.asynccontextmanager
async def _probe(infra: Infra, bus: Bus, **options: Any) -> AsyncIterator[tuple[Consumer, Any]]:
    await bus.start()
    topics = [infra.topic_prefix + "registry.events"]
    await bus.ensure_topics(topics + [t + ".dlq" for t in topics])
    engine, sessions = await create_probe_db(await infra.database_url("probe"))
    consumer = probe_consumer(sessions, bus, ProbeHandler(), infra.topic_prefix, **options)
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer, sessions
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.stop()
        await engine.dispose()


def _print(capsys: pytest.CaptureFixture[str], title: str, lines: list[str]) -> None:
    text = "\n".join([f"--- fault injection: {title}", *(f"    {line}" for line in lines)])
    with capsys.disabled():
        print("\n" + text, flush=True)


async def test_a_member_that_stops_fetching_is_replaced_and_the_inbox_catches_up(
    infra: Infra, errors: _Records, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = _stall_seconds(infra)
    bus = infra.bus()
    async with _probe(infra, bus, stall_seconds=limit) as (consumer, sessions):
        await _publish(bus, infra, 0, 20)
        await wait_until(lambda: _has(sessions, 20), seconds=60, what="the first 20 events applied")
        stalls_before = _stalls(consumer)
        live = consumer._live
        assert live is not None
        # The member goes silent: joined, heartbeating, holding its partitions, fetching nothing.
        if isinstance(live, KafkaBusConsumer):
            real = live._consumer
            real.pause(*real.assignment())
            how = "its partitions paused (aiokafka pause())"
        else:
            # The embedded log has no pause(): its reads find nothing from now on (a getmany
            # under way included, which reads again when woken).
            async def nothing(max_records: int) -> list[Message]:
                return []

            live._fetch = nothing  # type: ignore[attr-defined]
            how = "its reads of the log finding nothing"
        silenced = time.monotonic()
        await _publish(bus, infra, 20, 30)
        await wait_until(
            lambda: _more(consumer, stalls_before), seconds=limit * 3 + 30, what="the watchdog to see the stall"
        )
        detected = time.monotonic() - silenced
        await wait_until(lambda: _has(sessions, 50), seconds=60, what="the inbox to catch up")
        recovered = time.monotonic() - silenced - detected
        assert await _applied(sessions) == list(range(50)), "every event applied exactly once"
        assert consumer._live is not live, "a new group member took over"
    stalled = [m for m in errors.messages if "stalled" in m]
    assert stalled and "events waiting and none taken" in stalled[0], errors.messages
    _print(
        capsys,
        f"{infra.backend}: a group member that stops fetching",
        [
            f"member silenced ({how}) with 30 events to come; stall limit {limit:.0f}s",
            f"stall detected after {detected:.1f}s: {stalled[0]}",
            f"inbox caught up {recovered:.1f}s later: 50 events applied once each",
        ],
    )


async def test_a_member_whose_fetch_never_returns_is_replaced(
    infra: Infra, errors: _Records, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = _stall_seconds(infra)
    bus = infra.bus()
    hang = _Hang(members=1)
    hang.patch(monkeypatch, type(bus))
    began = time.monotonic()
    async with _probe(infra, bus, stall_seconds=limit) as (consumer, sessions):
        await _publish(bus, infra, 0, 40)
        await wait_until(lambda: _more(consumer, 0), seconds=limit * 3 + 30, what="the watchdog to see the stall")
        detected = time.monotonic() - began
        await wait_until(lambda: _has(sessions, 40), seconds=60, what="the inbox to catch up")
        recovered = time.monotonic() - began - detected
        assert await _applied(sessions) == list(range(40))
        assert hang.hung == 1 and _stalls(consumer) == 1
    stalled = [m for m in errors.messages if "stalled" in m]
    # On Kafka the hung member holds its partitions, so its lag tells the stall as soon as its
    # blocked call does: either fact may come first.
    facts = ("getmany call to the bus has not returned", "40 events waiting and none taken")
    assert stalled and any(f in stalled[0] for f in facts), errors.messages
    _print(
        capsys,
        f"{infra.backend}: a group member whose fetch never returns",
        [
            f"stall limit {limit:.0f}s; detected after {detected:.1f}s: {stalled[0]}",
            f"inbox caught up {recovered:.1f}s later: 40 events applied once each",
        ],
    )


async def test_members_that_keep_hanging_make_the_service_not_live_until_one_moves(
    infra: Infra, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = _stall_seconds(infra)
    hang = _Hang(members=None)
    hang.patch(monkeypatch, type(infra.bus()))
    began = time.monotonic()
    async with System(infra, ["registry", "risk"], consumer_stall_seconds=limit, consumer_stall_restarts=1) as system:
        risk = system["risk"]

        async def not_live() -> bool:
            return (await risk.get("/healthz")).status_code == 503

        await wait_until(not_live, seconds=limit * 6 + 60, what="risk to report itself not live")
        given_up = time.monotonic() - began
        body = (await risk.get("/healthz")).json()
        assert body["code"] == "NOT_LIVE" and "stalled 2 times in a row" in body["checks"]["risk-consumer"], body
        ready = await risk.get("/readyz")
        assert ready.status_code == 503 and "risk-consumer" in ready.json()["checks"], ready.text
        # Registry consumes nothing: its own health is untouched.
        assert (await system["registry"].get("/healthz")).json() == {"status": "ok"}

        hang.release.set()
        released = time.monotonic()
        r = await system["registry"].post("/v1/townships", json={"code": "410100002", "name": "湖滨镇"})
        assert r.status_code == 201, r.text

        async def live_and_projected() -> bool:
            projected = (await risk.get("/v1/townships/410100002")).status_code == 200
            return projected and (await risk.get("/healthz")).status_code == 200

        await wait_until(live_and_projected, seconds=60, what="risk to project the township and be live again")
        back = time.monotonic() - released
    _print(
        capsys,
        f"{infra.backend}: group members that keep hanging",
        [
            f"stall limit {limit:.0f}s, 1 replacement allowed: /healthz 503 after {given_up:.1f}s"
            f" ({hang.hung} members hung): {body['detail']}",
            f"hang lifted: the township projected and /healthz 200 {back:.1f}s later",
        ],
    )


async def _has(sessions: Any, n: int) -> bool:
    return len(await applied_rows(sessions)) >= n


async def _more(consumer: Consumer, than: float) -> bool:
    return _stalls(consumer) > than


async def test_a_consumer_task_that_ends_cancelled_makes_the_service_not_live(infra: Infra) -> None:
    """A cancellation nobody asked for (the runtime was not stopping) ended risk's consumer in
    the broker-outage fault test, and /healthz still said ok because cancelled tasks were not
    counted: the orchestrator never restarted a service that consumed nothing."""
    async with System(infra, ["registry", "risk"]) as system:
        risk = system["risk"]
        assert (await risk.get("/healthz")).status_code == 200
        (task,) = [t for t in system.runtimes["risk"]._tasks if t.get_name() == "risk-consumer"]
        task.cancel()
        await asyncio.wait([task], timeout=30)
        assert task.cancelled()
        r = await risk.get("/healthz")
        assert (r.status_code, r.json()["code"], r.json()["checks"]["risk-consumer"]) == (503, "NOT_LIVE", "cancelled")
