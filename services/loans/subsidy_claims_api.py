"""Subsidy claim endpoints (贴息资金拨付, 004 §4(1)5): the bank files, the district finance reviews
and pays (services/loans/subsidy_claims.py); read as JSON, CSV or XLSX (shared/tabular.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import subsidy_claims
from services.loans.context import settings
from services.loans.domain.subsidy_claims import PartLine, masked_subject, policy_text
from services.loans.models import SubsidyClaim, SubsidyClaimLine, SubsidyPayment
from services.loans.schemas import (
    SubsidyClaimIn,
    SubsidyClaimLineOut,
    SubsidyClaimOut,
    SubsidyClaimStatus,
    SubsidyExcludedOut,
    SubsidyPaymentIn,
    SubsidyPaymentOut,
    SubsidyReviewIn,
)
from services.loans.subsidy_claim_sheets import claim_sheets
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.tabular import FILE_RESPONSES, download
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")
TAG = "subsidy claims"


def _out(
    claim: SubsidyClaim,
    lines: Sequence[SubsidyClaimLine] | None = None,
    payments: Sequence[SubsidyPayment] | None = None,
) -> SubsidyClaimOut:
    out = SubsidyClaimOut(
        claim_id=claim.id,
        period_start=claim.period_start,
        period_end=claim.period_end,
        status=cast(SubsidyClaimStatus, claim.status),
        filed_by=claim.filed_by,
        filed_on=claim.filed_on,
        reviewed_by=claim.reviewed_by,
        reviewed_on=claim.reviewed_on,
        review_reasons=claim.review_reasons,
        policy=claim.policy,
        loans=claim.loans,
        claimed=claim.claimed,
        forfeited=claim.forfeited,
        penalty_excluded=claim.penalty,
        approved=claim.approved,
        disallowed=claim.claimed - claim.approved if claim.approved is not None else None,
        paid=claim.paid,
        outstanding=claim.approved - claim.paid if claim.approved is not None else None,
    )
    if lines is not None:
        claimed = [line for line in lines if line.subsidy]
        out.lines = [
            SubsidyClaimLineOut(
                number=n,
                loan_id=line.loan_id,
                borrower=masked_subject(line.subject_id),
                subject_kind=cast(Literal["household", "business"], line.subject_kind),
                village_code=line.village_code,
                principal=line.principal,
                disbursed_on=line.disbursed_on,
                maturity_on=line.maturity_on,
                annual_rate=f"{line.annual_rate:.6f}",
                subsidy_rate=f"{line.subsidy_rate:.6f}",
                policy=policy_text(line.annual_rate, line.subsidy_rate, claim.policy),
                days=line.days,
                subsidy=line.subsidy,
                approved=line.approved,
                reason=line.reason,
            )
            for n, line in enumerate(claimed, start=1)
        ]
        out.excluded = [
            SubsidyExcludedOut(
                loan_id=line.loan_id,
                borrower=masked_subject(line.subject_id),
                village_code=line.village_code,
                forfeited_days=line.forfeited_days,
                forfeited=line.forfeited,
                penalty=line.penalty,
            )
            for line in lines
            if line.forfeited or line.penalty
        ]
    if payments is not None:
        out.payments = [
            SubsidyPaymentOut(
                payment_id=p.id,
                amount=p.amount,
                reference=p.reference,
                paid_on=p.paid_on,
                business_date=p.business_date,
                recorded_by=p.recorded_by,
            )
            for p in payments
        ]
    return out


async def _whole(session: AsyncSession, claim: SubsidyClaim) -> SubsidyClaimOut:
    lines = await subsidy_claims.lines_of(session, claim.id)
    return _out(claim, lines, await subsidy_claims.payments_of(session, claim.id))


@router.post(
    "/subsidy-claims",
    status_code=201,
    response_model=SubsidyClaimOut,
    tags=[TAG],
    summary="File the bank's subsidy claim (贴息资金拨付) for a period, computed from the ledger",
    description="One whole period of VCREDIT_LOANS_SUBSIDY_CLAIM_PERIOD (calendar month, quarter (default) or "
    "year), every day closed (its end before the business date), else 422 SUBSIDY_PERIOD_INVALID / "
    "SUBSIDY_PERIOD_NOT_CLOSED; 422 SUBSIDY_HISTORY_MISSING for a period ending before the month-end snapshots "
    "were kept, SUBSIDY_NOTHING_TO_CLAIM when no loan accrued subsidy. A day's subsidy is claimed once: 409 "
    "SUBSIDY_DAYS_CLAIMED when any day is in a claim not returned. Per subsidised loan: the subsidy accrued over "
    "the period's days (claimed) and, excluded, the subsidy forfeited on black-list days and the penalty and "
    "compound interest. Event loans.subsidy_claim.filed.",
    dependencies=[scope("subsidy:claim"), IDEMPOTENCY_KEY],
    responses=problems(
        {
            409: ["SUBSIDY_DAYS_CLAIMED"],
            422: [
                "SUBSIDY_PERIOD_INVALID",
                "SUBSIDY_PERIOD_NOT_CLOSED",
                "SUBSIDY_HISTORY_MISSING",
                "SUBSIDY_NOTHING_TO_CLAIM",
            ],
        }
    ),
)
async def file_claim(
    body: SubsidyClaimIn, request: Request, session: Session, principal: CurrentPrincipal
) -> SubsidyClaimOut | JSONResponse:
    async def filed() -> SubsidyClaimOut:
        claim = await subsidy_claims.file(session, principal, body.period_start, body.period_end)
        return await _whole(session, claim)

    return await idempotent(session, request, body, filed, status=201)


@router.get(
    "/subsidy-claims",
    response_model=list[SubsidyClaimOut],
    tags=[TAG],
    summary="Subsidy claims, latest period first (totals; the lines with a single claim)",
    dependencies=[scope("settlement:read")],
)
async def list_claims(
    session: ReadSession,
    status: SubsidyClaimStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[SubsidyClaimOut]:
    return [_out(c) for c in await subsidy_claims.claims(session, status, limit, offset)]


@router.get(
    "/subsidy-claims/{claim_id}",
    response_model=SubsidyClaimOut,
    tags=[TAG],
    summary="A subsidy claim with its lines, what is excluded, and its payments; or its sheet (CSV, XLSX)",
    description="format=csv: the lines (UTF-8 with a byte-order mark, CRLF, a totals row); format=xlsx: the "
    "district's sheet (序号, 借款人 (masked subject id: loans holds no names or ID numbers), 村, 贷款金额, "
    "贷款发放日, 到期日, 计息天数, 年利率, 贴息利率, 贴息比例/政策, 贴息金额, 核准金额, 核减原因, with the bank, "
    "period and filing date above and a 合计 row) and a second sheet of what is excluded.",
    dependencies=[scope("settlement:read")],
    responses={**FILE_RESPONSES, **problems({404: ["SUBSIDY_CLAIM_NOT_FOUND"]})},
)
async def get_claim(
    claim_id: str,
    session: ReadSession,
    format: Annotated[Literal["json", "csv", "xlsx"], Query(description="json (default), csv or xlsx")] = "json",
) -> SubsidyClaimOut | Response:
    claim = await subsidy_claims.get_claim(session, claim_id)
    if format == "json":
        return await _whole(session, claim)
    sheets = claim_sheets(claim, await subsidy_claims.lines_of(session, claim.id), settings().bank_name)
    return download(sheets, format, f"subsidy-claim-{claim.period_start}-{claim.period_end}")


@router.post(
    "/subsidy-claims/{claim_id}/review",
    response_model=SubsidyClaimOut,
    tags=[TAG],
    summary="Review a subsidy claim: approve, approve part (lines reduced, with reasons) or return",
    description="Never by its filer (409 FOUR_EYES_REQUIRED); once (409 SUBSIDY_CLAIM_DECIDED). An approval "
    "posts Dr subsidy_claimed (approved) and Dr subsidy_disallowed (claimed - approved) / Cr subsidy_receivable "
    "(claimed); a returned claim posts nothing and its days may be claimed again. 422 SUBSIDY_REVIEW_INVALID: a "
    "line not in the claim or given twice, an amount not below what it claims, a reduced line without its reason, "
    "lines with approve, approve_part reducing nothing, return without reasons. Event loans.subsidy_claim.reviewed.",
    dependencies=[scope("subsidy:review"), IDEMPOTENCY_KEY],
    responses=problems(
        {
            404: ["SUBSIDY_CLAIM_NOT_FOUND"],
            409: ["FOUR_EYES_REQUIRED", "SUBSIDY_CLAIM_DECIDED", "PERIOD_CLOSED"],
            422: ["SUBSIDY_REVIEW_INVALID"],
        }
    ),
)
async def review_claim(
    claim_id: str, body: SubsidyReviewIn, request: Request, session: Session, principal: CurrentPrincipal
) -> SubsidyClaimOut | JSONResponse:
    async def reviewed() -> SubsidyClaimOut:
        parts = [PartLine(x.loan_id, x.approved, x.reason) for x in body.lines]
        claim = await subsidy_claims.decide(session, principal, claim_id, body.decision, body.reasons, parts)
        return await _whole(session, claim)

    return await idempotent(session, request, body, reviewed, status=200)


@router.post(
    "/subsidy-claims/{claim_id}/payments",
    status_code=201,
    response_model=SubsidyClaimOut,
    tags=[TAG],
    summary="Record the district finance's payment of an approved claim (partial payments add up)",
    description="Posts Dr settlement / Cr subsidy_claimed on the business date. 409 SUBSIDY_CLAIM_NOT_PAYABLE for "
    "a claim not approved (filed, returned) or paid in full; 409 SUBSIDY_OVERPAID beyond approved - paid; 422 for "
    "paid_on after the business date. The claim is paid once its payments reach what was approved. Event "
    "loans.subsidy_claim.paid.",
    dependencies=[scope("subsidy:review"), IDEMPOTENCY_KEY],
    responses=problems(
        {404: ["SUBSIDY_CLAIM_NOT_FOUND"], 409: ["SUBSIDY_CLAIM_NOT_PAYABLE", "SUBSIDY_OVERPAID", "PERIOD_CLOSED"]}
    ),
)
async def pay_claim(
    claim_id: str, body: SubsidyPaymentIn, request: Request, session: Session, principal: CurrentPrincipal
) -> SubsidyClaimOut | JSONResponse:
    async def paid() -> SubsidyClaimOut:
        payment = await subsidy_claims.pay(session, principal, claim_id, body.amount, body.reference, body.paid_on)
        return await _whole(session, await subsidy_claims.get_claim(session, payment.claim_id))

    return await idempotent(session, request, body, paid, status=201)
