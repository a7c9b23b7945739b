"""The lending endpoints: credit lines, loans, repayments (one and batched), write-offs. The
close of business, business date and ledger endpoints are in cob_api.py."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.context import business_date
from services.loans.credit_lines import (
    available,
    fund,
    fund_capacity,
    open_line,
    programme_outstanding,
    refuse_new_credit,
)
from services.loans.credit_lists import red_listed
from services.loans.domain.classification import is_non_performing
from services.loans.domain.loan_state import arrears
from services.loans.loans import Repaid, drawdown, record, repay, write_off
from services.loans.models import (
    CreditLine,
    Instalment,
    Loan,
    RatingView,
    Repayment,
)
from services.loans.schemas import (
    CreditLineIn,
    CreditLineOut,
    InstalmentOut,
    LoanIn,
    LoanOut,
    RepaymentBatchIn,
    RepaymentBatchOut,
    RepaymentIn,
    RepaymentOut,
    RepaymentResult,
    WriteOffOut,
)
from shared import idempotency
from shared.audit import Audited, SubjectKind
from shared.problems import Problem, problem_body
from shared.web import CurrentPrincipal, ReadSession, Session, ensure_bound, scope

router = APIRouter(prefix="/v1")


def _line_out(line: CreditLine, priority: bool) -> CreditLineOut:
    household = line.subject_id if line.subject_kind == "household" else None
    business = line.subject_id if line.subject_kind == "business" else None
    return CreditLineOut(
        credit_line_id=line.id,
        household_id=household,
        business_id=business,
        limit=line.limit,
        available=available(line),
        outstanding=line.outstanding,
        status=line.status,
        priority=priority,
    )


def _loan_out(loan: Loan, schedule: Sequence[Instalment], priority: bool) -> LoanOut:
    return LoanOut(
        loan_id=loan.id,
        credit_line_id=loan.credit_line_id,
        status=loan.status,
        principal=loan.principal,
        annual_rate=f"{loan.annual_rate:.6f}",
        subsidy_rate=f"{loan.subsidy_rate:.6f}",
        red_list_discount=f"{loan.red_list_discount:.6f}",
        day_count=loan.day_count,
        repayment_method=loan.method,
        term_months=loan.term_months,
        disbursed_on=loan.disbursed_on,
        maturity_on=loan.maturity_on,
        principal_outstanding=loan.principal_outstanding,
        interest_outstanding=loan.interest_outstanding,
        subsidy_accrued=loan.subsidy_accrued,
        subsidy_forfeited=loan.subsidy_forfeited,
        amount_due=arrears(loan) if loan.status == "active" else 0,
        days_past_due=loan.days_past_due,
        classification=loan.classification,
        non_performing=is_non_performing(loan.classification),  # type: ignore[arg-type]
        priority=priority,
        schedule=[
            InstalmentOut(
                number=i.number,
                due_on=i.due_on,
                principal=i.principal,
                interest=i.interest,
                subsidy=i.subsidy,
                net_due=i.principal + i.interest - i.subsidy,
            )
            for i in schedule
        ],
    )


@router.post(
    "/credit-lines",
    status_code=201,
    response_model=CreditLineOut,
    tags=["credit lines"],
    summary="Open a revolving credit line (一次授信) up to the certified grade's limit",
    dependencies=[scope("lending:write")],
)
async def create_credit_line(body: CreditLineIn, request: Request, session: Session) -> CreditLineOut | JSONResponse:
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        # Locked: concurrent openings for one subject queue here, so the second sees the
        # first's line (409 CREDIT_LINE_EXISTS) instead of failing on its unique key (a 500).
        rating = await session.get(RatingView, body.subject_id, with_for_update=True)
        if rating is None or not rating.certified:
            raise Problem(
                409,
                "RATING_NOT_CERTIFIED",
                "Rating not certified",
                "A credit line needs a certified rating (after its public notice).",
            )
        if rating.credit_limit <= 0 or rating.grade == "NONE":
            raise Problem(409, "NO_CREDIT_GRADE", "No credit grade", "The rating in force gives no credit.")
        await refuse_new_credit(session, rating.village_code, rating.township_code, rating.subject_id)
        if await programme_outstanding(session) >= await fund_capacity(session):
            raise Problem(
                409,
                "FUND_CAPACITY_EXCEEDED",
                "Fund capacity reached",
                "Programme lending is at 10x the risk compensation fund (004 §6(2)).",
            )
        if await session.scalar(select(CreditLine.id).where(CreditLine.subject_id == body.subject_id)):
            raise Problem(409, "CREDIT_LINE_EXISTS", "Credit line exists", "One revolving line per subject.")
        line = await open_line(session, rating, await business_date(session))
        out = _line_out(line, await red_listed(session, line.subject_id))
        await idempotency.remember(session, request, 201, out)
    return out


@router.get(
    "/credit-lines/{credit_line_id}",
    response_model=CreditLineOut,
    tags=["credit lines"],
    dependencies=[scope("lending:read")],
)
async def get_credit_line(
    credit_line_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited
) -> CreditLineOut:
    line = await session.get(CreditLine, credit_line_id)
    if line is None:
        raise Problem(404, "CREDIT_LINE_NOT_FOUND", "Credit line not found", f"No credit line {credit_line_id}.")
    ensure_bound(principal, village=line.village_code, household=line.subject_id)
    out = _line_out(line, await red_listed(session, line.subject_id))
    await audit.record(_kind(line.subject_kind), line.subject_id, credit_line_id)
    return out


@router.post(
    "/loans",
    status_code=201,
    response_model=LoanOut,
    tags=["loans"],
    summary="Draw a loan on a credit line (随用随贷)",
    dependencies=[scope("lending:write")],
)
async def create_loan(body: LoanIn, request: Request, session: Session) -> LoanOut | JSONResponse:
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        # The line row is locked first: two concurrent drawdowns on one line serialise here.
        line = await session.get(CreditLine, body.credit_line_id, with_for_update=True)
        if line is None:
            raise Problem(
                422,
                "UNKNOWN_CREDIT_LINE",
                "Unknown credit line",
                f"No credit line {body.credit_line_id}.",
                field="credit_line_id",
            )
        await refuse_new_credit(session, line.village_code, line.township_code, line.subject_id)
        rating = await session.get(RatingView, line.subject_id)
        if rating is None or not rating.certified or line.limit <= 0:
            raise Problem(
                409, "RATING_NOT_CERTIFIED", "Rating not certified", "The rating in force gives no credit now."
            )
        if body.amount > available(line):
            raise Problem(
                409,
                "LIMIT_EXCEEDED",
                "Limit exceeded",
                f"Available on this line: {available(line):.2f}.",
                available=f"{available(line):.2f}",
            )
        red = await red_listed(session, line.subject_id)
        today = await business_date(session)
        loan, schedule = await drawdown(
            session, line, rating, body.amount, body.term_months, body.repayment_method, today, red=red
        )
        # The fund row is locked last, so concurrent drawdowns queue on it only for this
        # check and the commit; the sum includes this loan (its line is flushed first). A
        # refusal rolls the drawdown back with the rest of the transaction.
        capacity = (await fund(session)).capacity
        if await programme_outstanding(session) > capacity:
            raise Problem(
                409,
                "FUND_CAPACITY_EXCEEDED",
                "Fund capacity reached",
                "Programme lending may not exceed 10x the risk compensation fund (004 §6(2)).",
            )
        out = _loan_out(loan, schedule, red)
        await idempotency.remember(session, request, 201, out)
    return out


@router.get("/loans/{loan_id}", response_model=LoanOut, tags=["loans"], dependencies=[scope("lending:read")])
async def get_loan(loan_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited) -> LoanOut:
    loan = await session.get(Loan, loan_id)
    if loan is None:
        raise Problem(404, "LOAN_NOT_FOUND", "Loan not found", f"No loan {loan_id}.")
    ensure_bound(principal, village=loan.village_code, household=loan.subject_id)
    schedule = await session.scalars(
        select(Instalment).where(Instalment.loan_id == loan.id).order_by(Instalment.number)
    )
    out = _loan_out(loan, list(schedule), await red_listed(session, loan.subject_id))
    await audit.record(_kind(loan.subject_kind), loan.subject_id, loan_id)
    return out


def _kind(subject_kind: str) -> SubjectKind:
    return "business" if subject_kind == "business" else "household"


async def _locked_loans(
    session: AsyncSession, loan_ids: Collection[str]
) -> tuple[dict[str, Loan], dict[str, CreditLine]]:
    """The loans and their lines, locked in that order and each by id, as every writer of
    both locks them (no two requests wait on each other in a cycle)."""
    loans = {
        loan.id: loan
        for loan in await session.scalars(
            select(Loan).where(Loan.id.in_(sorted(loan_ids))).order_by(Loan.id).with_for_update()
        )
    }
    line_ids = sorted({loan.credit_line_id for loan in loans.values()})
    lines = {
        line.id: line
        for line in await session.scalars(
            select(CreditLine).where(CreditLine.id.in_(line_ids)).order_by(CreditLine.id).with_for_update()
        )
    }
    return loans, lines


def _active(loan_id: str, loan: Loan | None) -> Loan:
    if loan is None:
        raise Problem(404, "LOAN_NOT_FOUND", "Loan not found", f"No loan {loan_id}.")
    if loan.status != "active":
        raise Problem(409, "LOAN_CLOSED", "Loan closed", f"The loan is {loan.status}.")
    return loan


async def _locked_loan(session: AsyncSession, loan_id: str) -> tuple[Loan, CreditLine]:
    loans, lines = await _locked_loans(session, [loan_id])
    loan = _active(loan_id, loans.get(loan_id))
    return loan, lines[loan.credit_line_id]


def _business_day(today: date, value_date: date | None) -> None:
    if value_date is not None and value_date != today:
        raise Problem(
            422,
            "NOT_THE_BUSINESS_DATE",
            "Value date refused",
            f"Repayments are taken on the business date {today}; back-dating is not supported.",
            field="date",
        )


def _repayment_out(loan: Loan, repayment: Repayment) -> RepaymentOut:
    return RepaymentOut(
        repayment_id=repayment.id,
        loan_id=loan.id,
        amount=repayment.amount,
        interest=repayment.interest,
        principal=repayment.principal,
        business_date=repayment.business_date,
        principal_outstanding=loan.principal_outstanding,
        interest_outstanding=loan.interest_outstanding,
    )


@router.post(
    "/loans/{loan_id}/repayments",
    status_code=201,
    response_model=RepaymentOut,
    tags=["loans"],
    summary="Repay: accrued interest first, then principal; a replayed Idempotency-Key returns the first result",
    dependencies=[scope("lending:write")],
)
async def create_repayment(
    loan_id: str, body: RepaymentIn, request: Request, session: Session
) -> RepaymentOut | JSONResponse:
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        loan, line = await _locked_loan(session, loan_id)
        today = await business_date(session)
        _business_day(today, body.date)
        repaid = await repay(session, loan, line, body.amount, today)
        await record(session, [repaid])
        out = _repayment_out(loan, repaid.repayment)
        await idempotency.remember(session, request, 201, out)
    return out


@router.post(
    "/repayment-batches",
    response_model=RepaymentBatchOut,
    tags=["loans"],
    summary="A bank's debit run (批量扣款): each repayment applied, in order, or refused alone",
    dependencies=[scope("lending:write")],
)
async def create_repayment_batch(
    body: RepaymentBatchIn, request: Request, session: Session
) -> RepaymentBatchOut | JSONResponse:
    """Each item is applied as ``POST /v1/loans/{id}/repayments`` would apply it, after the
    items before it (two on one loan see each other); a refused item changes nothing and
    answers the problem that endpoint would have answered. The applied ones commit together."""
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        today = await business_date(session)
        _business_day(today, body.date)
        loans, lines = await _locked_loans(session, {item.loan_id for item in body.repayments})
        applied: list[Repaid] = []
        results: list[RepaymentResult] = []
        for item in body.repayments:
            try:
                loan = _active(item.loan_id, loans.get(item.loan_id))
                repaid = await repay(session, loan, lines[loan.credit_line_id], item.amount, today)
            except Problem as refused:
                problem = problem_body(refused.status, refused.code, refused.title, refused.detail, **refused.extra)
                results.append(RepaymentResult(loan_id=item.loan_id, status=refused.status, problem=problem))
                continue
            applied.append(repaid)
            results.append(
                RepaymentResult(loan_id=item.loan_id, status=201, repayment=_repayment_out(loan, repaid.repayment))
            )
        await record(session, applied)
        out = RepaymentBatchOut(
            business_date=today, applied=len(applied), refused=len(results) - len(applied), results=results
        )
        await idempotency.remember(session, request, 200, out)
    return out


@router.post(
    "/loans/{loan_id}/write-off",
    status_code=201,
    response_model=WriteOffOut,
    tags=["loans"],
    dependencies=[scope("lending:write")],
)
async def write_off_loan(loan_id: str, request: Request, session: Session) -> WriteOffOut | JSONResponse:
    async with session.begin():
        if (replay := await idempotency.claim(session, request, None)) is not None:
            return replay
        loan, line = await _locked_loan(session, loan_id)
        today = await business_date(session)
        loss = await write_off(session, loan, line, today)
        out = WriteOffOut(loan_id=loan.id, loss=loss, business_date=today)
        await idempotency.remember(session, request, 201, out)
    return out
