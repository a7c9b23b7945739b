"""The bank's daily reconciliation (对账, DOMAIN.md §7): a closed business date's file read from
the ledger, the ``loans.reconciliation.ready`` event close of business emits with it, and the
bank's own file compared with it, its differences kept until someone resolves them. The rules
are pure, in domain/reconciliation.py; docs/settlement.md has the formats."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger
from services.loans.context import business_date, settings
from services.loans.domain.reconciliation import (
    KINDS,
    ZERO,
    BankFile,
    DayFile,
    Difference,
    Movement,
    compare,
    contradictions,
    day_file,
)
from services.loans.models import CobRun, LedgerEntry, Loan, ReconciliationDifference, ReconciliationSubmission
from shared.bulk import among
from shared.catalogue import ReconciliationReady, ReconciliationTotal
from shared.events import Envelope, new_event
from shared.money import format_money
from shared.problems import Problem

# Which leg of each kind's posting is which figure of its line (services/loans/loans.py and
# recoveries.py post them): (account, side) -> field. A write-off's reversal of unpaid penalty
# (penalty income against its receivable) moves no money and is not in the file.
_LEGS: dict[str, dict[tuple[str, str], str]] = {
    "disbursement": {(ledger.LOANS, "debit"): "amount"},
    "repayment": {
        (ledger.SETTLEMENT, "debit"): "amount",
        (ledger.LOANS, "credit"): "principal",
        (ledger.INTEREST_RECEIVABLE, "credit"): "interest",
        (ledger.PENALTY_RECEIVABLE, "credit"): "penalty",
    },
    "write_off": {
        (ledger.WRITE_OFF_LOSS, "debit"): "amount",
        (ledger.LOANS, "credit"): "principal",
        (ledger.INTEREST_RECEIVABLE, "credit"): "interest",
    },
    "recovery": {(ledger.SETTLEMENT, "debit"): "amount"},
}
_ACCOUNTS = sorted({account for legs in _LEGS.values() for account, _ in legs})


async def closed_date(session: AsyncSession, day: date, *, lock: bool = False) -> None:
    """Refuse a date whose file is not final: after the business date (422), the business date
    itself, still taking movements (409), or before the ledger's first day (404: no close of
    business closed it). ``lock`` locks the date's close-of-business row, so that two bank
    files for one date are compared one after the other."""
    today = await business_date(session)
    if day > today:
        raise Problem(
            422,
            "RECONCILIATION_DATE_IN_FUTURE",
            "Date not reached",
            f"{day} is after the business date {today}: nothing has happened on it.",
            field="date",
            business_date=str(today),
        )
    if day == today:
        raise Problem(
            409,
            "RECONCILIATION_DATE_OPEN",
            "Business date still open",
            f"{day} is the business date: its file is final once close of business closes it.",
            business_date=str(today),
        )
    run = await session.get(CobRun, day, with_for_update=lock)
    if run is None or run.status != "done":
        raise Problem(
            404,
            "RECONCILIATION_DATE_UNKNOWN",
            "No such business date",
            f"No close of business closed {day}: it is before the ledger's first business date.",
            business_date=str(today),
        )


async def movements(session: AsyncSession, day: date) -> list[Movement]:
    """The day's money movements on loans, one per ledger transaction, from its legs."""
    e = LedgerEntry
    rows = await session.execute(
        select(e.txn_id, e.kind, e.loan_id, Loan.village_code, e.account, e.debit, e.credit)
        .join(Loan, Loan.id == e.loan_id)
        # The (account, business_date) index finds them without reading the day's other legs.
        .where(e.account.in_(_ACCOUNTS), e.business_date == day, e.kind.in_(KINDS))
    )
    found: dict[str, dict[str, object]] = {}
    for txn, kind, loan_id, village, account, debit, credit in rows:
        legs = _LEGS[kind]
        line = found.setdefault(txn, {"kind": kind, "loan_id": loan_id, "village_code": village})
        for side, value in (("debit", debit), ("credit", credit)):
            name = legs.get((account, side))
            if name is not None and value:
                line[name] = Decimal(line.get(name, ZERO)) + Decimal(value)  # type: ignore[arg-type]
    return [Movement(**line) for line in found.values()]  # type: ignore[arg-type]


async def subsidy_accrued(session: AsyncSession, day: date) -> Decimal:
    """The day's accrual postings' net debit to the subsidy receivable (贴息, owed by the
    district finance); claims settling it are postings of other kinds and not in it."""
    e = LedgerEntry
    total = await session.scalar(
        select(func.coalesce(func.sum(e.debit), 0) - func.coalesce(func.sum(e.credit), 0)).where(
            e.account == ledger.SUBSIDY_RECEIVABLE, e.business_date == day, e.kind == "accrual"
        )
    )
    return Decimal(total or 0).quantize(Decimal("0.01"))


async def read_file(session: AsyncSession, day: date) -> DayFile:
    """The file of ``day`` as the ledger has it (the caller checked it is closed)."""
    return day_file(day, await movements(session, day), await subsidy_accrued(session, day))


