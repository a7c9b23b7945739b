"""Replication (issue 21): the five services as processes on a Kafka cluster of three nodes on
loopback (tests/e2e/servers.py: each node broker and controller, three voters), the topics
created as deploy/k8s/topics.toml says for production: three replicas, two of them in sync
for a write (min.insync.replicas), the producers asking acks=all.

While a bank core streams repayments, the leader of the busiest partition of loans' events
is SIGKILLed. The two nodes left elect a new leader and go on taking writes; the checks run
with the node still dead, so every event they find was held by the followers: nothing lost
or doubled (loans booked exactly the repayments the bank core was told were accepted, once
each, and the ledger sums to them), every event reached every consumer of it, every
projection equals a fresh replay (tests/e2e/invariants.py). Then the node is started again
and rejoins every partition's in-sync replicas. The figures are printed whatever pytest's
-r flags.

Lean on purpose, for CI's two cores: three small heaps, three loans, a short stream."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from shared.bus.kafka import KafkaBus
from shared.messaging import H_EVENT_ID, read_to_end
from tests.conftest import missing
from tests.e2e.bank_core import BankCore
from tests.e2e.invariants import Books
from tests.e2e.lending import lend
from tests.e2e.servers import ReplicatedKafka, ServerUnavailable
from vcredit.cluster import Cluster, eventually

# pyproject's 300 s per test is shorter than this test's own bounded waits (three JVMs start,
# then the services, the loans, the stream, an election, 180 s to settle, the replays).
pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(900)]

START = date(2026, 3, 2)
SECONDS = 60  # cross-service effects, on a loaded two-core machine
BEFORE_KILL = 20  # repayments accepted before the leader dies, and again after
ADMIN_TIMEOUT_MS = 5000
T = TypeVar("T")


@pytest.fixture
async def brokers() -> AsyncIterator[ReplicatedKafka]:
    kafka = ReplicatedKafka()
    try:
        try:
            await kafka.start()
        except ServerUnavailable as exc:
            missing(str(exc))
        yield kafka
    finally:
        await asyncio.to_thread(kafka.close)
    # Also after a failure: no JVM of ours outlives the test.
    assert kafka.running() == [], f"Kafka nodes still running after close: {kafka.running()}"


@pytest.fixture
async def cluster(brokers: ReplicatedKafka, servers: tuple[str, str], tmp_path: Path) -> AsyncIterator[Cluster]:
    # Named ``cluster`` so tests/e2e/conftest.py adds the services' logs to a failure report.
    # topic_replication=None: `vcredit topics create` takes topics.toml's replicas, as in production.
    _, pg = servers
    async with Cluster(brokers.bootstrap, pg, tmp_path, start_date=START, topic_replication=None) as running:
        yield running


@dataclass(frozen=True)
class PartitionState:
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


async def _partitions(bootstrap: str, topics: list[str]) -> dict[TopicPartition, PartitionState]:
    """Every partition's leader, replicas and in-sync replicas, as the cluster reports them now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {
        TopicPartition(t["topic"], p["partition"]): PartitionState(p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
        for t in described
        for p in t["partitions"]
    }


async def _min_insync(bootstrap: str, topics: list[str]) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS)
    await admin.start()
    try:
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await admin.close()
    return {
        resource[3]: {c[0]: c[1] for c in resource[4]}["min.insync.replicas"]
        for response in described
        for resource in response.resources
    }


async def _or_nothing(probe: Awaitable[dict[TopicPartition, T]]) -> dict[TopicPartition, T]:
    """The probe's answer, or nothing while the cluster cannot give one (mid-election)."""
    try:
        return await probe
    except KafkaError:
        return {}


async def _ends(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    partitions = sorted(await _partitions(bootstrap, [topic]))
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS)
    await reader.start()
    try:
        return dict(await reader.end_offsets(partitions))
    finally:
        await reader.stop()


