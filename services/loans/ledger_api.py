"""The ledger's endpoints: the trial balance (by period, as of a date), closing an accounting
month and reading the closed ones, and corrections in the open period (issue 25 item 4)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from services.loans import corrections, ledger, periods
from services.loans.context import business_date
from services.loans.corrections import Correction
from services.loans.domain.periods import Line, Totals, totals
from services.loans.models import AccountingPeriod, LedgerEntry
from services.loans.schemas import (
    CorrectionIn,
    CorrectionLegOut,
    CorrectionOut,
    PeriodOut,
    TrialBalanceLine,
    TrialBalanceOut,
    TrialBalanceTotals,
)
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.money import format_money
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.problems import Problem
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")

_MONTH = "YYYY-MM, e.g. 2027-01"
PeriodPath = Annotated[str, Path(description=f"the accounting month, {_MONTH}", examples=["2027-01"])]


def _lines(found: Iterable[Line]) -> list[TrialBalanceLine]:
    return [
        TrialBalanceLine(
            account=x.account,
            type=x.type,
            normal_side=x.normal_side,
            opening=x.opening,
            debit=x.debit,
            credit=x.credit,
            balance=x.closing,
        )
        for x in found
    ]


def _totals(t: Totals) -> TrialBalanceTotals:
    return TrialBalanceTotals(
        debit=t.debit,
        credit=t.credit,
        opening_debit_normal=t.opening_debit_normal,
        opening_credit_normal=t.opening_credit_normal,
        debit_normal=t.debit_normal,
        credit_normal=t.credit_normal,
        balanced=t.balanced,
    )


@router.get(
    "/ledger/trial-balance",
    response_model=TrialBalanceOut,
    tags=["ledger"],
    summary="The trial balance: every account's balance signed by its normal side, by month or as of a date",
    description=(
        "Without parameters: everything posted through the business date. `as_of`: entries dated on or before it "
        "(no later than the business date). `period` (YYYY-MM): that month's movements (`debit`, `credit`) between "
        "its opening and closing balances, cut at `as_of` if given (inside the month). Balances are signed by the "
        "account's normal side: assets and expenses debit-positive, liabilities and income credit-positive, so "
        "`totals.debit_normal` equals `totals.credit_normal`. Fixed in issue 25: `settlement` (the clearing account "
        "with the bank's core) is a liability, credit-positive; it used to be shown debit-signed, negative while "
        "loans were outstanding. A closed month's figures never change (nothing is posted into it): "
        "`GET /v1/ledger/periods/{period}` answers them as stored at its close."
    ),
    responses=problems(
        {422: ["AS_OF_BEFORE_PERIOD", "DATE_IN_THE_FUTURE", "INVALID_PERIOD", "PERIOD_IN_THE_FUTURE"]},
        {422: "a period not YYYY-MM or not begun; as_of after the business date or before the period"},
    ),
    dependencies=[scope("ledger:read")],
)
async def get_trial_balance(
    session: ReadSession,
    period: Annotated[str | None, Query(description=f"an accounting month, {_MONTH}", max_length=7)] = None,
    as_of: Annotated[date | None, Query(description="the last business date counted, included")] = None,
) -> TrialBalanceOut:
    today = await business_date(session)
    month, start, end = periods.window(today, period, as_of)
    found = await ledger.trial_balance(session, start, end)
    summed = totals(found)
    last = await session.scalar(select(func.max(LedgerEntry.business_date)).where(LedgerEntry.business_date <= end))
    return TrialBalanceOut(
        business_date=last or date.today(),
        accounts={x.account: format_money(x.closing) for x in found},
        debits_equal_credits=summed.balanced,
        period=None if month is None else str(month),
        from_=start,
        as_of=end,
        closed_through=await periods.closed_through(session),
        lines=_lines(found),
        totals=_totals(summed),
    )


async def _period_out(session: ReadSession, period: AccountingPeriod) -> PeriodOut:
    return PeriodOut(
        period=period.period,
        first_day=period.first_day,
        last_day=period.last_day,
        business_date=period.business_date,
        closed_at=period.closed_at,
        closed_by=period.closed_by,
        lines=_lines(await periods.snapshot(session, period)),
        totals=_totals(periods.stored_totals(period)),
    )


@router.post(
    "/ledger/periods/{period}/close",
    status_code=201,
    response_model=PeriodOut,
    tags=["ledger"],
    summary="Close an accounting month: its trial balance is stored and published, nothing posts into it again",
    description=(
        "Only once every business day of the month is closed (409 PERIOD_NOT_ENDED) and the month before is closed "
        "or ends before the ledger's first posting (409 PREVIOUS_PERIOD_OPEN); once (409 PERIOD_ALREADY_CLOSED). "
        "Event loans.period.closed. From then on every posting dated in it or earlier is refused with 409 "
        "PERIOD_CLOSED: a mistake is corrected by `POST /v1/ledger/corrections` in the open period."
    ),
    responses=problems(
        {409: ["PERIOD_ALREADY_CLOSED", "PERIOD_NOT_ENDED", "PREVIOUS_PERIOD_OPEN"], 422: ["INVALID_PERIOD"]}
    ),
    dependencies=[scope("periods:close"), IDEMPOTENCY_KEY],
)
async def close_period(
    period: PeriodPath, request: Request, session: Session, principal: CurrentPrincipal
) -> PeriodOut | JSONResponse:
    month = periods.parse_month(period, "period")

    async def closed() -> PeriodOut:
        stored, _ = await periods.close(session, month, principal.name)
        return await _period_out(session, stored)

    return await idempotent(session, request, None, closed, status=201)


@router.get(
    "/ledger/periods",
    response_model=list[PeriodOut],
    tags=["ledger"],
    summary="The closed accounting months, newest first, each as stored at its close",
    dependencies=[scope("ledger:read")],
)
async def list_periods(session: ReadSession, limit: Limit = 24, offset: Offset = 0) -> list[PeriodOut]:
    return [await _period_out(session, p) for p in await periods.closed(session, limit, offset)]


@router.get(
    "/ledger/periods/{period}",
    response_model=PeriodOut,
    tags=["ledger"],
    summary="A closed accounting month's trial balance, as stored at its close",
    description="404 PERIOD_NOT_CLOSED for a month not closed: `GET /v1/ledger/trial-balance?period=` shows it live.",
    responses=problems({404: ["PERIOD_NOT_CLOSED"], 422: ["INVALID_PERIOD"]}),
    dependencies=[scope("ledger:read")],
)
async def get_period(period: PeriodPath, session: ReadSession) -> PeriodOut:
    month = periods.parse_month(period, "period")
    stored = await session.get(AccountingPeriod, str(month))
    if stored is None:
        raise Problem(
            404,
            "PERIOD_NOT_CLOSED",
            "Accounting period not closed",
            f"{month} is not closed; GET /v1/ledger/trial-balance?period={month} shows it as it is now.",
        )
    return await _period_out(session, stored)


def _correction_out(c: Correction) -> CorrectionOut:
    return CorrectionOut(
        txn_id=c.txn_id,
        corrects=c.corrects,
        reason=c.reason,
        business_date=c.business_date,
        recorded_by=c.recorded_by,
        legs=[CorrectionLegOut(account=a, debit=d, credit=cr) for a, d, cr in c.legs],
    )


@router.post(
    "/ledger/corrections",
    status_code=201,
    response_model=CorrectionOut,
    tags=["ledger"],
    summary="Correct a ledger transaction by a new balanced entry in the open period",
    description=(
        "Dated the business date unless `date` is given (no later: 422 DATE_IN_THE_FUTURE); a date in a closed "
        "month is 409 PERIOD_CLOSED, nothing written. `legs` omitted: the exact reverse of the transaction "
        "corrected. Only accounts that no loan record mirrors may be corrected (`settlement`, `interest_income`, "
        "`penalty_income`): 422 ACCOUNT_NOT_CORRECTABLE for the others (a loan's balances change through its own "
        "operations: repayment, write-off, recovery, subsidy claims). 422 UNBALANCED_CORRECTION, UNKNOWN_ACCOUNT, "
        "EMPTY_CORRECTION; 404 TRANSACTION_NOT_FOUND."
    ),
    responses=problems(
        {
            404: ["TRANSACTION_NOT_FOUND"],
            409: ["PERIOD_CLOSED"],
            422: [
                "ACCOUNT_NOT_CORRECTABLE",
                "DATE_IN_THE_FUTURE",
                "EMPTY_CORRECTION",
                "UNBALANCED_CORRECTION",
                "UNKNOWN_ACCOUNT",
            ],
        }
    ),
    dependencies=[scope("ledger:correct"), IDEMPOTENCY_KEY],
)
async def post_correction(
    body: CorrectionIn, request: Request, session: Session, principal: CurrentPrincipal
) -> CorrectionOut | JSONResponse:
    legs = None if body.legs is None else [(x.account, x.debit, x.credit) for x in body.legs]

    async def corrected() -> CorrectionOut:
        done = await corrections.correct(session, body.corrects, body.reason, legs, body.date, principal.name)
        return _correction_out(done)

    return await idempotent(session, request, body, corrected, status=201)


@router.get(
    "/ledger/corrections",
    response_model=list[CorrectionOut],
    tags=["ledger"],
    summary="Corrections, oldest first: all, or those dated in one accounting month",
    responses=problems({422: ["INVALID_PERIOD"]}),
    dependencies=[scope("ledger:read")],
)
async def list_corrections(
    session: ReadSession,
    period: Annotated[str | None, Query(description=f"an accounting month, {_MONTH}", max_length=7)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[CorrectionOut]:
    month = None if period is None else periods.parse_month(period, "period")
    start, end = (None, None) if month is None else (month.first, month.last)
    return [_correction_out(c) for c in await corrections.corrections(session, start, end, limit, offset)]
