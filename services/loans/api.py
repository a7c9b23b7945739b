"""The lending endpoints: credit lines, loans, repayments (one and batched), write-offs, and
the reads of a subject's credit: its lines and loans, a loan's repayments and statement. The
close of business, business date and ledger endpoints are in cob_api.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import loans, recoveries, repayment_statement, statement_formats, statements, village_credit
from services.loans.context import business_date
from services.loans.credit_lines import available, open_credit_line
from services.loans.credit_lists import red_listed
from services.loans.domain import policies
from services.loans.domain.classification import is_non_performing
from services.loans.domain.loan_state import arrears
from services.loans.domain.statement import Bill, Progress
from services.loans.domain.subsidy_claims import masked_subject
from services.loans.listing import lines_of, loans_of, one_filter
from services.loans.models import (
    CreditLine,
    Instalment,
    Loan,
    Repayment,
)
from services.loans.schemas import (
    BillOut,
    CreditLineIn,
    CreditLineOut,
    InstalmentOut,
    LoanIn,
    LoanOut,
    PricingOut,
    RecoveryIn,
    RecoveryOut,
    RepaymentBatchIn,
    RepaymentBatchOut,
    RepaymentEntryOut,
    RepaymentIn,
    RepaymentOut,
    RepaymentResult,
    StatementOut,
    SubsidyShareOut,
    VillageCreditOut,
    VillageLineOpened,
    VillageLineSkipped,
    WriteOffOut,
)
from shared.audit import Audited, SubjectKind
from shared.auth import Principal
from shared.idempotency import IDEMPOTENCY_KEY, idempotent, remembering
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.problems import Problem, problem_body
from shared.web import CurrentPrincipal, ReadSession, Session, ensure_visible, require_role, scope

router = APIRouter(prefix="/v1")


async def _line_answer(session: AsyncSession, line: CreditLine) -> CreditLineOut:
    return _line_out(line, await red_listed(session, line.subject_id))


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


def _loan_out(
    loan: Loan,
    schedule: Sequence[Instalment],
    priority: bool,
    repayments: Sequence[Repayment],
    today: dt.date,
) -> LoanOut:
    billed, progress = statements.account(loan, schedule, repayments, today)
    return LoanOut(
        loan_id=loan.id,
        credit_line_id=loan.credit_line_id,
        status=loan.status,
        principal=loan.principal,
        annual_rate=f"{loan.annual_rate:.6f}",
        subsidy_rate=f"{loan.subsidy_rate:.6f}",
        red_list_discount=f"{loan.red_list_discount:.6f}",
        pricing=PricingOut(
            rule=loan.pricing_rule,  # one of the two, as written at drawdown
            benchmark_from=loan.benchmark_from,
            benchmark_rate=None if loan.benchmark_rate is None else f"{loan.benchmark_rate:.6f}",
            lpr_from=loan.lpr_from,
            lpr_rate=None if loan.lpr_rate is None else f"{loan.lpr_rate:.6f}",
        ),
        day_count=loan.day_count,
        repayment_method=loan.method,
        term_months=loan.term_months,
        disbursed_on=loan.disbursed_on,
        maturity_on=loan.maturity_on,
        principal_outstanding=loan.principal_outstanding,
        interest_outstanding=loan.interest_outstanding,
        subsidy_accrued=loan.subsidy_accrued,
        subsidy_forfeited=loan.subsidy_forfeited,
        penalty_accrued=loan.penalty_accrued,
        compound_accrued=loan.compound_accrued,
        penalty_paid=loan.penalty_paid,
        penalty_outstanding=loan.penalty_outstanding,
        amount_due=arrears(loan) + loan.penalty_outstanding if loan.status == "active" else 0,
        days_past_due=loan.days_past_due,
        classification=loan.classification,
        non_performing=is_non_performing(loan.classification),  # type: ignore[arg-type]
        priority=priority,
        extended_months=loan.extended_months,
        subject_kind=loan.subject_kind,
        subject_masked=masked_subject(loan.subject_id),
        schedule=[_instalment_out(i, billed.get(i.number), p) for i, p in zip(schedule, progress, strict=True)],
    )


def _instalment_out(i: Instalment, bill: Bill | None, progress: Progress) -> InstalmentOut:
    return InstalmentOut(
        number=i.number,
        due_on=i.due_on,
        principal=i.principal,
        interest=i.interest,
        subsidy=i.subsidy,
        net_due=i.principal + i.interest - i.subsidy,
        billed=None
        if bill is None
        else BillOut(principal=bill.principal, interest=bill.interest, subsidy=bill.subsidy, net_due=bill.net_due),
        subsidy_policy=None
        if i.subsidy_policy is None
        else [
            SubsidyShareOut(first_day=first, last_day=last, share=f"{share:f}")
            for first, last, share in policies.parse(i.subsidy_policy)
        ],
        paid_principal=progress.paid_principal,
        paid_interest=progress.paid_interest,
        outstanding=progress.outstanding,
        state=progress.state,
    )


@router.post(
    "/credit-lines",
    status_code=201,
    response_model=CreditLineOut,
    tags=["credit lines"],
    summary="Open a revolving credit line (一次授信) up to the certified grade's limit",
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {
            409: [
                "BLACKLISTED",
                "CREDIT_LINE_EXISTS",
                "FUND_CAPACITY_EXCEEDED",
                "NO_CREDIT_GRADE",
                "RATING_NOT_CERTIFIED",
                "TOWNSHIP_HALTED",
                "VILLAGE_FROZEN",
            ]
        }
    ),
)
async def create_credit_line(body: CreditLineIn, request: Request, session: Session) -> CreditLineOut | JSONResponse:
    async def opened() -> CreditLineOut:
        return await _line_answer(session, await open_credit_line(session, body.subject_id))

    return await idempotent(session, request, body, opened, status=201)


@router.post(
    "/villages/{village_code}/credit-lines",
    response_model=VillageCreditOut,
    tags=["credit lines"],
    summary="Open the lines of every certified household of a village (整村授信)",
    description="Each household gets what POST /v1/credit-lines would give it: a line at its certified "
    "limit, or a skip with the reason. A frozen village, a halted township or a full fund refuses the "
    "whole call (409) and writes nothing. Repeating the call opens only what became openable since.",
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {404: ["VILLAGE_NOT_FOUND"], 409: ["FUND_CAPACITY_EXCEEDED", "TOWNSHIP_HALTED", "VILLAGE_FROZEN"]}
    ),
)
async def open_village_credit_lines(
    village_code: Annotated[str, Path(min_length=1, max_length=32)], request: Request, session: Session
) -> VillageCreditOut | JSONResponse:
    async def opened() -> VillageCreditOut:
        done = await village_credit.open_village_lines(session, village_code)
        return VillageCreditOut(
            village_code=done.village_code,
            business_date=done.business_date,
            opened=[
                VillageLineOpened(household_id=o.subject_id, credit_line_id=o.credit_line_id, limit=o.limit)
                for o in done.opened
            ],
            skipped=[
                VillageLineSkipped(household_id=s.subject_id, reason_code=s.reason_code, detail=s.detail)
                for s in done.skipped
            ],
        )

    return await idempotent(session, request, None, opened, status=200)


@router.get(
    "/credit-lines/{credit_line_id}",
    response_model=CreditLineOut,
    tags=["credit lines"],
    dependencies=[scope("lending:read")],
    responses=problems({404: ["CREDIT_LINE_NOT_FOUND"]}),
)
async def get_credit_line(
    credit_line_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited
) -> CreditLineOut:
    line = await session.get(CreditLine, credit_line_id)
    missing = Problem(404, "CREDIT_LINE_NOT_FOUND", "Credit line not found", f"No credit line {credit_line_id}.")
    if line is None:
        raise missing
    # Another village's or household's line answers as no line (shared.web.ensure_visible).
    ensure_visible(principal, missing, village=line.village_code, household=line.subject_id)
    out = await _line_answer(session, line)
    await audit.record(subject_kind(line.subject_kind), line.subject_id, credit_line_id)
    return out


@router.post(
    "/loans",
    status_code=201,
    response_model=LoanOut,
    tags=["loans"],
    summary="Draw a loan on a credit line (随用随贷)",
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {
            409: [
                "BLACKLISTED",
                "FUND_CAPACITY_EXCEEDED",
                "LIMIT_EXCEEDED",
                "NO_RATE_IN_FORCE",
                "PERIOD_CLOSED",
                "RATING_NOT_CERTIFIED",
                "TOWNSHIP_HALTED",
                "VILLAGE_FROZEN",
            ],
            422: ["UNKNOWN_CREDIT_LINE"],
        }
    ),
)
async def create_loan(body: LoanIn, request: Request, session: Session) -> LoanOut | JSONResponse:
    async def drawdown() -> LoanOut:
        drawn = await loans.draw(session, body.credit_line_id, body.amount, body.term_months, body.repayment_method)
        return _loan_out(drawn.loan, drawn.schedule, drawn.red, [], drawn.loan.disbursed_on)

    async def within_capacity() -> None:
        # Last, after the answer is stored: every drawdown queues on the fund row's lock,
        # held from here to the commit (issue 27: the district's drawdowns waited on it).
        await loans.check_fund_capacity(session, body.amount)

    return await idempotent(session, request, body, drawdown, status=201, last=within_capacity)


@router.get(
    "/loans/{loan_id}",
    response_model=LoanOut,
    tags=["loans"],
    dependencies=[scope("lending:read")],
    responses=problems({404: ["LOAN_NOT_FOUND"]}),
)
async def get_loan(loan_id: str, session: ReadSession, principal: CurrentPrincipal, audit: Audited) -> LoanOut:
    loan = await visible_loan(session, principal, loan_id)
    out = (await loans_out(session, [loan]))[0]
    await audit.record(subject_kind(loan.subject_kind), loan.subject_id, loan_id)
    return out


async def visible_loan(session: AsyncSession, principal: Principal, loan_id: str) -> Loan:
    loan = await session.get(Loan, loan_id)
    missing = Problem(404, "LOAN_NOT_FOUND", "Loan not found", f"No loan {loan_id}.")
    if loan is None:
        raise missing
    # Another village's or household's loan answers as no loan (shared.web.ensure_visible).
    ensure_visible(principal, missing, village=loan.village_code, household=loan.subject_id)
    return loan


async def loans_out(session: AsyncSession, found: Sequence[Loan]) -> list[LoanOut]:
    ids = [loan.id for loan in found]
    schedules = await statements.instalments_of(session, ids)
    repayments = await statements.repayments_of(session, ids)
    today = await business_date(session)
    red = {subject: await red_listed(session, subject) for subject in {loan.subject_id for loan in found}}
    return [_loan_out(loan, schedules[loan.id], red[loan.subject_id], repayments[loan.id], today) for loan in found]


SubjectFilter = Annotated[str | None, Query(min_length=1, max_length=36)]


@router.get(
    "/loans",
    response_model=list[LoanOut],
    tags=["loans"],
    summary="A household's, a business's, a credit line's or a village's loans, oldest drawdown first",
    description="Exactly one of household_id, business_id, credit_line_id, village_code (else 422 naming it; "
    "village_code added in issue 26). Each loan listed "
    "is an audited read (X-Query-Purpose). A bound credential lists only what its binding reaches: another "
    "village's or household's loans answer as an empty list, like an unknown id's.",
    dependencies=[scope("lending:read")],
)
async def list_loans(
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    household_id: SubjectFilter = None,
    business_id: SubjectFilter = None,
    credit_line_id: SubjectFilter = None,
    village_code: Annotated[str | None, Query(pattern=r"^[0-9]{1,12}$", description="a village's code")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[LoanOut]:
    name, value = one_filter(
        household_id=household_id, business_id=business_id, credit_line_id=credit_line_id, village_code=village_code
    )
    found = await loans_of(session, principal, name, value, limit, offset)
    out = await loans_out(session, found)
    # A page of loans is a read of each (docs/query-audit.md: lists are audited per item).
    for kind in ("household", "business"):
        await audit.record_many(kind, [(x.subject_id, x.id) for x in found if subject_kind(x.subject_kind) == kind])
    return out


@router.get(
    "/credit-lines",
    response_model=list[CreditLineOut],
    tags=["credit lines"],
    summary="A household's or a business's credit lines",
    description="Exactly one of household_id, business_id (else 422 naming it); audited per line listed; a "
    "bound credential sees only its own (another's answer as an unknown id's: an empty list).",
    dependencies=[scope("lending:read")],
)
async def list_credit_lines(
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    household_id: SubjectFilter = None,
    business_id: SubjectFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[CreditLineOut]:
    name, value = one_filter(household_id=household_id, business_id=business_id)
    found = await lines_of(session, principal, name, value, limit, offset)
    out = [await _line_answer(session, line) for line in found]
    for kind in ("household", "business"):
        await audit.record_many(kind, [(x.subject_id, x.id) for x in found if subject_kind(x.subject_kind) == kind])
    return out


@router.get(
    "/loans/{loan_id}/repayments",
    response_model=list[RepaymentEntryOut],
    tags=["loans"],
    summary="A loan's repayments in value-date order (then as received), each with its allocation",
    dependencies=[scope("lending:read")],
    responses=problems({404: ["LOAN_NOT_FOUND"]}),
)
async def list_repayments(
    loan_id: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[RepaymentEntryOut]:
    loan = await visible_loan(session, principal, loan_id)
    rows = await session.scalars(
        select(Repayment)
        .where(Repayment.loan_id == loan.id)
        .order_by(Repayment.business_date, Repayment.received_at, Repayment.id)
        .limit(limit)
        .offset(offset)
    )
    out = [
        RepaymentEntryOut(
            repayment_id=r.id,
            loan_id=r.loan_id,
            value_date=r.business_date,
            received_at=r.received_at,
            amount=r.amount,
            interest=r.interest,
            principal=r.principal,
            penalty=r.penalty,
        )
        for r in rows
    ]
    # Even none is disclosed: that nothing was repaid on the loan is its credit data.
    await audit.record(subject_kind(loan.subject_kind), loan.subject_id, loan_id)
    return out


@router.get(
    "/loans/{loan_id}/statement",
    response_model=StatementOut,
    tags=["loans"],
    summary="The borrower's statement (对账单): interest charged, subsidy and net due (DOMAIN §4)",
    description="from defaults to the disbursement date, to to the business date (no later: 422 naming it); "
    "from after to is 422 naming from. JSON, or CSV (UTF-8 with a byte-order mark, for Excel) with "
    "format=csv or Accept: text/csv; format wins over Accept.",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **problems({404: ["LOAN_NOT_FOUND"]})},
    dependencies=[scope("lending:read")],
)
async def get_statement(
    loan_id: str,
    request: Request,
    session: ReadSession,
    principal: CurrentPrincipal,
    audit: Audited,
    start: Annotated[dt.date | None, Query(alias="from", description="first value date, included")] = None,
    end: Annotated[dt.date | None, Query(alias="to", description="last value date, included")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="json or csv; else by Accept")] = None,
) -> StatementOut | Response:
    loan = await visible_loan(session, principal, loan_id)
    today = await business_date(session)
    start, end = statements.check_range(start, end, loan, today)
    made = await statements.loan_statement(session, loan, start, end, today)
    out = statement_formats.statement_out(loan, made, start, end, today)
    await audit.record(subject_kind(loan.subject_kind), loan.subject_id, loan_id)
    if format == "csv" or (format is None and statement_formats.wants_csv(request.headers.get("accept"))):
        return statement_formats.csv_response(out)
    return out


def subject_kind(subject_kind: str) -> SubjectKind:
    return "business" if subject_kind == "business" else "household"


def _repayment_out(repaid: loans.Repaid) -> RepaymentOut:
    repayment = repaid.repayment
    return RepaymentOut(
        repayment_id=repayment.id,
        loan_id=repayment.loan_id,
        amount=repayment.amount,
        interest=repayment.interest,
        principal=repayment.principal,
        penalty=repayment.penalty,
        business_date=repayment.business_date,
        principal_outstanding=repaid.principal_outstanding,
        interest_outstanding=repaid.interest_outstanding,
        penalty_outstanding=repaid.penalty_outstanding,
    )


@router.post(
    "/loans/{loan_id}/repayments",
    status_code=201,
    response_model=RepaymentOut,
    tags=["loans"],
    summary="Repay: penalty, accrued interest, then principal (or the bank's configured order); "
    "a replayed Idempotency-Key returns the first result",
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {404: ["LOAN_NOT_FOUND"], 409: ["PERIOD_CLOSED", "LOAN_CLOSED"], 422: ["NOT_THE_BUSINESS_DATE", "OVERPAYMENT"]}
    ),
)
async def create_repayment(
    loan_id: str, body: RepaymentIn, request: Request, session: Session
) -> RepaymentOut | JSONResponse:
    async def repaid() -> RepaymentOut:
        # The idempotency answer is written with the repayment, in its statement (one round
        # trip fewer, issue 27): the same status as idempotent's below.
        repaid = await repayment_statement.repay_loan(
            session,
            loan_id,
            body.amount,
            body.date,
            body.prepayment,
            remember=lambda r: remembering(request, 201, _repayment_out(r)),
        )
        return _repayment_out(repaid)

    return await idempotent(session, request, body, repaid, status=201)


@router.post(
    "/repayment-batches",
    response_model=RepaymentBatchOut,
    tags=["loans"],
    summary="A bank's debit run (批量扣款): each repayment applied, in order, or refused alone",
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {404: ["LOAN_NOT_FOUND"], 409: ["PERIOD_CLOSED", "LOAN_CLOSED"], 422: ["NOT_THE_BUSINESS_DATE", "OVERPAYMENT"]}
    ),
)
async def create_repayment_batch(
    body: RepaymentBatchIn, request: Request, session: Session
) -> RepaymentBatchOut | JSONResponse:
    """Each item is applied as ``POST /v1/loans/{id}/repayments`` would apply it, after the
    items before it (two on one loan see each other); a refused item changes nothing and
    answers the problem that endpoint would have answered. The applied ones commit together."""

    async def applied() -> RepaymentBatchOut:
        items = [(item.loan_id, item.amount) for item in body.repayments]
        today, outcomes = await loans.repay_in_turn(session, items, body.date)
        results = [_result(loan_id, outcome) for (loan_id, _), outcome in zip(items, outcomes, strict=True)]
        done = sum(isinstance(outcome, loans.Repaid) for outcome in outcomes)
        return RepaymentBatchOut(business_date=today, applied=done, refused=len(results) - done, results=results)

    return await idempotent(session, request, body, applied, status=200)


def _result(loan_id: str, outcome: loans.Repaid | Problem) -> RepaymentResult:
    if isinstance(outcome, Problem):
        problem = problem_body(outcome.status, outcome.code, outcome.title, outcome.detail, **outcome.extra)
        return RepaymentResult(loan_id=loan_id, status=outcome.status, problem=problem)
    return RepaymentResult(loan_id=loan_id, status=201, repayment=_repayment_out(outcome))


@router.post(
    "/loans/{loan_id}/write-off",
    status_code=201,
    response_model=WriteOffOut,
    tags=["loans"],
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems({404: ["LOAN_NOT_FOUND"], 409: ["PERIOD_CLOSED", "LOAN_CLOSED", "NOT_NON_PERFORMING"]}),
)
async def write_off_loan(loan_id: str, request: Request, session: Session) -> WriteOffOut | JSONResponse:
    async def written_off() -> WriteOffOut:
        done = await loans.write_off_loan(session, loan_id)
        return WriteOffOut(loan_id=done.loan_id, loss=done.loss, business_date=done.business_date)

    return await idempotent(session, request, None, written_off, status=201)


@router.post(
    "/loans/{loan_id}/recoveries",
    status_code=201,
    response_model=RecoveryOut,
    tags=["loans"],
    summary="Record money collected on a written-off loan (核销后清收), returned to those who bore the loss (bank)",
    description="The amount goes back to the mutual guarantee contributions, the risk fund, the bank and the "
    "insurer pro rata to what each bore of the loss (risk: GET /v1/losses). At most the loss in all.",
    dependencies=[scope("lending:write"), IDEMPOTENCY_KEY],
    responses=problems(
        {404: ["LOAN_NOT_FOUND"], 409: ["PERIOD_CLOSED", "LOAN_NOT_WRITTEN_OFF", "RECOVERY_EXCEEDS_LOSS"]}
    ),
)
async def record_recovery(
    loan_id: str, body: RecoveryIn, request: Request, session: Session, principal: CurrentPrincipal
) -> RecoveryOut | JSONResponse:
    # The bank collects (不良资产清收); the operator runs the system but decides nothing of it.
    require_role(principal, "bank")

    async def recovered() -> RecoveryOut:
        done = await recoveries.recover(session, loan_id, body.amount, principal.name)
        r = done.recovery
        return RecoveryOut(
            recovery_id=r.id,
            loan_id=r.loan_id,
            amount=r.amount,
            business_date=r.business_date,
            loss=done.loss,
            recovered=done.recovered,
            net=done.loss - done.recovered,
        )

    return await idempotent(session, request, body, recovered, status=201)
