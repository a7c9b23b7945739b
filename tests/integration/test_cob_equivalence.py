"""Close of business gives the same loans, instalments, ledger, events and runs as the
per-loan reference (every loan an ORM object, closed one by one), on both backends.

A varied book is built day by day in two databases alike: loans of every method, several
day counts and terms (one anchored on 31 January, some maturing), poor households fully
subsidised, businesses at 3%, subjects blacklisted for a while or for good, and borrowers
who pay on time, late, in part, ahead, in full, one day late, never (some written off).
One database is closed by ``cob.close_until``, the other by ``reference_close_day``; after
every day the loan rows must be equal, and at the end everything else too. ``GOLDEN`` is
the digest of the whole run, recomputed when issue 19 corrected the billing (a period's
interest fixed on the principal after the previous due date's payments, DOMAIN §4) and again
when issue 24 charged penalty and compound interest on arrears (the late and never-paying
borrowers' rows and ledger changed; the per-day equality held throughout); it
guards refactors (the rules must not change by accident), it is not evidence that they are
right: tests/unit/loans/test_billing.py checks them against an independent model.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.loans import cob, ledger, reconciliation
from services.loans.credit_lists import blacklisted_on
from services.loans.domain import close_of_business, loan_state
from services.loans.domain.schedule import build_schedule
from services.loans.loans import record, repay, write_off
from services.loans.models import (
    BusinessDate,
    CobRun,
    CreditLine,
    Instalment,
    LedgerEntry,
    ListEntry,
    Loan,
    Repayment,
)
from shared.db import create_engine, create_sessionmaker
from shared.events import Envelope
from shared.messaging import emit, outbox
from shared.migrations import upgrade
from shared.settings import CommonSettings
from tests.conftest import Infra
from vcredit.services import load_spec

START = date(2026, 1, 1)
DAYS = 400
LOANS = 36
CHUNK = 10  # several chunks a day, and a crash-free resume point between them

GOLDEN = "5449a373aaaf98512a232bf4e1eabb17db3f2ea300c8622d48280dc83aba96be"

D = Decimal
ZERO = D("0.00")
METHODS = ("equal_instalment", "equal_principal", "interest_only")
TERMS = (1, 3, 6, 12, 12, 24)
DAY_COUNTS = ("30/360", "ACT/365", "ACT/360", "30/360")
SUBJECTS = {4: "black-a", 10: "black-a", 15: "black-b", 19: "black-c", 20: "black-c"}  # all subsidised
BLACK = [  # entry, subject, listed, delisted (days from START)
    ("e1", "black-a", 20, 90),
    ("e2", "black-b", 5, None),
    ("e3", "black-c", 200, 250),
    ("e4", "black-c", 230, 300),  # overlaps e3: listed once, not twice
    ("e5", "subject-30", 500, None),  # after the run
]


def _disbursed(i: int) -> date:
    return START + timedelta(days=30 if i == 5 else (i * 7) % 41)  # loan 5: on 31 January


def _loan(i: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    on = _disbursed(i)
    term = TERMS[i % len(TERMS)]
    rate = D("0.0475") if term > 12 else D("0.0435")
    kind = "business" if i % 5 == 4 else "household"
    if kind == "business":
        rate, subsidy_rate = rate * D("1.10"), D("0.03")
    else:
        subsidy_rate = rate if i % 5 == 0 else D(0)  # poor households: 全额贴息
    amount = D(3000 + 1237 * i) + D(i % 3) / 7
    amount = amount.quantize(D("0.01"))
    method, day_count = METHODS[i % 3], DAY_COUNTS[i % 4]
    plan = build_schedule(amount, rate, term, method, on, day_count, subsidy_rate)  # type: ignore[arg-type]
    loan_id = str(uuid.UUID(int=i + 1))
    row = {
        "id": loan_id,
        "credit_line_id": "line",
        "subject_id": SUBJECTS.get(i, f"subject-{i}"),
        "subject_kind": kind,
        "village_code": f"V{i % 4}",
        "township_code": "T",
        "principal": amount,
        "annual_rate": rate,
        "subsidy_rate": subsidy_rate,
        "red_list_discount": D(0),
        "day_count": day_count,
        "method": method,
        "term_months": term,
        "disbursed_on": on,
        "maturity_on": plan[-1].due_on,
        "version": 1,
        **loan_state.opening_state(plan, amount, on),  # as a drawdown writes it
    }
    instalments = [
        {
            "loan_id": loan_id,
            "number": x.number,
            "start": x.start,
            "due_on": x.due_on,
            "principal": x.principal,
            "interest": x.interest,
            "subsidy": x.subsidy,
            "billed": None,
        }
        for x in plan
    ]
    return row, instalments


def _payment(i: int, loan: Loan, today: date) -> Decimal | None:
    """What borrower ``i`` pays today, before the day closes (None: nothing)."""
    due = loan_state.arrears(loan)
    dpd, age = loan.days_past_due, (today - loan.disbursed_on).days
    behaviour = i % 7
    if behaviour == 5 and age == 100:  # pays everything off
        return loan.principal_outstanding + loan.interest_outstanding
    if behaviour == 4 and age == 50:  # pays a third of the principal ahead
        return loan.interest_outstanding + (loan.principal_outstanding / 3).quantize(D("0.01"))
    if not due:
        return None
    if behaviour in (0, 4, 5):
        return due if dpd == 0 else None  # on the due date
    if behaviour == 1:
        return due if dpd == 45 else None
    if behaviour == 2:
        return (due / 2).quantize(D("0.01")) if dpd % 30 == 10 else None
    if behaviour == 6:
        return due if dpd == 1 else None
    return None  # 3: never pays


async def _setup(url: str) -> async_sessionmaker[AsyncSession]:
    await asyncio.to_thread(upgrade, load_spec("loans").migrations_dir, url)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":  # a commit without fsync: thousands of them below

        @event.listens_for(engine.sync_engine, "connect")
        def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous=OFF")

    sessions = create_sessionmaker(engine, info={"settings": CommonSettings(start_date=START)})
    async with sessions() as session, session.begin():
        session.add(BusinessDate(id=1, current=START))
        session.add(
            CreditLine(
                id="line",
                subject_id="s",
                subject_kind="household",
                village_code="V",
                township_code="T",
                limit=D("1e9"),
                outstanding=D("1e8"),
                status="active",
                opened_on=START,
                version=1,
            )
        )
        for entry, subject, listed, delisted in BLACK:
            session.add(
                ListEntry(
                    entry_id=entry,
                    list="black",
                    subject_kind="household",
                    subject_id=subject,
                    cause="dishonest_debtor_list",
                    active=delisted is None,
                    listed_on=START + timedelta(days=listed),
                    delisted_on=None if delisted is None else START + timedelta(days=delisted),
                )
            )
    return sessions


async def _business_of_the_day(sessions: async_sessionmaker[AsyncSession], today: date) -> None:
    """Loans disbursed today, then today's repayments and write-offs, in loan order."""
    new = [_loan(i) for i in range(LOANS) if _disbursed(i) == today]
    async with sessions() as session, session.begin():
        if new:
            await session.execute(insert(Loan), [row for row, _ in new])
            await session.execute(insert(Instalment), [x for _, xs in new for x in xs])
        line = await session.get(CreditLine, "line")
        assert line is not None
        loans = await session.scalars(select(Loan).where(Loan.status == "active").order_by(Loan.id))
        for loan in loans:
            i = uuid.UUID(loan.id).int - 1
            amount = _payment(i, loan, today)
            if amount:
                await record(session, [await repay(session, loan, line, amount, today)])
            elif i % 14 == 3 and loan.classification == "substandard":
                await write_off(session, loan, line, today)


