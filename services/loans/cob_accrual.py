"""Close of business's plain accruals on PostgreSQL: one statement per chunk closes the day for
every loan of the chunk that does nothing that day but accrue (services/loans/cob.py).

Most active loans on most days only accrue a day of interest and subsidy. Reading each as a
row of 40 columns, applying ``domain.close_of_business.close_loan_day`` in Python and writing
it back cost about 40 µs a loan; the same arithmetic in one ``UPDATE ... FROM`` costs the
database little more than touching the row. Which loans qualify (``_plain``) is a strict
subset of those for which ``close_loan_day`` does exactly this and nothing else:

- active, not yet closed for the day (``closed_through < day``), a period in progress
  (``period_number <= term_months``);
- not the period's first day (``period_start < day``: its charges are fixed already) and not
  its last (``period_end > day + 1``: it does not bill), so day k of the period is
  1 < k < n and the cumulative rounding needs no clamp;
- nothing billed is unpaid and not past due (no ageing, no penalty, no overdue event);
- the subject not on the black list that day (the same entries as ``blacklisted_on``);
- the period's interest and subsidy not negative (the rounding below is for amounts ≥ 0; they
  never are, but a loan that were would go through Python).

Every other loan of the chunk goes through ``close_loan_day`` in the same transaction.

The day's amounts, per loan, as ``close_loan_day`` computes them:
    gross   = fen(I × k / n) − period_accrued
    subsidy = fen(S × a / n) − fen(S × b / n)
with I, S the period's interest and subsidy, n its days, k the days elapsed through ``day``,
and a, b the share-days through ``day`` and through the day before
(``domain.policies.shares_through``: k and k − 1 without a dated policy). a and b depend
only on the period's start and the day, so Python computes them per distinct start in the
chunk and the statement joins them (``unnest``). They are exact decimals (sums of decimal
shares); a start whose share-days would not be exact is left to Python.

Rounding. ``fen(x / n)`` is half up to the fen (Python's ``to_fen``, ROUND_HALF_UP, and
``schedule.round_fen``). The statement computes it in exact integer arithmetic, as
``round_fen`` does: for x ≥ 0, ``div(200·x + n, 2·n) × 0.01`` = floor((100·x/n) + ½) fen;
``div`` on numeric is the truncated quotient, computed exactly, so no intermediate result
is rounded, and nothing depends on the scale PostgreSQL would choose for ``x / n``. On the
Python side ``tofen(I × k / n)`` divides in 28 significant digits before it quantizes,
which cannot move the result across a half fen: x has at most s decimals (2 for I × k, 2
plus a share's for S × a), so the exact x / n is either on a half fen or at least
10^-s / n away from it, far beyond the 28th digit. Both therefore give the exact half-up
rounding of the same rational number (tests/integration/test_cob_accrual.py checks the
expression against ``to_fen`` on the server, half fens included).

The chunk's totals (gross, subsidy, and the net split into up and down as ``Accruals.add``
does) come back from the same statement, for the chunk's one ledger entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Numeric,
    Table,
    bindparam,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import Grouping

from services.loans.credit_lists import blacklisted_on_clause
from services.loans.domain.close_of_business import Accruals
from services.loans.domain.loan_state import DAY
from services.loans.domain.policies import SubsidyShare, shares_through
from services.loans.models import Loan

LOANS: Table = Loan.__table__  # type: ignore[assignment]  # declared as FromClause
FEN = Decimal("0.01")


def _exact(x: Fraction) -> Decimal | None:
    """``x`` as a Decimal if it is one exactly (a finite decimal within 60 digits)."""
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(x.numerator) / Decimal(x.denominator)
    return d if Fraction(d) == x else None


def factors(oldest: date | None, day: date, policy: Sequence[SubsidyShare]) -> tuple[list[Decimal | None], ...]:
    """a and b of the module docstring for the periods that started 1, 2, … days before
    ``day`` back to ``oldest``, as two arrays indexed (from 1) by those days; None where a
    share-day sum is not an exact decimal (those loans go through Python)."""
    through: list[Decimal | None] = []
    before: list[Decimal | None] = []
    if oldest is not None:
        for back in range(1, (day - oldest).days + 1):
            a, b = shares_through(policy, day - back * DAY, day)
            x, y = _exact(a), _exact(b)
            through.append(x if y is not None else None)
            before.append(y if x is not None else None)
    return through, before


def fen(amount: ColumnElement[Any], days: ColumnElement[int]) -> ColumnElement[Decimal]:
    """amount / days half up to the fen, for amount ≥ 0, exactly (module docstring)."""
    return func.div(amount * 200 + days, days * 2, type_=Numeric) * FEN


async def accrue_plain(
    session: AsyncSession,
    day: date,
    chunk: Sequence[str],
    oldest: date | None,
    policy: Sequence[SubsidyShare],
    accruals: Accruals,
) -> int:
    """Close ``day`` for the loans of ``chunk`` (ids in key order, locked by the caller in an
    earlier statement; ``oldest`` their earliest period start) that only accrue; add their
    amounts to ``accruals``. The number of loans closed."""
    through, before = factors(oldest, day, policy)
    if not chunk or not through:
        return 0
    c = LOANS.c
    # Day k of the period is the day after ``back`` days; the arrays are indexed by ``back``.
    back = (literal(day, Date) - c.period_start).cast(Integer)
    # Grouping: a subscript needs the array in parentheses, ``($1::NUMERIC[])[n]``.
    a = Grouping(bindparam("through", through, type_=postgresql.ARRAY(Numeric)))[back]
    b = Grouping(bindparam("before", before, type_=postgresql.ARRAY(Numeric)))[back]
    days = (c.period_end - c.period_start).cast(Integer)
    gross = fen(c.period_interest * (back + 1), days) - c.period_accrued
    subsidy = fen(c.period_subsidy * a, days) - fen(c.period_subsidy * b, days)
    # The chunk by its key range (the index), and of it the plain accruals.
    where = [c.id >= chunk[0], c.id <= chunk[-1], *_plain(day), a.is_not(None), b.is_not(None)]
    # Each loan's amounts are computed once, from the row before the update (RETURNING sees
    # it after), by a subquery joined to the rows it read by their physical address (ctid):
    # the rows are locked, so they are those rows. The totals come back with the update.
    row: ColumnElement[Any] = literal_column("loans.ctid")
    plain = (
        select(c.id, row.label("row"), gross.label("gross"), subsidy.label("subsidy")).where(*where).subquery("plain")
    )
    net = plain.c.gross - plain.c.subsidy
    done = (
        update(LOANS)
        .where(row == plain.c.row, c.id == plain.c.id)
        .values(
            accrual_days=c.accrual_days + 1,
            period_accrued=c.period_accrued + plain.c.gross,
            period_subsidy_accrued=c.period_subsidy_accrued + plain.c.subsidy,
            interest_outstanding=c.interest_outstanding + net,
            subsidy_accrued=c.subsidy_accrued + plain.c.subsidy,
            closed_through=day,
        )
        .returning(plain.c.gross, plain.c.subsidy)
        .cte("done")
    )
    zero = literal(Decimal("0.00"), Numeric)
    net = done.c.gross - done.c.subsidy
    totals = select(
        func.count().label("n"),
        func.coalesce(func.sum(done.c.gross), zero).label("gross"),
        func.coalesce(func.sum(done.c.subsidy), zero).label("subsidy"),
        func.coalesce(func.sum(func.greatest(net, zero)), zero).label("up"),
        func.coalesce(func.sum(func.greatest(-net, zero)), zero).label("down"),
    )
    t = (await session.execute(totals)).one()
    accruals.gross += t.gross
    accruals.subsidy += t.subsidy
    accruals.net_up += t.up
    accruals.net_down += t.down
    return int(t.n)


def _plain(day: date) -> list[ColumnElement[bool]]:
    """The loans whose close of ``day`` is only the day's accrual (module docstring)."""
    c = LOANS.c
    return [
        c.status == "active",
        c.closed_through < day,
        c.period_number <= c.term_months,
        c.period_start < day,
        c.period_end > day + DAY,
        c.principal_billed + c.interest_billed <= c.principal_paid + c.interest_paid,
        c.days_past_due == 0,
        c.period_interest >= 0,
        c.period_subsidy >= 0,
        ~blacklisted_on_clause(c.subject_id, day),
    ]
