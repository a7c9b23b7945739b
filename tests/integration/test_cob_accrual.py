"""Close of business's plain accruals on PostgreSQL (services/loans/cob_accrual.py) give the
same book as the rules in Python (``VCREDIT_LOANS_COB_SQL_ACCRUAL=false``), and the
statement's rounding is Python's ``to_fen``.

The book of tests/support/cob_book.py (every method, day counts and terms, subsidy rates 0,
3% and full, black-listed subjects, late, partial, early and never payers, write-offs,
matured loans) is built in two PostgreSQL databases alike, under a dated subsidy policy that
changes the share in the middle of periods (to 0.7, to 0.3333, to 0, back to 1). One is
closed with the statement for plain accruals, the other with every loan through the rules;
after every day the loan rows must be equal, and at the end the instalments, the ledger,
the repayments, the runs, the events and the business date. Every 50 days the SQL book's close
crashes once in its second chunk and is run again, which must change nothing. PostgreSQL only: SQLite always
takes the rules (tests/integration/test_cob_equivalence.py runs the book on both).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import Integer, Numeric, bindparam, column, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.loans import cob, cob_accrual, context
from services.loans.domain.schedule import round_fen
from services.loans.settings import SubsidyShareRow
from shared.db import create_engine
from shared.money import to_fen
from tests.conftest import Infra
from tests.support.cob_book import (
    START,
    business_of_the_day,
    everything_else,
    first_difference,
    loan_rows,
    setup_book,
)

pytestmark = pytest.mark.integration

DAYS = 400
CHUNK = 10  # several chunks a day in both books, so their ledger entries match one for one
POLICY = [  # mid-period changes for every loan of the book
    SubsidyShareRow(effective_from=START + timedelta(days=45), share=Decimal("0.7")),
    SubsidyShareRow(effective_from=START + timedelta(days=101), share=Decimal("0.3333")),
    SubsidyShareRow(effective_from=START + timedelta(days=200), share=Decimal("0")),
    SubsidyShareRow(effective_from=START + timedelta(days=230), share=Decimal("1")),
]


def _amounts(rng: random.Random) -> list[tuple[Decimal, int]]:
    """(x, n) with x ≥ 0 of the statement's scales (2: interest × days; 3 to 6: subsidy ×
    share-days), random and exactly on half fens, and n a period's days or far more."""
    cases: list[tuple[Decimal, int]] = [(Decimal("0.00"), 1), (Decimal("0.005"), 1), (Decimal("0.015"), 1)]
    for _ in range(3000):
        n = rng.choice([*range(1, 32), 59, 90, 181, 365, 366, rng.randint(1, 1000)])
        scale = rng.randint(2, 6)
        x = Decimal(rng.randint(0, 10**12)).scaleb(-scale)
        cases.append((x, n))
        # x / n exactly half a fen, and a last digit either side of it.
        half = (Decimal(rng.randint(0, 10**9)) + Decimal("0.5")).scaleb(-2) * n
        cases += [(half, n), (half + Decimal("0.000001"), n), (half - Decimal("0.000001"), n)]
    return [(x, n) for x, n in cases if x >= 0]


async def test_the_statement_rounds_to_the_fen_as_python_does(servers: tuple[str, str]) -> None:
    cases = _amounts(random.Random(27))
    engine = create_engine(servers[1])
    try:
        given = (
            func.unnest(
                bindparam("x", [x for x, _ in cases], type_=postgresql.ARRAY(Numeric)),
                bindparam("n", [n for _, n in cases], type_=postgresql.ARRAY(Integer)),
            )
            .table_valued(column("x", Numeric), column("n", Integer))
            .render_derived(name="given")
        )
        async with engine.connect() as connection:
            rows = (await connection.execute(select(cob_accrual.fen(given.c.x, given.c.n)))).scalars().all()
    finally:
        await engine.dispose()
    assert len(rows) == len(cases)
    for (x, n), fen in zip(cases, rows, strict=True):
        assert fen == to_fen(x / n) == round_fen(Fraction(x) / n), (x, n, fen)
        assert fen.as_tuple().exponent == -2, (x, n, fen)


async def test_plain_accruals_in_sql_give_the_book_of_the_rules_in_python(
    postgresql_infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql = await setup_book(await postgresql_infra.database_url("cob_sql"))
    python = await setup_book(await postgresql_infra.database_url("cob_python"))
    settings = context.settings()
    monkeypatch.setattr(cob, "CHUNK", CHUNK)
    monkeypatch.setattr(settings, "cob_sql_chunk", CHUNK)
    monkeypatch.setattr(settings, "subsidy_policy", POLICY)
    closed_by_sql = 0
    real = cob.accrue_plain

    async def counted(*args: Any) -> int:
        nonlocal closed_by_sql
        n = await real(*args)
        closed_by_sql += n
        return n

    monkeypatch.setattr(cob, "accrue_plain", counted)

    real_rest = cob._read_rest

    async def close(sessions: async_sessionmaker[AsyncSession], today: date, *, in_sql: bool) -> None:
        monkeypatch.setattr(settings, "cob_sql_accrual", in_sql)
        if in_sql and (today - START).days % 50 == 7:
            # A crash in the day's second chunk, after its statement updated the plain loans:
            # the chunk rolls back with them, and the rerun resumes at the first chunk's cursor
            # without closing any loan twice (the books are compared below, runs included).
            calls = 0

            async def crashes(*args: Any) -> Any:
                nonlocal calls
                calls += 1
                if calls == 2:
                    raise RuntimeError("process killed mid-run")
                return await real_rest(*args)

            monkeypatch.setattr(cob, "_read_rest", crashes)
            with pytest.raises(RuntimeError, match="killed"):
                await cob.close_until(sessions, today + timedelta(days=1))
            monkeypatch.setattr(cob, "_read_rest", real_rest)
        await cob.close_until(sessions, today + timedelta(days=1))

    try:
        for n in range(DAYS):
            today = START + timedelta(days=n)
            for sessions, in_sql in ((sql, True), (python, False)):
                await business_of_the_day(sessions, today)
                await close(sessions, today, in_sql=in_sql)
            ours, theirs = await loan_rows(sql), await loan_rows(python)
            assert ours == theirs, f"{today}: {first_difference(ours, theirs)}"
        ours_, theirs_ = await everything_else(sql), await everything_else(python)
        for part in ours_:
            assert ours_[part] == theirs_[part], f"{part}: {first_difference(ours_[part], theirs_[part])}"
    finally:
        for sessions in (sql, python):
            await sessions.kw["bind"].dispose()
    # The statement did most of the work, and the book went through everything it is meant to.
    assert closed_by_sql > sum(int(r["accrual_days"]) for r in ours) / 3, closed_by_sql
    assert {r["status"] for r in ours} == {"active", "repaid", "written_off"}
    assert any(r["subsidy_forfeited"] != "0.00" for r in ours), "black-listed days"
    assert any(r["ever_overdue"] for r in ours), "arrears"
    recorded = {i["subsidy_policy"] for i in ours_["instalments"]}
    assert any("=0.7;" in (p or "") for p in recorded), "a period billed across the change to 0.7"
    assert any("=0.3333" in (p or "") for p in recorded), "a period billed across the change to 0.3333"