async def reference_close_day(sessions: async_sessionmaker[AsyncSession], day: date) -> None:
    """Close of business as it was: each loan an ORM object, closed by the same rules
    (close_of_business.close_loan_day) and written by the unit of work."""
    async with sessions() as session, session.begin():
        run = await session.get(CobRun, day)
        if run is None:
            session.add(CobRun(business_date=day, status="running", loans_processed=0, started_at=datetime.now(UTC)))
    cursor = None
    while True:
        async with sessions() as session, session.begin():
            query = select(Loan).where(Loan.status == "active").order_by(Loan.id).limit(CHUNK).with_for_update()
            if cursor is not None:
                query = query.where(Loan.id > cursor)
            loans = list(await session.scalars(query))
            events: list[Envelope] = []
            accruals = close_of_business.Accruals()
            unsubsidised = await blacklisted_on(session, {loan.subject_id for loan in loans}, day)
            billing: dict[str, list[Instalment]] = {x.id: [] for x in loans if close_of_business.needs_schedule(x, day)}
            for inst in await session.scalars(
                select(Instalment).where(Instalment.loan_id.in_(billing)).order_by(Instalment.number)
            ):
                billing[inst.loan_id].append(inst)
            for loan in loans:
                events += close_of_business.close_loan_day(
                    loan, day, accruals, subsidised=loan.subject_id not in unsubsidised, schedule=billing.get(loan.id)
                )
            await ledger.post(session, ledger.accrual_posting(accruals, day))
            await emit(session, *events)
            run = await session.get(CobRun, day)
            assert run is not None
            if loans:
                cursor = run.last_loan_id = loans[-1].id
                run.loans_processed += len(loans)
                continue
            run.status = "done"
            current = await session.get(BusinessDate, 1)
            assert current is not None
            current.current = day + loan_state.DAY
            # Issue 25: the day's reconciliation file goes out with its close.
            made = await reconciliation.read_file(session, day)
            await emit(session, close_of_business.day_closed_event(day), reconciliation.ready_event(made))
            return


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, date):
        return value.isoformat()
    return value