def ready_event(made: DayFile) -> Envelope:
    return new_event(
        "loans.reconciliation.ready",
        "district",
        ReconciliationReady(
            business_date=made.business_date,
            lines=len(made.movements),
            totals=[
                ReconciliationTotal(
                    kind=t.kind,
                    count=t.count,
                    amount=format_money(t.amount),
                    principal=format_money(t.principal),
                    interest=format_money(t.interest),
                    penalty=format_money(t.penalty),
                )
                for t in made.totals
            ],
            subsidy_accrued=format_money(made.subsidy_accrued),
            checksum=made.checksum,
        ),
    )


# --- the bank's file -----------------------------------------------------------------------


@dataclass
class Submitted:
    submission: ReconciliationSubmission
    ours: DayFile
    bank: BankFile
    differences: list[ReconciliationDifference]


async def _villages(session: AsyncSession, loan_ids: Sequence[str]) -> dict[str, str]:
    if not loan_ids:
        return {}
    query = select(Loan.id, Loan.village_code).where(among(session, Loan.__table__.c.id, loan_ids))
    rows = await session.execute(query)
    return {loan_id: village for loan_id, village in rows}


async def submit(session: AsyncSession, day: date, bank: BankFile, bank_checksum: str | None, who: str) -> Submitted:
    """Compare the bank's file of a closed ``day`` with ours and keep each difference open;
    the date's differences still open from an earlier file are replaced (resolved ones stay).
    Refused, changing nothing: a date not closed (``closed_date``), too many lines (422
    VALIDATION_FAILED), totals that are not the sums of the file's own lines (422
    BANK_FILE_INCONSISTENT)."""
    limit = settings().reconciliation_max_lines
    if len(bank.lines) > limit:
        raise Problem(
            422,
            "VALIDATION_FAILED",
            "Invalid request",
            f"{len(bank.lines)} lines; a bank file has at most {limit} (VCREDIT_LOANS_RECONCILIATION_MAX_LINES).",
            field="lines",
            limit=limit,
        )
    found = contradictions(bank)
    if found:
        raise Problem(
            422,
            "BANK_FILE_INCONSISTENT",
            "Bank file contradicts itself",
            "The file's totals are not the sums of its lines: " + "; ".join(found) + ".",
            field="totals",
        )
    await closed_date(session, day, lock=True)
    ours = await read_file(session, day)
    differences = compare(ours, bank)
    await session.execute(
        delete(ReconciliationDifference).where(
            ReconciliationDifference.business_date == day, ReconciliationDifference.status == "open"
        )
    )
    now = datetime.now(UTC)
    submission = ReconciliationSubmission(
        id=str(uuid.uuid4()),
        business_date=day,
        submitted_by=who[:128],
        submitted_at=now,
        lines=len(bank.lines),
        checksum=ours.checksum,
        bank_checksum=bank_checksum,
        differences=len(differences),
    )
    session.add(submission)
    await session.flush()
    villages = {m.loan_id: m.village_code for m in ours.movements}
    villages |= await _villages(session, [d.loan_id for d in differences if d.loan_id and d.loan_id not in villages])
    rows = [_row(day, submission.id, d, villages, now) for d in differences]
    session.add_all(rows)
    await session.flush()
    return Submitted(submission, ours, bank, rows)


def _row(
    day: date, submission_id: str, d: Difference, villages: dict[str, str], now: datetime
) -> ReconciliationDifference:
    return ReconciliationDifference(
        id=str(uuid.uuid4()),
        business_date=day,
        submission_id=submission_id,
        kind=d.kind,
        loan_id=d.loan_id,
        village_code=villages.get(d.loan_id) if d.loan_id else None,
        ours_count=d.ours_count,
        ours_amount=d.ours_amount,
        theirs_count=d.theirs_count,
        theirs_amount=d.theirs_amount,
        status="open",
        opened_at=now,
    )


async def differences(
    session: AsyncSession,
    status: Literal["open", "resolved"] | None,
    day: date | None,
    loan_id: str | None,
    limit: int,
    offset: int,
) -> Sequence[ReconciliationDifference]:
    d = ReconciliationDifference
    query = select(d)
    if status is not None:
        query = query.where(d.status == status)
    if day is not None:
        query = query.where(d.business_date == day)
    if loan_id is not None:
        query = query.where(d.loan_id == loan_id)
    query = query.order_by(d.business_date, d.kind, d.loan_id, d.id).limit(limit).offset(offset)
    return (await session.scalars(query)).all()


async def resolve(session: AsyncSession, difference_id: str, reason: str, who: str) -> ReconciliationDifference:
    """Mark an open difference resolved, with the reason; 404 unknown, 409 resolved already."""
    found = await session.get(ReconciliationDifference, difference_id, with_for_update=True)
    if found is None:
        raise Problem(
            404, "DIFFERENCE_NOT_FOUND", "Difference not found", f"No reconciliation difference {difference_id}."
        )
    if found.status != "open":
        raise Problem(
            409,
            "DIFFERENCE_RESOLVED",
            "Difference already resolved",
            f"Resolved by {found.resolved_by} on {found.resolved_at}: {found.reason}",
        )
    found.status, found.reason, found.resolved_by, found.resolved_at = "resolved", reason, who[:128], datetime.now(UTC)
    return found
