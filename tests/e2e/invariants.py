"""What must hold after any fault, read straight from the services' databases and topics:

- **settled**: every outbox row was published and every event a consumer handles is in that
  consumer's inbox (nothing lost between services);
- **the ledger**: the repayments loans booked are exactly the ones the bank core was told
  were accepted, each once, and the ledger's settlement debits for repayments sum to their
  total; risk's loan positions equal loans' outstanding principal;
- **replay**: every projection equals a fresh replay of the topics into a fresh database.

Fresh replays run the services' own code: risk's ``rebuild`` and, for the others, their
consumer's handlers over a new consumer group reading from the beginning. A replay can also
be fed the topics one after another (``order``), the worst cross-topic reordering Kafka
allows: a consumer may see a loan's events before the village it is in."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Table, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from services.risk.models import DERIVED_FUND_ENTRIES, FundEntry
from services.risk.rebuild import dump, rebuild
from shared.bus.base import Bus, BusConsumer, Message, batches_to_end
from shared.bus.kafka import KafkaBus
from shared.db import create_sessionmaker
from shared.messaging import topics_of
from shared.migrations import upgrade
from shared.settings import SERVICE_NAMES, CommonSettings
from tests.e2e.bank_core import Tally
from tests.support.running_system import RunningSystem
from vcredit.cluster import NotReached, eventually
from vcredit.services import load_spec

# Projections compared with a fresh replay, and their columns that record when a row was
# written, or what the service keeps beside the projection, rather than what the events say.
# Risk's are compared by its own ``dump``.
COMPARED: dict[str, dict[str, tuple[str, ...]]] = {
    # The fund row's outstanding_bound is loans' own upper bound of its lending (drawdowns
    # raise it), not a projection of risk's events: a fresh replay leaves it empty, and the
    # next drawdown sums the lines (credit_lines.within_capacity).
    "loans": {"rating_view": (), "village_view": (), "township_view": (), "fund_view": ("outstanding_bound",)},
    # A subject's facts and loan history; its ratings depend on the business date each event
    # arrives on, which a replay does not reproduce.
    "scoring": {"subjects": ("updated_at",), "loan_states": ()},
    "notify": {"stream_events": ("seq", "received_at"), "bulletins": (), "notices": ("id",)},
}


def _plain(value: object) -> object:
    if isinstance(value, Decimal | date | datetime):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value


async def _rows(session: AsyncSession, table: Table, ignored: Sequence[str]) -> list[str]:
    columns = [c for c in table.columns if c.name not in ignored]
    result = await session.execute(select(*columns))
    return sorted(json.dumps([_plain(v) for v in row], ensure_ascii=False) for row in result)


def diff_count(a: Mapping[str, list[str]], b: Mapping[str, list[str]]) -> int:
    """Rows in one snapshot and not the other, over every table."""
    total = 0
    for table in a.keys() | b.keys():
        left, right = list(a.get(table, [])), list(b.get(table, []))
        for row in list(left):
            if row in right:
                right.remove(row)
                left.remove(row)
        total += len(left) + len(right)
    return total


def describe_diff(a: Mapping[str, list[str]], b: Mapping[str, list[str]], limit: int = 6) -> str:
    lines = []
    for table in sorted(a.keys() | b.keys()):
        only_a = [r for r in a.get(table, []) if r not in b.get(table, [])]
        only_b = [r for r in b.get(table, []) if r not in a.get(table, [])]
        lines += [f"{table} live only: {r[:300]}" for r in only_a[:limit]]
        lines += [f"{table} replay only: {r[:300]}" for r in only_b[:limit]]
    return "\n".join(lines)


@dataclass
class Settled:
    events: dict[str, int]  # outbox rows per producing service
    seconds: float


class Books:
    """Read access to every service's database (no pool: the server may be restarted)."""

    def __init__(self, cluster: RunningSystem) -> None:
        self.cluster = cluster
        self.engines: dict[str, AsyncEngine] = {
            s: create_async_engine(cluster.env[f"VCREDIT_{s.upper()}_DATABASE_URL"], poolclass=NullPool)
            for s in cluster.services
        }
        self._tables: dict[tuple[str, str], Table] = {}
        # Alembic's operations and context are module globals: one migration at a time.
        self._migrating = asyncio.Lock()

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.dispose()

    async def scalar(self, service: str, sql: str, **params: Any) -> Any:
        async with self.engines[service].connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def all(self, service: str, sql: str, **params: Any) -> list[Any]:
        async with self.engines[service].connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    # --- settled -------------------------------------------------------------------------------

    async def gaps(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """(unsent outbox rows per service, events missing from each consumer's inbox, outbox
        rows per service)."""
        unsent, missing, produced = {}, {}, {}
        outboxes: dict[str, list[tuple[str, str]]] = {}
        for service in self.cluster.services:
            rows = await self.all(service, "SELECT event_id, type, sent_at IS NULL FROM outbox")
            outboxes[service] = [(r[0], r[1]) for r in rows]
            unsent[service] = sum(1 for r in rows if r[2])
            produced[service] = len(rows)
        for consumer in self.cluster.services:
            handled = load_spec(consumer).handlers
            if not handled:
                continue
            seen = {
                r[0] for r in await self.all(consumer, "SELECT event_id FROM inbox WHERE consumer = :c", c=consumer)
            }
            missing[consumer] = sum(
                1 for rows in outboxes.values() for event_id, kind in rows if kind in handled and event_id not in seen
            )
        return unsent, missing, produced

    async def settle(self, seconds: float = 120) -> Settled:
        """Wait until every event was published and applied by every consumer of it, twice in
        a row with no new event in between (a consumer's effects may emit more)."""
        began = time.monotonic()
        previous: dict[str, int] | None = None
        while True:
            unsent, missing, produced = await self.gaps()
            if not any(unsent.values()) and not any(missing.values()):
                if produced == previous:
                    return Settled(produced, time.monotonic() - began)
                previous = produced
            else:
                previous = None
            if time.monotonic() - began > seconds:
                raise NotReached(f"not settled after {seconds:g}s: unsent {unsent}, missing from inboxes {missing}")
            await asyncio.sleep(0.5)

    # --- the ledger ----------------------------------------------------------------------------

    async def check_ledger(self, tally: Tally) -> dict[str, Any]:
        """Assert loans booked exactly the accepted repayments, once each; the figures."""
        booked = {
            r[0]: (r[1], Decimal(r[2])) for r in await self.all("loans", "SELECT id, loan_id, amount FROM repayments")
        }
        told = {a.repayment_id: (a.loan_id, a.amount) for a in tally.accepted}
        assert len(told) == len(tally.accepted), "the same repayment id was given for two keys"
        assert booked == told, (
            f"loans booked {len(booked)} repayments, the bank core was told of {len(told)}: "
            f"{len(booked.keys() - told.keys())} unknown to it, {len(told.keys() - booked.keys())} missing"
        )
        settlement = Decimal(
            await self.scalar(
                "loans",
                "SELECT coalesce(sum(debit), 0) FROM ledger_entries"
                " WHERE account = 'settlement' AND kind = 'repayment'",
            )
        )
        assert settlement == tally.accepted_total, (settlement, tally.accepted_total)
        debits, credits = (
            await self.all("loans", "SELECT coalesce(sum(debit), 0), coalesce(sum(credit), 0) FROM ledger_entries")
        )[0]
        assert debits == credits
        principal = Decimal(
            await self.scalar(
                "loans",
                "SELECT coalesce(sum(debit) - sum(credit), 0) FROM ledger_entries WHERE account = 'loans_principal'",
            )
        )
        outstanding = {
            r[0]: Decimal(r[1]) for r in await self.all("loans", "SELECT id, principal_outstanding FROM loans")
        }
        assert principal == sum(outstanding.values()), (principal, sum(outstanding.values()))
        positions = {
            r[0]: Decimal(r[1]) for r in await self.all("risk", "SELECT loan_id, outstanding FROM loan_positions")
        }
        assert positions == outstanding, f"risk's positions differ from loans: {positions} != {outstanding}"
        return {"ledger total": settlement, "repayments booked": len(booked), "principal outstanding": principal}

    # --- snapshots and fresh replays -------------------------------------------------------------

    async def _table(self, service: str, name: str) -> Table:
        if (service, name) not in self._tables:
            self._tables[(service, name)] = load_spec(service).metadata.tables[name]
        return self._tables[(service, name)]

    async def snapshot(self, service: str, engine: AsyncEngine | None = None) -> dict[str, list[str]]:
        """The service's compared projections, as sorted canonical rows."""
        engine = engine or self.engines[service]
        async with AsyncSession(engine) as session:
            if service == "risk":
                return {"risk": [line for line in (await dump(session)).splitlines()]}
            return {
                name: await _rows(session, await self._table(service, name), ignored)
                for name, ignored in COMPARED[service].items()
            }

    async def snapshots(self) -> dict[str, dict[str, list[str]]]:
        return {s: await self.snapshot(s) for s in (*COMPARED, "risk")}

    async def fresh_database(self, service: str) -> str:
        """A new, migrated database of ``service``'s; its URL."""
        url = await self.cluster.infra.database_url(f"replay_{service}_{uuid.uuid4().hex[:6]}")
        async with self._migrating:
            await asyncio.to_thread(upgrade, load_spec(service).migrations_dir, url)
        return url

    async def fresh_replay(self, service: str, order: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Replay the topics ``service`` consumes into a new database, with its own code; the
        snapshot of the result. ``order``: feed whole topics one after another in this order
        (logical names, e.g. "loans.events") instead of interleaved."""
        spec = load_spec(service)
        url = await self.fresh_database(service)
        engine = create_async_engine(url, poolclass=NullPool)
        prefix = self.cluster.topic_prefix
        common = CommonSettings.model_validate(
            {"start_date": self.cluster.env.get("VCREDIT_START_DATE"), "topic_prefix": prefix}
        )
        sessions = create_sessionmaker(engine, info={"settings": common})
        kafka: Bus = KafkaBus(self.cluster.env["VCREDIT_KAFKA_BOOTSTRAP_SERVERS"], client_id="fault-replay")
        bus: Bus = kafka if order is None else TopicByTopic(kafka, [prefix + t for t in order])
        await kafka.start()
        try:
            if service == "risk":
                # Records of commands (the fund's opening entry) are kept by a rebuild, not
                # derived: the fresh database starts with live's.
                async with AsyncSession(self.engines["risk"]) as live, sessions() as fresh, fresh.begin():
                    records = select(FundEntry).where(FundEntry.kind.not_in(DERIVED_FUND_ENTRIES))
                    for entry in await live.scalars(records):
                        live.expunge(entry)
                        await fresh.merge(entry)
                    # Copied with their ids, which PostgreSQL's sequence did not hand out: the
                    # rebuild's first loss entry would otherwise take id 1 again.
                    await fresh.execute(
                        text(
                            "SELECT setval(pg_get_serial_sequence('fund_entries', 'id'),"
                            " (SELECT coalesce(max(id), 0) + 1 FROM fund_entries), false)"
                        )
                    )
                await rebuild(sessions, bus, topic_prefix=prefix)
            else:
                consumer = spec.consumer(sessions, bus, topic_prefix=prefix)
                reader = bus.consumer(f"{prefix}fault-replay-{uuid.uuid4()}", [prefix + t for t in consumer.topics])
                await reader.start()
                try:
                    async for batch in batches_to_end(reader, max_records=500):
                        await consumer.process_batch(batch)
                finally:
                    await reader.stop()
                assert consumer.stats.dead_lettered == 0, f"the replay of {service} dead-lettered events"
            return await self.snapshot(service, engine)
        finally:
            await kafka.stop()
            await engine.dispose()

    async def replay_diff(self, order: Sequence[str] | None = None) -> dict[str, int]:
        """Rows that differ between each service's live projections and a fresh replay."""
        services = (*COMPARED, "risk")
        live = {s: await self.snapshot(s) for s in services}
        empty = [s for s in services if not any(live[s].values())]
        assert not empty, f"nothing to compare: no live projection rows in {empty}"
        replayed = dict(
            zip(services, await asyncio.gather(*(self.fresh_replay(s, order) for s in services)), strict=True)
        )
        diffs = {s: diff_count(live[s], replayed[s]) for s in services}
        for s in services:
            assert diffs[s] == 0, f"{s}: live != fresh replay\n{describe_diff(live[s], replayed[s])}"
        return diffs

    async def consumer_lag(self) -> dict[str, int]:
        """Events on each consumer's topics beyond its group's committed offsets."""
        bootstrap = self.cluster.env["VCREDIT_KAFKA_BOOTSTRAP_SERVERS"]
        prefix = self.cluster.topic_prefix
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await admin.start()
        await reader.start()
        lags = {}
        try:
            for service in SERVICE_NAMES:
                topics = [prefix + t for t in topics_of(load_spec(service).handlers)]
                if not topics:
                    continue
                committed = await admin.list_consumer_group_offsets(f"{prefix}vcredit-{service}")
                await reader.topics()  # refreshes the metadata partitions_for_topic reads
                partitions = [TopicPartition(t, p) for t in topics for p in reader.partitions_for_topic(t) or ()]
                ends = await reader.end_offsets(partitions)
                lags[service] = sum(
                    end - max(0, committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
                )
        finally:
            await reader.stop()
            await admin.close()
        return lags

    async def applied_not_committed(self, service: str) -> int:
        """Events ``service`` applied (in its inbox) beyond its group's committed offsets: what
        Kafka delivers again after a crash, for the inbox to skip."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.cluster.env["VCREDIT_KAFKA_BOOTSTRAP_SERVERS"])
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(f"{self.cluster.topic_prefix}vcredit-{service}")
        finally:
            await admin.close()
        positions = {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items()}
        rows = await self.all(service, 'SELECT topic, partition, "offset" FROM inbox WHERE consumer = :c', c=service)
        return sum(1 for topic, partition, offset in rows if offset >= positions.get((topic, partition), 0))

    async def wait_consumed(self, seconds: float = 60) -> None:
        """Wait until every consumer group has committed everything on its topics."""
        await eventually(
            self.consumer_lag, lambda lags: not any(lags.values()), what="consumer lag 0", seconds=seconds, interval=0.5
        )


class TopicByTopic:
    """A bus whose consumers deliver whole topics one after another, in a given order."""

    def __init__(self, bus: Bus, order: Sequence[str]) -> None:
        self.bus = bus
        self.order = list(order)

    async def start(self) -> None:
        await self.bus.start()

    async def stop(self) -> None:
        await self.bus.stop()

    async def publish(self, records: Sequence[Any]) -> None:
        await self.bus.publish(records)

    async def send(self, records: Sequence[Any]) -> asyncio.Future[None]:
        return await self.bus.send(records)

    def consumer(self, group: str, topics: Sequence[str]) -> BusConsumer:
        ranked = sorted(topics, key=lambda t: self.order.index(t) if t in self.order else len(self.order))
        return _Sequential([self.bus.consumer(f"{group}-{i}", [t]) for i, t in enumerate(ranked)])

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        await self.bus.ensure_topics(topics)

    async def ping(self) -> None:
        await self.bus.ping()


class _Sequential:
    def __init__(self, parts: list[BusConsumer]) -> None:
        self.parts = parts

    async def start(self) -> None:
        for part in self.parts:
            await part.start()

    async def stop(self) -> None:
        for part in self.parts:
            await part.stop()

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Message]:
        while self.parts:
            batch = await self.parts[0].getmany(timeout_ms, max_records)
            if batch or not await self.parts[0].caught_up():
                return batch
            await self.parts.pop(0).stop()
        return []

    async def caught_up(self) -> bool:
        return not self.parts

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        return None

    async def lag(self) -> dict[tuple[str, int], int]:
        return {k: v for part in self.parts for k, v in (await part.lag()).items()}

    async def sizes(self, topics: Sequence[str]) -> dict[str, int]:
        return await self.parts[0].sizes(topics) if self.parts else dict.fromkeys(topics, 0)