async def _rows(session: AsyncSession, table: Any, order: Any, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    result = await session.execute(select(table).order_by(*order))
    return [{k: _plain(v) for k, v in row._mapping.items() if k not in drop} for row in result]


async def _loans(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with sessions() as session:
        return await _rows(session, Loan.__table__, [Loan.id])


async def _everything_else(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with sessions() as session:
        instalments = await _rows(session, Instalment.__table__, [Instalment.loan_id, Instalment.number])
        legs = await _rows(session, LedgerEntry.__table__, [LedgerEntry.id], drop=("id",))
        txns: dict[str, int] = {}
        for leg in legs:  # posting ids are random: number them in order of appearance
            leg["txn_id"] = txns.setdefault(leg["txn_id"], len(txns))
        repayments = await _rows(
            session, Repayment.__table__, [Repayment.loan_id, Repayment.business_date], drop=("id", "received_at")
        )
        runs = await _rows(session, CobRun.__table__, [CobRun.business_date], drop=("started_at", "finished_at"))
        events = []
        for envelope in (await session.execute(select(outbox.c.envelope).order_by(outbox.c.id))).scalars():
            event = json.loads(envelope)
            del event["event_id"], event["occurred_at"]
            event["payload"].pop("repayment_id", None)
            events.append(event)
        current = await session.get(BusinessDate, 1)
        assert current is not None
    return {
        "instalments": instalments,
        "ledger": legs,
        "repayments": repayments,
        "runs": runs,
        "events": events,
        "business_date": current.current.isoformat(),
    }


@pytest.fixture
async def two_books(infra: Infra) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], ...]]:
    fast = await _setup(await infra.database_url("cob_fast"))
    reference = await _setup(await infra.database_url("cob_reference"))
    yield fast, reference
    for sessions in (fast, reference):
        bind = sessions.kw["bind"]
        await bind.dispose()


# Columns added by issue 24 that this scenario leaves at their defaults (dated policies;
# extension: no loan here is extended): left out of the digest, so GOLDEN shows the default
# policies reproduce the same book to the fen. They take part in the comparison of the two
# books all the same. (The penalty columns are in the digest: late payers here are charged.)
ISSUE_24_COLUMNS = (
    "pricing_rule",
    "benchmark_from",
    "benchmark_rate",
    "lpr_from",
    "lpr_rate",
    "subsidy_policy",
    "extended_months",
    "classification_floor",
    "subsidy_ends_on",
    # Issue 25's day counters for subsidy claims (domain/subsidy_claims.py): added, nothing
    # before them changed, which the unchanged GOLDEN shows.
    "accrual_days",
    "forfeited_days",
)


def _before_issue_24(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in ISSUE_24_COLUMNS} for row in rows]


# Issue 25's event of each closed day (its reconciliation file's totals): compared between the
# two books, left out of the digest, so GOLDEN shows the book and its other events unchanged.
ISSUE_25_EVENTS = ("loans.reconciliation.ready",)
# A correction's reference on each ledger leg (closed periods): null on every leg here.
ISSUE_25_LEDGER_COLUMNS = ("corrects_txn_id", "reason", "recorded_by")


def _first_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return str({k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)} | {"id": x.get("id")})
    return f"{len(a)} rows against {len(b)}"


async def test_close_of_business_equals_the_per_loan_reference(
    two_books: tuple[async_sessionmaker[AsyncSession], ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, reference = two_books
    monkeypatch.setattr(cob, "CHUNK", CHUNK)
    digest = hashlib.sha256()
    closers: list[tuple[async_sessionmaker[AsyncSession], Callable[..., Any]]] = [
        (fast, lambda s, day: cob.close_until(s, day + loan_state.DAY)),
        (reference, reference_close_day),
    ]
    for n in range(DAYS):
        today = START + timedelta(days=n)
        for sessions, close in closers:
            await _business_of_the_day(sessions, today)
            await close(sessions, today)
        ours, theirs = await _loans(fast), await _loans(reference)
        assert ours == theirs, f"{today}: {_first_difference(ours, theirs)}"
        digest.update(json.dumps(_before_issue_24(ours), sort_keys=True).encode())
    ours_, theirs_ = await _everything_else(fast), await _everything_else(reference)
    for part in ours_:
        assert ours_[part] == theirs_[part], f"{part}: {_first_difference(ours_[part], theirs_[part])}"
    legacy = ours_ | {
        "instalments": _before_issue_24(ours_["instalments"]),
        "ledger": [{k: v for k, v in leg.items() if k not in ISSUE_25_LEDGER_COLUMNS} for leg in ours_["ledger"]],
        "events": [e for e in ours_["events"] if e["type"] not in ISSUE_25_EVENTS],
    }
    assert any(e["type"] in ISSUE_25_EVENTS for e in ours_["events"])
    digest.update(json.dumps(legacy, sort_keys=True).encode())
    # The book went through what it is meant to: every class, write-offs, repaid, matured.
    final = await _loans(fast)
    assert {x["status"] for x in final} == {"active", "repaid", "written_off"}
    assert {x["classification"] for x in final} >= {"normal", "special_mention", "substandard", "doubtful", "loss"}
    assert any(x["subsidy_forfeited"] != "0.00" for x in final)
    assert any(x["status"] == "active" and x["period_number"] > x["term_months"] for x in final), "matured unpaid"
    assert digest.hexdigest() == GOLDEN, digest.hexdigest()