async def _accepted_at_least(bank: BankCore, n: int, seconds: float = SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while len(bank.tally.accepted) < n:
        assert time.monotonic() < deadline, f"fewer than {n} repayments accepted after {seconds}s"
        await asyncio.sleep(0.05)


def _print(capsys: pytest.CaptureFixture[str], title: str, lines: list[str]) -> None:
    text = "\n".join([f"--- fault injection: {title}", *(f"    {line}" for line in lines)])
    with capsys.disabled():
        print("\n" + text, flush=True)


async def test_leader_of_the_busiest_partition_sigkilled_during_a_repayment_stream(
    brokers: ReplicatedKafka, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = brokers.bootstrap
    prefix = cluster.topic_prefix
    topics = [f"{prefix}{s}.events" for s in cluster.services]
    topics += [t + ".dlq" for t in topics]

    # The topics as production has them, from topics.toml through `vcredit topics create`.
    states = await _partitions(bootstrap, topics)
    assert {len(s.replicas) for s in states.values()} == {3}, states
    assert await _min_insync(bootstrap, topics) == dict.fromkeys(topics, "2")

    loans_topic = f"{prefix}loans.events"
    bank = BankCore(cluster.urls["loans"], cluster.token)
    books = Books(cluster)
    try:
        loans = await lend(cluster, START, township="410102007", village="410102007001", households=3, seconds=SECONDS)
        await books.settle(SECONDS)

        stop = asyncio.Event()
        stream = asyncio.create_task(bank.stream(loans, stop))
        try:
            await _accepted_at_least(bank, BEFORE_KILL)
            ends = await _ends(bootstrap, loans_topic)
            busiest = max(ends, key=lambda tp: ends[tp])
            victim = (await _partitions(bootstrap, [loans_topic]))[busiest].leader
            accepted = len(bank.tally.accepted)
            await asyncio.to_thread(brokers.nodes[victim].kill)
            killed = time.monotonic()
            survivors = ",".join(n.bootstrap for i, n in brokers.nodes.items() if i != victim)

            # A new leader among the two left, for the partition and (fenced off by the
            # controller) out of every partition's in-sync replicas.
            elected = await eventually(
                lambda: _or_nothing(_partitions(survivors, [loans_topic])),
                lambda s: busiest in s and s[busiest].leader not in (victim, -1) and victim not in s[busiest].isr,
                what=f"a new leader of {busiest} without node {victim}",
                seconds=SECONDS,
            )
            election = time.monotonic() - killed
            # The partition takes writes again: two in-sync replicas are enough.
            await eventually(
                lambda: _or_nothing(_ends(survivors, loans_topic)),
                lambda now: now.get(busiest, 0) > ends[busiest] + 5,
                what=f"{busiest} to grow on its new leader",
                seconds=SECONDS,
            )
            resumed = time.monotonic() - killed
            await _accepted_at_least(bank, len(bank.tally.accepted) + BEFORE_KILL)
            during = len(bank.tally.accepted) - accepted
        finally:
            stop.set()
            await stream

        # Checked with the node still dead: all there is, the followers held.
        settled = await books.settle(180)
        ledger = await books.check_ledger(bank.tally)
        diffs = await books.replay_diff()
        copies = await _copies(survivors, loans_topic)
        doubled = sum(n - 1 for n in copies.values() if n > 1)
        outbox = await books.scalar("loans", "SELECT count(*) FROM outbox")
        assert len(copies) == outbox, f"{outbox} events in loans' outbox, {len(copies)} distinct ones on the topic"

        # The node comes back and catches up: every partition three in-sync replicas again.
        began = time.monotonic()
        await brokers.start([victim])
        started = time.monotonic() - began
        await eventually(
            lambda: _or_nothing(_partitions(bootstrap, topics)),
            lambda s: len(s) == len(states) and all(len(p.isr) == 3 for p in s.values()),
            what=f"node {victim} back in every partition's in-sync replicas",
            seconds=SECONDS * 2,
        )
        rejoined = time.monotonic() - began
    finally:
        await bank.aclose()
        await books.close()

    lines = [
        f"3 KRaft nodes, {len(states)} partitions x 3 replicas, min.insync.replicas 2, producers acks=all",
        f"node {victim}, leader of {busiest.topic}[{busiest.partition}] ({ends[busiest]} events), SIGKILLed"
        f" after {accepted} repayments accepted",
        f"new leader node {elected[busiest].leader} (in-sync {list(elected[busiest].isr)})"
        f" seen {election:.1f}s after the kill; the partition took writes again after {resumed:.1f}s",
        f"{during} repayments accepted after the kill; stream: {bank.tally.summary()}",
        f"ledger total {ledger['ledger total']} = accepted total {bank.tally.accepted_total}"
        f" ({ledger['repayments booked']} repayments booked, {len(bank.tally.accepted)} accepted)",
        f"settled in {settled.seconds:.1f}s with the node dead: events per service {settled.events},"
        " none missing from any consumer's inbox",
        f"loans' events on the topic: {len(copies)} distinct = outbox rows, {doubled} stored twice"
        " (a batch retried across the election: the inboxes drop such repeats)",
        f"replay diff = {sum(diffs.values())} ({', '.join(f'{s} {d}' for s, d in diffs.items())})",
        f"node {victim} started again in {started:.1f}s, every partition 3 in-sync replicas after {rejoined:.1f}s",
    ]
    _print(capsys, "Kafka partition leader SIGKILLed (3 nodes, replication 3)", lines)


async def _copies(bootstrap: str, topic: str) -> Counter[str]:
    """How many times each event is stored on ``topic``."""
    bus = KafkaBus(bootstrap, client_id="replication-copies")
    await bus.start()
    try:
        events = await read_to_end(bus, f"{topic}-copies", [topic], idle_ms=2000)
    finally:
        await bus.stop()
    return Counter(m.headers[H_EVENT_ID] for m in events)
