"""Extension (展期, DOMAIN.md §7): the bank proposes, a second principal approves or rejects
(four eyes); the approval re-plans the loan's remaining principal over its remaining and added
months (domain/reschedule.py) and floors its classification. No money moves: the ledger is
unchanged. A refusal (``Problem``) changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.context import business_date, settings
from services.loans.domain.classification import Classification
from services.loans.domain.loan_state import age, who
from services.loans.domain.reschedule import ExtensionLimit, ExtensionRefused, check_extension, extend, extendable
from services.loans.domain.schedule import Instalment as Planned
from services.loans.models import Instalment, Loan, LoanExtension
from shared.auth import Principal
from shared.catalogue import LoanExtended
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem
from shared.web import ensure_second_principal


def _refused(refusal: ExtensionRefused) -> Problem:
    if isinstance(refusal, ExtensionLimit):
        return Problem(409, "EXTENSION_LIMIT", "Extension limit", refusal.detail, None, **refusal.extra)
    return Problem(409, "EXTENSION_NOT_ALLOWED", "Extension not allowed", refusal.detail, None, **refusal.extra)


async def _loan(session: AsyncSession, loan_id: str) -> Loan:
    # Locked as every writer of a loan locks it (loans._locked_loans: the loan row first); an
    # extension changes no credit line.
    loan = await session.get(Loan, loan_id, with_for_update=True)
    if loan is None:
        raise Problem(404, "LOAN_NOT_FOUND", "Loan not found", f"No loan {loan_id}.")
    return loan


async def _approved(session: AsyncSession, loan_id: str) -> int:
    count = await session.scalar(
        select(func.count()).where(LoanExtension.loan_id == loan_id, LoanExtension.status == "approved")
    )
    return int(count or 0)


async def _check(session: AsyncSession, loan: Loan, months: int) -> None:
    try:
        check_extension(extendable(loan, await _approved(session, loan.id)), months, settings().extension_max_count)
    except ExtensionRefused as refusal:
        raise _refused(refusal) from None


async def propose(session: AsyncSession, principal: Principal, loan_id: str, months: int, reason: str) -> LoanExtension:
    """A proposal, refused at once if the limits refuse it already or one is pending."""
    loan = await _loan(session, loan_id)
    pending = await session.scalar(
        select(LoanExtension.id).where(LoanExtension.loan_id == loan.id, LoanExtension.status == "proposed")
    )
    if pending is not None:
        raise Problem(
            409,
            "EXTENSION_PENDING",
            "Extension pending",
            f"Extension {pending} awaits a decision.",
            extension_id=pending,
        )
    await _check(session, loan, months)
    extension = LoanExtension(
        id=str(uuid.uuid4()),
        loan_id=loan.id,
        months=months,
        reason=reason,
        status="proposed",
        proposed_by=principal.name,
        proposed_on=await business_date(session),
        created_at=datetime.now(UTC),
    )
    session.add(extension)
    await session.flush()
    return extension


async def get_extension(session: AsyncSession, loan_id: str, extension_id: str, *, lock: bool = False) -> LoanExtension:
    extension = await session.get(LoanExtension, extension_id, with_for_update=lock)
    if extension is None or extension.loan_id != loan_id:
        raise Problem(
            404, "EXTENSION_NOT_FOUND", "Extension not found", f"No extension {extension_id} of loan {loan_id}."
        )
    return extension


async def extensions_of(session: AsyncSession, loan_id: str, limit: int, offset: int) -> list[LoanExtension]:
    rows = await session.scalars(
        select(LoanExtension)
        .where(LoanExtension.loan_id == loan_id)
        .order_by(LoanExtension.created_at, LoanExtension.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows)


@dataclass
class Decided:
    extension: LoanExtension
    loan: Loan


async def _proposal(session: AsyncSession, principal: Principal, loan_id: str, extension_id: str) -> Decided:
    """The proposal to decide, its loan locked; never decided by its proposer."""
    loan = await _loan(session, loan_id)
    extension = await get_extension(session, loan_id, extension_id, lock=True)
    if extension.status != "proposed":
        raise Problem(409, "EXTENSION_DECIDED", "Already decided", f"The extension is {extension.status}.")
    ensure_second_principal(principal, extension.proposed_by, "extension proposal")
    return Decided(extension, loan)


def _decided(decided: Decided, principal: Principal, status: str, reasons: str | None, today: date) -> Decided:
    extension = decided.extension
    extension.status, extension.decided_by, extension.decided_on = status, principal.name, today
    extension.decision_reasons = reasons
    return decided


async def approve(
    session: AsyncSession, principal: Principal, loan_id: str, extension_id: str, reasons: str | None
) -> Decided:
    """The re-plan, the floor and the event; the limits checked again, since the loan may have
    changed since the proposal (repaid, billed to maturity)."""
    decided = await _proposal(session, principal, loan_id, extension_id)
    today = await business_date(session)
    await _check(session, decided.loan, decided.extension.months)
    await _extend(session, decided.loan, decided.extension, principal, today)
    return _decided(decided, principal, "approved", reasons, today)


async def reject(session: AsyncSession, principal: Principal, loan_id: str, extension_id: str, reasons: str) -> Decided:
    """The proposal ends; the loan is unchanged."""
    decided = await _proposal(session, principal, loan_id, extension_id)
    return _decided(decided, principal, "rejected", reasons, await business_date(session))


async def _extend(
    session: AsyncSession, loan: Loan, extension: LoanExtension, principal: Principal, today: date
) -> None:
    cfg = settings()
    before = loan.maturity_on
    unbilled = loan.principal - loan.principal_billed
    plan = extend(
        loan,
        extension.months,
        floor=cfg.extension_classification_floor,
        subsidised=cfg.extension_subsidy == "continue",
    )
    await write_plan(session, loan.id, plan)
    loan.version += 1
    extension.maturity_before, extension.maturity_after = before, loan.maturity_on
    # The floor applies at once; the class event as the close of business would send it.
    events = age(loan, today)
    first = plan[0]
    events.append(
        new_event(
            "loans.loan.extended",
            loan.village_code,
            LoanExtended(
                **who(loan),
                loan_id=loan.id,
                extension_id=extension.id,
                months=extension.months,
                extended_months=loan.extended_months,
                term_months=loan.term_months,
                maturity_before=before,
                maturity_on=loan.maturity_on,
                rescheduled_principal=format_money(unbilled),
                first_instalment=first.number,
                first_due_on=first.due_on,
                first_net_due=format_money(first.net_due),
                subsidised=loan.subsidy_ends_on is None,
                classification=cast(Classification, loan.classification),
                proposed_by=extension.proposed_by,
                approved_by=principal.name,
                business_date=today,
            ),
        )
    )
    await emit(session, *events)


async def write_plan(session: AsyncSession, loan_id: str, plan: Sequence[Planned]) -> None:
    """Replace the unbilled instalments with ``plan`` (domain/reschedule.replan): update those
    that exist, add the rest. Also the prepayment's re-plan (loans.repay)."""
    rows = {
        i.number: i
        for i in await session.scalars(
            select(Instalment).where(Instalment.loan_id == loan_id, Instalment.number >= plan[0].number)
        )
    }
    for p in plan:
        row = rows.get(p.number)
        if row is None:
            row = Instalment(loan_id=loan_id, number=p.number, billed=None)
            session.add(row)
        row.start, row.due_on = p.start, p.due_on
        row.principal, row.interest, row.subsidy = p.principal, p.interest, p.subsidy
    await session.flush()
