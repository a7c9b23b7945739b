"""Risk's batch rows (services/risk/rows.py) on both backends: loan positions and village
figures held in memory for a consumer batch and written back once.

test_risk.py compares live projections with a rebuild; these pin the write-back itself: only
changed columns, inserts that fail on a key already there, nothing written when a handler
fails, and a batch applied at once equal to the same events one by one.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.risk import classified, disbursed, repaid
from services.risk import breaker
from services.risk.handlers import HANDLERS
from services.risk.models import OverdueYear, Village, VillageDay, metadata
from services.risk.rebuild import dump
from services.risk.rows import VillageRow, finish, prefetch, rows_of
from shared.catalogue import LoanRepaid, VillageCreated
from shared.db import create_engine, create_sessionmaker
from shared.events import Envelope, new_event
from tests.conftest import Infra

D = Decimal
DAY = date(2026, 3, 1)


@asynccontextmanager
async def batch_scope(session: AsyncSession, events: Sequence[Envelope], *, alone: bool = False) -> AsyncIterator[None]:
    """What the consumer does around handlers: prefetch a batch (not an event applied alone,
    which reads its rows as it goes), and finish either."""
    if not alone:
        await prefetch(session, events)
    yield
    await finish(session)


async def _engine(infra: Infra, name: str) -> AsyncEngine:
    engine = create_engine(await infra.database_url(name))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return engine


@pytest.fixture
async def engine(infra: Infra) -> AsyncIterator[AsyncEngine]:
    engine = await _engine(infra, "risk")
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


def _village(code: str, township: str = "T1", **figures: object) -> Village:
    values: dict[str, object] = {
        "outstanding": D("0.00"),
        "non_performing": D("0.00"),
        "npl_ratio": D("0.0000"),
        "over": False,
        "over_since": None,
        "frozen": False,
    }
    return Village(code=code, name="", township_code=township, **(values | figures))


async def test_only_changed_columns_are_written(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        session.add(_village("V1", outstanding=D("100.00")))
    async with sessions() as session, session.begin(), batch_scope(session, []):
        row = await rows_of(session).villages.get(session, "V1")
        assert row is not None and row.outstanding == D("100.00")
        # Meanwhile (on PostgreSQL, in another transaction) the registry names the village
        # and the district freezes it by hand: the batch's stale copy must not undo either.
        await session.execute(update(Village).values(name="东村", frozen=True))
        row.outstanding += D("50.00")
    async with sessions() as session:
        v = await session.get(Village, "V1")
        assert v is not None
        assert (v.name, v.frozen, v.outstanding) == ("东村", True, D("150.00"))


async def test_a_new_row_whose_key_exists_fails_as_an_insert(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        session.add(_village("V1"))
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin(), batch_scope(session, []):
            rows_of(session).villages.add("V1", VillageRow("V1", "", "T1", D(0), D(0), D(0), False, None, False))


async def test_nothing_is_written_when_a_handler_fails(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        with pytest.raises(LookupError):
            async with session.begin(), batch_scope(session, []):
                await HANDLERS["loans.loan.disbursed"](session, disbursed(1, "V1", "T1"))
                await HANDLERS["loans.repayment.received"](session, repaid(2, "V1", "T1", 1))  # no such loan
    async with sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM loan_positions"))).scalar() == 0
        assert (await session.execute(text("SELECT count(*) FROM villages"))).scalar() == 0


async def test_days_and_overdue_years_are_written_without_being_read(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        session.add(VillageDay(village_code="V1", business_date=DAY, outstanding=D("1.00"), non_performing=D("0.00")))
        session.add(OverdueYear(subject_id="h1", year=2026))
    async with sessions() as session, session.begin(), batch_scope(session, []):
        rows = rows_of(session)
        rows.set_day(VillageRow("V1", "", "T1", D("7.00"), D("2.00"), D("0.2857"), True, DAY, True), DAY)
        rows.overdue("h1", 2026)
        rows.overdue("h1", 2027)
    async with sessions() as session:
        day = await session.get(VillageDay, ("V1", DAY))
        assert day is not None and (day.outstanding, day.non_performing) == (D("7.00"), D("2.00"))
        years = (await session.execute(select(OverdueYear.year).order_by(OverdueYear.year))).scalars().all()
        assert years == [2026, 2027]


def _events() -> list[Envelope]:
    """Loans in three villages of two townships; V2 tips over 3% and back, which freezes it,
    lifts it and halts and resumes its township (2 villages, 30%)."""
    events: list[Envelope] = []
    for i, (village, township) in enumerate([("V1", "T1"), ("V1", "T1"), ("V2", "T1"), ("V3", "T2")]):
        events.append(disbursed(i, village, township))
    events += [classified(0, "V1", "T1", days=5), repaid(1, "V1", "T1", 1), classified(2, "V2", "T1", days=91)]
    events += [repaid(3, "V3", "T2", 1), repaid(3, "V3", "T2", 2), classified(2, "V2", "T1", days=0)]
    return events


# A manual decision taken between batches: (village, freeze).
Override = tuple[str, bool]


async def _apply(
    sessions: async_sessionmaker[AsyncSession],
    batches: Sequence[Sequence[Envelope] | Override],
    *,
    alone: bool = False,
) -> str:
    for events in batches:
        if isinstance(events, tuple):
            code, freeze = events
            async with sessions() as session, session.begin():
                await breaker.override(session, code, freeze, "by hand", "district")
            continue
        async with sessions() as session, session.begin(), batch_scope(session, events, alone=alone):
            for event in events:
                await HANDLERS[event.type](session, event)
    async with sessions() as session:
        decisions = await session.execute(
            text("SELECT kind, code, reason, business_date, figures FROM decisions ORDER BY id")
        )
        outbox = await session.execute(text("SELECT type, key, envelope FROM outbox ORDER BY id"))
        published = [
            (t, k, {n: v for n, v in json.loads(e)["payload"].items() if n != "bulletin_id"}) for t, k, e in outbox
        ]
        return json.dumps(
            {
                "projections": await dump(session),
                "decisions": [list(map(str, d)) for d in decisions],
                "events": published,
            },
            ensure_ascii=False,
        )


async def _together_and_alone(infra: Infra, events: Sequence[Envelope], done_before: Sequence[Envelope] = ()) -> None:
    results = []
    for name, split in (("together", False), ("alone", True)):
        engine = await _engine(infra, name)
        sessions = create_sessionmaker(engine)
        batches = [[e] for e in events] if split else [events]
        results.append(await _apply(sessions, [list(done_before), *batches], alone=split))
        await engine.dispose()
    together, alone = results
    assert together == alone


async def test_a_batch_at_once_equals_its_events_one_by_one(infra: Infra) -> None:
    events = _events()
    await _together_and_alone(infra, events)
    together = await _apply(create_sessionmaker(await _engine(infra, "again")), [events])
    assert '"risk.village.frozen"' in together and '"risk.township.halted"' in together
    assert '"risk.village.unfrozen"' in together and '"risk.township.resumed"' in together


def _long_sequence(seed: int) -> tuple[list[Envelope], list[Envelope]]:
    """Loans of nine villages in three townships (three each: one village over the line
    halts its township), disbursed first; then a shuffled run of repayments,
    classifications that tip loans over 3% and back, and loans repaid in full, in order per
    loan; at the end every loan still on the books is current again. Villages cross the
    line both ways, some several times within a few events."""
    rng = random.Random(seed)
    villages = [(f"V{v:02d}", f"T{v % 3}") for v in range(9)]
    loans = {i: villages[i % len(villages)] for i in range(36)}
    before = [disbursed(i, *where) for i, where in loans.items()]
    lives: dict[int, list[Envelope]] = {}
    for i, (village, township) in loans.items():
        life: list[Envelope] = []
        n = 0
        for _ in range(rng.randint(2, 9)):
            step = rng.random()
            if step < 0.4:
                n += rng.randint(1, 3000)
                life.append(repaid(i, village, township, min(n, 11_999)))
            else:
                days = rng.choice([0, 0, 5, 31, 91, 91, 120])
                life.append(classified(i, village, township, days, f"{12000 - min(n, 11_999)}.00"))
        if rng.random() < 0.8:
            life.append(classified(i, village, township, 0, f"{12000 - min(n, 11_999)}.00"))
        else:
            life.append(
                new_event(
                    "loans.loan.repaid",
                    village,
                    LoanRepaid(
                        subject_kind="household",
                        subject_id=f"h{i}",
                        village_code=village,
                        township_code=township,
                        loan_id=f"loan-{i}",
                        business_date=DAY,
                        on_time=False,
                    ),
                )
            )
        lives[i] = life
    events: list[Envelope] = []
    while lives:  # interleaved at random, each loan's events in order
        i = rng.choice(sorted(lives))
        events.append(lives[i].pop(0))
        if not lives[i]:
            del lives[i]
    return before, events


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_long_sequence_batched_equals_one_by_one(infra: Infra, seed: int) -> None:
    # Batched (one batch, batches of 17, of 1 with the prefetch) against the consumer's
    # one-by-one path, with manual decisions standing at the start: the same figures,
    # freezes, halts, decisions and published events.
    before, events = _long_sequence(seed)
    manual: list[Override] = [("V00", True), ("V01", True)]
    results = {}
    for name, size in (("alone", 0), ("one", len(events)), ("seventeen", 17), ("each", 1)):
        engine = await _engine(infra, name)
        sessions = create_sessionmaker(engine)
        split = [[e] for e in events] if size == 0 else [events[i : i + size] for i in range(0, len(events), size)]
        results[name] = await _apply(sessions, [before, *manual, *split], alone=size == 0)
        await engine.dispose()
    for kind in ("risk.village.frozen", "risk.village.unfrozen", "risk.township.halted", "risk.township.resumed"):
        assert f'"{kind}"' in results["alone"], f"the sequence should exercise {kind}"
    assert results["one"] == results["alone"]
    assert results["seventeen"] == results["alone"]
    assert results["each"] == results["alone"]


async def test_a_village_moved_in_the_batch_leaves_its_old_townships_count(infra: Infra) -> None:
    # V1 came from a loan event as a village of T1; the registry then places it in T2, and in
    # the same batch T1 gets a village over the line. T1 has one village, not two.
    created = new_event("registry.village.created", "V1", VillageCreated(code="V1", name="东村", township_code="T2"))
    events = [created, disbursed(9, "V9", "T1"), classified(9, "V9", "T1", days=91)]
    await _together_and_alone(infra, events, done_before=[disbursed(1, "V1", "T1")])


# PostgreSQL only: SQLite runs one writing transaction at a time, there is no "meanwhile".
@pytest.mark.parametrize("infra", [pytest.param("kafka", id="kafka", marks=pytest.mark.integration)], indirect=True)
async def test_a_township_halted_by_another_replica_meanwhile_is_not_halted_twice(infra: Infra) -> None:
    # Two replicas, two partitions, one township of three villages (30%: one over halts it).
    engine = await _engine(infra, "replicas")
    sessions = create_sessionmaker(engine)
    await _apply(sessions, [[disbursed(i, f"V{i}", "T1") for i in (1, 2, 3)]])
    first = [classified(1, "V1", "T1", days=91)]
    async with sessions() as a, a.begin(), batch_scope(a, first):
        await rows_of(a).township(a, "T1")  # replica A has read the township, not halted yet
        second = [classified(2, "V2", "T1", days=91)]
        async with sessions() as b, b.begin(), batch_scope(b, second):  # replica B halts it
            await HANDLERS[second[0].type](b, second[0])
        await HANDLERS[first[0].type](a, first[0])  # A waits for nothing: B has committed
    async with sessions() as session:
        kinds = (await session.execute(text("SELECT kind FROM decisions ORDER BY id"))).scalars().all()
        halted = await session.scalar(text("SELECT halted FROM townships WHERE code = 'T1'"))
    await engine.dispose()
    assert kinds == ["village_frozen", "township_halted", "village_frozen"]
    assert halted is True


# PostgreSQL only, as above.
@pytest.mark.parametrize("infra", [pytest.param("kafka", id="kafka", marks=pytest.mark.integration)], indirect=True)
async def test_two_replicas_creating_the_same_townships_at_once_both_commit(infra: Infra) -> None:
    # Villages of T1 and T2 on two partitions, first seen by two replicas at once: B's batch
    # waits for A's townships and keeps them, where an insert of its own failed its batch.
    engine = await _engine(infra, "new_townships")
    sessions = create_sessionmaker(engine)
    first = [disbursed(1, "V1", "T2"), disbursed(3, "V3", "T1")]
    second = [disbursed(2, "V2", "T1"), disbursed(4, "V4", "T2")]

    async def replica_b() -> None:
        async with sessions() as b, b.begin(), batch_scope(b, second):
            for event in second:
                await HANDLERS[event.type](b, event)

    async with sessions() as a, a.begin(), batch_scope(a, first):
        for event in first:
            await HANDLERS[event.type](a, event)
        b = asyncio.create_task(replica_b())
        await asyncio.sleep(0.5)
        assert not b.done(), "B should wait for A's townships"
    await b  # raised IntegrityError (pk_townships) when each replica inserted its own
    async with sessions() as session:
        townships = (await session.execute(text("SELECT code, halted FROM townships ORDER BY code"))).all()
        villages = (await session.execute(text("SELECT code, township_code FROM villages ORDER BY code"))).all()
    await engine.dispose()
    assert [tuple(t) for t in townships] == [("T1", False), ("T2", False)]
    assert [tuple(v) for v in villages] == [("V1", "T2"), ("V2", "T1"), ("V3", "T1"), ("V4", "T2")]
